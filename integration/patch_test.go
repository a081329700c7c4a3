package integration

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"go.temporal.io/sdk/client"

	"github.com/anyops/anyops"
	"github.com/anyops/anyops/activities"
	"github.com/anyops/anyops/cloudsim"
	"github.com/anyops/anyops/config"
	"github.com/anyops/anyops/internal/smtptest"
	"github.com/anyops/anyops/internal/testenv"
	"github.com/anyops/anyops/inventory"
	"github.com/anyops/anyops/workflows"
)

// patchSimSpeed lets a patch step outlive a kill: apt-get's 110 simulated seconds take 5.5 s.
const patchSimSpeed = 20

// TestCrashWorkerKilledMidRolloutPatchesEachServerOnce is the fleet patch's crash proof on
// real parts: `anyops worker` child processes against the Temporal dev server, cloudsim and
// PostgreSQL, the demo fleet's seven servers vulnerable to Heartbleed, a real SMTP server. The
// worker is killed with kill -9 twice mid-rollout — right after cloudsim ran an `apt-get
// install` whose SendCommand answer the worker never got, and right after a service restart —
// and a fresh worker each time takes over. The rollout completes with every server verified
// fixed by the heartbeat check; on no host did two patch commands (upgrade, restart) run at
// once, each host was upgraded exactly once (the retry found the lost command by its key and
// polled it), no server is left drained, and each custom-domain owner got exactly one notice.
func TestCrashWorkerKilledMidRolloutPatchesEachServerOnce(t *testing.T) {
	ctx := context.Background()
	tc := testenv.TemporalClient(t)
	dsn := testenv.Postgres(t)
	bin := buildAnyops(t)
	sim, crash, endpoint := crashSim(t, patchSimSpeed)
	mail := smtptest.Start(t)
	dir := t.TempDir()
	logFile := filepath.Join(dir, "worker.log")
	env := []string{
		"ANYOPS_TEMPORAL_ADDR=" + testenv.Temporal(t), "ANYOPS_TEMPORAL_NAMESPACE=default", "ANYOPS_DATA_DIR=" + dir,
		"ANYOPS_DB_DRIVER=postgres", "ANYOPS_DB_DSN=" + dsn, "ANYOPS_METRICS_ADDR=", // no fixed port
		"ANYOPS_AWS_REGION=us-east-1", "ANYOPS_AWS_ENDPOINT=" + endpoint, "ANYOPS_AWS_ACCESS_KEY_ID=test", "ANYOPS_AWS_SECRET_ACCESS_KEY=test",
		"ANYOPS_SMTP_ADDR=" + mail.Addr, "ANYOPS_SMTP_FROM=security@anyops.example", "ANYOPS_PLATFORM_DOMAIN=www.anyops.example",
	}
	t.Cleanup(func() {
		if t.Failed() {
			if out, err := os.ReadFile(logFile); err == nil {
				t.Logf("worker log:\n%s", lastBytes(out, 8000))
			}
		}
	})
	store, err := inventory.Open(ctx, inventory.DriverPostgres, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	instances := launchDemoServers(t, ctx, endpoint, store)
	pauseSchedules(t, tc)

	id := anyops.PatchWorkflowID("CVE-2014-0160")
	upgraded := crash.armScript("apt-get install")
	first := startWorker(t, bin, env, logFile)
	run, err := tc.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: id, TaskQueue: workflows.TaskQueueControl}, "FleetPatch",
		workflows.FleetPatchInput{Advisory: anyops.Heartbleed(), MaxConcurrency: "2", MaxErrors: "0",
			Timing: workflows.PatchTiming{FleetTiming: crashTiming}, RequestedBy: "integration-test"})
	if err != nil {
		t.Fatal(err)
	}
	waitHit(t, upgraded, "apt-get install")
	first.kill9(t)

	restarted := crash.armScript("systemctl restart")
	second := startWorker(t, bin, env, logFile)
	waitHit(t, restarted, "systemctl restart")
	st := waitForStatus(t, tc, id, "the rollout under way", func(s workflows.Status) bool { return stepState(s, "rollout") == workflows.StepRunning })
	second.kill9(t)
	assertMidway(t, tc, id, st)

	startWorker(t, bin, env, logFile)
	runCtx, cancel := context.WithTimeout(ctx, 3*time.Minute)
	defer cancel()
	var res workflows.FleetPatchResult
	if err := run.Get(runCtx, &res); err != nil {
		t.Fatalf("FleetPatch after two kills: %v", err)
	}
	// A rollout through two kills is still its main path, with the retries a crash leaves.
	testenv.RecordHistory(t, tc, id, "fleet-patch") // for worker/replay_test.go
	if res.State != anyops.RolloutCompleted || res.VulnerableBefore != 4 || res.VulnerableAfter != 0 || res.Outcomes["patched"] != 7 {
		t.Fatalf("result %+v, want completed, 4 vulnerable before, 0 after, 7 patched", res)
	}
	if token, n := crash.heldCalls(sendCommand); token == "" || n < 1 {
		t.Errorf("the held command %q was seen %d times", token, n)
	}
	intervals := commandIntervals(sim)
	for name, inst := range instances {
		var patchCmds [][2]time.Time
		upgrades := 0
		for _, c := range intervals[inst] {
			if strings.Contains(c.script, "apt-get install") {
				upgrades++
			}
			if strings.Contains(c.script, "apt-get install") || strings.Contains(c.script, "systemctl restart") {
				patchCmds = append(patchCmds, [2]time.Time{c.start, c.end})
			}
		}
		if upgrades != 1 {
			t.Errorf("%s was upgraded %d times, want once", name, upgrades)
		}
		for i, a := range patchCmds {
			for _, b := range patchCmds[i+1:] {
				if a[0].Before(b[1]) && b[0].Before(a[1]) {
					t.Errorf("%s: two patch commands ran at once: %v and %v", name, a, b)
				}
			}
		}
	}
	if d, err := store.Drains(ctx); err != nil || len(d) != 0 {
		t.Errorf("left drained: %v %v", d, err)
	}
	if got := mail.CountTo(); len(got) != 2 || got["bob@mail.example"] != 1 || got["carol@mail.example"] != 1 {
		t.Errorf("notices received %v, want exactly one each to bob and carol", got)
	}
	rollout, err := store.GetPatchRollout(ctx, "CVE-2014-0160")
	if err != nil || rollout.State != anyops.RolloutCompleted || len(rollout.Servers) != 7 {
		t.Errorf("inventory report %+v, %v", rollout, err)
	}
}

// launchDemoServers launches the demo fleet's servers in cloudsim (vulnerable, as a new fleet
// is) and records them in the inventory with their instance ids and the demo web apps.
func launchDemoServers(t *testing.T, ctx context.Context, endpoint string, store *inventory.Store) map[string]string {
	t.Helper()
	clients, err := activities.NewClients(ctx, config.AWS{Region: "us-east-1", Endpoint: endpoint})
	if err != nil {
		t.Fatal(err)
	}
	demo := inventory.DemoFleet()
	if _, err := store.UpsertZone(ctx, demo.Zones[0]); err != nil {
		t.Fatal(err)
	}
	if _, err := store.UpsertCluster(ctx, inventory.Cluster{Name: inventory.DemoCluster, Zone: inventory.DemoZone, State: anyops.ClusterLive}); err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, s := range demo.Servers {
		res, err := clients.EC2.RunInstances(ctx, &ec2.RunInstancesInput{ImageId: aws.String(workflows.DemoImageID), InstanceType: ec2types.InstanceType(s.InstanceType),
			MinCount: aws.Int32(1), MaxCount: aws.Int32(1), Placement: &ec2types.Placement{AvailabilityZone: aws.String(s.Zone)},
			TagSpecifications: []ec2types.TagSpecification{{ResourceType: ec2types.ResourceTypeInstance, Tags: []ec2types.Tag{
				{Key: aws.String("Name"), Value: aws.String(s.Name)}, {Key: aws.String(anyops.TagRole), Value: aws.String(string(s.Role))}}}}})
		if err != nil {
			t.Fatal(err)
		}
		s.InstanceID = aws.ToString(res.Instances[0].InstanceId)
		out[s.Name] = s.InstanceID
		if _, err := store.UpsertServer(ctx, s); err != nil {
			t.Fatal(err)
		}
	}
	for _, a := range demo.WebApps {
		if _, err := store.UpsertWebApp(ctx, a); err != nil {
			t.Fatal(err)
		}
	}
	waiter := ec2.NewInstanceRunningWaiter(clients.EC2, func(o *ec2.InstanceRunningWaiterOptions) { o.MinDelay, o.MaxDelay = 100*time.Millisecond, time.Second })
	ids := make([]string, 0, len(out))
	for _, id := range out {
		ids = append(ids, id)
	}
	if err := waiter.Wait(ctx, &ec2.DescribeInstancesInput{InstanceIds: ids}, time.Minute); err != nil {
		t.Fatal(err)
	}
	return out
}

type simCommand struct {
	script     string
	start, end time.Time
}

// commandIntervals reads cloudsim's event log: every SSM command per instance with its
// script and its simulated start and end (still running: now).
func commandIntervals(sim *cloudsim.Sim) map[string][]simCommand {
	type open struct {
		inst string
		c    simCommand
	}
	byID := map[string]*open{}
	var order []string
	for _, ev := range sim.Events(0, 10000) {
		fields := strings.Fields(ev.Message)
		if len(fields) < 4 || fields[0] != "command" {
			continue
		}
		cmd := fields[1]
		switch {
		case ev.Type == "ssm.command.sent":
			byID[cmd] = &open{inst: ev.Resource, c: simCommand{script: ev.Message, start: ev.Time, end: sim.Now()}}
			order = append(order, cmd)
		case strings.HasPrefix(ev.Type, "ssm.command.") && byID[cmd] != nil:
			byID[cmd].c.end = ev.Time
		}
	}
	out := map[string][]simCommand{}
	for _, id := range order {
		o := byID[id]
		out[o.inst] = append(out[o.inst], o.c)
	}
	return out
}
