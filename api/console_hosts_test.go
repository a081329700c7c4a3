package api

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/anyops/anyops/internal/testenv"
	"github.com/anyops/anyops/inventory"
	sbtoken "github.com/anyops/anyops/sandboxd/token"
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

// TestRegistrationProbeHandsNothingReusable proves the registration probe gives an unverified
// URL nothing it can use elsewhere: the one token it receives names that URL as its
// audience, creates only the probe sandbox with exactly the probe's body and lives 15
// seconds — replayed on a real sandboxd of the fleet (one that trusts the API's key), as is
// or with another body, it is refused and creates nothing; and the URL is not recorded.
func TestRegistrationProbeHandsNothingReusable(t *testing.T) {
	st := newConsoleStack(t, stackOptions{})
	var got struct {
		sync.Mutex
		token string
		body  []byte
	}
	impostor := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got.Lock()
		defer got.Unlock()
		got.token = strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")
		got.body, _ = io.ReadAll(r.Body)
		w.WriteHeader(http.StatusTeapot)
	}))
	defer impostor.Close()
	const console = "live-console2"
	if rec := st.do("PUT", "/v1/servers/"+console+"/sandboxd", adminToken, fmt.Sprintf(`{"url":%q}`, impostor.URL), ""); rec.Code != http.StatusServiceUnavailable {
		t.Fatalf("register the impostor = %d %s, want 503", rec.Code, rec.Body)
	}
	if srv, _ := st.store.GetServer(context.Background(), console); srv.SandboxdURL != "" {
		t.Fatalf("the impostor's URL was recorded: %q", srv.SandboxdURL)
	}
	got.Lock()
	tok, body := got.token, got.body
	got.Unlock()
	keys := sbtoken.NewKeySet(st.key.Public().(ed25519.PublicKey))
	v, err := sbtoken.NewVerifier(keys, impostor.URL)
	if err != nil {
		t.Fatal(err)
	}
	claims, err := v.Parse(tok)
	if err != nil {
		t.Fatalf("the probe's token: %v", err)
	}
	if claims.Op != sbtoken.OpCreate || claims.Aud != impostor.URL || !strings.HasPrefix(claims.Sandbox, "probe-") ||
		claims.Body != sbtoken.BodyHash(body) || claims.Exp-claims.Iat > 15 {
		t.Fatalf("probe token claims %+v: want a create of one probe sandbox, for the impostor only, for its body, short-lived", claims)
	}
	for name, replay := range map[string][]byte{
		"as is":            body,
		"for a root shell": []byte(strings.Replace(string(body), `"plan":"anonymous"`, `"plan":"paid"`, 1)),
	} {
		req, _ := http.NewRequest("POST", st.sbURL+"/v1/sandboxes", bytes.NewReader(replay))
		req.Header.Set("Authorization", "Bearer "+tok)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusForbidden && resp.StatusCode != http.StatusUnauthorized {
			t.Fatalf("probe token replayed on a real sandboxd %s = %d, want 401 or 403", name, resp.StatusCode)
		}
	}
	if list, err := st.sbc.List(context.Background()); err != nil || len(list) != 0 {
		t.Fatalf("the replays created %v (%v)", list, err)
	}
}
