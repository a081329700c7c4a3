package integration

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"

	"github.com/anyops/anyops"
	"github.com/anyops/anyops/activities"
	"github.com/anyops/anyops/cloudsim"
	"github.com/anyops/anyops/config"
	"github.com/anyops/anyops/internal/testenv"
	"github.com/anyops/anyops/inventory"
	"github.com/anyops/anyops/sandboxd/jail"
	"github.com/anyops/anyops/worker"
	"github.com/anyops/anyops/workflows"
)

// TestMain: the test binary doubles as the sandboxes' init of the console hosts' sandboxd
// (chaos_ops_more_test.go) and as the deliberately broken worker of the chaos harness's own
// test (chaos_ops_test.go).
func TestMain(m *testing.M) {
	jail.MaybeInit()
	maybeRunBrokenWorker()
	testenv.Main(m)
}

// simSpeed makes the demo fleet slow enough to kill mid-way and fast enough for a short test:
// a 45 s simulated boot takes 9 s, a volume 2 s, an attach 1 s.
const simSpeed = 5

// crashTiming lets a new worker take over soon after one dies: a wait that stops
// heartbeating is retried after 2 s, a quick call that never answered after 5 s.
var crashTiming = workflows.FleetTiming{
	PollInterval:     200 * time.Millisecond,
	HeartbeatTimeout: 2 * time.Second,
	CallTimeout:      5 * time.Second,
	WaitTimeout:      2 * time.Minute,
}

// buildAnyops builds the anyops binary into a temporary directory (not bin/, which other
// builds in the tree may be writing at the same time).
func buildAnyops(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "anyops")
	cmd := exec.Command("go", "build", "-o", bin, "./cmd/anyops")
	cmd.Dir = testenv.RepoRoot()
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build ./cmd/anyops: %v\n%s", err, out)
	}
	return bin
}

// workerProcess is one `anyops worker` child process.
type workerProcess struct {
	cmd  *exec.Cmd
	done chan struct{}
}

// startWorker starts `anyops worker` with env, its output appended to logFile. The worker is
// stopped when the test ends if it still runs.
func startWorker(t *testing.T, bin string, env []string, logFile string) *workerProcess {
	t.Helper()
	log, err := os.OpenFile(logFile, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	// No /metrics listener: its fixed default port is taken by any other worker on the machine,
	// and a worker that cannot bind it stops.
	cmd := exec.Command(bin, "worker", "--metrics-addr", "")
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	w := &workerProcess{cmd: cmd, done: make(chan struct{})}
	go func() {
		_ = cmd.Wait()
		log.Close()
		close(w.done)
	}()
	t.Cleanup(func() {
		select {
		case <-w.done:
			return
		default:
		}
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-w.done:
		case <-time.After(15 * time.Second):
			_ = cmd.Process.Kill()
			<-w.done
		}
	})
	return w
}

// kill9 kills the worker with SIGKILL: no shutdown, running activities are simply lost.
func (w *workerProcess) kill9(t *testing.T) {
	t.Helper()
	if err := w.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-w.done
}

// waitForStatus queries the workflow's Status until ok accepts it, and returns it. It fails
// the test when the workflow ends first or a minute passes.
func waitForStatus(t *testing.T, tc client.Client, id string, what string, ok func(workflows.Status) bool) workflows.Status {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	var last workflows.Status
	for time.Now().Before(deadline) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		v, err := tc.QueryWorkflow(ctx, id, "", workflows.StatusQuery)
		cancel()
		if err == nil && v.Get(&last) == nil {
			if ok(last) {
				return last
			}
			if last.Phase == workflows.PhaseDone || last.Phase == workflows.PhaseFailed {
				t.Fatalf("workflow %s ended (%s: %s) before %s", id, last.Phase, last.Message, what)
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("workflow %s: no status with %s within a minute; last %+v", id, what, last)
	return last
}

func stepState(st workflows.Status, name string) workflows.StepState {
	for _, s := range st.Steps {
		if s.Name == name {
			return s.State
		}
	}
	return ""
}

func stepsDone(st workflows.Status) int {
	n := 0
	for _, s := range st.Steps {
		if s.State == workflows.StepDone {
			n++
		}
	}
	return n
}

// assertMidway proves the kill landed mid-sequence: the status seen just before it had some
// but not all steps done, and the workflow is still open.
func assertMidway(t *testing.T, tc client.Client, id string, st workflows.Status) {
	t.Helper()
	if n := stepsDone(st); n == 0 || n == len(st.Steps) {
		t.Fatalf("killed at %d of %d steps done, want some but not all", n, len(st.Steps))
	}
	d, err := tc.DescribeWorkflow(context.Background(), id, "")
	if err != nil {
		t.Fatal(err)
	}
	if s := d.RawResponse.WorkflowExecutionInfo.Status; s != enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING {
		t.Fatalf("workflow %s is %s after the kill, want still running", id, s)
	}
	t.Logf("kill -9 at %d/%d steps done, phase %s", stepsDone(st), len(st.Steps), st.Phase)
}

// waitHit waits until cloudsim has served the armed call.
func waitHit(t *testing.T, hit <-chan struct{}, action string) {
	t.Helper()
	select {
	case <-hit:
	case <-time.After(time.Minute):
		t.Fatalf("no %s call reached cloudsim within a minute", action)
	}
}

// TestCrashWorkerKilledMidDemoFleetCreatesNothingTwice is the crash-safety proof. `anyops
// worker` runs as a child process against the real Temporal dev server, cloudsim and a SQLite
// inventory. The worker running DemoFleet (its BuildCluster and BuildServer children) is killed
// with kill -9 twice at the worst moment — once right after cloudsim launched an instance, once
// right after it created a volume, each time before the activity could report back — with the
// Status of the build showing some but not all steps done, and a fresh worker is started each
// time (the clock jumps over the servers' bootstrap meanwhile). The workflow then completes, and
// cloudsim holds exactly one instance per server and one volume per planned volume: the
// retried calls carried the same ClientToken and found what the dead worker had created. A
// third kill lands right after the file server ran `mdadm --create`: the retry, whose
// heartbeat names no command, finds that command by the activity's key in its comment
// (ListCommands) and takes its result instead of sending the script again, and the hosts end
// set up once — DRBD configured by files and in sync, md0 over the DRBD devices, mounted and
// exported, each made once.
// Then FleetSync fills the inventory with the instance ids DescribeInstances returns, and a
// hardware failure injected through /_sim/faults shows as impaired in
// DescribeInstanceStatus and, after the next FleetSync, in the inventory.
func TestCrashWorkerKilledMidDemoFleetCreatesNothingTwice(t *testing.T) {
	ctx := context.Background()
	tc := testenv.TemporalClient(t)
	bin := buildAnyops(t)
	sim, crash, endpoint := crashSim(t, simSpeed)
	dir := t.TempDir()
	dbFile := filepath.Join(dir, "anyops.db")
	logFile := filepath.Join(dir, "worker.log")
	env := []string{
		"ANYOPS_TEMPORAL_ADDR=" + testenv.Temporal(t),
		"ANYOPS_TEMPORAL_NAMESPACE=default",
		"ANYOPS_DATA_DIR=" + dir,
		"ANYOPS_METRICS_ADDR=", // no fixed port: other workers on the machine may hold 9464
		"ANYOPS_DB_DRIVER=sqlite",
		"ANYOPS_DB_DSN=" + dbFile,
		"ANYOPS_AWS_REGION=us-east-1",
		"ANYOPS_AWS_ENDPOINT=" + endpoint,
		"ANYOPS_AWS_ACCESS_KEY_ID=test",
		"ANYOPS_AWS_SECRET_ACCESS_KEY=test",
	}
	t.Cleanup(func() {
		if t.Failed() {
			if out, err := os.ReadFile(logFile); err == nil {
				t.Logf("worker log:\n%s", lastBytes(out, 8000))
			}
		}
	})
	clouds, err := activities.NewClients(ctx, config.AWS{Region: "us-east-1", Endpoint: endpoint})
	if err != nil {
		t.Fatal(err)
	}
	plan := activities.DemoFleetPlan()
	id := workflows.DemoFleetWorkflowID
	pauseSchedules(t, tc)

	// Kill 1: an instance is launched, its activity has not reported.
	launched := crash.arm("RunInstances")
	first := startWorker(t, bin, env, logFile)
	run, err := tc.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: id, TaskQueue: workflows.TaskQueueControl},
		"DemoFleet", workflows.DemoFleetInput{Timing: crashTiming})
	if err != nil {
		t.Fatal(err)
	}
	build := workflows.BuildClusterWorkflowID(inventory.DemoCluster)
	waitHit(t, launched, "RunInstances")
	st := waitForStatus(t, tc, build, "the servers' builds under way", func(s workflows.Status) bool {
		return stepState(s, "build-servers") == workflows.StepRunning
	})
	first.kill9(t)
	assertMidway(t, tc, build, st)

	// Kill 2: a volume is created, its activity has not reported.
	created := crash.arm("CreateVolume")
	second := startWorker(t, bin, env, logFile)
	waitHit(t, created, "CreateVolume")
	st = waitForStatus(t, tc, workflows.BuildServerWorkflowID(inventory.DemoFileServer), "volume creation under way", func(s workflows.Status) bool {
		return stepState(s, "create-volumes") == workflows.StepRunning || stepState(s, "create-volumes") == workflows.StepDone
	})
	second.kill9(t)
	assertMidway(t, tc, workflows.BuildServerWorkflowID(inventory.DemoFileServer), st)
	// The servers bootstrap for 19 simulated minutes, almost 4 real ones at this speed: the
	// clock jumps a minute every 200 ms until the array is made.
	stopJumps := jumpClock(sim, time.Minute, 200*time.Millisecond)

	// Kill 3: md0 is created on the file server, the activity never learns the command id.
	created0 := crash.armScript("mdadm --create")
	third := startWorker(t, bin, env, logFile)
	waitHit(t, created0, "mdadm --create")
	stopJumps()
	st = waitForStatus(t, tc, build, "array assembly under way", func(s workflows.Status) bool {
		return stepState(s, "assemble-arrays") == workflows.StepRunning
	})
	third.kill9(t)
	assertMidway(t, tc, build, st)

	startWorker(t, bin, env, logFile)
	runCtx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	var res workflows.DemoFleetResult
	if err := run.Get(runCtx, &res); err != nil {
		t.Fatalf("DemoFleet after two kills: %v", err)
	}

	// The calls whose answers died with the workers were made again, with the same token; the
	// script whose answer was lost was found by its key and not sent again.
	for _, action := range []string{"RunInstances", "CreateVolume"} {
		if token, n := crash.heldCalls(action); token == "" || n < 2 {
			t.Errorf("%s with the lost answer (token %q) was called %d times, want a retry with the same token", action, token, n)
		}
	}
	if script, n := crash.heldCalls(sendCommand); script == "" || n != 1 {
		t.Errorf("the script %q whose answer was lost was sent %d times, want once (the retry finds it by its key)", script, n)
	}
	// No duplicates: exactly the plan is in the cloud, and it is what the workflow reports.
	instances := describeInstances(t, clouds.EC2)
	if len(instances) != len(plan.Servers) {
		t.Errorf("cloud has %d instances %v, want %d: one per server", len(instances), instances, len(plan.Servers))
	}
	for _, s := range plan.Servers {
		if ids := instances[s.Name]; len(ids) != 1 || ids[0] != res.Instances[s.Name] {
			t.Errorf("server %s: cloud instances %v, workflow made %s", s.Name, ids, res.Instances[s.Name])
		}
	}
	volumes := describeVolumes(t, clouds.EC2)
	if want := len(plan.Servers) + len(plan.Volumes); len(volumes) != want {
		t.Errorf("cloud has %d volumes, want %d: a boot volume per server and each planned volume once", len(volumes), want)
	}
	for _, v := range plan.Volumes {
		if ids := volumes[v.Name]; len(ids) != 1 || ids[0] != res.Volumes[v.Name] {
			t.Errorf("volume %s: cloud volumes %v, workflow made %s", v.Name, ids, res.Volumes[v.Name])
		}
	}
	if res.DRBDInSync != len(plan.DRBDResources()) {
		t.Errorf("%d DRBD pairs in sync, want %d", res.DRBDInSync, len(plan.DRBDResources()))
	}
	checkHostsSetUpOnce(t, sim, endpoint, res, plan)

	// FleetSync fills the inventory from the cloud.
	runFleetSync(t, tc)
	store, err := inventory.Open(ctx, inventory.DriverSQLite, dbFile)
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	servers, _, err := store.ListServers(ctx, inventory.ServerFilter{})
	if err != nil {
		t.Fatal(err)
	}
	if len(servers) != len(plan.Servers) {
		t.Errorf("inventory has %d servers after FleetSync, want %d", len(servers), len(plan.Servers))
	}
	for _, s := range servers {
		if ids := instances[s.Name]; len(ids) != 1 || s.InstanceID != ids[0] || s.State != anyops.ServerRunning {
			t.Errorf("inventory server %s: instance %s, state %s; DescribeInstances says %v", s.Name, s.InstanceID, s.State, ids)
		}
	}

	// A hardware failure: impaired in the cloud at once, in the inventory after a sync.
	file := res.Instances[inventory.DemoFileServer]
	injectFault(t, endpoint, map[string]any{"type": cloudsim.FaultHardwareFailure, "instance_id": file})
	status, err := clouds.EC2.DescribeInstanceStatus(ctx, &ec2.DescribeInstanceStatusInput{InstanceIds: []string{file}})
	if err != nil || len(status.InstanceStatuses) != 1 || status.InstanceStatuses[0].SystemStatus.Status != "impaired" {
		t.Fatalf("DescribeInstanceStatus of %s after the fault: %+v, %v; want impaired", file, status, err)
	}
	before, err := store.GetServer(ctx, inventory.DemoFileServer)
	if err != nil || before.State != anyops.ServerRunning {
		t.Fatalf("file server before the sync: %+v, %v; want still running in the inventory", before, err)
	}
	runFleetSync(t, tc)
	after, err := store.GetServer(ctx, inventory.DemoFileServer)
	if err != nil || after.State != anyops.ServerImpaired || after.ImpairedSince == nil {
		t.Errorf("file server after the fault and a sync: %+v, %v; want impaired with impaired_since", after, err)
	}
}

// crashSim starts cloudsim at speed behind crash points, served until the test ends, and
// returns its endpoint.
func crashSim(t *testing.T, speed float64) (*cloudsim.Sim, *crashPoints, string) {
	t.Helper()
	sim, err := cloudsim.New(cloudsim.Config{Speed: speed})
	if err != nil {
		t.Fatal(err)
	}
	crash := newCrashPoints(sim.Handler())
	srv := httptest.NewServer(crash)
	t.Cleanup(func() {
		crash.releaseAll()
		srv.Close()
		_ = sim.Close()
	})
	return sim, crash, srv.URL
}

// jumpClock advances the simulated clock by step every interval until the returned function
// is called.
func jumpClock(sim *cloudsim.Sim, step, interval time.Duration) (stop func()) {
	done := make(chan struct{})
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		for {
			select {
			case <-done:
				return
			case <-time.After(interval):
				sim.Advance(step)
			}
		}
	}()
	return func() {
		close(done)
		<-stopped
	}
}

// pauseSchedules creates the worker's schedules paused before any worker starts (a worker
// leaves an existing schedule as it is): the test runs FleetSync itself, and a tick's sync of
// the half-built fleet would race its assertions.
func pauseSchedules(t *testing.T, tc client.Client) {
	t.Helper()
	for _, s := range worker.Schedules(workflows.NFSWatchTiming{}) {
		opts := s.Options
		opts.Paused = true
		h, err := tc.ScheduleClient().Create(context.Background(), opts)
		if err != nil {
			t.Fatalf("schedule %s: %v", s.ID, err)
		}
		t.Cleanup(func() { _ = h.Delete(context.Background()) })
	}
}

// runFleetSync starts FleetSync as the API would (joining a running one) and waits for it.
func runFleetSync(t *testing.T, tc client.Client) workflows.FleetSyncResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	run, err := tc.ExecuteWorkflow(ctx, client.StartWorkflowOptions{
		ID: workflows.FleetSyncWorkflowID, TaskQueue: workflows.TaskQueueControl,
		WorkflowIDConflictPolicy: enumspb.WORKFLOW_ID_CONFLICT_POLICY_USE_EXISTING,
	}, "FleetSync", workflows.FleetSyncInput{Timing: crashTiming, RequestedBy: "integration-test"})
	if err != nil {
		t.Fatal(err)
	}
	var res workflows.FleetSyncResult
	if err := run.Get(ctx, &res); err != nil {
		t.Fatalf("FleetSync: %v", err)
	}
	t.Logf("FleetSync: %s", res.Summary)
	return res
}

// describeInstances maps Name tags to the ids of the instances that are not terminated.
func describeInstances(t *testing.T, c *ec2.Client) map[string][]string {
	t.Helper()
	out, err := c.DescribeInstances(context.Background(), &ec2.DescribeInstancesInput{})
	if err != nil {
		t.Fatal(err)
	}
	m := map[string][]string{}
	for _, r := range out.Reservations {
		for _, i := range r.Instances {
			if i.State != nil && i.State.Name == "terminated" {
				continue
			}
			name := tagValue(i.Tags, activities.TagName)
			m[name] = append(m[name], aws.ToString(i.InstanceId))
		}
	}
	return m
}

// describeVolumes maps Name tags to volume ids; boot volumes, which RunInstances creates
// without a name, are keyed "boot:<id>" so that every volume counts once.
func describeVolumes(t *testing.T, c *ec2.Client) map[string][]string {
	t.Helper()
	out, err := c.DescribeVolumes(context.Background(), &ec2.DescribeVolumesInput{})
	if err != nil {
		t.Fatal(err)
	}
	m := map[string][]string{}
	for _, v := range out.Volumes {
		id := aws.ToString(v.VolumeId)
		name := tagValue(v.Tags, activities.TagName)
		if name == "" {
			name = "boot:" + id
		}
		m[name] = append(m[name], id)
	}
	return m
}

func tagValue(tags []types.Tag, key string) string {
	for _, tag := range tags {
		if aws.ToString(tag.Key) == key {
			return aws.ToString(tag.Value)
		}
	}
	return ""
}

func injectFault(t *testing.T, endpoint string, fault map[string]any) {
	t.Helper()
	body, _ := json.Marshal(fault)
	resp, err := http.Post(endpoint+"/_sim/faults", "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		t.Fatalf("POST /_sim/faults %s: %s", body, resp.Status)
	}
}

func lastBytes(b []byte, n int) string {
	if len(b) > n {
		return fmt.Sprintf("...%s", b[len(b)-n:])
	}
	return string(b)
}

// checkHostsSetUpOnce proves the demo's hosts are set up as real ones, each step done once
// however often the workers died: every volume an NVMe device found by its id, every DRBD
// resource Primary on the file server and in sync, md0 over /dev/drbd0…3 mounted at /srv/home
// and exported; one create-md per side, one skipped initial sync per pair, one md0, one mkfs.
func checkHostsSetUpOnce(t *testing.T, sim *cloudsim.Sim, endpoint string, res workflows.DemoFleetResult, plan activities.FleetPlan) {
	t.Helper()
	for _, v := range plan.Volumes {
		if d := res.Devices[v.Name]; !strings.HasPrefix(d, "/dev/nvme") {
			t.Errorf("volume %s is %q on its host, want an NVMe device (m5 and c5 are Nitro)", v.Name, d)
		}
	}
	file := simHostOf(t, endpoint, res.Instances[inventory.DemoFileServer])
	var members []string
	for i, name := range plan.DRBDResources() {
		members = append(members, fmt.Sprintf("/dev/drbd%d", i))
		if r := file.DRBD[name]; r.Role != "Primary" || r.Disk != "UpToDate" || !r.Connected {
			t.Errorf("DRBD %s on the file server: %+v, want Primary, UpToDate, connected", name, r)
		}
	}
	if md := file.MD["/dev/md0"]; !md.Active || !slices.Equal(md.Devices, members) {
		t.Errorf("md0 on the file server: %+v, want active over %v", md, members)
	}
	if _, exported := file.Exports["10.0.0.0/16:/srv/home"]; file.Mounts["/srv/home"].Device != "/dev/md0" || !exported {
		t.Errorf("file server mounts %+v, exports %v; want /dev/md0 on /srv/home, exported", file.Mounts, file.Exports)
	}
	counts := map[string]int{}
	for _, ev := range sim.Events(0, 0) {
		counts[ev.Type]++
	}
	pairs := len(plan.DRBDResources())
	for typ, want := range map[string]int{"drbd.create-md": 2 * pairs, "drbd.new-current-uuid": pairs, "md.created": 1, "host.mkfs": 1} {
		if counts[typ] != want {
			t.Errorf("%d %s events, want %d: a host step ran twice or never", counts[typ], typ, want)
		}
	}
}
