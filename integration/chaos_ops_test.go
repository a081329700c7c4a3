package integration

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/uuid"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/client"
	sdkworker "go.temporal.io/sdk/worker"

	"github.com/anyops/anyops"
	"github.com/anyops/anyops/activities"
	"github.com/anyops/anyops/cloudsim"
	"github.com/anyops/anyops/config"
	"github.com/anyops/anyops/drills"
	"github.com/anyops/anyops/inventory"
	"github.com/anyops/anyops/worker"
	"github.com/anyops/anyops/workflows"
)

// chaosOperation is the adapter that plugs one operation into the harness: how to set its
// world up, how to start it, and the cloud calls, in the order the operation makes them, at
// which a kill can land between the side effect and the activity's completion.
type chaosOperation struct {
	name        string
	crashPoints []crashPoint
	// speed is cloudsim's clock speed for the operation (0: cloudsim.TestSpeed): a failover's
	// simulated minutes must stay long against the control plane's real latency.
	speed float64
	// invariants are the operation's own, checked after the table's.
	invariants []chaosInvariant
	// changesFleet: the operation replaces servers, so the inventory is compared with the
	// cloud server by server, not with the demo fleet's plan.
	changesFleet bool
	// setUp, when set, prepares the world with a worker of its own and no faults.
	setUp func(t *testing.T, w *chaosWorld)
	start func(t *testing.T, w *chaosWorld) client.WorkflowRun
}

// chaosOperations is the table of operations the harness runs (the patch's, the console's
// and the drill's set-ups and invariants are in chaos_ops_more_test.go).
var chaosOperations = []chaosOperation{
	{
		name: "demo-fleet",
		crashPoints: []crashPoint{{action: "RunInstances"}, {action: "CreateVolume"}, {action: "AttachVolume"},
			{script: "drbdadm create-md"}, {script: "mdadm --create"}, {script: "exportfs"}},
		start: startDemoFleet,
	},
	{
		name: "fleet-sync",
		crashPoints: []crashPoint{{action: "DescribeInstances"}, {action: "DescribeVolumes"},
			{action: "DescribeInstanceStatus"}, {script: "drbdadm status"}},
		setUp: buildDemoFleet,
		start: func(t *testing.T, w *chaosWorld) client.WorkflowRun {
			return w.execute(t, workflows.FleetSyncWorkflowID, "FleetSync", workflows.FleetSyncInput{Timing: crashTiming, RequestedBy: "chaos"})
		},
	},
	{
		// The demo file server's hardware fails with its hot backup UpToDate: the race of
		// FileServerFailover (promote, repair, replace), the takeover, the clients' switch and
		// the new hot backup.
		name:  "failover",
		speed: failoverSpeed,
		crashPoints: []crashPoint{{action: "DescribeInstanceStatus"}, {script: "drbdadm status"}, {script: "drbdadm primary"},
			{script: "exportfs"}, {script: "mount -t nfs4"}},
		changesFleet: true,
		invariants:   failoverInvariants,
		setUp: func(t *testing.T, w *chaosWorld) {
			buildDemoFleet(t, w)
			file := describeInstances(t, w.clouds.EC2)[inventory.DemoFileServer]
			if len(file) != 1 {
				t.Fatalf("set-up: %s is %v", inventory.DemoFileServer, file)
			}
			if _, err := w.sim.InjectFault(cloudsim.Fault{Type: cloudsim.FaultHardwareFailure, InstanceID: file[0]}); err != nil {
				t.Fatal(err)
			}
		},
		start: func(t *testing.T, w *chaosWorld) client.WorkflowRun {
			return w.execute(t, anyops.FailoverWorkflowID(inventory.DemoFileServer), workflows.FailoverWorkflowType,
				workflows.FailoverInput{RecoveryRequest: workflows.RecoveryRequest{Server: inventory.DemoFileServer, RequestedBy: "chaos"}, Timing: chaosRecoveryTiming(failoverSpeed)})
		},
	},
	{
		// The demo backup's volumes move to bigger io2 volumes in the spare zone through a new
		// backup seeded from snapshots of the old one's (July 2014 done right), with data on
		// the home volumes for the snapshots and the resyncs to move.
		name:         "storage-change",
		crashPoints:  []crashPoint{{action: "CreateSnapshot"}, {action: "CreateVolume"}, {action: "AttachVolume"}, {action: "StopInstances"}},
		changesFleet: true,
		invariants:   []chaosInvariant{interlocksKept, hotCopiesKept},
		setUp: func(t *testing.T, w *chaosWorld) {
			buildDemoFleet(t, w)
			for name, ids := range describeVolumes(t, w.clouds.EC2) {
				if strings.Contains(name, "/home") {
					if _, err := w.sim.FillVolume(ids[0], 5); err != nil {
						t.Fatal(err)
					}
				}
			}
		},
		start: func(t *testing.T, w *chaosWorld) client.WorkflowRun {
			return w.execute(t, anyops.StorageChangeWorkflowID(inventory.DemoBackup), workflows.StorageChangeWorkflowType, workflows.StorageChangeInput{
				Server: inventory.DemoBackup, Spec: anyops.VolumeSpec{Type: anyops.VolumeIO2, SizeGiB: 600, Iops: 8000}, Zone: inventory.DemoSpareZone,
				NewServer: inventory.DemoBackup + "2", Timing: chaosRecoveryTiming(cloudsim.TestSpeed), RequestedBy: "chaos"})
		},
	},
	{
		// FleetPatch of Heartbleed over the demo fleet, notices by SMTP (chaos_ops_more_test.go).
		name: "patch", speed: patchSimSpeed, crashPoints: patchChaosCrashPoints, invariants: patchInvariants,
		setUp: setUpPatch, start: startPatch,
	},
	{
		// A console on a real sandboxd, ended by its idle timeout (chaos_ops_more_test.go).
		name: "console", crashPoints: consoleChaosCrashPoints, invariants: consoleInvariants,
		setUp: setUpConsole, start: startConsole,
	},
	{
		// The Drill workflow on the hot-backup scenario (chaos_ops_more_test.go).
		name: "drill", crashPoints: drillChaosCrashPoints, invariants: drillInvariants, changesFleet: true,
		setUp: setUpDrill, start: startDrill,
	},
	{
		// A zone move of the demo cluster (chaos_release_test.go): killed during the
		// snapshotting, the handover and the deferred copy.
		name: "release", crashPoints: releaseChaosCrashPoints, changesFleet: true, invariants: releaseInvariants,
		setUp: releaseChaosSetUp, start: startReleaseChaos,
	},
}

// buildDemoFleet is an operation's set-up: the demo fleet built.
func buildDemoFleet(t *testing.T, w *chaosWorld) {
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	if err := startDemoFleet(t, w).Get(ctx, nil); err != nil {
		t.Fatalf("set-up: DemoFleet: %v", err)
	}
}

// chaosRecoveryTiming is the production recovery timing at cloudsim's speed, with heartbeats
// short enough that a killed worker's activities move to the next one within seconds.
func chaosRecoveryTiming(speed float64) workflows.RecoveryTiming {
	return workflows.RecoveryTiming{FleetTiming: workflows.FleetTiming{HeartbeatTimeout: 2 * time.Second, CallTimeout: 10 * time.Second}}.Scaled(speed)
}

// failoverInvariants are a failover's: one file server serves, and the interlocks DRBD's and
// EC2's events can show broken (a promotion of a disk not UpToDate without an audited
// override, two Primaries, a volume attached twice) are kept, as a drill's report reads them;
// no second replacement was built.
var failoverInvariants = []chaosInvariant{
	{name: "one serving file server, no volume attached twice", check: func(t *testing.T, w *chaosWorld, _ chaosOperation) string {
		return strings.Join(oneFileServer(t, w.clouds, w.cloud.url, inventory.DemoCluster, ""), "; ")
	}},
	interlocksKept,
	{name: "no second replacement built", check: func(t *testing.T, w *chaosWorld, _ chaosOperation) string {
		if built := replacementsOf(t, w.clouds.EC2, inventory.DemoFileServer); len(built) > 1 {
			return fmt.Sprintf("replacements of %s built: %v", inventory.DemoFileServer, built)
		}
		return ""
	}},
}

// interlocksKept: no interlock a drill's report reads from the event log was broken over the
// whole run.
var interlocksKept = chaosInvariant{name: "no interlock broken (not-uptodate promotion without an audited override, two Primaries, double attach)",
	check: func(t *testing.T, w *chaosWorld, _ chaosOperation) string {
		r, err := drbdReport(t, w, inventory.DemoCluster)
		if err != nil {
			return err.Error()
		}
		var broken []string
		for _, v := range r.Violations {
			broken = append(broken, fmt.Sprintf("%s: %s", v.Kind, v.Message))
		}
		return strings.Join(broken, "; ")
	}}

// drbdReport computes a drill's report of the cluster from cloudsim's event log, the cloud's
// tagged resources and the inventory's audited overrides, over the whole run.
func drbdReport(t *testing.T, w *chaosWorld, cluster string) (drills.Report, error) {
	ctx := context.Background()
	store, err := w.openStore()
	if err != nil {
		return drills.Report{}, err
	}
	defer store.Close()
	overrides, err := activities.AuditedOverrides(ctx, store, time.Time{}, cluster, nil)
	if err != nil {
		return drills.Report{}, err
	}
	resources, err := activities.ClusterResources(ctx, w.clouds, cluster)
	if err != nil {
		return drills.Report{}, err
	}
	// The clusters' states, as a drill's report has them: a cluster a release retired may
	// lose its last instance.
	clusters, _, err := store.ListClusters(ctx, inventory.ClusterFilter{Page: inventory.Page{Limit: inventory.MaxLimit}})
	if err != nil {
		return drills.Report{}, err
	}
	states := map[string]anyops.ClusterState{}
	for _, c := range clusters {
		states[c.Name] = c.State
	}
	events := w.sim.QueryEvents(cloudsim.EventQuery{Types: drills.EventTypes})
	r, err := drills.Compute(drills.ReportInput{Cluster: cluster, End: w.sim.Now(), Resources: resources, Overrides: overrides, Events: events, ClusterStates: states})
	if err != nil {
		return r, err
	}
	t.Logf("DRBD of %s over %d events: %d interlock violations", cluster, len(events), len(r.Violations))
	return r, nil
}

func startDemoFleet(t *testing.T, w *chaosWorld) client.WorkflowRun {
	return w.execute(t, workflows.DemoFleetWorkflowID, "DemoFleet", workflows.DemoFleetInput{Timing: crashTiming})
}

// execute starts a workflow on the control queue.
func (w *chaosWorld) execute(t *testing.T, id, workflowType string, input any) client.WorkflowRun {
	t.Helper()
	run, err := w.tc.ExecuteWorkflow(context.Background(), client.StartWorkflowOptions{ID: id, TaskQueue: workflows.TaskQueueControl}, workflowType, input)
	if err != nil {
		t.Fatalf("start %s: %v", workflowType, err)
	}
	return run
}

// listOpen asks for the running workflows.
func listOpen() *workflowservice.ListWorkflowExecutionsRequest {
	return &workflowservice.ListWorkflowExecutionsRequest{Query: "ExecutionStatus = 'Running'", PageSize: 100}
}

// chaosInvariant is one property every run must keep, checked from cloudsim's state and
// event log and the inventory once the operation has ended; check returns what broke, or "".
type chaosInvariant struct {
	name  string
	check func(t *testing.T, w *chaosWorld, op chaosOperation) string
}

// chaosInvariants are the invariants that the operations of the table can break. The
// storage change's (never zero hot copies: hotCopiesKept), the notices' (none sent twice) and
// the promotions' (never a disk not UpToDate without an audited override) join with the
// operations that make such changes.
var chaosInvariants = []chaosInvariant{
	{name: "no duplicate resources (by their business tags)", check: func(t *testing.T, w *chaosWorld, _ chaosOperation) string {
		var dups []string
		for name, ids := range describeInstances(t, w.clouds.EC2) {
			if len(ids) > 1 {
				dups = append(dups, fmt.Sprintf("instance %s ×%d %v", name, len(ids), ids))
			}
		}
		for name, ids := range describeVolumes(t, w.clouds.EC2) {
			if len(ids) > 1 {
				dups = append(dups, fmt.Sprintf("volume %s ×%d %v", name, len(ids), ids))
			}
		}
		return strings.Join(dups, "; ")
	}},
	{name: "no lost volume", check: func(t *testing.T, w *chaosWorld, _ chaosOperation) string {
		volumes := describeVolumes(t, w.clouds.EC2)
		var lost []string
		for _, v := range activities.DemoFleetPlan().Volumes {
			if len(volumes[v.Name]) == 0 {
				lost = append(lost, v.Name)
			}
		}
		return strings.Join(lost, ", ")
	}},
	{name: "never two DRBD Primaries of one resource", check: func(_ *testing.T, w *chaosWorld, _ chaosOperation) string {
		return twoPrimaries(w.sim.QueryEvents(cloudsim.EventQuery{Types: []string{"drbd.primary", "drbd.secondary", "drbd.down", "instance."}}))
	}},
	{name: "the inventory agrees with the cloud", check: func(t *testing.T, w *chaosWorld, op chaosOperation) string {
		w.startWorker()
		runFleetSync(t, w.tc)
		store, err := w.openStore()
		if err != nil {
			return err.Error()
		}
		defer store.Close()
		servers, _, err := store.ListServers(context.Background(), inventory.ServerFilter{Page: inventory.Page{Limit: inventory.MaxLimit}})
		if err != nil {
			return err.Error()
		}
		instances := describeInstances(t, w.clouds.EC2)
		var differ []string
		for _, s := range servers {
			if s.State == anyops.ServerTerminated { // a record (a torn-down drill cluster): none may run
				if ids := instances[s.Name]; len(ids) != 0 {
					differ = append(differ, fmt.Sprintf("%s: inventory terminated, cloud %v", s.Name, ids))
				}
				continue
			}
			if ids := instances[s.Name]; len(ids) != 1 || ids[0] != s.InstanceID {
				differ = append(differ, fmt.Sprintf("%s: inventory %s, cloud %v", s.Name, s.InstanceID, ids))
			}
		}
		if !op.changesFleet && len(servers) != len(activities.DemoFleetPlan().Servers) {
			differ = append(differ, fmt.Sprintf("inventory has %d servers, the plan %d", len(servers), len(activities.DemoFleetPlan().Servers)))
		}
		return strings.Join(differ, "; ")
	}},
}

// twoPrimaries replays cloudsim's DRBD events and names each moment a resource had two
// Primaries on live hosts (a host whose instance stopped or failed is not live).
func twoPrimaries(events []cloudsim.Event) string {
	primaries := map[string]map[string]bool{} // resource -> hosts
	var broken []string
	for _, e := range events {
		var res, host string
		switch e.Type {
		case "drbd.primary":
			if _, err := fmt.Sscanf(e.Message, "drbd %s is Primary on %s", &res, &host); err != nil {
				continue
			}
			if primaries[res] == nil {
				primaries[res] = map[string]bool{}
			}
			primaries[res][e.Resource] = true
			if len(primaries[res]) > 1 {
				broken = append(broken, fmt.Sprintf("%s at %s: Primary on %d hosts", res, e.Time.Format(time.TimeOnly), len(primaries[res])))
			}
		case "drbd.secondary", "drbd.down":
			if _, err := fmt.Sscanf(e.Message, "drbd %s", &res); err == nil && primaries[res] != nil {
				delete(primaries[res], e.Resource)
			}
		default: // instance.*: a stopped or failed host serves nothing
			if e.Type != "instance.launched" {
				for _, hosts := range primaries {
					delete(hosts, e.Resource)
				}
			}
		}
	}
	return strings.Join(broken, "; ")
}

// brokenWorkerEnv makes the test binary a worker whose RunInstance forgets its ClientToken:
// every attempt sends a new one, as an activity written without the idempotency rule would.
const brokenWorkerEnv = "ANYOPS_CHAOS_BROKEN_WORKER"

// maybeRunBrokenWorker runs the broken worker when the test binary was started as one, and
// exits; the harness's own test kills and restarts it like any worker.
func maybeRunBrokenWorker() {
	if os.Getenv(brokenWorkerEnv) != "1" {
		return
	}
	if err := runBrokenWorker(); err != nil {
		fmt.Fprintln(os.Stderr, "broken worker:", err)
		os.Exit(1)
	}
	os.Exit(0)
}

func runBrokenWorker() error {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	tc, err := client.Dial(client.Options{HostPort: os.Getenv("ANYOPS_TEMPORAL_ADDR")})
	if err != nil {
		return err
	}
	defer tc.Close()
	store, err := inventory.Open(ctx, os.Getenv("ANYOPS_DB_DRIVER"), os.Getenv("ANYOPS_DB_DSN"))
	if err != nil {
		return err
	}
	defer store.Close()
	clients, err := activities.NewClients(ctx, config.AWS{Region: "us-east-1", Endpoint: os.Getenv("ANYOPS_AWS_ENDPOINT")})
	if err != nil {
		return err
	}
	cloud := activities.NewCloud(clients)
	forgetful := func(ctx context.Context, in activities.RunInstanceInput) (activities.Instance, error) {
		in.Step += "-" + uuid.NewString() // a new token on every attempt: the bug under test
		return cloud.RunInstance(ctx, in)
	}
	cfg := worker.Config{Client: tc, Deps: worker.Deps{Store: store, AWS: clients}, Logger: slog.Default()}
	for _, q := range worker.TaskQueues {
		w := sdkworker.New(tc, q, worker.Options(cfg))
		worker.Register(w, q, cfg.Deps)
		w.RegisterActivityWithOptions(forgetful, activity.RegisterOptions{Name: "RunInstance", DisableAlreadyRegisteredCheck: true})
		if err := w.Start(); err != nil {
			return err
		}
		defer w.Stop()
	}
	<-ctx.Done()
	return nil
}

// TestChaosCatchesBrokenActivity is the harness's test of itself: the demo fleet built by a
// worker whose RunInstance sends a new ClientToken on every attempt, killed right after
// cloudsim launched an instance, leaves a duplicate instance, and the harness reports it with
// the seed, the crash point and the invariant.
func TestChaosCatchesBrokenActivity(t *testing.T) {
	const seed = 13
	w := newChaosWorld(t, os.Args[0], []string{brokenWorkerEnv + "=1"}, 0)
	op := chaosOperations[0]
	sched := chaosSchedule{kills: []crashPoint{{action: "RunInstances"}}, dependencyAfter: -1}
	var rep chaosReport
	var caught string
	for _, v := range w.runOperation(t, op, sched, &rep) {
		if msg := chaosFailure(seed, op, sched, v); strings.Contains(msg, "no duplicate resources") {
			caught = msg
		}
	}
	if caught == "" || !strings.Contains(caught, "seed 13") || !strings.Contains(caught, "RunInstances") {
		t.Fatalf("the broken RunInstance was not caught with seed and crash point; got %q", caught)
	}
	t.Logf("caught: %s", caught)
}

// chaosFailure words a broken invariant of a run so that it can be repeated.
func chaosFailure(seed uint64, op chaosOperation, sched chaosSchedule, violation string) string {
	return fmt.Sprintf("seed %d, operation %s, %s: %s", seed, op.name, sched, violation)
}
