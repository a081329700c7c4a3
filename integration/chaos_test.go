package integration

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"

	"github.com/anyops/anyops/activities"
	"github.com/anyops/anyops/cloudsim"
	"github.com/anyops/anyops/config"
	"github.com/anyops/anyops/internal/testenv"
	"github.com/anyops/anyops/inventory"
)

// The chaos harness runs each operation of chaosOperations (chaos_ops_test.go) under a
// seeded schedule of control-plane faults — kill -9 of the worker right after a cloud call's
// side effect and before its activity reports, a restart of the Temporal dev server, a
// restart of cloudsim's endpoint, a throttling storm, a second worker on the same task queues
// — and checks the invariants of chaosInvariants after each run from cloudsim's state and
// event log and from the inventory. `make test` runs the small schedule, `make chaos` the
// full one (ANYOPS_CHAOS=full), `make chaos SEED=N` one seed again (ANYOPS_CHAOS_SEED).
// A failure names the seed, the run, the crash point and the invariant.

// chaosSize is how much of a schedule a run of the harness makes.
type chaosSize struct {
	name string
	// runs per operation; each run has killsPerRun crash points and one dependency fault.
	runs, killsPerRun int
}

var (
	chaosSmall = chaosSize{name: "small", runs: 1, killsPerRun: 3}
	// full: every dependency fault at least once per operation (runs ≥ len(dependencyFaults)).
	chaosFull = chaosSize{name: "full", runs: 7, killsPerRun: 3}
)

// Dependency faults, one per run, in turn: a full schedule has every one for every operation.
const (
	faultTemporalRestart = "temporal-restart"
	faultCloudsimRestart = "cloudsim-restart"
	faultThrottleStorm   = "throttle-storm"
	faultSecondWorker    = "second-worker"
)

var dependencyFaults = []string{faultTemporalRestart, faultPostgresRestart, faultCloudsimRestart, faultThrottleStorm, faultSecondWorker}

// crashPoint is one kill: right after cloudsim carried out the call (an EC2 action, or an SSM
// script containing a text) and before the activity learned of it.
type crashPoint struct {
	action string // EC2 action, or "" for a script
	script string // a piece of the SSM script's text
	// sandboxd is a call of a console host's sandboxd API ("POST /v1/sandboxes"): the host
	// has carried it out (chaos_ops_more_test.go).
	sandboxd string
	// smtp is an SMTP command at which the notices' server holds the sender ("RCPT"): the
	// kill lands mid-conversation, before the server accepted anything.
	smtp string
}

func (c crashPoint) String() string {
	if c.sandboxd != "" {
		return "sandboxd:" + c.sandboxd
	}
	if c.smtp != "" {
		return "smtp:" + c.smtp
	}
	if c.script != "" {
		return "ssm:" + c.script
	}
	return c.action
}

// chaosSchedule is one run's faults, drawn from the seed.
type chaosSchedule struct {
	run        int
	kills      []crashPoint
	dependency string
	// dependencyAfter is the kill after which the dependency fault happens.
	dependencyAfter int
}

func (s chaosSchedule) String() string {
	var kills []string
	for _, k := range s.kills {
		kills = append(kills, k.String())
	}
	out := fmt.Sprintf("run %d: kills after [%s]", s.run, strings.Join(kills, ", "))
	if s.dependency != "" {
		out += fmt.Sprintf("; %s after kill %d", s.dependency, s.dependencyAfter+1)
	}
	return out
}

// schedule draws a run's crash points from the operation's (in their order, so each is
// reached after the one before) and its dependency fault: the operations take the faults in
// turn from the op-th (so that a small schedule's one run per operation still meets several
// kinds), and the runs of one operation each the next.
func (op chaosOperation) schedule(rng *rand.Rand, opIndex, run, kills int) chaosSchedule {
	picked := rng.Perm(len(op.crashPoints))[:min(kills, len(op.crashPoints))]
	slices.Sort(picked)
	s := chaosSchedule{run: run, dependency: dependencyFaults[(opIndex+run)%len(dependencyFaults)], dependencyAfter: rng.IntN(len(picked))}
	for _, i := range picked {
		s.kills = append(s.kills, op.crashPoints[i])
	}
	return s
}

// chaosReport is what the harness measured of one operation over its runs.
type chaosReport struct {
	op                         string
	crashes, crashesSurvived   int
	restarts, restartsSurvived int
	// notReached counts crash points of a schedule that the operation, completing, never
	// passed through (a fleet sync whose bounded DRBD status reads of a host failed records it
	// unreadable and reads no further): not a failure, but not a crash survived either.
	notReached        int
	survivedByKind    map[string]int // dependency fault -> restarts of that kind survived
	violations        []string
	slowestRecovery   time.Duration
	slowestRecoveryAt string
}

func (r *chaosReport) recovered(d time.Duration, at string) {
	if d > r.slowestRecovery {
		r.slowestRecovery, r.slowestRecoveryAt = d, at
	}
}

func (r *chaosReport) restartSurvived(kind string) {
	r.restartsSurvived++
	if r.survivedByKind == nil {
		r.survivedByKind = map[string]int{}
	}
	r.survivedByKind[kind]++
}

func (r chaosReport) String() string {
	var kinds []string
	for _, k := range dependencyFaults {
		if n := r.survivedByKind[k]; n > 0 {
			kinds = append(kinds, fmt.Sprintf("%s %d", strings.TrimSuffix(k, "-restart"), n))
		}
	}
	notReached := ""
	if r.notReached > 0 {
		notReached = fmt.Sprintf(" (%d more not reached: the operation completed first)", r.notReached)
	}
	return fmt.Sprintf("%-15s crash points survived %d/%d%s, dependency restarts survived %d/%d (%s), invariant violations %d, slowest recovery (crash to progress again) %s (%s)",
		r.op, r.crashesSurvived, r.crashes, notReached, r.restartsSurvived, r.restarts, strings.Join(kinds, ", "), len(r.violations), r.slowestRecovery.Round(10*time.Millisecond), r.slowestRecoveryAt)
}

// chaosSettings reads the size and seed: ANYOPS_CHAOS=full for the full size, and
// ANYOPS_CHAOS_SEED=N to repeat a run (otherwise the seed is the time).
func chaosSettings(t *testing.T) (chaosSize, uint64) {
	size := chaosSmall
	if os.Getenv("ANYOPS_CHAOS") == "full" {
		size = chaosFull
	}
	seed := uint64(time.Now().UnixNano() % 1_000_000)
	if s := os.Getenv("ANYOPS_CHAOS_SEED"); s != "" {
		n, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			t.Fatalf("ANYOPS_CHAOS_SEED=%q is not a number", s)
		}
		seed = n
	}
	return size, seed
}

// TestChaos runs every operation under its seeded schedule and prints, per operation, the
// crash points and dependency restarts survived, the invariant violations and the slowest
// recovery. A broken invariant fails the test with the seed, the run and the crash point.
// Operations run side by side, up to chaosParallelism at once (each in a world of its own);
// the runs of one operation one after another.
func TestChaos(t *testing.T) {
	size, seed := chaosSettings(t)
	parallel := chaosParallelism(t)
	t.Logf("chaos: size %s, seed %d, %d operations at once (repeat: make chaos SEED=%d)", size.name, seed, parallel, seed)
	bin := buildAnyops(t)
	// Every schedule is drawn before any run starts, in the table's order, so that a seed
	// names the same runs however the operations interleave, and whichever -run selects.
	rng := rand.New(rand.NewPCG(seed, 0))
	schedules := make([][]chaosSchedule, len(chaosOperations))
	for i, op := range chaosOperations {
		for run := range size.runs {
			schedules[i] = append(schedules[i], op.schedule(rng, i, run, size.killsPerRun))
		}
	}
	reports := make([]chaosReport, len(chaosOperations))
	slots := make(chan struct{}, parallel)
	var wg sync.WaitGroup
	// The slots are taken from the table's end, where the longest operations are (the drill,
	// the release, the console, the patch), so that the short ones fill in after them.
	for i := len(chaosOperations) - 1; i >= 0; i-- {
		op := chaosOperations[i]
		reports[i] = chaosReport{op: op.name}
		slots <- struct{}{}
		wg.Go(func() {
			defer func() { <-slots }()
			rep := &reports[i]
			for _, sched := range schedules[i] {
				t.Run(fmt.Sprintf("%s/run-%d", op.name, sched.run), func(t *testing.T) {
					t.Logf("seed %d, %s %s", seed, op.name, sched)
					w := newChaosWorld(t, bin, nil, op.speed)
					for _, v := range w.runOperation(t, op, sched, rep) {
						msg := chaosFailure(seed, op, sched, v)
						rep.violations = append(rep.violations, msg)
						t.Error(msg)
					}
				})
			}
		})
	}
	wg.Wait()
	var out strings.Builder
	fmt.Fprintf(&out, "chaos (size %s, seed %d):\n", size.name, seed)
	for _, r := range reports {
		if r.crashes+r.restarts+r.notReached+len(r.violations) == 0 {
			continue // not selected by -run
		}
		fmt.Fprintln(&out, "  "+r.String())
	}
	t.Log(out.String())
	if path := os.Getenv("ANYOPS_CHAOS_REPORT"); path != "" {
		_ = os.WriteFile(path, []byte(out.String()), 0o644)
	}
}

// chaosParallelism is how many operations' worlds run at once: ANYOPS_CHAOS_PARALLEL, or 4.
// A world mostly waits on cloudsim's clock and its workflows' timers, so several share a
// machine's cores without slowing each other much; 1 runs them one after another.
func chaosParallelism(t *testing.T) int {
	s := os.Getenv("ANYOPS_CHAOS_PARALLEL")
	if s == "" {
		return 4
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 {
		t.Fatalf("ANYOPS_CHAOS_PARALLEL=%q is not a positive number", s)
	}
	return n
}

// chaosWorld is the control plane one run works on: a dev server of its own that can be
// restarted on its database file, cloudsim behind crash points on an endpoint that can be
// taken down and brought back, an inventory on a PostgreSQL server of its own that can be
// crashed and started again (chaos_postgres_test.go), and the worker processes.
type chaosWorld struct {
	t        *testing.T
	bin      string
	extraEnv []string
	temporal *restartableTemporal
	tc       client.Client
	sim      *cloudsim.Sim
	crash    *crashPoints
	cloud    *restartableEndpoint
	clouds   *activities.Clients
	pg       *testenv.PostgresServer
	dataDir  string
	logFile  string
	mu       sync.Mutex
	workers  []*workerProcess
	// opStarted and opEnded are the operation's start and end on cloudsim's clock, the window
	// of the invariants that hold during it.
	opStarted, opEnded time.Time

	chaosParts // what some operations add (chaos_ops_more_test.go)
}

// newChaosWorld builds a run's world; extraEnv goes to every worker it starts (the harness's
// own test uses it to start the deliberately broken worker).
func newChaosWorld(t *testing.T, bin string, extraEnv []string, speed float64) *chaosWorld {
	t.Helper()
	if speed == 0 {
		speed = cloudsim.TestSpeed
	}
	w := &chaosWorld{t: t, bin: bin, extraEnv: extraEnv}
	dir := t.TempDir()
	w.dataDir, w.logFile = dir, filepath.Join(dir, "worker.log")
	w.pg = testenv.StartPostgresServer(t)
	w.temporal = startRestartableTemporal(t, filepath.Join(dir, "temporal.db"))
	tc, err := client.Dial(client.Options{HostPort: w.temporal.hostPort})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(tc.Close)
	w.tc = tc
	t.Cleanup(func() {
		if t.Failed() {
			w.logHistories()
		}
	})
	w.startCloud(t, speed)
	t.Cleanup(func() {
		if t.Failed() {
			if out, err := os.ReadFile(w.logFile); err == nil {
				t.Logf("worker log:\n%s", lastBytes(out, 6000))
			}
		}
	})
	pauseSchedules(t, tc)
	return w
}

// startCloud starts cloudsim at speed behind the world's crash points, on an endpoint that
// can be taken down and brought back, and the clients that reach it there.
func (w *chaosWorld) startCloud(t *testing.T, speed float64) {
	t.Helper()
	var err error
	if w.sim, err = cloudsim.New(cloudsim.Config{Speed: speed}); err != nil {
		t.Fatal(err)
	}
	w.crash = newCrashPoints(w.sim.Handler())
	w.cloud = startRestartableEndpoint(t, w.crash)
	t.Cleanup(func() {
		w.crash.releaseAll()
		w.cloud.stop()
		_ = w.sim.Close()
	})
	if w.clouds, err = activities.NewClients(context.Background(), config.AWS{Region: "us-east-1", Endpoint: w.cloud.url}); err != nil {
		t.Fatal(err)
	}
}

// env is the workers' environment.
func (w *chaosWorld) env() []string {
	return append([]string{
		"ANYOPS_TEMPORAL_ADDR=" + w.temporal.hostPort,
		"ANYOPS_TEMPORAL_NAMESPACE=default",
		"ANYOPS_DATA_DIR=" + w.dataDir,
		"ANYOPS_DB_DRIVER=" + inventory.DriverPostgres,
		"ANYOPS_DB_DSN=" + w.pg.DSN,
		"ANYOPS_AWS_REGION=us-east-1",
		"ANYOPS_AWS_ENDPOINT=" + w.cloud.url,
		"ANYOPS_AWS_ACCESS_KEY_ID=test",
		"ANYOPS_AWS_SECRET_ACCESS_KEY=test",
	}, w.extraEnv...)
}

// startWorker starts one more worker process.
func (w *chaosWorld) startWorker() *workerProcess {
	// Each worker its own metrics port: two workers of a run (the second-worker fault, or a
	// replacement while the killed one's port lingers) must not make one of them exit.
	env := append(w.env(), fmt.Sprintf("ANYOPS_METRICS_ADDR=127.0.0.1:%d", testenv.FreePort(w.t)))
	p := startWorker(w.t, w.bin, env, w.logFile)
	w.mu.Lock()
	w.workers = append(w.workers, p)
	w.mu.Unlock()
	return p
}

// killAll kills every worker with kill -9.
func (w *chaosWorld) killAll() {
	w.mu.Lock()
	workers := w.workers
	w.workers = nil
	w.mu.Unlock()
	for _, p := range workers {
		select {
		case <-p.done:
		default:
			p.kill9(w.t)
		}
	}
}

// historyLength is how many events the workflow's history has: it grows when the workflow
// progresses (an activity completed, a child started, a timer fired). A workflow that has
// closed counts as grown (closedLength), since it cannot grow any more.
func (w *chaosWorld) historyLength(id string) int64 {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	d, err := w.tc.DescribeWorkflow(ctx, id, "")
	if err != nil {
		return -1
	}
	info := d.RawResponse.GetWorkflowExecutionInfo()
	if info.GetStatus() != enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING {
		return closedLength
	}
	return info.GetHistoryLength()
}

// closedLength is historyLength's answer for a closed workflow: more than any open one has.
const closedLength = 1 << 62

// waitProgress waits until any of the workflows' histories grows past before, or the next
// crash point is reached (nil: none), and returns how long that took; ok is false if nothing
// moved within limit.
func (w *chaosWorld) waitProgress(before map[string]int64, next <-chan struct{}, limit time.Duration) (time.Duration, bool) {
	start := time.Now()
	if len(before) == 0 {
		return 0, true // nothing was open: the operation had finished
	}
	for time.Since(start) < limit {
		select {
		case <-next:
			return time.Since(start), true
		default:
		}
		for id, n := range before {
			if l := w.historyLength(id); l > n {
				return time.Since(start), true
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	return limit, false
}

// lengths takes the history lengths of the open workflows among ids.
func (w *chaosWorld) lengths(ids []string) map[string]int64 {
	out := map[string]int64{}
	for _, id := range ids {
		if n := w.historyLength(id); n >= 0 && n < closedLength {
			out[id] = n
		}
	}
	return out
}

// openWorkflows lists the ids of the running workflows.
func (w *chaosWorld) openWorkflows() []string {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var ids []string
	resp, err := w.tc.ListWorkflow(ctx, listOpen())
	if err != nil {
		return nil
	}
	for _, e := range resp.GetExecutions() {
		ids = append(ids, e.GetExecution().GetWorkflowId())
	}
	return ids
}

// runOperation runs op under sched and returns the broken invariants. Each crash point is
// armed as soon as the one before is hit, so that the worker taking over holds at it however
// quickly it gets there; reaching it counts as progress.
func (w *chaosWorld) runOperation(t *testing.T, op chaosOperation, sched chaosSchedule, rep *chaosReport) []string {
	if op.setUp != nil {
		setUpWorker := w.startWorker()
		op.setUp(t, w)
		setUpWorker.kill9(t)
	}
	current := w.startWorker()
	w.opStarted = w.sim.Now()
	run := op.start(t, w)
	ended := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 6*time.Minute)
		defer cancel()
		ended <- run.Get(ctx, nil)
	}()
	var violations []string
	var hit <-chan struct{}
	if len(sched.kills) > 0 {
		hit = w.arm(sched.kills[0])
	}
	var runErr error
	finished := false
	for i, cp := range sched.kills {
		select {
		case <-hit:
		case runErr = <-ended:
			finished = true
			if runErr == nil {
				rep.notReached += len(sched.kills) - i
				t.Logf("crash point %s and %d after it not reached: the operation completed first", cp, len(sched.kills)-i-1)
			} // else the operation's failure is the violation, below
		case <-time.After(2 * time.Minute):
			violations = append(violations, fmt.Sprintf("crash point %s: never reached within 2 minutes", cp))
		}
		if finished || len(violations) > 0 {
			break
		}
		var next <-chan struct{}
		if i+1 < len(sched.kills) {
			next = w.arm(sched.kills[i+1])
		}
		rep.crashes++
		before := w.lengths(w.openWorkflows())
		current.kill9(t)
		current = w.startWorker()
		if d, ok := w.waitProgress(before, next, 2*time.Minute); ok {
			rep.crashesSurvived++
			rep.recovered(d, "after kill at "+cp.String())
		} else {
			violations = append(violations, fmt.Sprintf("crash point %s: no progress within 2 minutes of the kill", cp))
		}
		if i == sched.dependencyAfter {
			rep.restarts++
			d, err := w.dependencyFault(sched.dependency, next)
			if err != nil {
				violations = append(violations, fmt.Sprintf("%s after crash point %s: %v", sched.dependency, cp, err))
			} else {
				rep.restartSurvived(sched.dependency)
				rep.recovered(d, sched.dependency)
			}
		}
		hit = next
	}
	w.crash.releaseAll()
	if w.mail != nil {
		w.mail.ReleaseHolds()
	}
	if !finished {
		runErr = <-ended
	}
	w.opEnded = w.sim.Now()
	if runErr != nil {
		violations = append(violations, fmt.Sprintf("invariant %q broken: %s did not complete: %v", "the operation completes", op.name, runErr))
	}
	for _, inv := range append(slices.Clone(chaosInvariants), op.invariants...) {
		if msg := inv.check(t, w, op); msg != "" {
			violations = append(violations, fmt.Sprintf("invariant %q broken: %s", inv.name, msg))
		}
	}
	w.killAll()
	return violations
}

// arm sets the crash point up in cloudsim's crash points.
func (w *chaosWorld) arm(cp crashPoint) <-chan struct{} {
	if cp.sandboxd != "" {
		return w.sandboxd.arm(cp.sandboxd)
	}
	if cp.smtp == "RCPT" {
		return w.mail.HoldNextRcpt()
	}
	if cp.script != "" {
		return w.crash.armScript(cp.script)
	}
	return w.crash.arm(cp.action)
}

// dependencyFault carries out one dependency fault and returns the time from its end (the
// dependency back) to the next progress of a workflow.
func (w *chaosWorld) dependencyFault(kind string, next <-chan struct{}) (time.Duration, error) {
	open := w.openWorkflows()
	before := w.lengths(open) // taken before the fault: the operation may finish during it
	switch kind {
	case faultTemporalRestart:
		if err := w.temporal.restart(); err != nil {
			return 0, err
		}
	case faultPostgresRestart:
		if err := w.restartPostgres(); err != nil {
			return 0, err
		}
	case faultCloudsimRestart:
		w.cloud.stop()
		time.Sleep(2 * time.Second)
		if err := w.cloud.start(); err != nil {
			return 0, err
		}
	case faultThrottleStorm:
		f, err := w.sim.InjectFault(cloudsim.Fault{Type: cloudsim.FaultThrottle, Rate: 0.5})
		if err != nil {
			return 0, err
		}
		time.Sleep(3 * time.Second)
		w.sim.ClearFault(f.ID)
	case faultSecondWorker:
		w.startWorker()
	}
	if len(open) == 0 {
		return 0, nil // the operation finished meanwhile
	}
	d, ok := w.waitProgress(before, next, 2*time.Minute)
	if !ok {
		return d, fmt.Errorf("no progress within 2 minutes")
	}
	return d, nil
}
