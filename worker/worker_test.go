package worker

import (
	"context"
	"database/sql"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/testsuite"

	"github.com/anyops/anyops/config"
	"github.com/anyops/anyops/internal/testenv"
	"github.com/anyops/anyops/inventory"
	"github.com/anyops/anyops/workflows"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// TestOptions proves the defaults of zero Config fields, and that given values are kept.
func TestOptions(t *testing.T) {
	tests := []struct {
		name           string
		cfg            Config
		deadlock, stop time.Duration
		maxActivities  int
	}{
		{"zero config gets the defaults", Config{}, DefaultDeadlockDetectionTimeout, DefaultStopTimeout, DefaultMaxConcurrentActivities},
		{"given values are kept", Config{DeadlockDetectionTimeout: 3 * time.Second, StopTimeout: time.Second, MaxConcurrentActivities: 7}, 3 * time.Second, time.Second, 7},
		{"negative values get the defaults", Config{DeadlockDetectionTimeout: -1, StopTimeout: -1, MaxConcurrentActivities: -1}, DefaultDeadlockDetectionTimeout, DefaultStopTimeout, DefaultMaxConcurrentActivities},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := Options(tt.cfg)
			if o.DeadlockDetectionTimeout != tt.deadlock || o.WorkerStopTimeout != tt.stop || o.MaxConcurrentActivityExecutionSize != tt.maxActivities {
				t.Fatalf("Options = deadlock %v stop %v activities %d, want %v %v %d",
					o.DeadlockDetectionTimeout, o.WorkerStopTimeout, o.MaxConcurrentActivityExecutionSize, tt.deadlock, tt.stop, tt.maxActivities)
			}
		})
	}
	if DefaultDeadlockDetectionTimeout <= time.Second {
		t.Errorf("the default deadlock timeout %v is not above the SDK's 1s", DefaultDeadlockDetectionTimeout)
	}
}

// TestRunRequiresDeps proves Run refuses to start without a client or a store.
func TestRunRequiresDeps(t *testing.T) {
	if err := Run(context.Background(), Config{}); err == nil || !strings.Contains(err.Error(), "Client is required") {
		t.Errorf("Run without client = %v", err)
	}
	tc := testenv.TemporalClient(t)
	if err := Run(context.Background(), Config{Client: tc}); err == nil || !strings.Contains(err.Error(), "Store is required") {
		t.Errorf("Run without store = %v", err)
	}
}

// TestRunServesFleetAudit runs the worker against the real Temporal dev server: a FleetAudit
// started on the control queue by name completes with the demo fleet's counts, and cancelling
// Run's context stops it cleanly.
// demoStore is an inventory in SQLite holding the demo fleet, closed when the test ends.
func demoStore(t *testing.T) *inventory.Store {
	t.Helper()
	store, err := inventory.Open(context.Background(), inventory.DriverSQLite, filepath.Join(t.TempDir(), "inv.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = store.Close() })
	if _, err := store.SeedDemoFleet(context.Background()); err != nil {
		t.Fatal(err)
	}
	return store
}

func TestRunServesFleetAudit(t *testing.T) {
	ctx := context.Background()
	store := demoStore(t)
	tc := testenv.TemporalClient(t)

	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() {
		done <- Run(runCtx, Config{Client: tc, Deps: Deps{Store: store}, Logger: slog.New(slog.DiscardHandler), StopTimeout: 5 * time.Second})
	}()

	kind, _ := workflows.LookupKind(workflows.KindFleetAudit)
	run, err := tc.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: "worker-test-fleet-audit", TaskQueue: kind.TaskQueue},
		kind.WorkflowType, workflows.FleetAuditInput{RequestedBy: "worker-test"})
	if err != nil {
		t.Fatal(err)
	}
	wctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	var res workflows.FleetAuditResult
	if err := run.Get(wctx, &res); err != nil {
		t.Fatalf("FleetAudit through the worker: %v", err)
	}
	if want := len(inventory.DemoFleet().Servers); res.Counts.Totals.Servers != want {
		t.Errorf("FleetAudit counted %d servers, demo fleet has %d", res.Counts.Totals.Servers, want)
	}

	stop()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run after cancel = %v, want nil", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Run did not return after its context was cancelled")
	}
}

// TestStopLetsRunningActivityFinish proves the graceful stop: an activity still running when
// Run's context ends is allowed to finish, and its completion reaches Temporal before Run
// returns. The activity is held up for real: a PostgreSQL transaction locks the servers table
// that CountFleet reads, and is released only after the stop has begun.
func TestStopLetsRunningActivityFinish(t *testing.T) {
	ctx := context.Background()
	dsn := testenv.Postgres(t)
	store, err := inventory.Open(ctx, inventory.DriverPostgres, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	if _, err := store.SeedDemoFleet(ctx); err != nil {
		t.Fatal(err)
	}
	locker, err := sql.Open("pgx", dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer locker.Close()
	lock, err := locker.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer lock.Rollback()
	if _, err := lock.Exec("LOCK TABLE servers IN ACCESS EXCLUSIVE MODE"); err != nil {
		t.Fatal(err)
	}

	tc := testenv.TemporalClient(t)
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() {
		done <- Run(runCtx, Config{Client: tc, Deps: Deps{Store: store}, Logger: slog.New(slog.DiscardHandler),
			TaskQueues: []string{TaskQueueControl}, StopTimeout: 30 * time.Second})
	}()
	kind, _ := workflows.LookupKind(workflows.KindFleetAudit)
	id := "worker-test-graceful-stop"
	if _, err := tc.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: id, TaskQueue: kind.TaskQueue}, kind.WorkflowType, workflows.FleetAuditInput{}); err != nil {
		t.Fatal(err)
	}
	// Wait until the activity runs (and blocks on the lock).
	deadline := time.Now().Add(30 * time.Second)
	for {
		desc, err := tc.DescribeWorkflow(ctx, id, "")
		if err != nil {
			t.Fatal(err)
		}
		if p := desc.RawResponse.GetPendingActivities(); len(p) == 1 && p[0].GetState() == enumspb.PENDING_ACTIVITY_STATE_STARTED {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the activity did not start within 30s")
		}
		time.Sleep(50 * time.Millisecond)
	}

	stop()
	select {
	case err := <-done:
		t.Fatalf("Run returned (%v) while its activity was still blocked", err)
	case <-time.After(time.Second):
	}
	if err := lock.Rollback(); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run = %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Run did not return after the activity could finish")
	}
	completed := false
	iter := tc.GetWorkflowHistory(ctx, id, "", false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	for iter.HasNext() {
		ev, err := iter.Next()
		if err != nil {
			t.Fatal(err)
		}
		switch ev.GetEventType() {
		case enumspb.EVENT_TYPE_ACTIVITY_TASK_COMPLETED:
			completed = true
		case enumspb.EVENT_TYPE_ACTIVITY_TASK_FAILED, enumspb.EVENT_TYPE_ACTIVITY_TASK_TIMED_OUT, enumspb.EVENT_TYPE_ACTIVITY_TASK_CANCELED:
			t.Fatalf("the running activity ended with %s instead of finishing", ev.GetEventType())
		}
	}
	if !completed {
		t.Fatal("no completed activity in the history: the stop cut the activity off")
	}
	_ = tc.TerminateWorkflow(ctx, id, "", "test done: no worker is left to finish it")
}

// TestDialWaitsForTemporal proves a process started while Temporal is down waits for it: Dial
// keeps trying until a dev server comes up on the address, and gives up only when its context
// ends.
func TestDialWaitsForTemporal(t *testing.T) {
	addr := fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
	quiet := slog.New(slog.DiscardHandler)

	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	if _, err := Dial(ctx, config.Temporal{Address: addr, Namespace: "default"}, quiet, nil); err == nil {
		t.Fatal("Dial with nothing listening and a short context succeeded")
	}

	dialed := make(chan error, 1)
	go func() {
		c, err := Dial(context.Background(), config.Temporal{Address: addr, Namespace: "default"}, quiet, nil)
		if err == nil {
			c.Close()
		}
		dialed <- err
	}()
	time.Sleep(time.Second) // Dial has failed at least once by now
	srv, err := testsuite.StartDevServer(context.Background(), testsuite.DevServerOptions{
		ExistingPath: testenv.TemporalBinary(t), ClientOptions: &client.Options{HostPort: addr}, LogLevel: "error",
	})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Stop()
	select {
	case err := <-dialed:
		if err != nil {
			t.Fatalf("Dial after Temporal came up: %v", err)
		}
	case <-time.After(time.Minute):
		t.Fatal("Dial did not connect within a minute of Temporal coming up")
	}
}
