package workflows

import (
	"fmt"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/anyops/anyops"
	"github.com/anyops/anyops/activities"
)

// KindDemoFleet is the operation kind of DemoFleet.
const KindDemoFleet = "demo-fleet"

// DemoFleetWorkflowID is the business key of the demo fleet: there is one, so a second start
// joins the running workflow, and a later run (with demoFleetScope) sends the same idempotency
// tokens and so finds what the first one created instead of creating it again.
const DemoFleetWorkflowID = "demo-fleet"

// demoFleetScope is the idempotency scope of everything DemoFleet creates. It is fixed rather
// than the run's, so that a later run (the same business key) sends the same tokens and finds
// what the first run created instead of creating it again.
const demoFleetScope = "demo-fleet"

// DemoImageID is the machine image the demo fleet's instances boot (cloudsim accepts any).
const DemoImageID = "ami-0a5e1d3c4b2f60718"

// FleetTiming is how long fleet workflows wait on the cloud. Zero fields take production
// defaults; dev and tests shrink them to match cloudsim's speed factor.
type FleetTiming struct {
	// PollInterval is how often a wait asks the cloud again (default 15s).
	PollInterval time.Duration `json:"poll_interval,omitempty"`
	// HeartbeatTimeout is how long a wait may go silent before Temporal gives it to another
	// worker: how fast the fleet recovers from a dead worker (default 1m).
	HeartbeatTimeout time.Duration `json:"heartbeat_timeout,omitempty"`
	// CallTimeout bounds one cloud call (default 1m).
	CallTimeout time.Duration `json:"call_timeout,omitempty"`
	// WaitTimeout bounds one wait for a resource state (default 30m).
	WaitTimeout time.Duration `json:"wait_timeout,omitempty"`
}

// Production defaults of FleetTiming.
const (
	DefaultPollInterval     = activities.DefaultPollInterval
	DefaultHeartbeatTimeout = time.Minute
	DefaultCallTimeout      = time.Minute
	DefaultWaitTimeout      = 30 * time.Minute
)

func (t FleetTiming) withDefaults() FleetTiming {
	t.PollInterval = orDefault(t.PollInterval, DefaultPollInterval)
	t.HeartbeatTimeout = orDefault(t.HeartbeatTimeout, DefaultHeartbeatTimeout)
	t.CallTimeout = orDefault(t.CallTimeout, DefaultCallTimeout)
	t.WaitTimeout = orDefault(t.WaitTimeout, DefaultWaitTimeout)
	return t
}

func (t FleetTiming) validate() error {
	for _, f := range []struct {
		name string
		d    time.Duration
	}{{"poll_interval", t.PollInterval}, {"heartbeat_timeout", t.HeartbeatTimeout}, {"call_timeout", t.CallTimeout}, {"wait_timeout", t.WaitTimeout}} {
		if f.d < 0 || f.d > 24*time.Hour {
			return anyops.Errorf(anyops.EINVALID, "timing.%s must be between 0 (the default) and 24h in nanoseconds, got %d", f.name, int64(f.d))
		}
	}
	return nil
}

// callOptions are the activity options of one quick cloud call.
func (t FleetTiming) callOptions() workflow.ActivityOptions {
	return workflow.ActivityOptions{
		StartToCloseTimeout: t.CallTimeout,
		RetryPolicy: &temporal.RetryPolicy{
			InitialInterval:    time.Second,
			BackoffCoefficient: 2,
			MaximumInterval:    30 * time.Second,
			MaximumAttempts:    20,
		},
	}
}

// waitOptions are the activity options of a wait that heartbeats every poll.
func (t FleetTiming) waitOptions() workflow.ActivityOptions {
	o := t.callOptions()
	o.StartToCloseTimeout = t.WaitTimeout
	o.HeartbeatTimeout = t.HeartbeatTimeout
	return o
}

// hostOptions are the activity options of a host command: it heartbeats once per poll of
// SSM (activities.DefaultCommandPoll), so its heartbeat timeout is never below three polls.
func (t FleetTiming) hostOptions() workflow.ActivityOptions {
	o := t.callOptions()
	o.HeartbeatTimeout = max(t.HeartbeatTimeout, 3*activities.DefaultCommandPoll)
	// A command's own run time, plus room for the last poll that sees it end.
	o.StartToCloseTimeout = t.CallTimeout + o.HeartbeatTimeout
	return o
}

// DemoFleetInput is the body of POST /v1/operations/demo-fleet.
type DemoFleetInput struct {
	// ImageID is the image instances boot; DemoImageID when empty.
	ImageID string      `json:"image_id,omitempty"`
	Timing  FleetTiming `json:"timing,omitempty"`
	// RequestedBy is set by the API from the authenticated caller.
	RequestedBy string `json:"requested_by,omitempty"`
}

// DemoFleetResult names what the demo fleet is made of in the cloud: its live cluster's build.
type DemoFleetResult = BuildClusterResult

func prepareDemoFleet(in *DemoFleetInput, actor string) (string, temporal.SearchAttributes, error) {
	if err := setRequestedBy(&in.RequestedBy, actor); err != nil {
		return "", temporal.SearchAttributes{}, err
	}
	if in.ImageID != "" {
		if err := anyops.CheckName("image_id", in.ImageID); err != nil {
			return "", temporal.SearchAttributes{}, err
		}
	}
	if err := in.Timing.validate(); err != nil {
		return "", temporal.SearchAttributes{}, err
	}
	return DemoFleetWorkflowID, temporal.NewSearchAttributes(), nil
}

// Steps of DemoFleet, as its Status shows them.
const (
	stepPlan         = "plan"
	stepBuildCluster = "build-cluster"
)

// DemoFleetSteps are DemoFleet's steps in order.
var DemoFleetSteps = []string{stepPlan, stepBuildCluster}

// DemoFleet builds inventory.DemoFleet in the cloud: it records the demo's zones (also
// us-east-1c, empty, to migrate to) and builds its live cluster with BuildCluster — every
// server launched, bootstrapped and given its volumes at once, the DRBD pairs configured and
// in sync, md0 assembled over the DRBD devices, mounted and exported — under the fixed scope
// demoFleetScope, so that a later run sends the same idempotency tokens and finds what the
// first created instead of creating it again.
func DemoFleet(ctx workflow.Context, in DemoFleetInput) (DemoFleetResult, error) {
	tracker, err := NewTracker(ctx, DemoFleetSteps...)
	if err != nil {
		return DemoFleetResult{}, err
	}
	timing := RecoveryTiming{FleetTiming: in.Timing}
	callCtx := workflow.WithActivityOptions(ctx, timing.withDefaults().callOptions())

	tracker.Start(stepPlan, "reading the demo fleet")
	var plan activities.FleetPlan
	if err := workflow.ExecuteActivity(callCtx, recInv.PlanDemoFleet).Get(ctx, &plan); err != nil {
		tracker.Fail(stepPlan, err)
		return DemoFleetResult{}, err
	}
	if err := workflow.ExecuteActivity(callCtx, recInv.RecordZones, plan.Zones).Get(ctx, nil); err != nil {
		tracker.Fail(stepPlan, err)
		return DemoFleetResult{}, err
	}
	if len(plan.Clusters) != 1 {
		err := temporal.NewNonRetryableApplicationError(fmt.Sprintf("the demo fleet plans %d clusters, not one", len(plan.Clusters)), activities.ErrInvalidInput, nil)
		tracker.Fail(stepPlan, err)
		return DemoFleetResult{}, err
	}
	cluster := plan.Clusters[0]
	// So ops find it in the Temporal UI with Cluster = "live", however it was started.
	if err := workflow.UpsertTypedSearchAttributes(ctx, SearchCluster.ValueSet(cluster.Name), SearchZone.ValueSet(cluster.Zone)); err != nil {
		tracker.Fail(stepPlan, err)
		return DemoFleetResult{}, err
	}
	tracker.Done(stepPlan, fmt.Sprintf("%d servers, %d data volumes, %d DRBD pairs", len(plan.Servers), len(plan.Volumes), len(plan.DRBDResources())))

	tracker.Start(stepBuildCluster, "building cluster "+cluster.Name)
	var res DemoFleetResult
	if err := workflow.ExecuteChildWorkflow(workflow.WithChildOptions(ctx, workflow.ChildWorkflowOptions{
		WorkflowID: BuildClusterWorkflowID(cluster.Name),
	}), BuildClusterWorkflowType, BuildClusterInput{
		Scope: demoFleetScope, Cluster: cluster.Name, Plan: plan, ImageID: in.ImageID, Timing: timing,
	}).Get(ctx, &res); err != nil {
		tracker.Fail(stepBuildCluster, err)
		return res, err
	}
	if len(plan.WebApps) > 0 {
		if err := workflow.ExecuteActivity(callCtx, recInv.RecordWebApps, plan.WebApps).Get(ctx, nil); err != nil {
			tracker.Fail(stepBuildCluster, err)
			return res, err
		}
	}
	tracker.Done(stepBuildCluster, fmt.Sprintf("%d instances, %d DRBD pairs in sync, exports %v", len(res.Instances), res.DRBDInSync, res.Exports))
	tracker.Finish(fmt.Sprintf("demo fleet ready: %d instances, %d data volumes, %d DRBD pairs in sync, exports %v",
		len(res.Instances), len(res.Volumes), res.DRBDInSync, res.Exports))
	return res, nil
}

// eachVolume runs one activity per planned volume in parallel as one step; collect, when not
// nil, reads each result.
func eachVolume(ctx workflow.Context, volumes []activities.PlannedVolume, step string, tracker *Tracker,
	start func(activities.PlannedVolume) workflow.Future, running, done string,
	collect func(activities.PlannedVolume, workflow.Future) error) error {
	tracker.Start(step, running)
	if err := together(ctx, volumes, func(v activities.PlannedVolume) string { return v.Name }, start, collect); err != nil {
		tracker.Fail(step, err)
		return err
	}
	tracker.Done(step, fmt.Sprintf("%d %s", len(volumes), done))
	return nil
}

// together starts one activity (or child) per item, waits for all, and returns the first
// error, named after its item; collect, when not nil, reads each result.
func together[T any](ctx workflow.Context, items []T, name func(T) string, start func(T) workflow.Future,
	collect func(T, workflow.Future) error) error {
	futures := make([]workflow.Future, len(items))
	for i, it := range items {
		futures[i] = start(it)
	}
	var first error
	for i, f := range futures {
		err := f.Get(ctx, nil)
		if err == nil && collect != nil {
			err = collect(items[i], f)
		}
		if err != nil && first == nil {
			first = fmt.Errorf("%s: %w", name(items[i]), err)
		}
	}
	return first
}
