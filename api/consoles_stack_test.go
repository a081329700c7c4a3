package api

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/coder/websocket"
	"go.temporal.io/sdk/client"
	tworker "go.temporal.io/sdk/worker"

	"github.com/anyops/anyops"
	"github.com/anyops/anyops/activities"
	"github.com/anyops/anyops/internal/testenv"
	"github.com/anyops/anyops/inventory"
	sbclient "github.com/anyops/anyops/sandboxd/client"
	"github.com/anyops/anyops/sandboxd/sandboxdtest"
	sbtoken "github.com/anyops/anyops/sandboxd/token"
	"github.com/anyops/anyops/sandboxd/wire"
	"github.com/anyops/anyops/worker"
	"github.com/anyops/anyops/workflows"
)

// The console tests run a whole stack on real parts: the shared Temporal dev server, an
// inventory in SQLite, a real sandboxd (root: namespaces, cgroups) behind httptest, a console
// worker (in this process, or a child process that the kill test kills with SIGKILL) and the
// API handler.

// Environment of the console worker child process (the test binary run again).
const (
	envWorkerChild    = "ANYOPS_TEST_CONSOLE_WORKER"
	envWorkerTemporal = "ANYOPS_TEST_CONSOLE_WORKER_TEMPORAL"
	envWorkerQueue    = "ANYOPS_TEST_CONSOLE_WORKER_QUEUE"
	envWorkerDB       = "ANYOPS_TEST_CONSOLE_WORKER_DB"
	envWorkerKey      = "ANYOPS_TEST_CONSOLE_WORKER_KEY"
)

// maybeRunConsoleWorker turns this process into a console worker when the test started it as
// one; it never returns then. TestMain calls it first.
func maybeRunConsoleWorker() {
	if os.Getenv(envWorkerChild) == "" {
		return
	}
	fail := func(err error) { fmt.Fprintln(os.Stderr, "console worker:", err); os.Exit(2) }
	seed, err := hex.DecodeString(os.Getenv(envWorkerKey))
	if err != nil || len(seed) != ed25519.SeedSize {
		fail(fmt.Errorf("bad key"))
	}
	store, err := inventory.Open(context.Background(), inventory.DriverSQLite, os.Getenv(envWorkerDB))
	if err != nil {
		fail(err)
	}
	tc, err := client.Dial(client.Options{HostPort: os.Getenv(envWorkerTemporal)})
	if err != nil {
		fail(err)
	}
	w := newConsoleWorker(tc, os.Getenv(envWorkerQueue), store, ed25519.NewKeyFromSeed(seed))
	if err := w.Start(); err != nil {
		fail(err)
	}
	fmt.Println("console worker ready")
	select {} // until killed
}

// newConsoleWorker is a Temporal worker polling the test's own queue with what worker.Register
// registers for the consoles queue: the production registration, on a queue no other test's
// worker polls.
func newConsoleWorker(tc client.Client, queue string, store *inventory.Store, key ed25519.PrivateKey) tworker.Worker {
	w := tworker.New(tc, queue, worker.Options(worker.Config{StopTimeout: time.Second}))
	worker.Register(w, worker.TaskQueueConsoles, worker.Deps{Store: store, SandboxdSigner: sbtoken.NewSigner(key)})
	return w
}

type consoleStack struct {
	t       *testing.T
	key     ed25519.PrivateKey
	store   *inventory.Store
	dbPath  string
	tc      client.Client
	queue   string
	sbc     *sbclient.Client
	sbURL   string
	sbd     *sandboxdtest.Daemon
	server  *Server
	handler http.Handler
}

type stackOptions struct {
	driver    string // inventory.DriverSQLite (default) or DriverPostgres
	timing    workflows.ConsoleTiming
	admission AdmissionConfig
	slots     int
}

func fastTiming() workflows.ConsoleTiming {
	return workflows.ConsoleTiming{IdleTimeout: time.Minute, MaxLifetime: 10 * time.Minute, KeepaliveInterval: 10 * time.Second,
		HostCheckInterval: 500 * time.Millisecond, HostLostAfter: 3,
		// The lease must outlive the worker's restart in TestConsolesSurviveWorkerKill: the
		// control plane may go that long without checking a sandbox before it ends itself.
		SandboxLease: time.Minute, CheckTokenTTL: 2 * time.Second, ClockMargin: 100 * time.Millisecond}
}

func newConsoleStack(t *testing.T, o stackOptions) *consoleStack {
	t.Helper()
	testenv.RequireRoot(t)
	if o.slots == 0 {
		o.slots = 6
	}
	sbd := sandboxdtest.Start(t, sandboxdtest.Options{Name: "api", Slots: o.slots,
		Logger: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))})

	ctx := context.Background()
	store, dbPath := openDemoInventory(t, o.driver)
	// New users are pinned to the inventory's default image: RegisterConsoleHost makes that
	// the default image of this sandboxd (the console image of the machine's image cache).
	if _, err := activities.RegisterConsoleHost(ctx, store, inventory.Server{Name: "test-console", Zone: inventory.DemoZone,
		Cluster: inventory.DemoCluster, SandboxdURL: sbd.URL}, sbd.Signer); err != nil {
		t.Fatal(err)
	}
	auth, err := ParseTokens(testTokens)
	if err != nil {
		t.Fatal(err)
	}
	tc := testenv.TemporalClient(t)
	queue := "consoles-test-" + randomHex(4)
	timing := o.timing
	s := New(Deps{Store: store, Temporal: tc, Auth: auth, Logger: slog.New(slog.DiscardHandler), CORSOrigins: []string{"*"},
		ConsolesEnabled: true, Consoles: ConsoleDeps{SandboxdKey: sbd.Key, TaskQueue: queue, Admission: o.admission,
			Timing: func(anyops.Plan) workflows.ConsoleTiming { return timing }}})
	return &consoleStack{t: t, key: sbd.Key, store: store, dbPath: dbPath, tc: tc, queue: queue, sbc: sbd.Client, sbURL: sbd.URL, sbd: sbd, server: s, handler: s.Handler()}
}

// startWorker runs a console worker in this process until the test ends.
func (st *consoleStack) startWorker() {
	st.t.Helper()
	w := newConsoleWorker(st.tc, st.queue, st.store, st.key)
	if err := w.Start(); err != nil {
		st.t.Fatal(err)
	}
	st.t.Cleanup(w.Stop)
}

// workerProcess is a console worker in a child process.
type workerProcess struct{ cmd *exec.Cmd }

// startWorkerProcess runs a console worker as a child process and waits until it polls.
func (st *consoleStack) startWorkerProcess() *workerProcess {
	st.t.Helper()
	self, err := os.Executable()
	if err != nil {
		st.t.Fatal(err)
	}
	cmd := exec.Command(self, "-test.run=^$")
	cmd.Env = append(os.Environ(), envWorkerChild+"=1", envWorkerTemporal+"="+testenv.Temporal(st.t), envWorkerQueue+"="+st.queue,
		envWorkerDB+"="+st.dbPath, envWorkerKey+"="+hex.EncodeToString(st.key.Seed()))
	var out bytes.Buffer
	pr, pw, _ := os.Pipe()
	cmd.Stdout, cmd.Stderr = pw, &out
	if err := cmd.Start(); err != nil {
		st.t.Fatal(err)
	}
	pw.Close()
	ready := make(chan bool, 1)
	go func() {
		// The SDK logs to stdout too: read every line, answer at the marker, drain the rest.
		sc := bufio.NewScanner(pr)
		said := false
		for sc.Scan() {
			if !said && sc.Text() == "console worker ready" {
				ready <- true
				said = true
			}
		}
		if !said {
			ready <- false
		}
	}()
	select {
	case ok := <-ready:
		if !ok {
			st.t.Fatalf("console worker process did not start: %s", out.String())
		}
	case <-time.After(30 * time.Second):
		st.t.Fatalf("console worker process not ready after 30s: %s", out.String())
	}
	wp := &workerProcess{cmd: cmd}
	st.t.Cleanup(func() { wp.kill() })
	return wp
}

// kill sends SIGKILL: the worker gets no chance to finish anything.
func (wp *workerProcess) kill() {
	if wp.cmd.ProcessState == nil {
		_ = wp.cmd.Process.Signal(syscall.SIGKILL)
		_ = wp.cmd.Wait()
	}
}

// do sends a request through the API handler from the client address addr ("" for the
// default); token "" sends no Authorization header.
func (st *consoleStack) do(method, path, token, body, addr string) *httptest.ResponseRecorder {
	st.t.Helper()
	var r *strings.Reader
	if body == "" {
		r = strings.NewReader("")
	} else {
		r = strings.NewReader(body)
	}
	req := httptest.NewRequest(method, path, r)
	if addr != "" {
		req.RemoteAddr = addr + ":40000"
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	rec := httptest.NewRecorder()
	st.handler.ServeHTTP(rec, req)
	return rec
}

// open creates an anonymous console and fails the test unless it is 201.
func (st *consoleStack) open(body, addr string) ConsoleResponse {
	st.t.Helper()
	rec := st.do("POST", "/v1/consoles", "", body, addr)
	if rec.Code != http.StatusCreated {
		st.t.Fatalf("POST /v1/consoles = %d %s", rec.Code, rec.Body)
	}
	return decode[ConsoleResponse](st.t, rec)
}

// close deletes a console with its token and expects it closed (200).
func (st *consoleStack) close(con ConsoleResponse) {
	st.t.Helper()
	rec := st.do("DELETE", "/v1/consoles/"+con.ID, con.Token, "", "")
	if rec.Code != http.StatusOK {
		st.t.Fatalf("DELETE console = %d %s", rec.Code, rec.Body)
	}
}

// sandboxGone waits until sandboxd no longer runs the sandbox.
func (st *consoleStack) sandboxGone(id string) {
	st.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		sb, err := st.sbc.Get(context.Background(), id)
		if anyops.ErrorCode(err) == anyops.ENOTFOUND || (err == nil && sb.State == wire.StateExited) {
			return
		}
		if time.Now().After(deadline) {
			st.t.Fatalf("sandbox %s still there: %+v %v", id, sb, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// workflowResult waits for the console's workflow to end and returns its result.
func (st *consoleStack) workflowResult(id string, within time.Duration) workflows.ConsoleResult {
	st.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), within)
	defer cancel()
	var res workflows.ConsoleResult
	if err := st.tc.GetWorkflow(ctx, anyops.ConsoleWorkflowID(id), "").Get(ctx, &res); err != nil {
		st.t.Fatalf("console %s workflow: %v", id, err)
	}
	return res
}

// view queries the console's workflow.
func (st *consoleStack) view(id string) workflows.ConsoleView {
	st.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	v, err := st.tc.QueryWorkflow(ctx, anyops.ConsoleWorkflowID(id), "", workflows.ConsoleQuery)
	if err != nil {
		st.t.Fatalf("query console %s: %v", id, err)
	}
	var out workflows.ConsoleView
	if err := v.Get(&out); err != nil {
		st.t.Fatal(err)
	}
	return out
}

// terminal is a WebSocket client of a console, recording the output.
type terminal struct {
	t    *testing.T
	conn *websocket.Conn
	mu   sync.Mutex
	out  bytes.Buffer
}

func attachTerminal(t *testing.T, attachURL string) *terminal {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	conn, _, err := websocket.Dial(ctx, attachURL, nil)
	if err != nil {
		t.Fatalf("attach %s: %v", attachURL, err)
	}
	conn.SetReadLimit(1 << 20)
	tm := &terminal{t: t, conn: conn}
	go func() {
		for {
			typ, b, err := conn.Read(context.Background())
			if err != nil {
				return
			}
			if typ == websocket.MessageBinary {
				tm.mu.Lock()
				tm.out.Write(b)
				tm.mu.Unlock()
			}
		}
	}()
	t.Cleanup(func() { _ = conn.CloseNow() })
	return tm
}

func (tm *terminal) send(s string) {
	tm.t.Helper()
	if err := tm.conn.Write(context.Background(), websocket.MessageBinary, []byte(s)); err != nil {
		tm.t.Fatalf("send: %v", err)
	}
}

func (tm *terminal) waitOutput(want string) {
	tm.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		tm.mu.Lock()
		ok := strings.Contains(tm.out.String(), want)
		tm.mu.Unlock()
		if ok {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	tm.mu.Lock()
	defer tm.mu.Unlock()
	tm.t.Fatalf("terminal never showed %q; got %q", want, tm.out.String())
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
