package api

import (
	"context"
	"fmt"
	"net/http"
	"testing"

	"github.com/anyops/anyops/internal/testenv"
	"github.com/anyops/anyops/inventory"
)

// TestRegisterConsoleHost proves PUT /v1/servers/{name}/sandboxd: only an admin may, only for a
// running console server, only with an http(s) URL, and only when that sandboxd answers to
// this API's key — every refusal leaves the server as it was; the accepted one records the URL
// and an audit event.
func TestRegisterConsoleHost(t *testing.T) {
	st := newConsoleStack(t, stackOptions{})
	ctx := context.Background()
	const console = "live-console2"
	nothing := fmt.Sprintf("http://127.0.0.1:%d", testenv.FreePort(t))
	body := func(url string) string { return fmt.Sprintf(`{"url":%q}`, url) }

	refused := []struct {
		name, server, token, body string
		want                      int
	}{
		{"viewer", console, viewerToken, body(st.sbURL), http.StatusForbidden},
		{"operator", console, operatorToken, body(st.sbURL), http.StatusForbidden},
		{"no token", console, "", body(st.sbURL), http.StatusUnauthorized},
		{"not http", console, adminToken, body("ftp://10.0.0.1/"), http.StatusBadRequest},
		{"not a url", console, adminToken, body("sandboxd please"), http.StatusBadRequest},
		{"no url", console, adminToken, `{}`, http.StatusBadRequest},
		{"unknown field", console, adminToken, `{"url":"http://x:1","port":1}`, http.StatusBadRequest},
		{"unknown server", "live-nope", adminToken, body(st.sbURL), http.StatusNotFound},
		{"web server", "live-web1", adminToken, body(st.sbURL), http.StatusConflict},
		{"nobody listening", console, adminToken, body(nothing), http.StatusServiceUnavailable},
	}
	for _, tt := range refused {
		t.Run(tt.name, func(t *testing.T) {
			rec := st.do("PUT", "/v1/servers/"+tt.server+"/sandboxd", tt.token, tt.body, "")
			if rec.Code != tt.want {
				t.Fatalf("= %d %s, want %d", rec.Code, rec.Body, tt.want)
			}
			if srv, err := st.store.GetServer(ctx, console); err != nil || srv.SandboxdURL != "" {
				t.Fatalf("refused request changed %s: url %q, err %v", console, srv.SandboxdURL, err)
			}
		})
	}

	rec := st.do("PUT", "/v1/servers/"+console+"/sandboxd", adminToken, body(st.sbURL), "")
	if rec.Code != http.StatusOK {
		t.Fatalf("register = %d %s", rec.Code, rec.Body)
	}
	if got := decode[inventory.Server](t, rec); got.SandboxdURL != st.sbURL {
		t.Errorf("response sandboxd_url %q, want %q", got.SandboxdURL, st.sbURL)
	}
	if ev, err := st.store.LatestAudit(ctx, "register-console-host"); err != nil || ev.Subject != console {
		t.Errorf("audit event %+v, %v", ev, err)
	}
}
