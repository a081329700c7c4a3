package sandboxd

import (
	"cmp"
	"context"
	"encoding/json"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/anyops/anyops"
	"github.com/anyops/anyops/sandboxd/client"
	"github.com/anyops/anyops/sandboxd/token"
	"github.com/anyops/anyops/sandboxd/wire"
)

// TestBadRequestsCreateNothing proves every bad create — bad, expired or wrongly scoped
// token, unknown image, negative or absurd limits, a uid or gid outside the sandbox range,
// bad fields — gets a clear 4xx JSON error and leaves no sandbox, no home directory and no
// process behind.
func TestBadRequestsCreateNothing(t *testing.T) {
	h := newHarness(t, nil)
	// good signs a create token for exactly the bytes sent, for the id they name.
	good := func(raw []byte) string {
		var req struct{ ID string }
		_ = json.Unmarshal(raw, &req)
		return h.mint(token.OpCreate, cmp.Or(req.ID, "sb-1"), raw, time.Minute)
	}
	fixed := func(tok string) func([]byte) string { return func([]byte) string { return tok } }
	_, otherKey, _ := token.GenerateKey()
	foreign := func(raw []byte) string {
		tok, _ := token.NewSigner(otherKey).Mint(token.Grant{Audience: h.cfg.URL, Op: token.OpCreate, Sandbox: "sb-1", Body: raw}, "x", time.Minute)
		return tok
	}
	expired := func(raw []byte) string {
		tok, _ := h.signer.Sign(token.Claims{Aud: h.cfg.URL, Op: token.OpCreate, Sandbox: "sb-1", Body: token.BodyHash(raw),
			Iat: time.Now().Add(-2 * time.Minute).Unix(), Exp: time.Now().Add(-time.Minute).Unix()})
		return tok
	}
	with := func(change func(*wire.CreateRequest)) wire.CreateRequest {
		r := shell()
		r.ID = "sb-1"
		change(&r)
		return r
	}
	valid := with(func(*wire.CreateRequest) {})
	tests := []struct {
		name       string
		tok        func(raw []byte) string
		body       any
		wantStatus int
		wantCode   string
		wantInMsg  string
	}{
		{"no token", fixed(""), valid, 401, anyops.EUNAUTHORIZED, "token is required"},
		{"garbage token", fixed("not-a-token"), valid, 401, anyops.EUNAUTHORIZED, "malformed"},
		{"token signed by another key", foreign, valid, 401, anyops.EUNAUTHORIZED, "key this host does not hold"},
		{"expired token", expired, valid, 401, anyops.EUNAUTHORIZED, "expired"},
		{"token for another operation", fixed(h.mint(token.OpList, token.AnySandbox, nil, time.Minute)), valid, 403, anyops.EFORBIDDEN, "grants list"},
		{"token for another body", fixed(h.mint(token.OpCreate, "sb-1", []byte(`{"id":"sb-1"}`), time.Minute)), valid, 403, anyops.EFORBIDDEN, "body"},
		{"token for another sandbox id", func(raw []byte) string { return h.mint(token.OpCreate, "sb-2", raw, time.Minute) }, valid, 403, anyops.EFORBIDDEN, "sb-2"},
		{"no sandbox id", good, with(func(r *wire.CreateRequest) { r.ID = "" }), 403, anyops.EFORBIDDEN, "sandbox"},
		{"unknown image", good, with(func(r *wire.CreateRequest) { r.Image = "cobol:1985" }), 400, anyops.EINVALID, "image cobol:1985 is not on this host"},
		{"negative memory", good, with(func(r *wire.CreateRequest) { r.Limits = &anyops.Limits{MemoryBytes: -1} }), 400, anyops.EINVALID, "must not be negative"},
		{"negative pids", good, with(func(r *wire.CreateRequest) { r.Limits = &anyops.Limits{Pids: -5} }), 400, anyops.EINVALID, "limits.pids"},
		{"absurd memory", good, with(func(r *wire.CreateRequest) { r.Limits = &anyops.Limits{MemoryBytes: 1 << 50} }), 400, anyops.EINVALID, "exceeds plan free"},
		{"home above the plan's quota", good, with(func(r *wire.CreateRequest) { r.Limits = &anyops.Limits{HomeBytes: 1 << 40} }), 400, anyops.EINVALID, "limits.home_bytes"},
		{"absurd max lifetime", good, with(func(r *wire.CreateRequest) { r.MaxLifetime = wire.Duration(10000 * time.Hour) }), 400, anyops.EINVALID, "max_lifetime"},
		{"negative idle timeout", good, with(func(r *wire.CreateRequest) { r.IdleTimeout = wire.Duration(-time.Second) }), 400, anyops.EINVALID, "idle_timeout"},
		{"lease too short to renew", good, with(func(r *wire.CreateRequest) { r.Lease = wire.Duration(time.Millisecond) }), 400, anyops.EINVALID, "lease"},
		{"memory too small to run", good, with(func(r *wire.CreateRequest) { r.Limits = &anyops.Limits{MemoryBytes: 1024} }), 400, anyops.EINVALID, "below the minimum"},
		{"root uid", good, with(func(r *wire.CreateRequest) { r.UID = 0 }), 400, anyops.EINVALID, "uid"},
		{"a host user's uid", good, with(func(r *wire.CreateRequest) { r.UID = 1000 }), 400, anyops.EINVALID, "outside the sandbox range"},
		{"gid 42, the shadow group", good, with(func(r *wire.CreateRequest) { r.GID = 42 }), 400, anyops.EINVALID, "gid 42 is outside the sandbox range"},
		{"gid 65534, nogroup", good, with(func(r *wire.CreateRequest) { r.GID = 65534 }), 400, anyops.EINVALID, "gid"},
		{"gid past the range", good, with(func(r *wire.CreateRequest) { r.GID = 1 << 31 }), 400, anyops.EINVALID, "gid"},
		{"unknown plan", good, with(func(r *wire.CreateRequest) { r.Plan = "platinum" }), 400, anyops.EINVALID, "plan"},
		{"unknown network policy", good, with(func(r *wire.CreateRequest) { r.Network = "satellite" }), 400, anyops.EINVALID, "network"},
		{"the host's network (no longer a policy)", good, with(func(r *wire.CreateRequest) { r.Network = "host" }), 400, anyops.EINVALID, "network"},
		{"a free user asking for the internet", good, with(func(r *wire.CreateRequest) { r.Network = anyops.NetworkInternet }), 400, anyops.EINVALID, "reaches further than plan free's proxy"},
		{"an anonymous user asking for the proxy", good, with(func(r *wire.CreateRequest) { r.Plan, r.Network = anyops.PlanAnonymous, anyops.NetworkProxy }), 400, anyops.EINVALID, "reaches further than plan anonymous's none"},
		{"user with a slash", good, with(func(r *wire.CreateRequest) { r.User = "../etc" }), 400, anyops.EINVALID, "user"},
		{"unknown field", good, map[string]any{"id": "sb-1", "user": "alice", "uid": 120001, "plan": "free", "privileged": true}, 400, anyops.EINVALID, "unknown field"},
		{"not JSON", good, []byte("nonsense"), 400, anyops.EINVALID, "request body"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, body := h.rawCreate(tt.body, tt.tok)
			if status != tt.wantStatus || body.Error.Code != tt.wantCode || !strings.Contains(body.Error.Message, tt.wantInMsg) {
				t.Fatalf("got %d %+v, want %d %s containing %q", status, body.Error, tt.wantStatus, tt.wantCode, tt.wantInMsg)
			}
		})
	}
	h.requireNothingCreated()
}

// requireNothingCreated fails the test if the daemon has a sandbox, a home or a cgroup.
func (h *harness) requireNothingCreated() {
	h.t.Helper()
	list, err := h.c.List(context.Background())
	if err != nil || len(list) != 0 {
		h.t.Fatalf("after refused creates the daemon lists %v (err %v), want nothing", list, err)
	}
	if homes, _ := os.ReadDir(h.cfg.StorageRoot); len(homes) != 0 {
		h.t.Fatalf("refused creates left home directories: %v", homes)
	}
	if cgs := cgroupChildren(h.cfg.CgroupParent); len(cgs) != 0 {
		h.t.Fatalf("refused creates left cgroups: %v", cgs)
	}
}

// TestCreateTokenIsBoundToHostAndBody proves, on two real sandboxds that trust the same key,
// that a create token works once, on its own host, for its own body: replayed on the second
// host, replayed on its own host, or sent with the body changed (a gid of 42, another plan,
// the host's network), it is refused with 403 or 401, and nothing is created.
func TestCreateTokenIsBoundToHostAndBody(t *testing.T) {
	a := newHarness(t, nil)
	pub, priv := a.cfg.PublicKey, a.signer
	b := newHarness(t, func(c *Config) { c.PublicKey = pub }) // the same fleet: it trusts a's key too
	b.signer = priv
	b.c, _ = client.New(b.ts.URL, priv)
	req := shell()
	req.ID = "console-7-1"
	raw, _ := json.Marshal(req)
	tok := a.mint(token.OpCreate, req.ID, raw, time.Minute)

	changed := func(change func(*wire.CreateRequest)) []byte {
		r := req
		change(&r)
		out, _ := json.Marshal(r)
		return out
	}
	for _, tt := range []struct {
		name       string
		on         *harness
		body       []byte
		wantStatus int
	}{
		{"replayed on another host", b, raw, 403},
		{"gid changed to 42", a, changed(func(r *wire.CreateRequest) { r.GID = 42 }), 403},
		{"plan raised", a, changed(func(r *wire.CreateRequest) { r.Plan = anyops.PlanPaid }), 403},
		{"network changed", a, changed(func(r *wire.CreateRequest) { r.Network = anyops.NetworkInternet }), 403},
		{"user changed", a, changed(func(r *wire.CreateRequest) { r.User, r.UID = "root2", 100000 }), 403},
		{"same bytes with a space appended", a, append(append([]byte(nil), raw...), ' '), 403},
	} {
		t.Run(tt.name, func(t *testing.T) {
			status, body := tt.on.send(http.MethodPost, "/v1/sandboxes", tok, tt.body)
			if status != tt.wantStatus || body.Error.Code == "" {
				t.Fatalf("got %d %+v, want %d with a JSON error", status, body, tt.wantStatus)
			}
		})
	}
	b.requireNothingCreated()
	a.requireNothingCreated()

	if status, body := a.send(http.MethodPost, "/v1/sandboxes", tok, raw); status != http.StatusCreated {
		t.Fatalf("the token on its own host with its own body: %d %+v, want 201", status, body)
	}
	if err := a.c.Delete(context.Background(), req.ID); err != nil {
		t.Fatal(err)
	}
	// Used once: a copy replayed within its minute does not bring the deleted sandbox back.
	if status, body := a.send(http.MethodPost, "/v1/sandboxes", tok, raw); status != http.StatusUnauthorized || !strings.Contains(body.Error.Message, "already used") {
		t.Fatalf("the same token again: %d %+v, want 401 already used", status, body)
	}
	if list, _ := a.c.List(context.Background()); len(list) != 0 {
		t.Fatalf("the replay created %v", list)
	}
}

// TestTokensAreScopedToTheSandbox proves a token for one sandbox opens nothing of another,
// and that wrong tokens on get, delete and attach change nothing.
func TestTokensAreScopedToTheSandbox(t *testing.T) {
	h := newHarness(t, nil)
	sb := h.create(shell())
	other := "sb-someone-else"
	tests := []struct {
		name, method, path, tok string
		wantStatus              int
	}{
		{"get with a token for another host", "GET", "/v1/sandboxes/" + sb.ID, func() string {
			tok, _ := h.signer.Mint(token.Grant{Audience: "http://console-b:8090", Op: token.OpGet, Sandbox: sb.ID}, "x", time.Minute)
			return tok
		}(), 403},
		{"get with a token for another sandbox", "GET", "/v1/sandboxes/" + sb.ID, h.mint(token.OpGet, other, nil, time.Minute), 403},
		{"delete with a get token", "DELETE", "/v1/sandboxes/" + sb.ID, h.mint(token.OpGet, sb.ID, nil, time.Minute), 403},
		{"capacity without a token", "GET", "/v1/capacity", "", 401},
		{"attach with a delete token", "GET", "/v1/sandboxes/" + sb.ID + "/attach", h.mint(token.OpDelete, sb.ID, nil, time.Minute), 403},
		{"get of an unknown sandbox", "GET", "/v1/sandboxes/" + other, h.mint(token.OpGet, other, nil, time.Minute), 404},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if status, body := h.rawRequest(tt.method, tt.path, tt.tok, nil); status != tt.wantStatus || body.Error.Code == "" {
				t.Fatalf("got %d %+v, want %d with a JSON error", status, body, tt.wantStatus)
			}
		})
	}
	if got := h.get(sb.ID); got.State != wire.StateRunning {
		t.Fatalf("sandbox after refused requests: %+v, want running", got)
	}
}

// TestAttachChecksOrigin proves browsers from other origins cannot attach, while the allowed
// origin and clients that send no Origin (not browsers) can.
func TestAttachChecksOrigin(t *testing.T) {
	h := newHarness(t, func(c *Config) { c.AllowedOrigins = []string{"https://www.python.org", "consoles.example"} })
	sb := h.create(shell())
	tests := []struct {
		origin     string
		wantStatus int
	}{
		{"", http.StatusSwitchingProtocols},
		{"https://www.python.org", http.StatusSwitchingProtocols},
		{"https://consoles.example", http.StatusSwitchingProtocols},
		{"https://evil.example", http.StatusForbidden},
		{"http://www.python.org.evil.example", http.StatusForbidden},
	}
	for _, tt := range tests {
		t.Run("origin "+tt.origin, func(t *testing.T) {
			u, _, err := h.c.AttachURL(sb.ID)
			if err != nil {
				t.Fatal(err)
			}
			hdr := http.Header{}
			if tt.origin != "" {
				hdr.Set("Origin", tt.origin)
			}
			ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
			defer cancel()
			conn, resp, err := websocket.Dial(ctx, u, &websocket.DialOptions{HTTPHeader: hdr})
			if conn != nil {
				_ = conn.CloseNow()
			}
			if resp == nil {
				t.Fatalf("no HTTP answer: %v", err)
			}
			if resp.StatusCode != tt.wantStatus {
				t.Fatalf("status %d, want %d (err %v)", resp.StatusCode, tt.wantStatus, err)
			}
		})
	}
}

// TestAttachRefusesBrowsersByDefault proves a sandboxd given no allowed origins lets no
// browser attach (it used to allow any), while a client that sends no Origin still can.
func TestAttachRefusesBrowsersByDefault(t *testing.T) {
	h := newHarness(t, func(c *Config) { c.AllowedOrigins = nil })
	sb := h.create(shell())
	for origin, want := range map[string]int{"https://evil.example": http.StatusForbidden, "": http.StatusSwitchingProtocols} {
		u, _, err := h.c.AttachURL(sb.ID)
		if err != nil {
			t.Fatal(err)
		}
		hdr := http.Header{}
		if origin != "" {
			hdr.Set("Origin", origin)
		}
		ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
		conn, resp, err := websocket.Dial(ctx, u, &websocket.DialOptions{HTTPHeader: hdr})
		cancel()
		if conn != nil {
			_ = conn.CloseNow()
		}
		if resp == nil || resp.StatusCode != want {
			t.Fatalf("origin %q: %v (%v), want %d", origin, resp, err, want)
		}
	}
}
