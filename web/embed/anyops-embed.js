// The Anyops console embed. Put <div data-anyops-console data-command="python3"></div> where
// the console should go, and load this script from the Anyops API:
//   <script src="https://consoles.example.org/embed/anyops-embed.js" defer></script>
// The "Launch interactive shell" button shows only while GET /v1/status says consoles are
// accepted; clicking it replaces the button with the console page in an iframe.
(function () {
  'use strict';
  var script = document.currentScript;
  var api = new URL(script.src, location.href).origin;

  function mount(el) {
    fetch(api + '/v1/status', { mode: 'cors' })
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (status) {
        if (!status || !status.accepting_consoles) return; // no button: nothing to offer now
        var btn = document.createElement('button');
        btn.type = 'button';
        btn.className = 'anyops-launch';
        btn.textContent = el.getAttribute('data-label') || 'Launch interactive shell';
        btn.addEventListener('click', function () {
          var frame = document.createElement('iframe');
          var command = el.getAttribute('data-command') || 'python3';
          frame.src = api + '/console?command=' + encodeURIComponent(command);
          frame.title = 'Interactive shell';
          frame.style.width = el.getAttribute('data-width') || '100%';
          frame.style.height = el.getAttribute('data-height') || '420px';
          frame.style.border = '0';
          el.replaceChildren(frame);
        });
        el.replaceChildren(btn);
      })
      .catch(function () { /* the status ping failed: show nothing */ });
  }

  document.querySelectorAll('[data-anyops-console]').forEach(mount);
})();
