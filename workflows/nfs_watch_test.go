package workflows

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/mock"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/workflow"

	"github.com/anyops/anyops"
	"github.com/anyops/anyops/activities"
	"github.com/anyops/anyops/inventory"
)

// recordingIntake stands in for the alarm intake (package alarms, which imports this one): it
// records what the watch raises.
type recordingIntake struct {
	mu     sync.Mutex
	alarms []anyops.Alarm
}

func (r *recordingIntake) Raise(_ context.Context, a anyops.Alarm) (anyops.AlarmOutcome, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.alarms = append(r.alarms, a)
	return anyops.AlarmOutcome{Action: anyops.AlarmStarted, WorkflowID: anyops.FailoverWorkflowID(a.Server)}, nil
}

func (r *recordingIntake) raised() []anyops.Alarm {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]anyops.Alarm(nil), r.alarms...)
}

// probeScript answers the clients' mount checks round by round: each round, one outcome per
// client ("ok", "hung", "err" for an unreachable client, "unmounted", "elsewhere" for a
// healthy mount served by another server).
type probeScript struct {
	mu      sync.Mutex
	rounds  [][]string
	calls   int
	per     int    // clients per round
	server  string // the watched file server's address, which the mounts talk to
	clients []string
	checks  map[string]int // checks of each client so far: its round
}

func (p *probeScript) probe(_ context.Context, in activities.CheckMountInput) (activities.MountHealth, error) {
	p.mu.Lock()
	if p.checks == nil {
		p.checks = map[string]int{}
	}
	client := slices.Index(p.clients, in.InstanceID)
	if client < 0 {
		p.clients = append(p.clients, in.InstanceID)
		client = len(p.clients) - 1
	}
	round := p.checks[in.InstanceID]
	p.checks[in.InstanceID]++
	p.calls++
	outcome := "ok"
	if round < len(p.rounds) && client < len(p.rounds[round]) {
		outcome = p.rounds[round][client]
	}
	p.mu.Unlock()
	mount := activities.NFSMount{Source: "files.live.internal:/srv/home", MountPoint: "/home", Server: p.server}
	switch outcome {
	case "hung":
		return activities.MountHealth{Mounted: true, Mount: mount, Hung: true, Detail: "/home did not answer within 5s"}, nil
	case "err":
		return activities.MountHealth{}, temporal.NewNonRetryableApplicationError("instance unreachable", activities.ErrHostUnreachable, nil)
	case "unmounted":
		return activities.MountHealth{Detail: "/home is not an NFS mount"}, nil
	case "elsewhere": // a mount served by another server, healthy
		mount.Server = "10.0.9.9"
		return activities.MountHealth{Mounted: true, Mount: mount, Writes: true, Reads: true, Serving: true}, nil
	}
	return activities.MountHealth{Mounted: true, Mount: mount, Writes: true, Reads: true, Serving: true}, nil
}

// watchEnv is a test environment running NFSWatch with the real inventory activities on the
// demo fleet, scripted probes and a recording intake.
func watchEnv(t *testing.T, store *inventory.Store, script *probeScript, intake *recordingIntake) *testsuite.TestWorkflowEnvironment {
	var suite testsuite.WorkflowTestSuite
	env := suite.NewTestWorkflowEnvironment()
	env.RegisterWorkflowWithOptions(NFSWatch, workflow.RegisterOptions{Name: NFSWatchWorkflowType})
	env.RegisterActivity(&activities.Inventory{Store: store})
	env.RegisterActivity(&activities.Alarms{Intake: intake})
	var hosts *activities.Hosts
	env.RegisterActivity(hosts)
	env.OnActivity(hosts.CheckMount, mock.Anything, mock.Anything).Return(script.probe)
	file, err := store.GetServer(context.Background(), inventory.DemoFileServer)
	if err != nil {
		t.Fatal(err)
	}
	script.server = file.PrivateIP
	return env
}

// TestNFSWatchRaisesAfterConsecutiveFailures proves the watch raises one firing alarm (source
// probe, about the file server) after FailuresToAlarm failed rounds in a row, not before and
// not again during the same streak; that a round where no client answered about this server
// (unreachable, not mounted, or mounted from another server) counts neither way;
// that the first healthy round raises the resolved alarm; and that a second streak raises a
// new delivery. Then, with the server gone from the file role, it ends.
func TestNFSWatchRaisesAfterConsecutiveFailures(t *testing.T) {
	store := demoStore(t)
	h, o, e := "hung", "ok", "err"
	script := &probeScript{per: 2, rounds: [][]string{
		{o, o},           // 1 healthy
		{h, h},           // 2 failed (1)
		{h, e},           // 3 failed (2): one hung, one unreachable
		{e, "unmounted"}, // 4 nobody answered about it: not counted
		{"elsewhere", e}, // 5 a mount served by another server says nothing: not counted
		{h, h},           // 6 failed (3): alarm
		{h, h},           // 7 failed (4): no second alarm
		{h, o},           // 8 one client writes: healthy, resolved alarm
		{h, h},           // 9
		{h, h},           // 10
		{h, h},           // 11: second alarm
	}}
	intake := &recordingIntake{}
	env := watchEnv(t, store, script, intake)
	timing := NFSWatchTiming{Interval: 10 * time.Second, ProbeTimeout: 5 * time.Second, FailuresToAlarm: 3, Clients: 2, RoundsPerRun: 1000}
	// After round 11 the file server is retired: the 12th round finds it so, and the watch ends.
	env.RegisterDelayedCallback(func() {
		srv, err := store.GetServer(context.Background(), inventory.DemoFileServer)
		if err != nil {
			t.Error(err)
			return
		}
		srv.State = anyops.ServerTerminated
		if _, err := store.UpsertServer(context.Background(), srv); err != nil {
			t.Error(err)
		}
	}, 105*time.Second)
	env.ExecuteWorkflow(NFSWatch, NFSWatchInput{Server: inventory.DemoFileServer, Timing: timing})
	if !env.IsWorkflowCompleted() || env.GetWorkflowError() != nil {
		t.Fatalf("watch did not end: %v", env.GetWorkflowError())
	}
	var res NFSWatchResult
	if err := env.GetWorkflowResult(&res); err != nil {
		t.Fatal(err)
	}
	if res.Rounds != 11 || res.Alarms != 2 || !strings.Contains(res.Reason, "terminated") {
		t.Fatalf("result %+v, want 11 rounds, 2 alarms, ended because terminated", res)
	}
	got := intake.raised()
	var states []string
	for _, a := range got {
		states = append(states, string(a.State))
		if a.Source != anyops.AlarmProbe || a.Server != inventory.DemoFileServer || a.DeliveryID == "" {
			t.Errorf("alarm %+v", a)
		}
	}
	if strings.Join(states, ",") != "firing,resolved,firing" {
		t.Fatalf("alarms %v, want firing,resolved,firing", states)
	}
	if got[0].DeliveryID == got[2].DeliveryID || got[0].DeliveryID == got[1].DeliveryID {
		t.Fatalf("delivery ids %q %q %q: each streak and state needs its own", got[0].DeliveryID, got[1].DeliveryID, got[2].DeliveryID)
	}
	if !strings.Contains(got[0].Reason, "3 rounds") || !strings.Contains(got[0].Reason, "did not answer") {
		t.Errorf("firing alarm reason %q", got[0].Reason)
	}
	if script.calls != 22 {
		t.Errorf("%d probes, want 2 clients × 11 probed rounds (the 12th round found the server gone)", script.calls)
	}
}

// TestNFSWatchContinuesAsNewKeepingTheStreak proves the watch continues as new after
// RoundsPerRun rounds with its state carried: a streak of failures begun before the
// continue-as-new raises the alarm in the next run at the same count, as one delivery.
func TestNFSWatchContinuesAsNewKeepingTheStreak(t *testing.T) {
	store := demoStore(t)
	h := "hung"
	script := &probeScript{per: 2, rounds: [][]string{{h, h}, {h, h}, {h, h}, {h, h}}}
	intake := &recordingIntake{}
	timing := NFSWatchTiming{Interval: time.Second, FailuresToAlarm: 3, Clients: 2, RoundsPerRun: 2}
	env := watchEnv(t, store, script, intake)
	env.ExecuteWorkflow(NFSWatch, NFSWatchInput{Server: inventory.DemoFileServer, Timing: timing})
	var can *workflow.ContinueAsNewError
	if !errors.As(env.GetWorkflowError(), &can) {
		t.Fatalf("after 2 rounds: %v, want continue-as-new", env.GetWorkflowError())
	}
	if len(intake.raised()) != 0 {
		t.Fatalf("raised %d alarms after 2 failed rounds of 3", len(intake.raised()))
	}
	var next NFSWatchInput
	if err := converter.GetDefaultDataConverter().FromPayloads(can.Input, &next); err != nil {
		t.Fatal(err)
	}
	if next.Carry == nil || next.Carry.Failures != 2 || next.Carry.Rounds != 2 || next.Server != inventory.DemoFileServer {
		t.Fatalf("carried %+v", next)
	}
	env2 := watchEnv(t, store, script, intake)
	env2.ExecuteWorkflow(NFSWatch, next)
	if !errors.As(env2.GetWorkflowError(), &can) {
		t.Fatalf("second run: %v, want continue-as-new", env2.GetWorkflowError())
	}
	if got := intake.raised(); len(got) != 1 || got[0].State != anyops.AlarmFiring {
		t.Fatalf("second run raised %+v, want one firing alarm at the third failed round", got)
	}
}

// TestNFSWatchNotAFileServer proves a watch of a server that is not a file server ends at
// once, probing nothing, and that a bad start input is refused.
func TestNFSWatchNotAFileServer(t *testing.T) {
	store := demoStore(t)
	script := &probeScript{per: 2}
	env := watchEnv(t, store, script, &recordingIntake{})
	env.ExecuteWorkflow(NFSWatch, NFSWatchInput{Server: "live-web1"})
	var res NFSWatchResult
	if err := env.GetWorkflowResult(&res); err != nil || !strings.Contains(res.Reason, "web server") || script.calls != 0 {
		t.Fatalf("watch of a web server: %+v, %v, %d probes", res, err, script.calls)
	}
	kind, _ := LookupKind(KindNFSWatch)
	for _, body := range []string{`{}`, `{"server":"live-file","carry":{}}`, `{"server":"live-file","timing":{"interval":-1}}`} {
		if _, err := kind.Prepare([]byte(body), "api:test"); anyops.ErrorCode(err) != anyops.EINVALID {
			t.Errorf("Prepare(%s) = %v, want invalid", body, err)
		}
	}
	start, err := kind.Prepare([]byte(`{"server":"live-file"}`), "api:test")
	if err != nil || start.ID != "nfs-watch/live-file" {
		t.Fatalf("Prepare = %+v, %v", start, err)
	}
}
