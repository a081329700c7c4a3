package sandboxd

import (
	"context"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/anyops/anyops"
	"github.com/anyops/anyops/sandboxd/token"
	"github.com/anyops/anyops/sandboxd/wire"
)

// TestBadRequestsCreateNothing proves every bad create — bad, expired or wrongly scoped
// token, unknown image, negative or absurd limits, bad fields — gets a clear 4xx JSON error
// and leaves no sandbox, no home directory and no process behind.
func TestBadRequestsCreateNothing(t *testing.T) {
	h := newHarness(t, nil)
	good := h.mint(token.OpCreate, token.AnySandbox, time.Minute)
	_, otherKey, _ := token.GenerateKey()
	foreign, _ := token.NewSigner(otherKey).Mint(token.OpCreate, token.AnySandbox, "x", time.Minute)
	expired, _ := h.signer.Sign(token.Claims{Op: token.OpCreate, Sandbox: token.AnySandbox, Iat: time.Now().Add(-2 * time.Minute).Unix(), Exp: time.Now().Add(-time.Minute).Unix()})
	with := func(change func(*wire.CreateRequest)) wire.CreateRequest {
		r := shell()
		change(&r)
		return r
	}
	tests := []struct {
		name       string
		tok        string
		body       any
		wantStatus int
		wantCode   string
		wantInMsg  string
	}{
		{"no token", "", shell(), 401, anyops.EUNAUTHORIZED, "token is required"},
		{"garbage token", "not-a-token", shell(), 401, anyops.EUNAUTHORIZED, "malformed"},
		{"token signed by another key", foreign, shell(), 401, anyops.EUNAUTHORIZED, "signature"},
		{"expired token", expired, shell(), 401, anyops.EUNAUTHORIZED, "expired"},
		{"token for another operation", h.mint(token.OpList, token.AnySandbox, time.Minute), shell(), 403, anyops.EFORBIDDEN, "grants list"},
		{"token scoped to one sandbox", h.mint(token.OpCreate, "sb-1", time.Minute), shell(), 403, anyops.EFORBIDDEN, "not valid"},
		{"unknown image", good, with(func(r *wire.CreateRequest) { r.Image = "cobol:1985" }), 400, anyops.EINVALID, "unknown image"},
		{"negative memory", good, with(func(r *wire.CreateRequest) { r.Limits = &anyops.Limits{MemoryBytes: -1} }), 400, anyops.EINVALID, "must not be negative"},
		{"negative pids", good, with(func(r *wire.CreateRequest) { r.Limits = &anyops.Limits{Pids: -5} }), 400, anyops.EINVALID, "limits.pids"},
		{"absurd memory", good, with(func(r *wire.CreateRequest) { r.Limits = &anyops.Limits{MemoryBytes: 1 << 50} }), 400, anyops.EINVALID, "exceeds plan free"},
		{"absurd max lifetime", good, with(func(r *wire.CreateRequest) { r.MaxLifetime = wire.Duration(10000 * time.Hour) }), 400, anyops.EINVALID, "max_lifetime"},
		{"negative idle timeout", good, with(func(r *wire.CreateRequest) { r.IdleTimeout = wire.Duration(-time.Second) }), 400, anyops.EINVALID, "idle_timeout"},
		{"memory too small to run", good, with(func(r *wire.CreateRequest) { r.Limits = &anyops.Limits{MemoryBytes: 1024} }), 400, anyops.EINVALID, "below the minimum"},
		{"root uid", good, with(func(r *wire.CreateRequest) { r.UID = 0 }), 400, anyops.EINVALID, "uid"},
		{"unknown plan", good, with(func(r *wire.CreateRequest) { r.Plan = "platinum" }), 400, anyops.EINVALID, "plan"},
		{"unknown network policy", good, with(func(r *wire.CreateRequest) { r.Network = "internet" }), 400, anyops.EINVALID, "network"},
		{"user with a slash", good, with(func(r *wire.CreateRequest) { r.User = "../etc" }), 400, anyops.EINVALID, "user"},
		{"unknown field", good, map[string]any{"user": "alice", "uid": 20001, "plan": "free", "privileged": true}, 400, anyops.EINVALID, "unknown field"},
		{"not JSON", good, "nonsense", 400, anyops.EINVALID, "request body"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, body := h.rawRequest(http.MethodPost, "/v1/sandboxes", tt.tok, tt.body)
			if status != tt.wantStatus || body.Error.Code != tt.wantCode || !strings.Contains(body.Error.Message, tt.wantInMsg) {
				t.Fatalf("got %d %+v, want %d %s containing %q", status, body.Error, tt.wantStatus, tt.wantCode, tt.wantInMsg)
			}
		})
	}
	list, err := h.c.List(context.Background())
	if err != nil || len(list) != 0 {
		t.Fatalf("after refused creates the daemon lists %v (err %v), want nothing", list, err)
	}
	if homes, _ := os.ReadDir(h.cfg.StorageRoot); len(homes) != 0 {
		t.Fatalf("refused creates left home directories: %v", homes)
	}
	if cgs := cgroupChildren(h.cfg.CgroupParent); len(cgs) != 0 {
		t.Fatalf("refused creates left cgroups: %v", cgs)
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
		{"get with a token for another sandbox", "GET", "/v1/sandboxes/" + sb.ID, h.mint(token.OpGet, other, time.Minute), 403},
		{"delete with a get token", "DELETE", "/v1/sandboxes/" + sb.ID, h.mint(token.OpGet, sb.ID, time.Minute), 403},
		{"delete with a wildcard token", "DELETE", "/v1/sandboxes/" + sb.ID, h.mint(token.OpDelete, token.AnySandbox, time.Minute), 403},
		{"list with a sandbox token", "GET", "/v1/sandboxes", h.mint(token.OpList, sb.ID, time.Minute), 403},
		{"capacity without a token", "GET", "/v1/capacity", "", 401},
		{"attach with a delete token", "GET", "/v1/sandboxes/" + sb.ID + "/attach", h.mint(token.OpDelete, sb.ID, time.Minute), 403},
		{"get of an unknown sandbox", "GET", "/v1/sandboxes/" + other, h.mint(token.OpGet, other, time.Minute), 404},
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
