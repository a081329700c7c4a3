package sandboxd

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/anyops/anyops/internal/testenv"
	"github.com/anyops/anyops/sandboxd/client"
	"github.com/anyops/anyops/sandboxd/homes"
	"github.com/anyops/anyops/sandboxd/images/imagestest"
	"github.com/anyops/anyops/sandboxd/jail"
	"github.com/anyops/anyops/sandboxd/sandboxdtest/teardown"
	"github.com/anyops/anyops/sandboxd/token"
	"github.com/anyops/anyops/sandboxd/wire"
)

// The test binary doubles as the sandboxes' init: the jail re-executes it.
func TestMain(m *testing.M) {
	jail.MaybeInit()
	code := m.Run()
	if sharedState.dir != "" {
		if err := teardown.RemoveStateDir(sharedState.dir); err != nil {
			fmt.Fprintln(os.Stderr, "sandboxd tests:", err)
		}
	}
	os.Exit(code)
}

// sharedState is one state dir for the package's servers; every server still gets a cgroup
// parent of its own, which is what CleanupStale scans.
var sharedState struct {
	sync.Mutex
	dir string
}

func stateDir(t *testing.T) string {
	sharedState.Lock()
	defer sharedState.Unlock()
	if sharedState.dir == "" {
		d, err := os.MkdirTemp("", "sandboxd-test-state-")
		if err != nil {
			t.Fatal(err)
		}
		sharedState.dir = d
	}
	return sharedState.dir
}

const waitLimit = 30 * time.Second

// harness is a real sandboxd (real jail, the real console image of the machine's image cache)
// behind an httptest server, with a client holding the matching private key.
type harness struct {
	t      *testing.T
	srv    *Server
	ts     *httptest.Server
	c      *client.Client
	signer *token.Signer
	cfg    Config
}

func newHarness(t *testing.T, configure func(*Config)) *harness {
	t.Helper()
	testenv.RequireRoot(t)
	pub, priv, err := token.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	images, _ := imagestest.Console(t)
	cfg := Config{
		PublicKey:      pub,
		StorageRoot:    t.TempDir(),
		HomeQuota:      homes.QuotaNone, // tests of quotas give a btrfs root (homestest.BtrfsRoot)
		StateDir:       stateDir(t),
		ImageStore:     images.Dir(),
		CgroupParent:   "anyops-sandboxd-test-" + randomHex(4),
		Slots:          4,
		AllowedOrigins: []string{"*"},
		Logger:         slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})),
	}
	if configure != nil {
		configure(&cfg)
	}
	return startHarness(t, cfg, priv)
}

// startHarness starts a sandboxd on cfg behind an httptest server whose URL is the daemon's
// own (the audience its tokens must name).
func startHarness(t *testing.T, cfg Config, priv ed25519.PrivateKey) *harness {
	t.Helper()
	ts := httptest.NewUnstartedServer(nil)
	cfg.URL = "http://" + ts.Listener.Addr().String()
	srv, err := New(cfg)
	if err != nil {
		ts.Close()
		t.Fatalf("New: %v", err)
	}
	ts.Config.Handler = srv
	ts.Start()
	signer := token.NewSigner(priv)
	c, err := client.New(ts.URL, signer)
	if err != nil {
		t.Fatal(err)
	}
	c.Subject = "test"
	t.Cleanup(func() {
		srv.Close()
		ts.Close()
		teardown.RemoveCgroupParent(cfg.CgroupParent)
		if err := teardown.RemoveNetwork(cfg.CgroupParent); err != nil {
			t.Error(err)
		}
	})
	return &harness{t: t, srv: srv, ts: ts, c: c, signer: signer, cfg: cfg}
}

func dirExists(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.IsDir()
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// shell is the smallest valid create request: a login shell for a free user.
func shell() wire.CreateRequest {
	return wire.CreateRequest{User: "alice", UID: 120001, Plan: "free"}
}

func (h *harness) create(req wire.CreateRequest) wire.Sandbox {
	h.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()
	sb, err := h.c.Create(ctx, req)
	if err != nil {
		h.t.Fatalf("create: %v", err)
	}
	return sb
}

func (h *harness) get(id string) wire.Sandbox {
	h.t.Helper()
	sb, err := h.c.Get(context.Background(), id)
	if err != nil {
		h.t.Fatalf("get %s: %v", id, err)
	}
	return sb
}

// waitState polls GET until cond holds.
func (h *harness) waitFor(id, what string, cond func(wire.Sandbox) bool) wire.Sandbox {
	h.t.Helper()
	deadline := time.Now().Add(waitLimit)
	for {
		sb := h.get(id)
		if cond(sb) {
			return sb
		}
		if time.Now().After(deadline) {
			h.t.Fatalf("sandbox %s: gave up waiting for %s; last state %+v", id, what, sb)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// processesIn lists the host pids whose cgroup is the sandbox's (in any hierarchy).
func (h *harness) processesIn(id string) []string {
	suffix := "/" + h.cfg.CgroupParent + "/" + id
	var pids []string
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		if e.Name()[0] < '0' || e.Name()[0] > '9' {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cgroup"))
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(b), "\n") {
			if strings.HasSuffix(line, suffix) {
				pids = append(pids, e.Name())
				break
			}
		}
	}
	return pids
}

// term is one WebSocket client of a sandbox's terminal that records what it receives.
type term struct {
	t    *testing.T
	conn *websocket.Conn

	mu       sync.Mutex
	out      []byte // the last outKeep bytes of terminal output
	total    int    // all terminal bytes received
	controls []wire.Control
	closeErr error
	done     chan struct{}
}

const outKeep = 1 << 20

func (h *harness) attach(id string) *term {
	h.t.Helper()
	tm := h.dial(id, nil)
	tm.startReading()
	return tm
}

// dial attaches without reading; dialer, when set, dials the TCP connection.
func (h *harness) dial(id string, dialer func(ctx context.Context, network, addr string) (net.Conn, error)) *term {
	h.t.Helper()
	c := *h.c
	if dialer != nil {
		c.HTTP = &http.Client{Transport: &http.Transport{DialContext: dialer}}
	}
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()
	conn, err := c.Dial(ctx, id)
	if err != nil {
		h.t.Fatalf("attach %s: %v", id, err)
	}
	tm := &term{t: h.t, conn: conn, done: make(chan struct{})}
	h.t.Cleanup(func() { _ = conn.CloseNow() })
	return tm
}

func (tm *term) startReading() { go tm.read() }

func (tm *term) read() {
	defer close(tm.done)
	for {
		typ, data, err := tm.conn.Read(context.Background())
		tm.mu.Lock()
		if err != nil {
			tm.closeErr = err
			tm.mu.Unlock()
			return
		}
		if typ == websocket.MessageBinary {
			tm.total += len(data)
			tm.out = append(tm.out, data...)
			if len(tm.out) > outKeep {
				tm.out = append([]byte(nil), tm.out[len(tm.out)-outKeep:]...)
			}
		} else {
			var c wire.Control
			if err := json.Unmarshal(data, &c); err != nil {
				tm.t.Errorf("server sent a text frame that is not JSON: %q", data)
			}
			tm.controls = append(tm.controls, c)
		}
		tm.mu.Unlock()
	}
}

func (tm *term) output() string {
	tm.mu.Lock()
	defer tm.mu.Unlock()
	return string(tm.out)
}

func (tm *term) received() int {
	tm.mu.Lock()
	defer tm.mu.Unlock()
	return tm.total
}

// waitOutput waits until the terminal output contains want.
func (tm *term) waitOutput(want string) {
	tm.t.Helper()
	deadline := time.Now().Add(waitLimit)
	for !strings.Contains(tm.output(), want) {
		if time.Now().After(deadline) {
			tm.t.Fatalf("gave up waiting for %q in the terminal; got %q", want, tail(tm.output(), 2000))
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// waitClosed waits until the server closed the connection and returns the close status and
// the control frames received.
func (tm *term) waitClosed() (websocket.StatusCode, []wire.Control) {
	tm.t.Helper()
	select {
	case <-tm.done:
	case <-time.After(waitLimit):
		tm.t.Fatalf("the server did not close the connection")
	}
	tm.mu.Lock()
	defer tm.mu.Unlock()
	return websocket.CloseStatus(tm.closeErr), tm.controls
}

func (tm *term) controlsSeen() []wire.Control {
	tm.mu.Lock()
	defer tm.mu.Unlock()
	return append([]wire.Control(nil), tm.controls...)
}

// waitControls waits until n control frames have arrived.
func (tm *term) waitControls(n int) {
	tm.t.Helper()
	deadline := time.Now().Add(waitLimit)
	for len(tm.controlsSeen()) < n {
		if time.Now().After(deadline) {
			tm.t.Fatalf("gave up waiting for %d control frames; got %+v", n, tm.controlsSeen())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func (tm *term) send(s string) {
	tm.t.Helper()
	if err := tm.conn.Write(context.Background(), websocket.MessageBinary, []byte(s)); err != nil {
		tm.t.Fatalf("send %q: %v", s, err)
	}
}

func (tm *term) control(c wire.Control) {
	tm.t.Helper()
	b, _ := json.Marshal(c)
	if err := tm.conn.Write(context.Background(), websocket.MessageText, b); err != nil {
		tm.t.Fatalf("send control: %v", err)
	}
}

func (tm *term) leave() {
	_ = tm.conn.Close(websocket.StatusNormalClosure, "bye")
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

// rawRequest sends a request with a hand-made token and returns status and decoded error.
func (h *harness) rawRequest(method, path, tok string, body any) (int, wire.ErrorBody) {
	h.t.Helper()
	var raw []byte
	if body != nil {
		raw, _ = json.Marshal(body)
	}
	return h.send(method, path, tok, raw)
}

func (h *harness) send(method, path, tok string, raw []byte) (int, wire.ErrorBody) {
	h.t.Helper()
	req, _ := http.NewRequest(method, h.ts.URL+path, bytes.NewReader(raw))
	if tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		h.t.Fatal(err)
	}
	defer resp.Body.Close()
	var eb wire.ErrorBody
	_ = json.NewDecoder(resp.Body).Decode(&eb)
	return resp.StatusCode, eb
}

// mint returns a token for op on sandbox at this daemon; body is a create's exact body.
func (h *harness) mint(op token.Op, sandbox string, body []byte, ttl time.Duration) string {
	tok, err := h.signer.Mint(token.Grant{Audience: h.cfg.URL, Op: op, Sandbox: sandbox, Body: body}, "test", ttl)
	if err != nil {
		h.t.Fatal(err)
	}
	return tok
}

// rawCreate posts body as it is (a struct or map is marshalled once) with the token tokenFor
// makes for those exact bytes, and returns the status and decoded error.
func (h *harness) rawCreate(body any, tokenFor func(raw []byte) string) (int, wire.ErrorBody) {
	h.t.Helper()
	raw, ok := body.([]byte)
	if !ok {
		raw, _ = json.Marshal(body)
	}
	return h.send(http.MethodPost, "/v1/sandboxes", tokenFor(raw), raw)
}

// cgroupChildren lists the cgroups under parent, in every hierarchy.
func cgroupChildren(parent string) []string {
	var out []string
	for _, pattern := range []string{"/sys/fs/cgroup/*/" + parent + "/*", "/sys/fs/cgroup/" + parent + "/*"} {
		matches, _ := filepath.Glob(pattern)
		for _, m := range matches {
			if dirExists(m) {
				out = append(out, m)
			}
		}
	}
	return out
}

// scrape returns the /metrics text, checking /healthz on the way: both need no token.
func (h *harness) scrape() string {
	h.t.Helper()
	for _, path := range []string{"/healthz", "/metrics"} {
		resp, err := http.Get(h.ts.URL + path)
		if err != nil {
			h.t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			h.t.Fatalf("%s: %d %s", path, resp.StatusCode, b)
		}
		if path == "/metrics" {
			return string(b)
		}
	}
	return ""
}
