package workflows

import (
	"errors"
	"fmt"
	"sort"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/anyops/anyops"
	"github.com/anyops/anyops/activities"
)

// Drill's steps, in the order run calls them: building its own cluster, the scenario's
// operation and command steps at their times, the wait for the outcome, the report and the
// tear-down. The drill's input and policy, and the run that ties the steps together, are in
// drill.go.

// build builds the drill's cluster and starts its file server's watch.
func (d *drill) build() error {
	ctx, sc := d.ctx, d.in.Scenario
	d.tracker.Start(stepDrillBuild, fmt.Sprintf("building %s at speed %g", d.in.Cluster, d.policy.BuildSpeed))
	if _, err := d.claim(d.policy.BuildSpeed, false); err != nil {
		return d.fail(stepDrillBuild, err)
	}
	var plan activities.FleetPlan
	if err := workflow.ExecuteActivity(d.callCtx, drillActs.PlanCluster, d.in.Cluster).Get(ctx, &plan); err != nil {
		return d.fail(stepDrillBuild, err)
	}
	for _, s := range plan.Servers {
		if s.Role == anyops.RoleFile && s.Cluster == d.in.Cluster {
			d.fileSrv = s.Name
		}
	}
	d.built = true // from here on, whatever the build left is torn down
	// Polls at the build's speed, bounds at production values: while another drill holds the
	// clock the speed can be far lower than the build's claim, and a build must not time out
	// for being slow.
	scaled := RecoveryTiming{}.Scaled(d.policy.BuildSpeed)
	timing := RecoveryTiming{FleetTiming: FleetTiming{PollInterval: scaled.PollInterval}, StopTimeout: scaled.StopTimeout}.withDefaults()
	child := workflow.WithChildOptions(ctx, workflow.ChildWorkflowOptions{
		WorkflowID: BuildClusterWorkflowID(d.in.Cluster), TaskQueue: TaskQueueControl,
		WorkflowExecutionTimeout: 2 * (timing.BuildTimeout + timing.WaitTimeout),
		TypedSearchAttributes:    temporal.NewSearchAttributes(SearchCluster.ValueSet(d.in.Cluster)),
	})
	var res BuildClusterResult
	err := workflow.ExecuteChildWorkflow(child, BuildClusterWorkflowType, BuildClusterInput{
		Scope: anyops.DrillWorkflowID(d.in.DrillID), Cluster: d.in.Cluster, Plan: plan, Spare: sc.Spare, Timing: timing,
	}).Get(ctx, &res)
	if err != nil {
		return d.fail(stepDrillBuild, err)
	}
	d.tracker.Done(stepDrillBuild, fmt.Sprintf("%d instances, %d data volumes, %d DRBD pairs in sync, exports %v",
		len(res.Instances), len(res.Volumes), res.DRBDInSync, res.Exports))

	// The watch a fleet sync would start, started now and timed for the scenario's speed.
	d.tracker.Start(stepDrillWatch, "starting the NFS watch of "+d.fileSrv)
	err = StartNFSWatch(ctx, d.fileSrv, NFSWatchTiming{}.Scaled(sc.Speed)).
		GetChildWorkflowExecution().Get(ctx, nil)
	var running *temporal.ChildWorkflowExecutionAlreadyStartedError
	switch {
	case errors.As(err, &running):
		d.tracker.Done(stepDrillWatch, "a fleet sync started it already")
	case err != nil:
		return d.fail(stepDrillWatch, err)
	default:
		d.tracker.Done(stepDrillWatch, NFSWatchWorkflowID(d.fileSrv)+" running")
	}
	return nil
}

// waitSim sleeps until cloudsim's clock reads at least t.
func (d *drill) waitSim(t time.Time) error {
	for {
		var now activities.DrillClock
		if err := workflow.ExecuteActivity(d.callCtx, drillActs.ReadClock).Get(d.ctx, &now); err != nil {
			return err
		}
		if !now.Sim.Before(t) {
			return nil
		}
		if now.Speed > 0 {
			d.speed = now.Speed
		}
		if err := workflow.Sleep(d.ctx, d.realOf(t.Sub(now.Sim))+10*time.Millisecond); err != nil {
			return err
		}
	}
}

// runSteps runs the operation and command steps at their times (cloudsim fires the faults).
func (d *drill) runSteps() error {
	sc := d.in.Scenario
	type timed struct {
		i    int
		step anyops.DrillStep
	}
	var own []timed
	for i, st := range sc.Steps {
		if st.Fault == nil {
			own = append(own, timed{i, st})
		}
	}
	sort.SliceStable(own, func(a, b int) bool { return own[a].step.At < own[b].step.At })
	d.tracker.Start(stepDrillRun, fmt.Sprintf("%d steps of the drill's own, %d faults in cloudsim", len(own), len(sc.Steps)-len(own)))
	for _, t := range own {
		if err := d.waitSim(d.armed.Add(t.step.At)); err != nil {
			return d.fail(stepDrillRun, err)
		}
		switch {
		case t.step.Command != nil:
			if err := d.command(*t.step.Command); err != nil {
				return d.fail(stepDrillRun, fmt.Errorf("step %d: %w", t.i+1, err))
			}
		case t.step.Operation != nil:
			if err := d.operation(*t.step.Operation); err != nil {
				return d.fail(stepDrillRun, fmt.Errorf("step %d: %w", t.i+1, err))
			}
		case t.step.Fill != nil:
			if err := workflow.ExecuteActivity(d.callCtx, drillActs.FillVolume, *t.step.Fill).Get(d.ctx, nil); err != nil {
				return d.fail(stepDrillRun, fmt.Errorf("step %d: %w", t.i+1, err))
			}
		}
	}
	last := d.armed
	for _, st := range sc.Steps {
		if t := d.armed.Add(st.At); t.After(last) {
			last = t
		}
	}
	if err := d.waitSim(last); err != nil {
		return d.fail(stepDrillRun, err)
	}
	d.tracker.Done(stepDrillRun, fmt.Sprintf("every step's time has come; %d operations started", len(d.ops)))
	return nil
}

// command runs a command step on its host.
func (d *drill) command(c anyops.DrillCommand) error {
	var hosts *activities.Hosts
	var inst string
	if err := workflow.ExecuteActivity(d.callCtx, drillActs.ResolveInstance, c.InstanceID).Get(d.ctx, &inst); err != nil {
		return err
	}
	hostCtx := workflow.WithActivityOptions(d.ctx, workflow.ActivityOptions{
		StartToCloseTimeout: 10 * time.Minute, HeartbeatTimeout: time.Minute,
		RetryPolicy: &temporal.RetryPolicy{InitialInterval: time.Second, MaximumInterval: 10 * time.Second, MaximumAttempts: 5},
	})
	var res activities.CommandResult
	if err := workflow.ExecuteActivity(hostCtx, hosts.RunCommand, activities.RunCommandInput{
		InstanceID: inst, Commands: c.Run, Comment: "drill " + anyops.DrillWorkflowID(d.in.DrillID),
	}).Get(d.ctx, &res); err != nil {
		return err
	}
	if res.ExitCode != 0 {
		return fmt.Errorf("command on %s exited %d: %s", inst, res.ExitCode, lastLineOf(res.Stderr+res.Stdout))
	}
	return nil
}

// operation starts an operation step as a child workflow, left to run while the drill waits.
func (d *drill) operation(op anyops.DrillOperation) error {
	k, ok := LookupKind(op.Kind)
	if !ok {
		return fmt.Errorf("operation kind %q is not registered", op.Kind)
	}
	start, err := k.Prepare(op.Input, drillActor(d.in.DrillID))
	if err != nil {
		return err
	}
	// An operation runs at the scenario's speed (the drill raises it only after its operations
	// end): a release or a storage change whose timing names no speed is timed for it, as the
	// drill's NFS watch is.
	switch in := start.Input.(type) {
	case ReleaseInput:
		if in.Timing.Speed == 0 {
			in.Timing = in.Timing.Scaled(d.in.Scenario.Speed)
		}
		start.Input = in
	case StorageChangeInput:
		if in.Timing.Speed == 0 {
			in.Timing = in.Timing.Scaled(d.in.Scenario.Speed)
		}
		start.Input = in
	}
	child := workflow.WithChildOptions(d.ctx, workflow.ChildWorkflowOptions{
		WorkflowID: start.ID, TaskQueue: k.TaskQueue, WorkflowExecutionTimeout: k.ExecutionTimeout,
		TypedSearchAttributes: start.SearchAttributes, ParentClosePolicy: enumspb.PARENT_CLOSE_POLICY_ABANDON,
	})
	f := workflow.ExecuteChildWorkflow(child, k.WorkflowType, start.Input)
	var exec workflow.Execution
	if err := f.GetChildWorkflowExecution().Get(d.ctx, &exec); err != nil {
		return err
	}
	d.ops = append(d.ops, activities.WorkflowRef{WorkflowID: exec.ID, RunID: exec.RunID})
	d.opsDone = append(d.opsDone, f)
	if rel, ok := start.Input.(ReleaseInput); ok && !rel.DryRun {
		d.released = append(d.released, rel.newCluster())
	}
	return nil
}

// waitOutcome polls until the expected incidents' recoveries have closed and nothing moved
// for the quiet time, or the timeout; it raises the speed to the tail speed once the clients
// serve again. It returns the simulated time it stopped at.
func (d *drill) waitOutcome() (time.Time, bool, error) {
	ctx, sc := d.ctx, d.in.Scenario
	last := d.armed
	for _, st := range sc.Steps {
		if t := d.armed.Add(st.At); t.After(last) {
			last = t
		}
	}
	deadline := last.Add(d.policy.Timeout)
	d.tracker.Start(stepDrillOutcome, fmt.Sprintf("waiting for %d incidents' recoveries (at most until %s simulated)", sc.Incidents, deadline.Format(time.RFC3339)))
	var quietSince time.Time
	tail := false
	lastSeen := activities.Outcome{}
	for {
		var o activities.Outcome
		if err := workflow.ExecuteActivity(d.callCtx, drillActs.Outcome, activities.OutcomeInput{DrillID: d.in.DrillID, Cluster: d.in.Cluster, Origin: d.origin}).Get(ctx, &o); err != nil {
			return time.Time{}, false, d.fail(stepDrillOutcome, err)
		}
		opsOpen := 0
		for _, f := range d.opsDone {
			if !f.IsReady() {
				opsOpen++
			}
		}
		expected := o.Incidents >= sc.Incidents
		if !tail && o.Recovered && expected && !o.SimNow.Before(d.origin) && opsOpen == 0 {
			tail = true
			if _, err := d.claim(d.policy.TailSpeed, true); err != nil {
				return time.Time{}, false, d.fail(stepDrillOutcome, err)
			}
		}
		settled := expected && o.Running == 0 && opsOpen == 0
		if !settled || o.Incidents != lastSeen.Incidents || o.Recovered != lastSeen.Recovered {
			quietSince = time.Time{}
		}
		if settled && quietSince.IsZero() {
			quietSince = o.SimNow
		}
		lastSeen = o
		d.tracker.set(stepDrillOutcome, func(s *Step) {
			s.Message = fmt.Sprintf("%d of %d incidents, %d recoveries running, clients serving: %v, %d operations running",
				o.Incidents, sc.Incidents, o.Running, o.Recovered, opsOpen)
		})
		if !quietSince.IsZero() && o.SimNow.Sub(quietSince) >= d.policy.Quiet {
			d.tracker.Done(stepDrillOutcome, fmt.Sprintf("settled: %d incidents, their recoveries closed", o.Incidents))
			return o.SimNow, false, d.releaseClock()
		}
		if !o.SimNow.Before(deadline) {
			d.tracker.Done(stepDrillOutcome, fmt.Sprintf("timed out: %d of %d incidents, %d recoveries still running", o.Incidents, sc.Incidents, o.Running))
			return o.SimNow, true, d.releaseClock()
		}
		if err := workflow.Sleep(ctx, max(d.realOf(d.policy.PollInterval), 100*time.Millisecond)); err != nil {
			return time.Time{}, false, err
		}
	}
}

// report collects the last events and computes the report.
func (d *drill) report(end time.Time, timedOut bool) (*anyops.DrillReport, error) {
	ctx, sc := d.ctx, d.in.Scenario
	d.tracker.Start(stepDrillReport, "collecting the last events and computing the report")
	d.stopCollector()
	if err := workflow.ExecuteActivity(d.collectOptions(), drillActs.CollectEvents, activities.CollectEventsInput{DrillID: d.in.DrillID, FromSeq: d.fromSeq}).Get(ctx, nil); err != nil {
		return nil, d.fail(stepDrillReport, err)
	}
	var anchor activities.DrillClock
	if err := workflow.ExecuteActivity(d.callCtx, drillActs.ReadClock).Get(ctx, &anchor); err != nil {
		return nil, d.fail(stepDrillReport, err)
	}
	kinds := map[string]string{}
	for _, k := range Kinds() {
		kinds[k.WorkflowType] = k.Name
	}
	reportCtx := workflow.WithActivityOptions(ctx, workflow.ActivityOptions{StartToCloseTimeout: 5 * time.Minute,
		RetryPolicy: &temporal.RetryPolicy{InitialInterval: time.Second, MaximumAttempts: 5}})
	var r anyops.DrillReport
	if err := workflow.ExecuteActivity(reportCtx, drillActs.Report, activities.DrillReportInput{
		DrillID: d.in.DrillID, Scenario: sc.Name, Cluster: d.in.Cluster, Listed: sc.Report, Goals: sc.Goals,
		Armed: d.armed, Origin: d.origin, End: end, TimedOut: timedOut, Anchor: anchor, Kinds: kinds,
		Operations: d.ops, StartedAt: d.started,
	}).Get(ctx, &r); err != nil {
		return nil, d.fail(stepDrillReport, err)
	}
	rto := "not recovered"
	if r.RTOSeconds != nil {
		rto = fmt.Sprintf("rto %.0f s", *r.RTOSeconds)
	}
	d.tracker.Done(stepDrillReport, fmt.Sprintf("%s at speed %g, %d bytes lost, %d interlock violations, %d duplicates, winner %q",
		rto, r.Speed, r.LostBytes, r.InterlockViolations, r.DuplicateResources, r.Winner))
	return &r, nil
}

// summary is the report in one line for the Status.
func summary(r anyops.DrillReport) string {
	rto := "not recovered"
	if r.RTOSeconds != nil {
		rto = fmt.Sprintf("rto %.0f s", *r.RTOSeconds)
	}
	return fmt.Sprintf("%s %s: %s, %d bytes lost, %d interlock violations", r.Drill, r.Scenario, rto, r.LostBytes, r.InterlockViolations)
}

// A worker killed during the teardown has its attempt retried within seconds: the steps that
// wait or make many calls (EndWorkflows, TerminateCluster, DeleteClusterVolumes) heartbeat
// with teardownHeartbeat, the others (ClearFaults, RetireCluster, RetireClusterRows and
// FinishDrill: a few calls to the inventory or cloudsim each) end within teardownCallTimeout.
const (
	teardownHeartbeat   = 10 * time.Second
	teardownCallTimeout = 20 * time.Second
)

// teardown clears the drill's faults and, for a cluster of its own, retires, terminates and
// deletes it, marking its rows; the speed claim ends with FinishDrill.
func (d *drill) teardown() error {
	ctx := d.ctx
	d.tracker.Start(stepDrillTeardown, "ending what still runs for the drill, clearing its faults")
	var errs []error
	endCtx := workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout: 3 * time.Minute, HeartbeatTimeout: teardownHeartbeat,
		RetryPolicy: &temporal.RetryPolicy{InitialInterval: time.Second, MaximumAttempts: 5},
	})
	own := ""
	if d.built {
		own = d.in.Cluster
	}
	if err := workflow.ExecuteActivity(endCtx, drillActs.EndWorkflows, activities.EndWorkflowsInput{
		Cluster: own, Operations: d.ops, Grace: time.Minute,
	}).Get(ctx, nil); err != nil {
		errs = append(errs, fmt.Errorf("end the drill's workflows: %w", err))
	}
	if err := workflow.ExecuteActivity(d.callCtx, drillActs.ClearFaults, activities.ClearFaultsInput{
		Cluster: d.in.Cluster, Faults: d.faults, Armed: d.armed,
	}).Get(ctx, nil); err != nil {
		errs = append(errs, fmt.Errorf("clear faults: %w", err))
	}
	if !d.built || d.policy.KeepCluster {
		msg := "nothing built to tear down"
		if d.built {
			msg = d.in.Cluster + " kept (policy keep_cluster)"
		}
		d.tracker.Done(stepDrillTeardown, msg)
		return errors.Join(errs...)
	}
	// The cloud's side of the teardown heartbeats (activities.Teardown): an attempt whose
	// worker died is retried after the heartbeat timeout, not after the whole StartToClose.
	terminateCtx := workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout: 2 * time.Minute, HeartbeatTimeout: teardownHeartbeat,
		RetryPolicy: &temporal.RetryPolicy{InitialInterval: 200 * time.Millisecond, BackoffCoefficient: 2, MaximumInterval: 10 * time.Second, MaximumAttempts: 10},
	})
	volumesCtx := workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout: 2 * time.Minute, ScheduleToCloseTimeout: 30 * time.Minute, HeartbeatTimeout: teardownHeartbeat,
		RetryPolicy: &temporal.RetryPolicy{InitialInterval: 200 * time.Millisecond, BackoffCoefficient: 1.5, MaximumInterval: 5 * time.Second},
	})
	override := activities.Override{By: anyops.DrillWorkflowID(d.in.DrillID), Reason: "drill teardown: throw-away data"}
	// The drill's own cluster is always there; its spare's standby cluster and a release's new
	// cluster only when they were built (ENOTFOUND: skipped).
	for _, c := range append([]string{d.in.Cluster, activities.StandbyClusterOf(d.in.Cluster)}, d.released...) {
		d.tracker.set(stepDrillTeardown, func(s *Step) { s.Message = "retiring and terminating " + c })
		err := workflow.ExecuteActivity(d.callCtx, drillTeardwn.RetireCluster, activities.ClusterRef{Cluster: c}).Get(ctx, nil)
		var app *temporal.ApplicationError
		if errors.As(err, &app) && app.Type() == anyops.ENOTFOUND && c != d.in.Cluster {
			continue // no spare was built
		}
		if err == nil {
			err = workflow.ExecuteActivity(terminateCtx, drillTeardwn.TerminateCluster, activities.ClusterRef{Cluster: c}).Get(ctx, nil)
		}
		if err == nil {
			err = workflow.ExecuteActivity(volumesCtx, drillTeardwn.DeleteClusterVolumes, activities.DeleteClusterVolumesInput{Cluster: c, Override: override}).Get(ctx, nil)
		}
		if err == nil {
			err = workflow.ExecuteActivity(d.callCtx, drillTeardwn.RetireClusterRows, activities.ClusterRef{Cluster: c}).Get(ctx, nil)
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", c, err))
		}
	}
	if err := errors.Join(errs...); err != nil {
		d.tracker.Fail(stepDrillTeardown, err)
		return err
	}
	d.tracker.Done(stepDrillTeardown, d.in.Cluster+" retired, terminated, its volumes deleted and its rows marked")
	return nil
}
