package workflows

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/anyops/anyops"
	"github.com/anyops/anyops/activities"
)

// DrillWorkflowType is the registered name of Drill. A drill is not an operation kind: POST
// /v1/drills numbers it in the inventory first, then starts drill/<n>.
const DrillWorkflowType = "Drill"

// DrillExecutionTimeout bounds a whole drill, teardown included.
const DrillExecutionTimeout = 6 * time.Hour

// DrillActor is who the operations a drill starts are requested by.
func drillActor(id int64) string { return "drill:" + anyops.DrillWorkflowID(id) }

// DrillPolicy is how a drill runs; the zero value is the default (docs/drills.md).
type DrillPolicy struct {
	// BuildSpeed is cloudsim's speed while the drill builds its cluster (default 120).
	BuildSpeed float64 `json:"build_speed,omitempty"`
	// TailSpeed is the speed once every client serves again and every step is done, while the
	// recoveries restore redundancy (default 600).
	TailSpeed float64 `json:"tail_speed,omitempty"`
	// PollInterval is how often (simulated time) the drill looks at the outcome (default 10s).
	PollInterval time.Duration `json:"poll_interval,omitempty"`
	// Quiet is how long (simulated) nothing may change before the drill stops waiting (default 1m).
	Quiet time.Duration `json:"quiet,omitempty"`
	// Timeout replaces the scenario's: how long (simulated) to wait after the last step.
	Timeout time.Duration `json:"timeout,omitempty"`
	// KeepCluster leaves the cluster standing (for a post-mortem); the speed claim still ends.
	KeepCluster bool `json:"keep_cluster,omitempty"`
}

// Defaults of DrillPolicy.
const (
	DefaultDrillBuildSpeed   = 120
	DefaultDrillTailSpeed    = 600
	DefaultDrillPollInterval = 10 * time.Second
	DefaultDrillQuiet        = time.Minute
)

func (p DrillPolicy) withDefaults(sc anyops.DrillScenario) DrillPolicy {
	if p.BuildSpeed <= 0 {
		p.BuildSpeed = DefaultDrillBuildSpeed
	}
	if p.TailSpeed <= 0 {
		p.TailSpeed = max(DefaultDrillTailSpeed, sc.Speed)
	}
	p.PollInterval = orDefault(p.PollInterval, DefaultDrillPollInterval)
	p.Quiet = orDefault(p.Quiet, DefaultDrillQuiet)
	p.Timeout = orDefault(p.Timeout, sc.Timeout)
	return p
}

// Validate checks a policy a client sent.
func (p DrillPolicy) Validate() error {
	for _, s := range []struct {
		name string
		v    float64
	}{{"build_speed", p.BuildSpeed}, {"tail_speed", p.TailSpeed}} {
		if s.v < 0 || s.v > 10000 {
			return anyops.Errorf(anyops.EINVALID, "policy.%s must be between 0 (the default) and 10000", s.name)
		}
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{{"poll_interval", p.PollInterval}, {"quiet", p.Quiet}, {"timeout", p.Timeout}} {
		if d.v < 0 || d.v > 168*time.Hour {
			return anyops.Errorf(anyops.EINVALID, "policy.%s must be between 0 (the default) and 168h in nanoseconds", d.name)
		}
	}
	return nil
}

// DrillInput starts drill/<n>: the scenario parsed for its cluster.
type DrillInput struct {
	DrillID  int64                `json:"drill_id"`
	Cluster  string               `json:"cluster"`
	Scenario anyops.DrillScenario `json:"scenario"`
	Policy   DrillPolicy          `json:"policy,omitempty"`
}

// CheckDrillOperation validates a scenario's operation step as the API validates a start:
// the kind must be registered and its Prepare accept the input (drills.OperationCheck).
func CheckDrillOperation(kind string, input json.RawMessage) error {
	k, ok := LookupKind(kind)
	if !ok {
		return anyops.Errorf(anyops.EINVALID, "operation kind %q is not one of %v", kind, KindNames())
	}
	_, err := k.Prepare(input, drillActor(0))
	return err
}

// Steps of Drill, as its Status shows them.
const (
	stepDrillBuild    = "build-cluster"
	stepDrillWatch    = "watch-file-server"
	stepDrillArm      = "arm"
	stepDrillRun      = "run-steps"
	stepDrillOutcome  = "wait-for-outcome"
	stepDrillReport   = "report"
	stepDrillTeardown = "tear-down"
)

// DrillSteps are Drill's steps in order.
var DrillSteps = []string{stepDrillBuild, stepDrillWatch, stepDrillArm, stepDrillRun, stepDrillOutcome, stepDrillReport, stepDrillTeardown}

// drillActs are the activity groups the drill calls, by method value of nil pointers.
var (
	drillActs    *activities.Drills
	drillTeardwn *activities.Teardown
)

// drill is one run of a drill: what the steps share.
type drill struct {
	ctx     workflow.Context
	in      DrillInput
	policy  DrillPolicy
	tracker *Tracker
	callCtx workflow.Context
	speed   float64 // in force, as the last claim answered
	fromSeq int64
	armed   time.Time
	origin  time.Time
	ops     []activities.WorkflowRef
	opsDone []workflow.Future
	// released are the clusters the drill's release operations build beside its own: they are
	// torn down with it.
	released []string
	faults   json.RawMessage
	started  time.Time
	fileSrv  string
	built    bool
	stopColl func(ctx workflow.Context)
}

// Drill replays a scenario on a cluster of its own (docs/drills.md): it builds drill-<n> beside
// the demo fleet (BuildCluster, the live shape; at the build speed), starts its file server's
// NFS watch, arms — the cluster's time scale and cloudsim's speed set to the scenario's —
// hands the fault steps to cloudsim and runs the operation and command steps at their times,
// then lets the real alarm path and recoveries respond, waiting until every expected incident's
// recovery has closed and nothing moved for a while (or its timeout), collecting cloudsim's
// events all along. It reports from them, tears its cluster down (retired first, so the live
// cluster interlock holds; volumes deleted under an audited override; rows marked), releases
// its speed claim and records the report. A failure or a cancel still tears down.
func Drill(ctx workflow.Context, in DrillInput) (anyops.DrillReport, error) {
	tracker, err := NewTracker(ctx, DrillSteps...)
	if err != nil {
		return anyops.DrillReport{}, err
	}
	d := &drill{ctx: ctx, in: in, policy: in.Policy.withDefaults(in.Scenario), tracker: tracker, started: workflow.Now(ctx)}
	d.callCtx = workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout: 2 * time.Minute,
		RetryPolicy:         &temporal.RetryPolicy{InitialInterval: 200 * time.Millisecond, BackoffCoefficient: 2, MaximumInterval: 10 * time.Second, MaximumAttempts: 10},
	})
	_ = workflow.UpsertTypedSearchAttributes(ctx, SearchCluster.ValueSet(in.Cluster))
	report, runErr := d.run()
	return d.finish(report, runErr)
}

// run does everything up to the report; the caller tears down whatever happened.
func (d *drill) run() (*anyops.DrillReport, error) {
	ctx, sc := d.ctx, d.in.Scenario
	if err := workflow.ExecuteActivity(d.callCtx, drillActs.FirstEventSeq).Get(ctx, &d.fromSeq); err != nil {
		return nil, fmt.Errorf("read cloudsim's event log: %w", err)
	}
	d.startCollector()

	if sc.Cluster == "" {
		if err := d.build(); err != nil {
			return nil, err
		}
	} else {
		d.tracker.set(stepDrillBuild, func(s *Step) { s.State, s.Message = StepSkipped, "the scenario runs on "+sc.Cluster })
		d.tracker.set(stepDrillWatch, func(s *Step) { s.State = StepSkipped })
	}

	d.tracker.Start(stepDrillArm, fmt.Sprintf("claiming speed %g and loading %d steps", sc.Speed, len(sc.Steps)))
	if d.built {
		if err := workflow.ExecuteActivity(d.callCtx, drillActs.SetClusterTimeScale, d.in.Cluster, sc.Speed).Get(ctx, nil); err != nil {
			return nil, d.fail(stepDrillArm, err)
		}
	}
	if err := d.takeClock(stepDrillArm, sc.Speed); err != nil {
		return nil, d.fail(stepDrillArm, err)
	}
	var faults []map[string]any
	for _, st := range sc.Steps {
		if st.Fault != nil {
			faults = append(faults, map[string]any{"at": st.At.String(), "fault": st.Fault})
		}
	}
	if len(faults) > 0 {
		d.faults, _ = json.Marshal(faults)
	}
	var loaded activities.LoadScenarioResult
	if err := workflow.ExecuteActivity(d.callCtx, drillActs.LoadScenario, activities.LoadScenarioInput{DrillID: d.in.DrillID, Faults: d.faults}).Get(ctx, &loaded); err != nil {
		return nil, d.fail(stepDrillArm, err)
	}
	d.armed = loaded.Armed
	d.origin = d.armed.Add(sc.Steps[sc.Origin].At)
	d.tracker.Done(stepDrillArm, fmt.Sprintf("armed at %s (simulated), speed %g, %d faults scheduled in cloudsim; origin %s",
		d.armed.Format(time.RFC3339), d.speed, loaded.Scheduled, d.origin.Format(time.RFC3339)))

	if err := d.runSteps(); err != nil {
		return nil, err
	}
	end, timedOut, err := d.waitOutcome()
	if err != nil {
		return nil, err
	}
	return d.report(end, timedOut)
}

// fail marks the step failed and returns err.
func (d *drill) fail(step string, err error) error {
	d.tracker.Fail(step, err)
	return fmt.Errorf("%s: %w", step, err)
}

// claim asks for a speed (with the clock, or as a build's claim) and keeps the one in force.
func (d *drill) claim(speed float64, clock bool) (activities.ClaimSpeedResult, error) {
	var res activities.ClaimSpeedResult
	err := workflow.ExecuteActivity(d.callCtx, drillActs.ClaimSpeed, activities.ClaimSpeedInput{DrillID: d.in.DrillID, Speed: speed, Clock: clock}).Get(d.ctx, &res)
	if err == nil {
		d.speed = res.Speed
	}
	return res, err
}

// takeClock waits until the drill holds cloudsim's clock at speed: one drill's faults play at
// a time, so that none is measured at another's speed (docs/drills.md).
func (d *drill) takeClock(step string, speed float64) error {
	for {
		res, err := d.claim(speed, true)
		if err != nil || res.Granted {
			return err
		}
		d.tracker.set(step, func(s *Step) {
			s.Message = fmt.Sprintf("waiting for the clock: %s is playing its faults", anyops.DrillWorkflowID(res.Holder))
		})
		if err := workflow.Sleep(d.ctx, time.Second); err != nil {
			return err
		}
	}
}

// realOf is how long a span of simulated time takes in real time at the speed in force.
func (d *drill) realOf(sim time.Duration) time.Duration {
	if d.speed <= 0 {
		return sim
	}
	return time.Duration(float64(sim) / d.speed)
}

// startCollector copies cloudsim's events into the inventory every second until stopped.
func (d *drill) startCollector() {
	cctx, cancel := workflow.WithCancel(d.ctx)
	collectCtx := workflow.WithActivityOptions(cctx, workflow.ActivityOptions{
		StartToCloseTimeout: 2 * time.Minute, HeartbeatTimeout: 30 * time.Second,
		RetryPolicy: &temporal.RetryPolicy{InitialInterval: time.Second, MaximumInterval: 10 * time.Second},
	})
	done := workflow.NewChannel(d.ctx)
	workflow.Go(cctx, func(ctx workflow.Context) {
		defer done.Close()
		for ctx.Err() == nil {
			err := workflow.ExecuteActivity(collectCtx, drillActs.CollectEvents, activities.CollectEventsInput{DrillID: d.in.DrillID, FromSeq: d.fromSeq}).Get(ctx, nil)
			if err != nil && ctx.Err() == nil {
				workflow.GetLogger(ctx).Warn("collecting cloudsim's events", "err", err)
			}
			_ = workflow.Sleep(ctx, time.Second)
		}
	})
	d.stopColl = func(ctx workflow.Context) {
		cancel()
		done.Receive(ctx, nil)
	}
}

// releaseClock lets another drill play its faults: this one's outcome is in the log.
func (d *drill) releaseClock() error {
	_, err := d.claim(0, false)
	return err
}

func (d *drill) collectOptions() workflow.Context {
	return workflow.WithActivityOptions(d.ctx, workflow.ActivityOptions{StartToCloseTimeout: 2 * time.Minute, HeartbeatTimeout: 30 * time.Second,
		RetryPolicy: &temporal.RetryPolicy{InitialInterval: time.Second, MaximumAttempts: 5}})
}

// stopCollector ends the event collection and waits for it to stop.
func (d *drill) stopCollector() {
	if d.stopColl != nil {
		d.stopColl(d.ctx)
		d.stopColl = nil
	}
}

// finish tears down (in a context a cancel does not reach) and records the drill's end.
func (d *drill) finish(report *anyops.DrillReport, runErr error) (anyops.DrillReport, error) {
	ctx, cancelled := d.ctx, errors.Is(d.ctx.Err(), workflow.ErrCanceled)
	if cancelled || runErr != nil {
		ctx, _ = workflow.NewDisconnectedContext(d.ctx)
	}
	d.ctx = ctx
	d.callCtx = workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout: teardownCallTimeout,
		RetryPolicy:         &temporal.RetryPolicy{InitialInterval: 200 * time.Millisecond, BackoffCoefficient: 2, MaximumInterval: 10 * time.Second, MaximumAttempts: 10},
	})
	d.stopCollector()
	tdErr := d.teardown()
	state, msg := anyops.DrillCompleted, ""
	switch {
	case cancelled:
		state, msg = anyops.DrillCanceled, "canceled"
	case runErr != nil:
		state, msg = anyops.DrillFailed, runErr.Error()
	case tdErr != nil:
		state, msg = anyops.DrillFailed, "tear-down: "+tdErr.Error()
	}
	if runErr != nil && tdErr != nil {
		msg += "; tear-down: " + tdErr.Error()
	}
	if err := workflow.ExecuteActivity(d.callCtx, drillActs.FinishDrill, activities.FinishDrillInput{
		DrillID: d.in.DrillID, State: state, Report: report, Error: msg,
	}).Get(ctx, nil); err != nil {
		workflow.GetLogger(ctx).Error("recording the drill's end", "err", err)
		if msg == "" {
			msg = "record the drill's end: " + err.Error()
		}
	}
	var out anyops.DrillReport
	if report != nil {
		out = *report
	}
	if state != anyops.DrillCompleted || msg != "" {
		if cancelled {
			return out, temporal.NewCanceledError(msg)
		}
		return out, temporal.NewNonRetryableApplicationError(msg, "DrillFailed", nil)
	}
	d.tracker.Finish(summary(out))
	return out, nil
}
