package workflows

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/mock"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/workflow"

	"github.com/anyops/anyops"
	"github.com/anyops/anyops/activities"
)

// drillScript is a scripted world for the Drill workflow: what each activity answers, and the
// order of what the drill did.
type drillScript struct {
	t        *testing.T
	env      *testsuite.TestWorkflowEnvironment
	mu       sync.Mutex
	calls    []string
	clockAt  time.Time // the simulated time at the test's start
	realAt   time.Time
	speed    float64
	clockWho int64 // the drill that holds the clock; 0 none
	waitFor  int   // clock requests refused before the clock is free
	finish   activities.FinishDrillInput
	buildErr error
	outcomes int  // Outcome calls so far
	stuck    bool // the recovery never closes
}

func (s *drillScript) did(what string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls = append(s.calls, what)
}

// sim is cloudsim's clock: the test environment's clock at the speed in force.
func (s *drillScript) sim() time.Time {
	return s.clockAt.Add(time.Duration(float64(s.env.Now().Sub(s.realAt)) * s.speed))
}

func newDrillEnv(t *testing.T, s *drillScript) *testsuite.TestWorkflowEnvironment {
	var suite testsuite.WorkflowTestSuite
	env := suite.NewTestWorkflowEnvironment()
	s.t, s.env, s.speed = t, env, 60
	s.clockAt, s.realAt = time.Date(2014, 7, 15, 9, 0, 0, 0, time.UTC), env.Now()
	env.RegisterWorkflowWithOptions(Drill, workflow.RegisterOptions{Name: DrillWorkflowType})
	env.RegisterWorkflowWithOptions(func(ctx workflow.Context, in BuildClusterInput) (BuildClusterResult, error) {
		s.did("build " + in.Cluster)
		return BuildClusterResult{Instances: map[string]string{"drill-3-file": "i-0123456789abcdef0"}}, s.buildErr
	}, workflow.RegisterOptions{Name: BuildClusterWorkflowType})
	env.RegisterWorkflowWithOptions(func(ctx workflow.Context, in NFSWatchInput) (NFSWatchResult, error) {
		s.did("watch " + in.Server)
		return NFSWatchResult{}, nil
	}, workflow.RegisterOptions{Name: NFSWatchWorkflowType})
	var d *activities.Drills
	var td *activities.Teardown
	var hosts *activities.Hosts
	env.RegisterActivity(d)
	env.RegisterActivity(td)
	env.RegisterActivity(hosts)
	env.OnActivity(d.FirstEventSeq, mock.Anything).Return(int64(100), nil)
	env.OnActivity(d.CollectEvents, mock.Anything, mock.Anything).Return(activities.CollectEventsResult{}, nil)
	env.OnActivity(d.PlanCluster, mock.Anything, mock.Anything).Return(func(_ context.Context, c string) (activities.FleetPlan, error) {
		return activities.ClusterPlan(c, "us-east-1a", "2026.11"), nil
	})
	env.OnActivity(d.ClaimSpeed, mock.Anything, mock.Anything).Return(func(_ context.Context, in activities.ClaimSpeedInput) (activities.ClaimSpeedResult, error) {
		s.mu.Lock()
		defer s.mu.Unlock()
		s.calls = append(s.calls, fmt.Sprintf("claim %g", in.Speed)+map[bool]string{true: " clock", false: ""}[in.Clock])
		if in.Clock && s.waitFor > 0 {
			s.waitFor--
			return activities.ClaimSpeedResult{Speed: s.speed, Holder: 99}, nil
		}
		s.clockAt, s.realAt = s.simLocked(), s.env.Now()
		if in.Speed > 0 {
			s.speed = in.Speed
		} else {
			s.speed = 60
		}
		return activities.ClaimSpeedResult{Speed: s.speed, Granted: in.Clock, Holder: map[bool]int64{true: 3}[in.Clock]}, nil
	})
	env.OnActivity(d.SetClusterTimeScale, mock.Anything, mock.Anything, mock.Anything).Return(func(_ context.Context, c string, v float64) error {
		s.did("time scale")
		return nil
	})
	env.OnActivity(d.LoadScenario, mock.Anything, mock.Anything).Return(func(_ context.Context, in activities.LoadScenarioInput) (activities.LoadScenarioResult, error) {
		s.did("load")
		return activities.LoadScenarioResult{Armed: s.sim(), Scheduled: 1}, nil
	})
	env.OnActivity(d.ReadClock, mock.Anything).Return(func(context.Context) (activities.DrillClock, error) {
		return activities.DrillClock{Real: s.env.Now(), Sim: s.sim(), Speed: s.speed}, nil
	})
	env.OnActivity(d.ResolveInstance, mock.Anything, mock.Anything).Return("i-0123456789abcdef1", nil)
	env.OnActivity(hosts.RunCommand, mock.Anything, mock.Anything).Return(func(_ context.Context, in activities.RunCommandInput) (activities.CommandResult, error) {
		s.did("command " + in.Commands[0])
		return activities.CommandResult{}, nil
	})
	env.OnActivity(d.Outcome, mock.Anything, mock.Anything).Return(func(_ context.Context, in activities.OutcomeInput) (activities.Outcome, error) {
		s.mu.Lock()
		s.outcomes++
		n := s.outcomes
		if s.stuck {
			n = 2
		}
		s.mu.Unlock()
		// An incident opens on the second look, and its recovery closes on the fourth.
		return activities.Outcome{Incidents: min(n/2, 1), Running: map[bool]int{true: 1}[n == 2 || n == 3], Recovered: n >= 4, SimNow: s.sim()}, nil
	})
	env.OnActivity(d.Report, mock.Anything, mock.Anything).Return(func(_ context.Context, in activities.DrillReportInput) (anyops.DrillReport, error) {
		s.did("report")
		rto := 42.0
		return anyops.DrillReport{Drill: anyops.DrillWorkflowID(in.DrillID), Scenario: in.Scenario, Cluster: in.Cluster, RTOSeconds: &rto, Recovered: true}, nil
	})
	env.OnActivity(d.EndWorkflows, mock.Anything, mock.Anything).Return(func(context.Context, activities.EndWorkflowsInput) ([]string, error) {
		s.did("end workflows")
		return nil, nil
	})
	env.OnActivity(d.ClearFaults, mock.Anything, mock.Anything).Return(func(context.Context, activities.ClearFaultsInput) (int, error) {
		s.did("clear faults")
		return 0, nil
	})
	for name, fn := range map[string]any{"retire": td.RetireCluster, "terminate": td.TerminateCluster, "rows": td.RetireClusterRows} {
		switch name {
		case "retire", "rows":
			env.OnActivity(fn, mock.Anything, mock.Anything).Return(func(_ context.Context, in activities.ClusterRef) error {
				if name == "retire" && strings.HasSuffix(in.Cluster, "-standby") {
					return temporal.NewNonRetryableApplicationError("no such cluster", anyops.ENOTFOUND, nil)
				}
				s.did(name + " " + in.Cluster)
				return nil
			})
		case "terminate":
			env.OnActivity(fn, mock.Anything, mock.Anything).Return(func(_ context.Context, in activities.ClusterRef) (activities.TerminateClusterResult, error) {
				s.did("terminate " + in.Cluster)
				return activities.TerminateClusterResult{}, nil
			})
		}
	}
	env.OnActivity(td.DeleteClusterVolumes, mock.Anything, mock.Anything).Return(func(_ context.Context, in activities.DeleteClusterVolumesInput) (activities.DeleteClusterVolumesResult, error) {
		if in.Override.By == "" || in.Override.Reason == "" {
			return activities.DeleteClusterVolumesResult{}, errors.New("no override")
		}
		s.did("delete volumes " + in.Cluster)
		return activities.DeleteClusterVolumesResult{}, nil
	})
	env.OnActivity(d.FinishDrill, mock.Anything, mock.Anything).Return(func(_ context.Context, in activities.FinishDrillInput) error {
		s.mu.Lock()
		s.finish = in
		s.calls = append(s.calls, "finish "+string(in.State))
		s.mu.Unlock()
		return nil
	})
	return env
}

func (s *drillScript) simLocked() time.Time {
	return s.clockAt.Add(time.Duration(float64(s.env.Now().Sub(s.realAt)) * s.speed))
}

// drillInput is a drill of a scenario with a command and a fault on drill-3.
func drillInput() DrillInput {
	fault := json.RawMessage(`{"type":"hardware-failure","instance_id":"tag:Name=drill-3-file"}`)
	return DrillInput{DrillID: 3, Cluster: "drill-3", Scenario: anyops.DrillScenario{Name: "test", Speed: 10, Timeout: time.Hour, Incidents: 1,
		Steps: []anyops.DrillStep{
			{At: 0, Command: &anyops.DrillCommand{InstanceID: "tag:Name=drill-3-backup", Run: []string{"drbdadm down drill-3-r0"}}},
			{At: 5 * time.Minute, Fault: fault},
		}, Origin: 1}}
}

// index is where what first appears in calls (-1: never).
func index(calls []string, what string) int {
	return slices.IndexFunc(calls, func(c string) bool { return strings.HasPrefix(c, what) })
}

// TestDrillRunsInOrder proves the drill's order: build at the build speed, the watch, the
// cluster's time scale before the clock is taken at the scenario's speed (waiting while
// another drill holds it), the scenario loaded, its command run at its time, the outcome
// awaited (the tail speed once the clients serve), the clock released, the report, then the
// teardown — recoveries ended and faults cleared before the cluster is retired, terminated,
// its volumes deleted under an override and its rows marked — and the drill finished completed
// with its report.
func TestDrillRunsInOrder(t *testing.T) {
	s := &drillScript{waitFor: 2}
	env := newDrillEnv(t, s)
	env.ExecuteWorkflow(DrillWorkflowType, drillInput())
	if err := env.GetWorkflowError(); err != nil {
		t.Fatal(err)
	}
	var r anyops.DrillReport
	if err := env.GetWorkflowResult(&r); err != nil || r.RTOSeconds == nil || *r.RTOSeconds != 42 {
		t.Fatalf("report %+v (%v)", r, err)
	}
	c := s.calls
	order := []string{"claim 120", "build drill-3", "watch drill-3-file", "time scale", "claim 10 clock", "load", "command drbdadm down drill-3-r0",
		"claim 600 clock", "claim 0", "report", "end workflows", "clear faults", "retire drill-3", "terminate drill-3", "delete volumes drill-3",
		"rows drill-3", "finish completed"}
	last := -1
	for _, want := range order {
		i := slices.Index(c[last+1:], want)
		if i < 0 {
			t.Fatalf("%q not after %q in %q", want, c[max(last, 0)], c)
		}
		last += i + 1
	}
	if n := strings.Count(strings.Join(c, "|"), "claim 10 clock"); n != 3 {
		t.Errorf("asked for the clock %d times, want 3 (refused twice while another drill held it): %q", n, c)
	}
	if s.finish.State != anyops.DrillCompleted || s.finish.Report == nil {
		t.Errorf("finished %+v", s.finish)
	}
}

// TestDrillTearsDownAfterAFailedBuild proves a build that fails still leaves nothing: the
// teardown runs (retire, terminate, delete, rows) and the drill ends failed with the reason,
// never loading the scenario.
func TestDrillTearsDownAfterAFailedBuild(t *testing.T) {
	s := &drillScript{buildErr: errors.New("no capacity in us-east-1a")}
	env := newDrillEnv(t, s)
	env.ExecuteWorkflow(DrillWorkflowType, drillInput())
	if err := env.GetWorkflowError(); err == nil || !strings.Contains(err.Error(), "no capacity") {
		t.Fatalf("workflow error %v, want the build's", err)
	}
	if index(s.calls, "load") >= 0 {
		t.Errorf("loaded the scenario after a failed build: %q", s.calls)
	}
	for _, want := range []string{"retire drill-3", "terminate drill-3", "delete volumes drill-3", "rows drill-3", "finish failed"} {
		if index(s.calls, want) < 0 {
			t.Errorf("no %q after a failed build: %q", want, s.calls)
		}
	}
	if !strings.Contains(s.finish.Error, "no capacity") {
		t.Errorf("finish error %q", s.finish.Error)
	}
}

// TestDrillTearsDownWhenCancelled proves a drill cancelled while it waits for a recovery that
// does not end tears down in a context the cancel does not reach, and ends canceled.
func TestDrillTearsDownWhenCancelled(t *testing.T) {
	s := &drillScript{stuck: true}
	env := newDrillEnv(t, s)
	env.RegisterDelayedCallback(env.CancelWorkflow, time.Minute)
	env.ExecuteWorkflow(DrillWorkflowType, drillInput())
	if err := env.GetWorkflowError(); err == nil || !temporal.IsCanceledError(errors.Unwrap(err)) && !strings.Contains(err.Error(), "canceled") {
		t.Fatalf("workflow error %v, want canceled", err)
	}
	for _, want := range []string{"end workflows", "retire drill-3", "terminate drill-3", "delete volumes drill-3", "rows drill-3", "finish canceled"} {
		if index(s.calls, want) < 0 {
			t.Errorf("no %q after a cancel: %q", want, s.calls)
		}
	}
}

// TestDrillPolicyValidates proves a client's policy is bounded.
func TestDrillPolicyValidates(t *testing.T) {
	for _, p := range []DrillPolicy{{BuildSpeed: -1}, {TailSpeed: 1e6}, {PollInterval: -time.Second}, {Timeout: 200 * time.Hour}} {
		if err := p.Validate(); anyops.ErrorCode(err) != anyops.EINVALID {
			t.Errorf("%+v accepted: %v", p, err)
		}
	}
	if err := (DrillPolicy{BuildSpeed: 200, KeepCluster: true}).Validate(); err != nil {
		t.Error(err)
	}
	if err := CheckDrillOperation("fleet-audit", json.RawMessage(`{"nope":1}`)); anyops.ErrorCode(err) != anyops.EINVALID {
		t.Errorf("an operation step with a bad input: %v", err)
	}
	if err := CheckDrillOperation("teleport", json.RawMessage(`{}`)); anyops.ErrorCode(err) != anyops.EINVALID {
		t.Errorf("an unknown kind: %v", err)
	}
	if err := CheckDrillOperation(KindFleetAudit, json.RawMessage(`{}`)); err != nil {
		t.Error(err)
	}
}

// TestDrillTeardownRecoversFast proves a worker killed anywhere in the teardown has its
// attempt retried within seconds: each teardown activity is scheduled either with a heartbeat
// timeout of at most teardownHeartbeat (those that wait or make many calls; they heartbeat)
// or with a StartToClose of at most teardownCallTimeout. A worker killed right after EC2
// terminated the cluster's instances had the drill wait out TerminateCluster's whole 2-minute
// StartToClose before a retry (the chaos harness's drill run, seed 7, kill at
// TerminateInstances).
func TestDrillTeardownRecoversFast(t *testing.T) {
	s := &drillScript{}
	env := newDrillEnv(t, s)
	type bounds struct{ heartbeat, startToClose time.Duration }
	last := map[string]bounds{} // the teardown's are the drill's last calls of each
	env.SetOnActivityStartedListener(func(info *activity.Info, _ context.Context, _ converter.EncodedValues) {
		last[info.ActivityType.Name] = bounds{info.HeartbeatTimeout, info.Deadline.Sub(info.StartedTime).Round(time.Second)}
	})
	env.ExecuteWorkflow(DrillWorkflowType, drillInput())
	if err := env.GetWorkflowError(); err != nil {
		t.Fatal(err)
	}
	heartbeating := []string{"EndWorkflows", "TerminateCluster", "DeleteClusterVolumes"}
	for _, name := range append(slices.Clone(heartbeating), "ClearFaults", "RetireCluster", "RetireClusterRows", "FinishDrill") {
		b, ran := last[name]
		switch {
		case !ran:
			t.Errorf("%s never ran", name)
		case slices.Contains(heartbeating, name) && (b.heartbeat <= 0 || b.heartbeat > teardownHeartbeat):
			t.Errorf("%s: heartbeat timeout %s, want one of at most %s", name, b.heartbeat, teardownHeartbeat)
		case !slices.Contains(heartbeating, name) && b.heartbeat == 0 && b.startToClose > teardownCallTimeout:
			t.Errorf("%s: no heartbeat and a StartToClose of %s, want at most %s", name, b.startToClose, teardownCallTimeout)
		}
	}
}
