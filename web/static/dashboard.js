// The ops dashboard: reads the fleet, the operations and the public console status from the
// REST API with the bearer token the operator enters, and refreshes them every few seconds.
// Actions (start or cancel an operation, the consoles kill switch) are the API's own endpoints;
// the page keeps no state beyond the token (sessionStorage: gone when the tab closes).

const TOKEN_KEY = 'anyops.dashboard.token';
const REFRESH_MS = 3000;
// How many operations the list shows, newest first.
const OPERATIONS_SHOWN = 20;
// The inventory's largest page; lists are read to the end page by page.
const PAGE_LIMIT = 500;
// How many incidents and drills the page lists, newest first.
const INCIDENTS_SHOWN = 20;
const DRILLS_SHOWN = 10;

const $ = (id) => document.getElementById(id);

// APIError carries the API's JSON error: {"error": {"code", "message"}}.
class APIError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

let token = sessionStorage.getItem(TOKEN_KEY) || '';

// A sign-in link (`anyops dev` prints one) carries the token in the URL fragment, which a
// browser never sends to a server. It signs in as the form does, and leaves the address bar
// (and the history) without it.
{
  const fragment = new URLSearchParams(location.hash.slice(1));
  if (fragment.get('token')) {
    token = fragment.get('token').trim();
    sessionStorage.setItem(TOKEN_KEY, token);
    history.replaceState(null, '', location.pathname + location.search);
  }
}
let info = null; // GET /v1/dashboard: Temporal UI address and operation kinds
let timer = 0;
let refreshing = null;
// Details of closed runs never change: asked once per run id.
const closedDetails = new Map();
// Likewise resolved incidents (with their closed recovery) and finished drills, by id.
const settledIncidents = new Map();
const finishedDrills = new Map();
// The drill whose report is shown: the one clicked, else the newest with a report.
let chosenDrill = null;

async function api(path, { method = 'GET', body } = {}) {
  const headers = { Authorization: `Bearer ${token}` };
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  let resp;
  try {
    // no-store: GET /v1/status is cacheable for the public embed, but ops must see a flip at once.
    resp = await fetch(path, { method, headers, cache: 'no-store', body: body === undefined ? undefined : JSON.stringify(body) });
  } catch (e) {
    throw new APIError(0, 'EUNAVAILABLE', `the API cannot be reached (${e.message})`);
  }
  let data = null;
  try { data = await resp.json(); } catch { /* not JSON: handled below */ }
  if (!resp.ok) {
    const err = data && data.error;
    throw new APIError(resp.status, err?.code || '', err?.message || `${method} ${path} answered HTTP ${resp.status}`);
  }
  return data;
}

// listAll reads every page of an inventory list.
async function listAll(path) {
  const items = [];
  let cursor = '';
  do {
    const q = new URLSearchParams({ limit: String(PAGE_LIMIT) });
    if (cursor) q.set('cursor', cursor);
    const page = await api(`${path}?${q}`);
    items.push(...page.items);
    cursor = page.next_cursor;
  } while (cursor);
  return items;
}

// el builds an element: el('td', {class: 'x', title: 'y'}, 'text', child, ...).
function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k === 'class') node.className = v;
    else if (k === 'onclick') node.addEventListener('click', v);
    else node.setAttribute(k, v === true ? '' : v);
  }
  for (const c of children) {
    if (c !== undefined && c !== null) node.append(c instanceof Node ? c : String(c));
  }
  return node;
}

const badge = (text, kind) => el('span', { class: `badge ${kind || text}` }, text);

function fillTable(id, rows, emptyText) {
  const body = $(id).tBodies[0];
  const cols = $(id).tHead.rows[0].cells.length;
  body.replaceChildren(...(rows.length ? rows : [el('tr', { class: 'empty' }, el('td', { colspan: cols }, emptyText))]));
}

function ago(iso) {
  const t = new Date(iso);
  const s = Math.round((Date.now() - t.getTime()) / 1000);
  if (s < 60) return `${Math.max(s, 0)}s ago`;
  if (s < 3600) return `${Math.round(s / 60)} min ago`;
  if (s < 86400) return `${Math.round(s / 3600)} h ago`;
  return t.toLocaleDateString();
}

// Two kinds of error share the banner: the last action's (kept until the next action, so a
// refresh does not wipe it before it is read) and the last refresh's (gone once one succeeds).
const errors = { action: '', load: '' };

function showError(kind, message) {
  errors[kind] = message || '';
  const text = [errors.action, errors.load].filter(Boolean).join(' · ');
  $('error').textContent = text;
  $('error').hidden = !text;
}

// ---- sign in and out ----

function signedIn(yes) {
  $('sign-in').hidden = yes;
  $('dashboard').hidden = !yes;
  $('sign-out').hidden = !yes;
  if (yes) return;
  clearTimeout(timer);
  $('refreshed').textContent = '';
  $('temporal-link').hidden = true;
  $('token').focus();
}

function signOut(message) {
  token = '';
  info = null;
  closedDetails.clear();
  sessionStorage.removeItem(TOKEN_KEY);
  showError('action', '');
  showError('load', message);
  signedIn(false);
}

$('token-form').addEventListener('submit', (e) => {
  e.preventDefault();
  token = $('token').value.trim();
  $('token').value = '';
  sessionStorage.setItem(TOKEN_KEY, token);
  showError('load', '');
  signedIn(true);
  refreshNow();
});

$('sign-out').addEventListener('click', () => signOut(''));

// ---- refresh ----

// refreshNow refreshes at once; asked during a refresh, it refreshes again right after, so
// that what an action changed is shown even when a refresh was already reading.
let again = false;
function refreshNow() {
  clearTimeout(timer);
  if (refreshing) {
    again = true;
    return refreshing;
  }
  refreshing = refresh().finally(() => {
    refreshing = null;
    if (again) {
      again = false;
      refreshNow();
    }
  });
  return refreshing;
}

async function refresh() {
  try {
    if (!info) {
      info = await api('/v1/dashboard');
      renderInfo();
    }
    const [status, zones, clusters, servers, volumes, replicas, operations, patches, incidents, drills] = await Promise.all([
      api('/v1/status'),
      listAll('/v1/zones'), listAll('/v1/clusters'), listAll('/v1/servers'),
      listAll('/v1/volumes'), listAll('/v1/replicas'),
      api(`/v1/operations?limit=${OPERATIONS_SHOWN}`),
      listAll('/v1/patches'),
      api(`/v1/incidents?limit=${INCIDENTS_SHOWN}`),
      api(`/v1/drills?limit=${DRILLS_SHOWN}`),
    ]);
    const [details, incidentViews, drillViews, reports] = await Promise.all([
      operationDetails(operations.items), incidentDetails(incidents.items), drillDetails(drills.items),
      Promise.all(patches.map((p) => api(`/v1/patches/${encodeURIComponent(p.advisory)}`))),
    ]);
    renderStarting(await readiness());
    renderStatus(status);
    renderIncidents(incidents.items, incidentViews);
    renderPictures(clusters, servers, replicas, incidents.items);
    renderDrills(drills.items, drillViews);
    renderFleet(zones, clusters, servers, volumes, replicas);
    renderOperations(operations.items, details);
    renderPatches(reports);
    showError('load', '');
    $('refreshed').textContent = `updated ${new Date().toLocaleTimeString()}`;
  } catch (e) {
    if (e.status === 401) {
      signOut(e.message);
      return;
    }
    showError('load', e.message);
  }
  if (token) timer = setTimeout(refreshNow, REFRESH_MS);
}

// operationDetails asks GET /v1/operations/{id} (state, Status query, error) for the newest run
// of each id in the list; an id names its latest run only, so older runs show their state alone.
async function operationDetails(ops) {
  const latest = new Map();
  for (const op of ops) if (!latest.has(op.id)) latest.set(op.id, op);
  const details = new Map();
  await Promise.all([...latest.values()].map(async (op) => {
    if (closedDetails.has(op.run_id)) {
      details.set(op.run_id, closedDetails.get(op.run_id));
      return;
    }
    try {
      const d = await api(`/v1/operations/${encodeURIComponent(op.id)}`);
      if (d.run_id !== op.run_id) return; // a newer run started since the list was read
      details.set(op.run_id, d);
      if (d.state !== 'running') closedDetails.set(op.run_id, d);
    } catch (e) {
      if (e.status === 401) throw e;
      // One unreadable operation leaves its row without progress, not the page without data.
    }
  }));
  return details;
}

// settledDetails asks path(item) of each listed item for its details, and keeps those that
// will not change any more (settled(details)) so they are asked once.
async function settledDetails(items, cache, path, settled) {
  const details = new Map();
  await Promise.all(items.map(async (item) => {
    if (cache.has(item.id)) {
      details.set(item.id, cache.get(item.id));
      return;
    }
    try {
      const d = await api(path(item));
      details.set(item.id, d);
      if (settled(d)) cache.set(item.id, d);
    } catch (e) {
      if (e.status === 401) throw e;
      // One unreadable item leaves its row without details, not the page without data.
    }
  }));
  return details;
}

// incidentDetails: GET /v1/incidents/{id} (timeline, the recovery's state and Status query);
// a resolved incident whose recovery has closed is asked once.
const incidentDetails = (incidents) => settledDetails(incidents, settledIncidents, (i) => `/v1/incidents/${i.id}`,
  (v) => v.state !== 'open' && (!v.workflow || v.workflow.state !== 'running'));

// drillDetails: GET /v1/drills/{n} (live Status, the report); a finished drill is asked once.
const drillDetails = (drills) => settledDetails(drills, finishedDrills, (d) => `/v1/drills/${d.id}`,
  (v) => v.state !== 'running');

// ---- rendering ----

function temporalURL(path) {
  return `${info.temporal_ui_url}/namespaces/${encodeURIComponent(info.temporal_namespace)}/${path}`;
}

function renderInfo() {
  const link = $('temporal-link');
  link.hidden = !info.temporal_ui_url;
  if (info.temporal_ui_url) link.href = temporalURL('workflows');
  $('kinds').replaceChildren(...info.operation_kinds.map((k) =>
    el('button', { type: 'button', title: k.description, onclick: () => startOperation(k.name) }, `Start ${k.name}`)));
}

// readiness is what GET /readyz says is still coming while the stack starts (anyops dev:
// the demo fleet's progress from its workflow's Status query, then the console host); [] once
// ready.
async function readiness() {
  try {
    const resp = await fetch('/readyz', { cache: 'no-store' });
    if (resp.ok) return [];
    const body = await resp.json();
    return body.waiting || [body.error?.message || `readiness: HTTP ${resp.status}`];
  } catch (e) {
    return [`readiness unknown (${e.message})`];
  }
}

function renderStarting(waiting) {
  $('starting').hidden = waiting.length === 0;
  $('waiting').replaceChildren(...waiting.map((w) => el('li', {}, w)));
}

let accepting = null;

function renderStatus(st) {
  accepting = st.accepting_consoles;
  const a = $('accepting');
  a.textContent = accepting ? 'accepting consoles' : 'not accepting';
  a.className = `badge ${accepting ? 'ok' : 'bad'}`;
  $('capacity').textContent = st.capacity;
  $('in-use').textContent = st.in_use;
  $('kill-switch').textContent = accepting ? 'Stop accepting consoles' : 'Accept consoles';
}

function renderFleet(zones, clusters, servers, volumes, replicas) {
  const impaired = servers.filter((s) => s.state === 'impaired' || s.impaired_since);
  const notHot = replicas.filter((r) => r.state !== 'uptodate');
  const summary = $('fleet-summary');
  const n = (list, word) => `${list.length} ${word}${list.length === 1 ? '' : 's'}`;
  summary.replaceChildren(
    `${n(zones, 'zone')} · ${n(clusters, 'cluster')} · ${n(servers, 'server')}`,
    impaired.length ? el('span', { class: 'warn' }, ` (${impaired.length} impaired)`) : '',
    ` · ${n(volumes, 'volume')} · ${n(replicas, 'DRBD replica')}`,
    notHot.length ? el('span', { class: 'warn' }, ` (${notHot.length} not up to date)`) : '',
  );

  const count = (list, key, value) => list.filter((x) => x[key] === value).length;
  fillTable('zones', zones.map((z) => el('tr', {},
    el('td', {}, z.name), el('td', {}, z.region), el('td', {}, count(clusters, 'zone', z.name)),
    el('td', {}, count(servers, 'zone', z.name)))), 'no zones');
  fillTable('clusters', clusters.map((c) => el('tr', {},
    el('td', {}, c.name), el('td', {}, c.zone), el('td', {}, badge(c.state)), el('td', {}, c.release || '—'))), 'no clusters');

  fillTable('servers', servers.map((s) => {
    const bad = s.state === 'impaired' || s.impaired_since;
    const state = el('td', {}, badge(s.state));
    if (s.impaired_since) state.append(' ', el('span', { class: 'muted', title: s.impaired_since }, `since ${new Date(s.impaired_since).toLocaleString()}`));
    return el('tr', { class: bad ? 'impaired' : undefined, 'data-server': s.name },
      el('td', {}, s.name), el('td', {}, s.role), el('td', {}, s.zone), el('td', {}, s.cluster), state,
      el('td', { class: 'mono' }, s.instance_id || '—'), el('td', {}, s.instance_type || ''), el('td', { class: 'mono' }, s.private_ip || ''));
  }), 'no servers');

  // Volumes by where they are attached (server, device), unattached ones last: a server's
  // disks read together.
  const where = (v) => (v.server ? `0 ${v.server} ${v.device}` : `1 ${v.volume_id}`);
  volumes = [...volumes].sort((a, b) => where(a).localeCompare(where(b)));
  fillTable('volumes', volumes.map((v) => el('tr', {},
    el('td', { class: 'mono' }, v.volume_id), el('td', {}, v.kind),
    el('td', {}, badge(v.criticality)), el('td', { class: 'num' }, `${v.size_gib} GiB`), el('td', {}, v.zone),
    el('td', {}, v.server ? `${v.server} ${v.device || ''}${v.raid_group ? ` (${v.raid_group})` : ''}` : el('span', { class: 'muted' }, 'not attached')),
    el('td', {}, badge(v.state)))), 'no volumes');

  fillTable('replicas', replicas.map((r) => el('tr', { class: r.state === 'uptodate' ? undefined : 'degraded' },
    el('td', {}, r.name), el('td', {}, r.cluster),
    el('td', {}, `${r.primary_server} → ${r.secondary_server}`),
    el('td', {}, r.connection_state || '—'),
    el('td', {}, `${r.primary_disk_state || '?'} / ${r.secondary_disk_state || '?'}`),
    el('td', { class: 'progress-cell' }, el('progress', { max: 100, value: r.sync_percent }), ` ${r.sync_percent.toFixed(1)}%`),
    el('td', {}, badge(r.state)))), 'no replicas');
}

function workflowLink(id, runID, text) {
  if (!info.temporal_ui_url || !id) return text;
  const path = runID ? `workflows/${encodeURIComponent(id)}/${encodeURIComponent(runID)}/history` : `workflows/${encodeURIComponent(id)}`;
  return el('a', { href: temporalURL(path), target: '_blank', rel: 'noopener', title: 'open in the Temporal UI' }, text);
}

// renderIncidents lists the incidents with their recovery workflow's live status: its state,
// the Status query's phase and progress, the ways it races, the interlocks holding it and
// whether the data has a hot copy.
function renderIncidents(incidents, views) {
  fillTable('incidents', incidents.map((inc) => {
    const v = views.get(inc.id);
    const wf = v && v.workflow;
    const st = wf && wf.status;
    const live = [];
    if (wf) live.push(progress(wf.state, wf));
    else if (v && v.workflow_error) live.push(el('span', { class: 'error-text', title: v.workflow_error }, v.workflow_error));
    if (st && st.branches && st.branches.length) {
      live.push(el('div', { class: 'branches' }, ...st.branches.map((b) => el('span', { class: `branch ${b.outcome || b.state}`, 'data-branch': b.name, title: b.message || '' },
        `${b.name}: ${b.outcome || b.state}${b.outcome ? '' : ` ${Math.round((b.progress || 0) * 100)}%`}`))));
    }
    if (st && st.blocked && st.blocked.length) {
      live.push(el('div', { class: 'warn' }, ...st.blocked.map((b) => `blocked by ${b.interlock}: ${b.what}`)));
    }
    if (st && st.redundancy) {
      const r = st.redundancy;
      live.push(el('div', { class: r.hot_backup ? 'muted' : 'warn' },
        r.hot_backup ? `hot backup: ${r.backup || 'yes'}` : `no hot backup for ${Math.round(r.no_hot_backup_seconds)} s`));
    }
    return el('tr', { 'data-incident': inc.id, 'data-state': inc.state, 'data-workflow-state': wf ? wf.state : '' },
      el('td', { class: 'num' }, inc.id), el('td', {}, inc.title),
      el('td', {}, inc.server ? `${inc.server}${inc.cluster ? ` (${inc.cluster})` : ''}` : (inc.cluster || '—')),
      el('td', {}, badge(inc.state)),
      el('td', { class: 'mono' }, inc.workflow_id ? workflowLink(inc.workflow_id, inc.run_id, inc.workflow_id) : '—',
        wf ? ' ' : '', wf ? badge(wf.state) : ''),
      el('td', { class: 'live-status' }, ...live),
      el('td', { class: 'nowrap', title: inc.opened_at }, ago(inc.opened_at)));
  }), 'no incidents');
}

// drbdHealthy says whether a resource's link has its hot copy: connected, both disks UpToDate.
const drbdHealthy = (r) => r.connection_state === 'Connected' && r.primary_disk_state === 'UpToDate' && r.secondary_disk_state === 'UpToDate';
const serving = (s) => s && s.state === 'running' && !s.impaired_since;

// renderPictures draws each cluster that is not retired: its file server and backup with the
// DRBD link of each resource between them (connection, disk states, sync percent), and the
// web, console and task servers that mount the file service by its name
// (files.<cluster>.internal). The inventory does not record mounts: a client's mount is shown
// reaching the cluster's file server, and stale while that server is not serving.
function renderPictures(clusters, servers, replicas, incidents) {
  const shown = clusters.filter((c) => c.state !== 'retired');
  const pictures = shown.map((c) => {
    const mine = servers.filter((s) => s.cluster === c.name && s.state !== 'terminated');
    const byName = new Map(servers.map((s) => [s.name, s]));
    const links = replicas.filter((r) => r.cluster === c.name);
    const file = mine.find((s) => s.role === 'file') || byName.get(links[0]?.primary_server);
    const backup = byName.get(links[0]?.secondary_server) || mine.find((s) => s.role === 'backup');
    const clients = mine.filter((s) => ['web', 'console', 'task'].includes(s.role));
    const open = incidents.filter((i) => i.state === 'open' && i.cluster === c.name);
    const box = (s, role) => el('div', { class: `host ${serving(s) ? 'ok' : 'bad'}`, 'data-host': s ? s.name : '', 'data-role': role },
      el('strong', {}, s ? s.name : `no ${role}`), el('span', { class: 'muted' }, role),
      s ? badge(s.impaired_since ? 'impaired' : s.state) : '', s && s.private_ip ? el('span', { class: 'mono' }, s.private_ip) : '');
    const link = (r) => {
      const ok = drbdHealthy(r);
      const kind = ok ? 'ok' : (r.connection_state === 'Connected' || r.connection_state?.startsWith('Sync') ? 'syncing' : 'bad');
      return el('div', { class: `drbd-link ${kind}`, 'data-resource': r.name, 'data-connection': r.connection_state || '', 'data-sync': r.sync_percent },
        el('span', { class: 'mono' }, r.name),
        el('span', { class: 'wire', 'aria-hidden': 'true' }),
        el('span', {}, `${r.connection_state || 'unknown'} · ${r.primary_disk_state || '?'}/${r.secondary_disk_state || '?'}`),
        el('span', { class: 'nowrap' }, el('progress', { max: 100, value: r.sync_percent }), ` ${r.sync_percent.toFixed(1)}%`));
    };
    const mountName = `files.${c.name}.internal`;
    const client = (s) => {
      const stale = !serving(file);
      return el('div', { class: `host client ${serving(s) && !stale ? 'ok' : 'bad'}`, 'data-host': s.name, 'data-role': s.role, 'data-mount': stale ? 'stale' : 'serving' },
        el('strong', {}, s.name), el('span', { class: 'muted' }, s.role), badge(s.impaired_since ? 'impaired' : s.state),
        el('span', { class: 'mount' }, `${mountName}:/srv/home → ${file ? file.name : '?'}`, ' ', badge(stale ? 'stale' : 'serving', stale ? 'bad' : 'ok')));
    };
    return el('figure', { class: 'cluster-picture', 'data-cluster': c.name },
      el('figcaption', {}, el('strong', {}, c.name), ' ', badge(c.state), ` ${c.zone}`,
        open.length ? el('span', { class: 'warn' }, ` · ${open.length} open incident${open.length === 1 ? '' : 's'}`) : ''),
      el('div', { class: 'storage' }, box(file, 'file'),
        el('div', { class: 'links' }, ...(links.length ? links.map(link) : [el('span', { class: 'muted' }, 'no DRBD resources')])),
        box(backup, 'backup')),
      el('div', { class: 'clients' }, ...(clients.length ? clients.map(client) : [el('span', { class: 'muted' }, 'no clients')])));
  });
  $('cluster-pictures').replaceChildren(...(pictures.length ? pictures : [el('p', { class: 'muted' }, 'no clusters')]));
}

const seconds = (v) => (v === null || v === undefined ? '—' : `${Math.round(v)} s`);

function renderDrills(drills, views) {
  fillTable('drills', drills.map((d) => {
    const v = views.get(d.id) || d;
    const rep = v.report;
    const row = el('tr', { 'data-drill': d.id, 'data-state': v.state, class: chosenDrill === d.id ? 'chosen' : undefined },
      el('td', { class: 'mono nowrap' }, el('a', { href: '#', onclick: (e) => { e.preventDefault(); chosenDrill = d.id; renderDrills(drills, views); } }, `drill/${d.id}`)),
      el('td', {}, d.scenario), el('td', {}, d.cluster), el('td', {}, badge(v.state)),
      el('td', {}, v.error ? el('span', { class: 'error-text', title: v.error }, v.error) : progress(v.state, v)),
      el('td', { class: 'num' }, rep ? seconds(rep.rto_seconds) : '—'), el('td', {}, rep ? (rep.winner || '—') : '—'),
      el('td', { class: 'nowrap', title: d.created_at }, ago(d.created_at)));
    return row;
  }), 'no drills yet (anyops drill run hot-backup)');
  const withReport = drills.map((d) => views.get(d.id)).filter((v) => v && v.report);
  const shown = views.get(chosenDrill) || withReport[0];
  $('drill-report').hidden = !shown || !shown.report;
  if (shown && shown.report) renderReport(shown.report);
}

// renderReport shows a drill's figures and its timeline: a chart of the events by source
// over simulated time from the origin, with the detection and the recovery marked, and the
// events as a table.
function renderReport(rep) {
  $('drill-report-heading').textContent = `${rep.drill}: ${rep.scenario} on ${rep.cluster} at speed ${rep.speed}`;
  const goal = (key) => rep.goals && rep.goals[key];
  const figure = (label, key, value) => {
    const g = goal(key);
    return el('div', {}, el('dt', {}, label), el('dd', { 'data-key': key, class: g ? (g.met ? 'met' : 'missed') : undefined },
      value, g ? el('span', { class: 'muted' }, ` (goal ≤ ${g.bound}${g.met ? '' : ', missed'})`) : ''));
  };
  $('drill-figures').replaceChildren(
    figure('RTO', 'rto_seconds', rep.recovered ? seconds(rep.rto_seconds) : 'not recovered'),
    figure('Detected', 'detect_seconds', seconds(rep.detect_seconds)),
    figure('No hot backup', 'no_hot_backup_seconds', seconds(rep.no_hot_backup_seconds)),
    figure('Lost bytes', 'lost_bytes', String(rep.lost_bytes)),
    figure('Interlock violations', 'interlock_violations', String(rep.interlock_violations)),
    figure('Duplicate resources', 'duplicate_resources', String(rep.duplicate_resources)),
    figure('Winner', 'winner', rep.winner || '—'),
    figure('Control plane', 'control_plane_seconds', `${rep.control_plane_seconds.toFixed(1)} s`));
  const events = rep.timeline || [];
  $('drill-event-count').textContent = String(events.length);
  $('drill-chart').replaceChildren(timelineChart(rep, events));
  $('drill-chart').setAttribute('aria-label', `timeline of ${rep.drill}: ${events.length} events`);
  fillTable('drill-timeline', events.map((e) => el('tr', { 'data-source': e.source },
    el('td', { class: 'num' }, `${e.offset_seconds.toFixed(1)} s`), el('td', {}, e.source), el('td', { class: 'mono' }, e.type),
    el('td', { class: 'mono' }, e.resource || ''), el('td', { class: 'wrap' }, e.message))), 'no events');
}

const SVG_NS = 'http://www.w3.org/2000/svg';
function svg(tag, attrs = {}, ...children) {
  const node = document.createElementNS(SVG_NS, tag);
  for (const [k, v] of Object.entries(attrs)) if (v !== undefined && v !== null) node.setAttribute(k, String(v));
  for (const c of children) node.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return node;
}

// timelineChart: one lane per source (cloud, incident, workflow), each event a dot at its
// offset (its title the event), vertical marks at the origin, the detection and the RTO.
function timelineChart(rep, events) {
  const lanes = ['cloud', 'incident', 'workflow'];
  for (const e of events) if (!lanes.includes(e.source)) lanes.push(e.source);
  // The marks' labels sit in rows of their own above the lanes, so that close marks (a
  // detection seconds after the fault) stay readable.
  const W = 1000, left = 80, right = 20, labelRow = 14, top = 10 + 3 * labelRow, lane = 34, H = top + lanes.length * lane + 30;
  const marks = [{ at: 0, label: 'fault', cls: 'origin' }];
  if (rep.detect_seconds !== null && rep.detect_seconds !== undefined) marks.push({ at: rep.detect_seconds, label: 'detected', cls: 'detect' });
  if (rep.rto_seconds !== null && rep.rto_seconds !== undefined) marks.push({ at: rep.rto_seconds, label: 'recovered', cls: 'rto' });
  const xs = [...events.map((e) => e.offset_seconds), ...marks.map((m) => m.at)];
  const lo = Math.min(0, ...xs), hi = Math.max(1, ...xs);
  const x = (t) => left + ((t - lo) / (hi - lo)) * (W - left - right);
  const root = svg('svg', { viewBox: `0 0 ${W} ${H}`, class: 'timeline-chart', 'data-events': events.length });
  lanes.forEach((name, i) => {
    const y = top + i * lane + lane / 2;
    root.append(svg('text', { x: 4, y: y + 4, class: 'lane-label' }, name),
      svg('line', { x1: left, x2: W - right, y1: y, y2: y, class: 'lane' }));
  });
  marks.forEach((m, i) => {
    const labelY = 10 + (i + 1) * labelRow - 3;
    root.append(svg('line', { x1: x(m.at), x2: x(m.at), y1: labelY - 10, y2: H - 24, class: `mark ${m.cls}`, 'data-mark': m.cls }),
      svg('text', { x: x(m.at) + 3, y: labelY, class: `mark-label ${m.cls}` }, `${m.label} ${Math.round(m.at)} s`));
  });
  for (const e of events) {
    const y = top + lanes.indexOf(e.source) * lane + lane / 2;
    const dot = svg('circle', { cx: x(e.offset_seconds), cy: y, r: 4, class: `event ${e.source}`, 'data-type': e.type });
    dot.append(svg('title', {}, `${e.offset_seconds.toFixed(1)} s ${e.type}${e.resource ? ` ${e.resource}` : ''}: ${e.message}`));
    root.append(dot);
  }
  const ticks = 6;
  for (let i = 0; i <= ticks; i++) {
    const t = lo + ((hi - lo) * i) / ticks;
    root.append(svg('text', { x: x(t), y: H - 8, class: 'tick', 'text-anchor': 'middle' }, `${Math.round(t)} s`));
  }
  return root;
}

function renderOperations(ops, details) {
  fillTable('operations', ops.map((op) => {
    const d = details.get(op.run_id);
    const state = d ? d.state : op.state;
    const id = info.temporal_ui_url
      ? el('a', { href: temporalURL(`workflows/${encodeURIComponent(op.id)}/${encodeURIComponent(op.run_id)}/history`), target: '_blank', rel: 'noopener', title: 'open in the Temporal UI' }, op.id)
      : op.id;
    return el('tr', { 'data-operation': op.id, 'data-run-id': op.run_id, 'data-state': state },
      el('td', { class: 'nowrap' }, op.kind || '?'), el('td', { class: 'mono nowrap' }, id), el('td', {}, badge(state)),
      el('td', {}, progress(state, d)),
      el('td', { class: 'nowrap', title: op.started }, ago(op.started)),
      el('td', {}, state === 'running'
        ? el('button', { type: 'button', class: 'danger', onclick: () => cancelOperation(op.id) }, 'Cancel')
        : ''));
  }), 'no operations yet');
}

function progress(state, d) {
  if (d && d.error) return el('span', { class: 'error-text', title: d.error }, d.error);
  const st = d && d.status;
  if (!st) return el('span', { class: 'muted' }, state === 'running' ? 'no status yet' : '');
  const text = st.message ? `${st.phase}: ${st.message}` : st.phase;
  const eta = st.eta && state === 'running' ? ` · ETA ${new Date(st.eta).toLocaleTimeString()}` : '';
  return el('div', { class: 'progress-line' },
    el('span', { class: 'nowrap' }, el('progress', { max: 1, value: st.progress }), ` ${Math.round(st.progress * 100)}%`),
    el('span', {}, `${text}${eta}`));
}

// checkText is one side of a server's check: its libssl (or first package) version and the
// active check's verdict.
function checkText(c) {
  if (!c) return el('span', { class: 'muted' }, '—');
  const versions = c.versions || {};
  const v = versions['libssl1.0.0'] || Object.values(versions)[0] || '';
  const kind = { vulnerable: 'bad', fixed: 'ok' }[c.check] || 'muted';
  return el('span', {}, el('span', { class: 'mono' }, v), ' ', badge(c.check, kind));
}

function renderPatches(reports) {
  const box = $('patches');
  if (!reports.length) {
    box.replaceChildren(el('p', { class: 'muted' }, 'no fleet patches yet'));
    return;
  }
  box.replaceChildren(...reports.map((r) => {
    const outcomeKind = { patched: 'ok', 'already-fixed': 'ok', failed: 'bad', unreachable: 'bad', blocked: 'warn', 'not-started': 'warn' };
    const stateKind = { completed: 'ok', stopped: 'bad', aborted: 'bad', 'awaiting-approval': 'warn' }[r.state] || 'running';
    const sent = r.notices.filter((n) => n.sent_at).length;
    const rows = r.servers.map((s) => {
      const took = s.started_at && s.finished_at ? `${Math.round((new Date(s.finished_at) - new Date(s.started_at)) / 1000)} s` : '';
      return el('tr', { 'data-patch-server': s.server, 'data-outcome': s.outcome },
        el('td', {}, s.server, s.canary ? el('span', { class: 'muted' }, ' canary') : ''), el('td', {}, s.role),
        el('td', {}, badge(s.outcome, outcomeKind[s.outcome])), el('td', {}, checkText(s.before)), el('td', {}, checkText(s.after)),
        el('td', {}, (s.restarted || []).join(', ') || '—'), el('td', { class: 'nowrap' }, took), el('td', {}, s.message || ''));
    });
    const table = el('table', { class: 'patch-servers' },
      el('thead', {}, el('tr', {}, ...['Server', 'Role', 'Outcome', 'Before', 'After', 'Restarted', 'Took', 'Note'].map((h) => el('th', {}, h)))),
      el('tbody', {}, ...rows));
    return el('div', { class: 'patch', 'data-advisory': r.advisory },
      el('h3', {}, `${r.advisory} `, badge(r.state, stateKind)),
      el('p', { class: 'summary' }, `errors ${r.errors} of max ${r.max_errors}`,
        r.stop_reason ? el('span', { class: 'warn' }, ` · stopped: ${r.stop_reason}`) : '',
        ` · notices ${sent} of ${r.notices.length} sent`,
        r.drained.length ? el('span', { class: 'warn' }, ` · drained: ${r.drained.map((d) => d.server).join(', ')}`) : ''),
      table);
  }));
}

// ---- actions ----

// act runs an action and refreshes; its error is shown like any API error.
async function act(action) {
  try {
    await action();
    showError('action', '');
  } catch (e) {
    if (e.status === 401) return signOut(e.message);
    showError('action', e.message);
  }
  await refreshNow();
}

function startOperation(kind) {
  return act(() => api(`/v1/operations/${encodeURIComponent(kind)}`, { method: 'POST', body: {} }));
}

function cancelOperation(id) {
  if (!confirm(`Cancel operation ${id}?`)) return;
  return act(() => api(`/v1/operations/${encodeURIComponent(id)}/cancel`, { method: 'POST' }));
}

$('kill-switch').addEventListener('click', () => {
  if (accepting === null) return;
  const next = !accepting;
  if (!next && !confirm('Stop accepting new consoles? The launch button disappears from every site that embeds it.')) return;
  return act(() => api('/v1/admin/consoles/accepting', { method: 'POST', body: { accepting: next } }));
});

signedIn(Boolean(token));
if (token) refreshNow();
