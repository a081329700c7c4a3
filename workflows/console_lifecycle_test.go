package workflows

import (
	"context"
	"crypto/ed25519"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/google/uuid"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"github.com/anyops/anyops"
	"github.com/anyops/anyops/activities"
	"github.com/anyops/anyops/internal/testenv"
	"github.com/anyops/anyops/inventory"
	"github.com/anyops/anyops/sandboxd/homes/homestest"
	"github.com/anyops/anyops/sandboxd/sandboxdtest"
	"github.com/anyops/anyops/sandboxd/token"
	"github.com/anyops/anyops/sandboxd/wire"
)

// consoleEnv is the real parts ConsoleLifecycle runs on here: the shared Temporal dev server,
// a worker on a queue of the test's own, a SQLite inventory, and real sandboxds (root) as
// console hosts behind httptest servers that a test can take away.
type consoleEnv struct {
	t     *testing.T
	tc    client.Client
	queue string
	store *inventory.Store
	key   ed25519.PrivateKey // of the fleet: the worker signs with it, every host accepts it
	hosts map[string]*sandboxdtest.Daemon
}

func newConsoleEnv(t *testing.T, hosts ...string) *consoleEnv {
	t.Helper()
	testenv.RequireRoot(t)
	ctx := context.Background()
	_, key, err := token.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	e := &consoleEnv{t: t, tc: testenv.TemporalClient(t), queue: "test-consoles-" + uuid.NewString(), key: key, hosts: map[string]*sandboxdtest.Daemon{}}
	if e.store, err = inventory.Open(ctx, inventory.DriverSQLite, filepath.Join(t.TempDir(), "inv.db")); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = e.store.Close() })
	if _, err := e.store.SeedDemoFleet(ctx); err != nil {
		t.Fatal(err)
	}
	for _, name := range hosts {
		e.addHost(name)
	}
	w := worker.New(e.tc, e.queue, worker.Options{DeadlockDetectionTimeout: 10 * time.Second})
	w.RegisterWorkflowWithOptions(ConsoleLifecycle, workflow.RegisterOptions{Name: ConsoleWorkflowType})
	w.RegisterActivity(&activities.Sandboxes{Store: e.store, Signer: token.NewSigner(e.key)})
	if err := w.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w.Stop)
	return e
}

// addHost starts a sandboxd and records it as a running console server.
func (e *consoleEnv) addHost(name string) { e.addHostOn(name, "") }

// addHostOn is addHost with the homes under storageRoot ("" for one of its own): console
// hosts that share the file service's export share one.
func (e *consoleEnv) addHostOn(name, storageRoot string) {
	t := e.t
	d := sandboxdtest.Start(t, sandboxdtest.Options{Name: "wf", Key: e.key, StorageRoot: storageRoot})
	e.hosts[name] = d
	if _, err := e.store.UpsertServer(context.Background(), inventory.Server{Name: name, Role: anyops.RoleConsole, Zone: inventory.DemoZone,
		Cluster: inventory.DemoCluster, State: anyops.ServerRunning, SandboxdURL: d.URL}); err != nil {
		t.Fatal(err)
	}
}

// open starts a console for a new user the way the API does (update-with-start) and returns
// what the Open update answered.
func (e *consoleEnv) open(anonymous bool, timing ConsoleTiming) (ConsoleInput, ConsoleOpened) {
	e.t.Helper()
	ctx := context.Background()
	plan := anyops.PlanFree
	if anonymous {
		plan = anyops.PlanAnonymous
	}
	user, err := e.store.CreateUser(ctx, "u"+strings.ReplaceAll(uuid.NewString()[:8], "-", ""), plan, anonymous)
	if err != nil {
		e.t.Fatal(err)
	}
	con, err := e.store.CreateConsole(ctx, inventory.Console{User: user.Name})
	if err != nil {
		e.t.Fatal(err)
	}
	in := ConsoleInput{ConsoleID: con.ID, User: user.Name, UID: user.UID, Plan: plan, Anonymous: anonymous, Timing: timing}
	start := e.tc.NewWithStartWorkflowOperation(client.StartWorkflowOptions{ID: anyops.ConsoleWorkflowID(con.ID), TaskQueue: e.queue,
		WorkflowIDConflictPolicy: enumspb.WORKFLOW_ID_CONFLICT_POLICY_USE_EXISTING}, ConsoleWorkflowType, in)
	h, err := e.tc.UpdateWithStartWorkflow(ctx, client.UpdateWithStartWorkflowOptions{StartWorkflowOperation: start,
		UpdateOptions: client.UpdateWorkflowOptions{UpdateName: ConsoleUpdateOpen, WaitForStage: client.WorkflowUpdateStageCompleted}})
	if err != nil {
		e.t.Fatalf("update-with-start: %v", err)
	}
	var opened ConsoleOpened
	if err := h.Get(ctx, &opened); err != nil {
		e.t.Fatalf("Open: %v", err)
	}
	return in, opened
}

func (e *consoleEnv) result(id string) ConsoleResult {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var res ConsoleResult
	if err := e.tc.GetWorkflow(ctx, anyops.ConsoleWorkflowID(id), "").Get(ctx, &res); err != nil {
		e.t.Fatalf("console %s: %v", id, err)
	}
	return res
}

func (e *consoleEnv) view(id string) ConsoleView {
	e.t.Helper()
	v, err := e.tc.QueryWorkflow(context.Background(), anyops.ConsoleWorkflowID(id), "", ConsoleQuery)
	if err != nil {
		e.t.Fatal(err)
	}
	var out ConsoleView
	if err := v.Get(&out); err != nil {
		e.t.Fatal(err)
	}
	return out
}

func (e *consoleEnv) waitView(id, what string, cond func(ConsoleView) bool) ConsoleView {
	e.t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		v := e.view(id)
		if cond(v) {
			return v
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("console %s: gave up waiting for %s; last %+v", id, what, v)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (e *consoleEnv) sandboxState(host, id string) string {
	sb, err := e.hosts[host].Client.Get(context.Background(), id)
	if anyops.ErrorCode(err) == anyops.ENOTFOUND {
		return "gone"
	} else if err != nil {
		e.t.Fatal(err)
	}
	return sb.State
}

// testTiming checks hosts often; the lease is long beside the check interval so that a
// loaded machine's slow check does not end a healthy sandbox.
func testTiming() ConsoleTiming {
	return ConsoleTiming{IdleTimeout: time.Minute, MaxLifetime: 10 * time.Minute, KeepaliveInterval: 10 * time.Second,
		HostCheckInterval: 300 * time.Millisecond, HostLostAfter: 2,
		SandboxLease: 3 * time.Second, CheckTokenTTL: time.Second, ClockMargin: 100 * time.Millisecond}
}

// TestConsoleCloseDestroysSandbox proves Open returns a running sandbox on the least loaded
// host, the inventory records it, and Close destroys it and records the console closed.
func TestConsoleCloseDestroysSandbox(t *testing.T) {
	e := newConsoleEnv(t, "console-a", "console-b")
	// Load console-a: the console must go to console-b.
	busy, err := e.hosts["console-a"].Client.Create(context.Background(), wire.CreateRequest{User: "busy", UID: 105000, Plan: anyops.PlanFree})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = e.hosts["console-a"].Client.Delete(context.Background(), busy.ID) })

	in, opened := e.open(false, testTiming())
	if opened.Server != "console-b" || opened.SandboxID != SandboxIDFor(in.ConsoleID, 1) {
		t.Fatalf("Open = %+v, want sandbox %s on the less loaded console-b", opened, SandboxIDFor(in.ConsoleID, 1))
	}
	if got := e.sandboxState("console-b", opened.SandboxID); got != wire.StateRunning {
		t.Fatalf("sandbox is %s, want running", got)
	}
	con, err := e.store.GetConsole(context.Background(), in.ConsoleID)
	if err != nil || con.SandboxID != opened.SandboxID || con.Server != "console-b" || con.State != anyops.ConsoleOpen {
		t.Fatalf("inventory console = %+v %v, want open on console-b with the sandbox", con, err)
	}
	if err := e.tc.SignalWorkflow(context.Background(), anyops.ConsoleWorkflowID(in.ConsoleID), "", ConsoleSignalClose, nil); err != nil {
		t.Fatal(err)
	}
	if res := e.result(in.ConsoleID); res.EndReason != ConsoleEndClosed {
		t.Fatalf("ended %q, want closed", res.EndReason)
	}
	testenv.RecordHistory(t, e.tc, anyops.ConsoleWorkflowID(in.ConsoleID), "console-lifecycle") // for worker/replay_test.go
	if got := e.sandboxState("console-b", opened.SandboxID); got != "gone" {
		t.Fatalf("sandbox after close is %s, want gone", got)
	}
	if con, _ := e.store.GetConsole(context.Background(), in.ConsoleID); con.State != anyops.ConsoleClosed {
		t.Fatalf("inventory console after close = %s, want closed", con.State)
	}
}

// TestConsoleEndsWhenShellExits proves a sandbox that ends by itself (exit typed in the shell)
// ends the console, and an anonymous user goes with it.
func TestConsoleEndsWhenShellExits(t *testing.T) {
	e := newConsoleEnv(t, "console-a")
	in, opened := e.open(true, testTiming())
	if err := e.hosts["console-a"].Client.Delete(context.Background(), opened.SandboxID); err != nil {
		t.Fatal(err)
	}
	if res := e.result(in.ConsoleID); res.EndReason != ConsoleEndExited {
		t.Fatalf("ended %q, want exited", res.EndReason)
	}
	if _, err := e.store.GetUser(context.Background(), in.User); anyops.ErrorCode(err) != anyops.ENOTFOUND {
		t.Fatalf("anonymous user after the console: %v, want removed", err)
	}
}

// TestConsoleHostLost proves the host-check: a host that stops answering ends an anonymous
// console as lost, while a registered user's console gets a new sandbox on another host.
func TestConsoleHostLost(t *testing.T) {
	e := newConsoleEnv(t, "console-a")
	anonIn, anonOpened := e.open(true, testTiming())
	userIn, userOpened := e.open(false, testTiming())
	if anonOpened.Server != "console-a" || userOpened.Server != "console-a" {
		t.Fatalf("consoles on %s and %s, want console-a", anonOpened.Server, userOpened.Server)
	}
	e.addHost("console-b")
	e.hosts["console-a"].Server.CloseClientConnections()
	e.hosts["console-a"].Server.Listener.Close() // console-a stops answering

	if res := e.result(anonIn.ConsoleID); res.EndReason != ConsoleEndLost {
		t.Fatalf("anonymous console ended %q, want lost", res.EndReason)
	}
	v := e.waitView(userIn.ConsoleID, "a new sandbox on console-b", func(v ConsoleView) bool { return v.Server == "console-b" && v.Phase == "open" })
	if v.SandboxID != SandboxIDFor(userIn.ConsoleID, 2) || v.Generation != 2 {
		t.Fatalf("replacement = %+v, want generation 2", v)
	}
	if got := e.sandboxState("console-b", v.SandboxID); got != wire.StateRunning {
		t.Fatalf("replacement sandbox is %s, want running", got)
	}
	con, _ := e.store.GetConsole(context.Background(), userIn.ConsoleID)
	if con.Server != "console-b" || con.SandboxID != v.SandboxID {
		t.Fatalf("inventory console = %+v, want it on console-b", con)
	}
	if sb, _ := e.store.GetSandbox(context.Background(), userOpened.SandboxID); sb.State != anyops.SandboxLost {
		t.Fatalf("the lost sandbox's row = %+v, want lost", sb)
	}
	_ = e.tc.SignalWorkflow(context.Background(), anyops.ConsoleWorkflowID(userIn.ConsoleID), "", ConsoleSignalClose, nil)
	e.result(userIn.ConsoleID)
	if got := e.sandboxState("console-b", v.SandboxID); got != "gone" {
		t.Fatalf("replacement after close is %s, want gone", got)
	}
}

// TestConsoleContinuesAsNew proves a long-lived console hands its state to a new run before
// its history grows: the new run tracks the same sandbox and clients, and closing it
// destroys the sandbox.
func TestConsoleContinuesAsNew(t *testing.T) {
	e := newConsoleEnv(t, "console-a")
	timing := testTiming()
	timing.HistoryLimit = 40
	in, opened := e.open(false, timing)
	ctx := context.Background()
	id := anyops.ConsoleWorkflowID(in.ConsoleID)
	first, err := e.tc.DescribeWorkflow(ctx, id, "")
	if err != nil {
		t.Fatal(err)
	}
	firstRun := first.RawResponse.GetWorkflowExecutionInfo().GetExecution().GetRunId()
	for range 3 {
		if err := e.tc.SignalWorkflow(ctx, id, "", ConsoleSignalKeepalive, nil); err != nil {
			t.Fatal(err)
		}
	}
	v := e.waitView(in.ConsoleID, "a continued run", func(v ConsoleView) bool { return v.Runs >= 1 })
	if v.SandboxID != opened.SandboxID || v.Phase != "open" {
		t.Fatalf("continued run = %+v, want still open on %s", v, opened.SandboxID)
	}
	now, err := e.tc.DescribeWorkflow(ctx, id, "")
	if err != nil {
		t.Fatal(err)
	}
	if now.RawResponse.GetWorkflowExecutionInfo().GetExecution().GetRunId() == firstRun {
		t.Fatal("the run id did not change")
	}
	if err := e.tc.SignalWorkflow(ctx, id, "", ConsoleSignalClose, nil); err != nil {
		t.Fatal(err)
	}
	if res := e.result(in.ConsoleID); res.EndReason != ConsoleEndClosed {
		t.Fatalf("ended %q, want closed", res.EndReason)
	}
	if got := e.sandboxState("console-a", opened.SandboxID); got != "gone" {
		t.Fatalf("sandbox after close is %s, want gone", got)
	}
}

// TestConsoleOpenWithoutRoom proves Open answers "unavailable" when no host has a free slot,
// and the console is recorded lost.
func TestConsoleOpenWithoutRoom(t *testing.T) {
	e := newConsoleEnv(t) // no console host with a sandboxd
	ctx := context.Background()
	user, err := e.store.CreateUser(ctx, "roomless", anyops.PlanFree, false)
	if err != nil {
		t.Fatal(err)
	}
	con, err := e.store.CreateConsole(ctx, inventory.Console{User: user.Name})
	if err != nil {
		t.Fatal(err)
	}
	in := ConsoleInput{ConsoleID: con.ID, User: user.Name, UID: user.UID, Plan: user.Plan, Timing: testTiming()}
	start := e.tc.NewWithStartWorkflowOperation(client.StartWorkflowOptions{ID: anyops.ConsoleWorkflowID(con.ID), TaskQueue: e.queue,
		WorkflowIDConflictPolicy: enumspb.WORKFLOW_ID_CONFLICT_POLICY_USE_EXISTING}, ConsoleWorkflowType, in)
	h, err := e.tc.UpdateWithStartWorkflow(ctx, client.UpdateWithStartWorkflowOptions{StartWorkflowOperation: start,
		UpdateOptions: client.UpdateWorkflowOptions{UpdateName: ConsoleUpdateOpen, WaitForStage: client.WorkflowUpdateStageCompleted}})
	if err == nil {
		err = h.Get(ctx, nil)
	}
	var app *temporal.ApplicationError
	if !errors.As(err, &app) || app.Type() != anyops.EUNAVAILABLE {
		t.Fatalf("Open without room = %v, want an %s application error", err, anyops.EUNAVAILABLE)
	}
	if res := e.result(con.ID); res.EndReason != ConsoleEndLost {
		t.Fatalf("ended %q, want lost", res.EndReason)
	}
	if c, _ := e.store.GetConsole(ctx, con.ID); c.State != anyops.ConsoleLost {
		t.Fatalf("inventory console = %s, want lost", c.State)
	}
}

// TestConsoleTimingDefaults proves zero timing fields take the plan's production values.
func TestConsoleTimingDefaults(t *testing.T) {
	for _, plan := range anyops.Plans {
		got := ConsoleTiming{}.withDefaults(plan)
		lim := anyops.PlanLimits(plan)
		if got.IdleTimeout != lim.IdleTimeout || got.MaxLifetime != lim.MaxLifetime || got.HostCheckInterval <= 0 ||
			got.HostLostAfter <= 0 || got.HistoryLimit <= 0 || got.KeepaliveInterval <= 0 ||
			got.SandboxLease != time.Duration(got.HostLostAfter)*got.HostCheckInterval || got.CheckTokenTTL <= 0 || got.ClockMargin <= 0 {
			t.Errorf("plan %s: %+v", plan, got)
		}
	}
	kept := ConsoleTiming{IdleTimeout: time.Second, HistoryLimit: 7}.withDefaults(anyops.PlanFree)
	if kept.IdleTimeout != time.Second || kept.HistoryLimit != 7 {
		t.Errorf("given values not kept: %+v", kept)
	}
}

// TestPartitionedHostNeverSharesAUser proves a registered user's console survives a host
// partitioned from the control plane without ever running two sandboxes for that user: the
// old sandbox ends by itself (its lease) before the replacement starts on another host; the
// replacement finds the user's files (the two hosts share one storage root, as console hosts
// share the file service's export); and when the old host comes back, nothing of the user
// runs there.
func TestPartitionedHostNeverSharesAUser(t *testing.T) {
	e := newConsoleEnv(t)
	shared := homestest.BtrfsRoot(t)
	e.addHostOn("console-a", shared)
	in, opened := e.open(false, testTiming())
	a := e.hosts["console-a"]
	conn, err := a.Client.Dial(context.Background(), opened.SandboxID)
	if err != nil {
		t.Fatal(err)
	}
	if err := conn.Write(context.Background(), websocket.MessageBinary, []byte("echo kept-$((6*7)) > ~/note\n")); err != nil {
		t.Fatal(err)
	}
	note := filepath.Join(shared, in.User, "note")
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(20 * time.Millisecond) {
		if b, _ := os.ReadFile(note); strings.TrimSpace(string(b)) == "kept-42" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the note never reached the user's home")
		}
	}
	_ = conn.CloseNow()

	e.addHostOn("console-b", shared)
	a.Partition()
	v := e.waitView(in.ConsoleID, "the console on console-b", func(v ConsoleView) bool { return v.Server == "console-b" && v.Phase == "open" })
	moved, err := e.hosts["console-b"].Client.Get(context.Background(), v.SandboxID)
	if err != nil {
		t.Fatal(err)
	}
	// Behind the partition: what console-a did with the old sandbox, without renewing it.
	list, err := a.Behind().List(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var old wire.Sandbox
	for _, sb := range list {
		if sb.ID == opened.SandboxID {
			old = sb
		}
	}
	if old.State != wire.StateExited || old.EndReason != wire.EndLeaseExpired || old.ExitedAt == nil {
		t.Fatalf("old sandbox behind the partition: %+v, want ended by its lease", old)
	}
	if !old.ExitedAt.Before(moved.CreatedAt) {
		t.Fatalf("old sandbox ended at %s, after its replacement started at %s: two sandboxes shared user %s",
			old.ExitedAt, moved.CreatedAt, in.User)
	}

	b, err := e.hosts["console-b"].Client.Dial(context.Background(), v.SandboxID)
	if err != nil {
		t.Fatal(err)
	}
	defer b.CloseNow()
	if err := b.Write(context.Background(), websocket.MessageBinary, []byte("cat ~/note\n")); err != nil {
		t.Fatal(err)
	}
	waitTerminal(t, b, "kept-42")

	a.Heal(t)
	back, err := a.Client.List(context.Background())
	if err != nil {
		t.Fatalf("console-a after healing: %v", err)
	}
	for _, sb := range back {
		if sb.User == in.User && sb.State == wire.StateRunning {
			t.Fatalf("console-a runs %+v for %s after coming back", sb, in.User)
		}
	}
	_ = e.tc.SignalWorkflow(context.Background(), anyops.ConsoleWorkflowID(in.ConsoleID), "", ConsoleSignalClose, nil)
	e.result(in.ConsoleID)
}

// waitTerminal reads the terminal until its output holds want.
func waitTerminal(t *testing.T, conn *websocket.Conn, want string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var out []byte
	for !strings.Contains(string(out), want) {
		typ, data, err := conn.Read(ctx)
		if err != nil {
			t.Fatalf("waiting for %q: %v; got %q", want, err, out)
		}
		if typ == websocket.MessageBinary {
			out = append(out, data...)
		}
	}
}

// TestConsoleEndOfSandboxdsTimers proves a console whose sandbox sandboxd ended by its own
// idle or lifetime timer (the backups of the workflow's, which fire first when the control
// plane was away as the workflow's came due: the chaos harness's console run with a Temporal
// restart in the idle wait, seed 7) ends for that reason, not as "exited".
func TestConsoleEndOfSandboxdsTimers(t *testing.T) {
	for _, c := range []struct{ sandboxEnd, want string }{
		{wire.EndIdleTimeout, ConsoleEndIdle},
		{wire.EndMaxLifetime, ConsoleEndMaxLifetime},
		{wire.EndExit, ConsoleEndExited},
		{wire.EndDeleted, ConsoleEndExited},
		{"", ConsoleEndExited},
	} {
		if got := consoleEndOf(c.sandboxEnd); got != c.want {
			t.Errorf("sandbox ended %q: console ends %q, want %q", c.sandboxEnd, got, c.want)
		}
	}
}

// TestConsoleInventoryMarksRideOutADatabaseRestart proves the inventory marks' local activity
// options let their retries go on through a database restart: a local activity's
// ScheduleToCloseTimeout, left unset, is its StartToCloseTimeout, which once cut every mark
// short after 15 s of retries (the chaos harness's postgres-restart ended consoles lost).
func TestConsoleInventoryMarksRideOutADatabaseRestart(t *testing.T) {
	const restart = 2 * time.Minute // a database crashed and started again, with room to spare
	o := consoleInventoryOptions
	budget := o.ScheduleToCloseTimeout
	if budget == 0 {
		budget = o.StartToCloseTimeout
	}
	if budget < restart {
		t.Errorf("the marks' retries end after %s at most, within a database restart of %s", budget, restart)
	}
	// The retry policy must still have attempts left when the database is back.
	p, waited, attempts := o.RetryPolicy, time.Duration(0), int32(1)
	for next := p.InitialInterval; waited < restart && attempts < p.MaximumAttempts; attempts++ {
		waited += next
		next = min(time.Duration(float64(next)*p.BackoffCoefficient), p.MaximumInterval)
	}
	if waited < restart {
		t.Errorf("the marks' %d attempts back off %s in all, less than a database restart of %s", p.MaximumAttempts, waited, restart)
	}
}
