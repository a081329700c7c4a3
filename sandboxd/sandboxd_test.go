package sandboxd

import (
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/anyops/anyops"
	"github.com/anyops/anyops/sandboxd/token"
	"github.com/anyops/anyops/sandboxd/wire"
)

// TestSandboxSurvivesDisconnectAndReplaysScrollback proves the core promise of consoles: a
// command's output reaches the client, the sandbox keeps running when the client leaves, and
// a client that comes back first sees the earlier output.
func TestSandboxSurvivesDisconnectAndReplaysScrollback(t *testing.T) {
	h := newHarness(t, nil)
	sb := h.create(shell())
	if sb.State != wire.StateRunning || sb.Pid == 0 {
		t.Fatalf("created sandbox is %+v, want running with a pid", sb)
	}
	home, err := os.Stat(filepath.Join(h.cfg.StorageRoot, "alice"))
	if err != nil {
		t.Fatal(err)
	}
	if st := home.Sys().(*syscall.Stat_t); home.Mode().Perm() != 0o700 || st.Uid != 120001 || st.Gid != 120001 {
		t.Fatalf("home is %v owned by %d:%d, want 0700 owned by 120001:120001", home.Mode(), st.Uid, st.Gid)
	}

	first := h.attach(sb.ID)
	first.send("echo hi-$((6*7))\n") // the shell computes 42: the echo of the input alone cannot match
	first.waitOutput("hi-42")
	first.leave()
	h.waitFor(sb.ID, "the client to be gone", func(s wire.Sandbox) bool { return s.Clients == 0 })

	time.Sleep(200 * time.Millisecond)
	if got := h.get(sb.ID); got.State != wire.StateRunning {
		t.Fatalf("sandbox after its client left: %+v, want running", got)
	}

	second := h.attach(sb.ID)
	second.waitOutput("hi-42") // from the scrollback: nothing was typed on this connection
	second.send("echo again-$((6*7))\n")
	second.waitOutput("again-42")
}

// TestTwoClientsShareOneTerminal proves several clients attach at once: input from either
// reaches the shell, and both see all output.
func TestTwoClientsShareOneTerminal(t *testing.T) {
	h := newHarness(t, nil)
	sb := h.create(shell())
	a, b := h.attach(sb.ID), h.attach(sb.ID)
	h.waitFor(sb.ID, "two clients", func(s wire.Sandbox) bool { return s.Clients == 2 })
	a.send("echo from-a-$((1+1))\n")
	b.send("echo from-b-$((2+2))\n")
	for _, tm := range []*term{a, b} {
		tm.waitOutput("from-a-2")
		tm.waitOutput("from-b-4")
	}
}

// TestClientsPerSandboxAreBounded proves a terminal takes a bounded number of clients: the
// one past the bound gets 503 and the others keep working.
func TestClientsPerSandboxAreBounded(t *testing.T) {
	h := newHarness(t, nil)
	sb := h.create(shell())
	terms := make([]*term, maxClientsPerSandbox)
	for i := range terms {
		terms[i] = h.attach(sb.ID)
	}
	h.waitFor(sb.ID, "all clients", func(s wire.Sandbox) bool { return s.Clients == maxClientsPerSandbox })
	u, _, err := h.c.AttachURL(sb.ID)
	if err != nil {
		t.Fatal(err)
	}
	conn, resp, err := websocket.Dial(context.Background(), u, nil)
	if conn != nil {
		_ = conn.CloseNow()
	}
	if resp == nil || resp.StatusCode != 503 {
		t.Fatalf("attach past the bound: %v %v, want 503", resp, err)
	}
	terms[0].send("echo last-$((9*9))\n")
	terms[len(terms)-1].waitOutput("last-81")
}

// TestSlowClientIsDroppedWhileFastOneStreams proves a client that does not read is dropped
// with close code 4008 without stalling the sandbox or the client that keeps up.
func TestSlowClientIsDroppedWhileFastOneStreams(t *testing.T) {
	h := newHarness(t, nil)
	req := shell()
	// About 4 MB/s of output: enough to overflow a client that reads nothing within seconds,
	// little enough that a reading client on a loaded machine stays far ahead.
	req.Command = []string{"python3", "-c", "import sys, time\nline = b'x' * 1023 + b'\\n'\nwhile True:\n    sys.stdout.buffer.write(line * 64); sys.stdout.flush(); time.sleep(0.015)\n"}
	sb := h.create(req)

	fast := h.attach(sb.ID)
	// The slow client's tiny receive buffer makes it fall behind sooner; it reads nothing.
	slow := h.dial(sb.ID, smallBufferDialer)
	h.waitFor(sb.ID, "two clients", func(s wire.Sandbox) bool { return s.Clients == 2 })
	h.waitFor(sb.ID, "the slow client to be dropped", func(s wire.Sandbox) bool { return s.Clients == 1 })

	before := fast.received()
	slow.startReading() // drain what was sent before the drop, then the close frame
	if status, _ := slow.waitClosed(); status != wire.CloseFellBehind {
		t.Fatalf("slow client closed with %d, want %d", status, wire.CloseFellBehind)
	}
	deadline := time.Now().Add(waitLimit)
	for fast.received() < before+1<<20 {
		if time.Now().After(deadline) {
			t.Fatalf("fast client stopped streaming after the drop: %d bytes, was %d", fast.received(), before)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if got := h.get(sb.ID); got.State != wire.StateRunning || got.Clients != 1 {
		t.Fatalf("after the drop: %+v, want running with the fast client", got)
	}
	metrics := h.scrape()
	for _, want := range []string{"anyops_sandboxd_clients_dropped_total 1", "anyops_sandboxd_attach_clients 1", "anyops_sandboxd_sandboxes_running 1"} {
		if !strings.Contains(metrics, want+"\n") {
			t.Errorf("/metrics lacks %q", want)
		}
	}
}

func smallBufferDialer(ctx context.Context, network, addr string) (net.Conn, error) {
	d := net.Dialer{Control: func(_, _ string, rc syscall.RawConn) error {
		var serr error
		err := rc.Control(func(fd uintptr) { serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096) })
		return errors.Join(err, serr)
	}}
	return d.DialContext(ctx, network, addr)
}

// TestControlFrames proves the JSON text frames: resize reaches the PTY (stty sees it), ping
// is answered with pong, and a frame the server does not understand gets an error frame
// without ending the session.
func TestControlFrames(t *testing.T) {
	h := newHarness(t, nil)
	req := shell()
	req.Rows, req.Cols = 30, 90
	sb := h.create(req)
	tm := h.attach(sb.ID)
	tm.send("stty size\n")
	tm.waitOutput("30 90")
	tm.control(wire.Control{Type: "resize", Rows: 41, Cols: 123})
	tm.send("stty size\n")
	tm.waitOutput("41 123")

	tm.control(wire.Control{Type: "ping"})
	tm.control(wire.Control{Type: "teleport"})
	tm.control(wire.Control{Type: "resize", Rows: 0, Cols: 5000})
	tm.waitControls(3)
	got := tm.controlsSeen()
	if got[0].Type != "pong" || got[1].Type != "error" || !strings.Contains(got[1].Message, "teleport") || got[2].Type != "error" {
		t.Fatalf("answers to ping, an unknown and a bad resize frame: %+v", got)
	}
	tm.send("echo still-$((2*3))\n")
	tm.waitOutput("still-6")
}

// TestExitCodeIsReported proves an exiting command sends the exit frame, closes the socket
// normally, and leaves GET showing the code.
func TestExitCodeIsReported(t *testing.T) {
	h := newHarness(t, nil)
	sb := h.create(shell())
	tm := h.attach(sb.ID)
	tm.send("exit 3\n")
	status, controls := tm.waitClosed()
	if status != websocket.StatusNormalClosure {
		t.Errorf("close status %d, want 1000", status)
	}
	if n := len(controls); n == 0 || controls[n-1].Type != "exit" || controls[n-1].Code == nil || *controls[n-1].Code != 3 {
		t.Errorf("control frames %+v, want a last exit frame with code 3", controls)
	}
	got := h.waitFor(sb.ID, "exited", func(s wire.Sandbox) bool { return s.State == wire.StateExited })
	if got.ExitCode == nil || *got.ExitCode != 3 || got.EndReason != wire.EndExit {
		t.Fatalf("GET after exit: %+v, want exit code 3, reason exit", got)
	}
	// A client attaching after the exit gets the scrollback, the exit frame and a normal close.
	late := h.attach(sb.ID)
	late.waitOutput("exit 3")
	if status, controls := late.waitClosed(); status != websocket.StatusNormalClosure || len(controls) == 0 || controls[len(controls)-1].Type != "exit" {
		t.Fatalf("late client: status %d, controls %+v", status, controls)
	}
}

// TestDeleteLeavesNoProcess proves DELETE kills the whole process tree (including a
// background child), removes the sandbox's cgroup, and forgets the sandbox.
func TestDeleteLeavesNoProcess(t *testing.T) {
	h := newHarness(t, nil)
	sb := h.create(shell())
	tm := h.attach(sb.ID)
	tm.send("sleep 1000 & echo started-$((5*5))\n")
	tm.waitOutput("started-25")
	if n := len(h.processesIn(sb.ID)); n < 3 { // init, shell, sleep
		t.Fatalf("%d processes in the sandbox's cgroup before DELETE, want at least 3", n)
	}
	if err := h.c.Delete(context.Background(), sb.ID); err != nil {
		t.Fatal(err)
	}
	if pids := h.processesIn(sb.ID); len(pids) != 0 {
		t.Fatalf("processes left after DELETE: %v", pids)
	}
	if _, err := os.Stat("/proc/" + strconv.Itoa(sb.Pid)); err == nil {
		t.Fatalf("init pid %d still exists after DELETE", sb.Pid)
	}
	if cgs := cgroupChildren(h.cfg.CgroupParent); len(cgs) != 0 {
		t.Fatalf("cgroups left after DELETE: %v", cgs)
	}
	if _, err := h.c.Get(context.Background(), sb.ID); anyops.ErrorCode(err) != anyops.ENOTFOUND {
		t.Fatalf("GET after DELETE: %v, want not found", err)
	}
	if status, _ := tm.waitClosed(); status != websocket.StatusNormalClosure {
		t.Fatalf("attached client closed with %d, want 1000", status)
	}
}

// TestTimeoutsEndSandboxes proves the idle timeout ends a sandbox nobody uses, an attached
// client holds the idle timeout off, and the maximum lifetime ends a sandbox regardless.
func TestTimeoutsEndSandboxes(t *testing.T) {
	tests := []struct {
		name       string
		idle, life time.Duration
		attach     bool
		wantReason string
		minAge     time.Duration // the sandbox must not have ended sooner
	}{
		{"idle timeout with no client", time.Second, time.Hour, false, wire.EndIdleTimeout, time.Second},
		{"attached client holds idle off until max lifetime", time.Second, 3 * time.Second, true, wire.EndMaxLifetime, 3 * time.Second},
	}
	h := newHarness(t, nil)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := shell()
			req.IdleTimeout, req.MaxLifetime = wire.Duration(tt.idle), wire.Duration(tt.life)
			sb := h.create(req)
			if tt.attach {
				h.attach(sb.ID)
			}
			got := h.waitFor(sb.ID, "the sandbox to end", func(s wire.Sandbox) bool { return s.State == wire.StateExited })
			if got.EndReason != tt.wantReason {
				t.Errorf("end reason %q, want %q", got.EndReason, tt.wantReason)
			}
			if age := got.ExitedAt.Sub(got.CreatedAt); age < tt.minAge {
				t.Errorf("ended after %s, before %s", age, tt.minAge)
			}
			if pids := h.processesIn(sb.ID); len(pids) != 0 {
				t.Errorf("processes left: %v", pids)
			}
		})
	}
}

// TestRestartCleansUpSandboxesOfTheEarlierDaemon proves the restart policy: a new sandboxd on
// the same host kills what the previous one started instead of leaking it.
func TestRestartCleansUpSandboxesOfTheEarlierDaemon(t *testing.T) {
	h := newHarness(t, nil)
	sb := h.create(shell())
	if len(h.processesIn(sb.ID)) == 0 {
		t.Fatal("no process in the sandbox's cgroup")
	}
	pub, priv, err := token.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	cfg := h.cfg // same state dir and cgroup parent: the same host
	cfg.PublicKey = pub
	second := startHarness(t, cfg, priv)
	if pids := h.processesIn(sb.ID); len(pids) != 0 {
		t.Fatalf("processes of the earlier daemon's sandbox survive a restart: %v", pids)
	}
	if list, err := second.c.List(context.Background()); err != nil || len(list) != 0 {
		t.Fatalf("the new daemon lists %v (err %v), want nothing", list, err)
	}
}

// TestCapacityCountsSlots proves capacity reports slots in use and that a full host refuses
// creates with 503 instead of overcommitting.
func TestCapacityCountsSlots(t *testing.T) {
	h := newHarness(t, func(c *Config) { c.Slots = 2 })
	h.create(shell())
	req := shell()
	req.User, req.UID = "bob", 120002
	h.create(req)
	c, err := h.c.Capacity(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if c.Slots != 2 || c.InUse != 2 || c.Free != 0 {
		t.Fatalf("capacity %+v, want 2 slots, 2 in use, 0 free", c)
	}
	req.User, req.UID = "carol", 120003
	if _, err := h.c.Create(context.Background(), req); anyops.ErrorCode(err) != anyops.EUNAVAILABLE {
		t.Fatalf("create on a full host: %v, want unavailable", err)
	}
}

// TestHomeOfAnotherUIDIsRefused proves a user name cannot be used to reach a home that belongs
// to another uid: 409, and no sandbox.
func TestHomeOfAnotherUIDIsRefused(t *testing.T) {
	h := newHarness(t, nil)
	home := filepath.Join(h.cfg.StorageRoot, "alice")
	if err := os.Mkdir(home, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(home, 130000, 130000); err != nil {
		t.Fatal(err)
	}
	if _, err := h.c.Create(context.Background(), shell()); anyops.ErrorCode(err) != anyops.ECONFLICT {
		t.Fatalf("create with someone else's home: %v, want conflict", err)
	}
	if list, _ := h.c.List(context.Background()); len(list) != 0 {
		t.Fatalf("refused create left %v", list)
	}
}
