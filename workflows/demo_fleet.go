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

// DemoFleetResult names what the demo fleet is made of in the cloud.
type DemoFleetResult struct {
	// Instances maps server names to instance ids.
	Instances map[string]string `json:"instances"`
	// Volumes maps volume names ("live-file/home0") to volume ids.
	Volumes map[string]string `json:"volumes"`
	// DRBDInSync counts the DRBD resources found in sync on their primaries.
	DRBDInSync int `json:"drbd_in_sync"`
}

func prepareDemoFleet(in *DemoFleetInput, actor string) (string, temporal.SearchAttributes, error) {
	if err := setRequestedBy(&in.RequestedBy, actor); err != nil {
		return "", temporal.SearchAttributes{}, err
	}
	if len(in.ImageID) > 128 {
		return "", temporal.SearchAttributes{}, anyops.Errorf(anyops.EINVALID, "image_id is longer than 128 bytes")
	}
	if err := in.Timing.validate(); err != nil {
		return "", temporal.SearchAttributes{}, err
	}
	return DemoFleetWorkflowID, temporal.NewSearchAttributes(), nil
}

// Steps of DemoFleet, as its Status shows them.
const (
	stepPlan         = "plan"
	stepLaunch       = "launch-instances"
	stepWaitRunning  = "wait-instances-running"
	stepCreateVols   = "create-volumes"
	stepWaitVolumes  = "wait-volumes-available"
	stepAttachVols   = "attach-volumes"
	stepWaitAttached = "wait-volumes-attached"
	stepCheckDRBD    = "check-drbd"
)

// DemoFleetSteps are DemoFleet's steps in order.
var DemoFleetSteps = []string{stepPlan, stepLaunch, stepWaitRunning, stepCreateVols, stepWaitVolumes, stepAttachVols, stepWaitAttached, stepCheckDRBD}

// DemoFleet builds inventory.DemoFleet in the cloud: one instance per server (tagged with
// name, cluster, role, zone and release), one volume per data volume (tagged with kind,
// criticality, RAID group, cluster and its DRBD pair) attached at its device, and checks that
// every DRBD pair came up in sync. Every call is idempotent — instances and volumes carry a
// ClientToken from the workflow id, demoFleetScope and the step, attaching first looks at the current
// attachment — so a worker killed at any point, or a second run, creates nothing twice.
func DemoFleet(ctx workflow.Context, in DemoFleetInput) (DemoFleetResult, error) {
	tracker, err := NewTracker(ctx, DemoFleetSteps...)
	if err != nil {
		return DemoFleetResult{}, err
	}
	timing := in.Timing.withDefaults()
	image := in.ImageID
	if image == "" {
		image = DemoImageID
	}
	callCtx := workflow.WithActivityOptions(ctx, timing.callOptions())
	waitCtx := workflow.WithActivityOptions(ctx, timing.waitOptions())
	var (
		inv   *activities.Inventory
		cloud *activities.Cloud
		hosts *activities.Hosts
	)
	res := DemoFleetResult{Instances: map[string]string{}, Volumes: map[string]string{}}
	fail := func(step string, err error) (DemoFleetResult, error) {
		tracker.Fail(step, err)
		return res, err
	}

	tracker.Start(stepPlan, "reading the demo fleet")
	var plan activities.FleetPlan
	if err := workflow.ExecuteActivity(callCtx, inv.PlanDemoFleet).Get(ctx, &plan); err != nil {
		return fail(stepPlan, err)
	}
	if err := workflow.ExecuteActivity(callCtx, inv.RecordZones, plan.Zones).Get(ctx, nil); err != nil {
		return fail(stepPlan, err)
	}
	if len(plan.Servers) > 0 {
		// So ops find it in the Temporal UI with Cluster = "live", however it was started.
		if err := workflow.UpsertTypedSearchAttributes(ctx,
			SearchCluster.ValueSet(plan.Servers[0].Cluster), SearchZone.ValueSet(plan.Servers[0].Zone)); err != nil {
			return fail(stepPlan, err)
		}
	}
	tracker.Done(stepPlan, fmt.Sprintf("%d servers, %d data volumes, %d DRBD pairs", len(plan.Servers), len(plan.Volumes), len(plan.DRBDResources())))

	tracker.Start(stepLaunch, fmt.Sprintf("launching %d instances", len(plan.Servers)))
	launches := make([]workflow.Future, len(plan.Servers))
	for i, s := range plan.Servers {
		launches[i] = workflow.ExecuteActivity(callCtx, cloud.RunInstance, activities.RunInstanceInput{
			Scope: demoFleetScope, Step: "launch/" + s.Name, Name: s.Name, ImageID: image, InstanceType: s.InstanceType, Zone: s.Zone, Tags: s.InstanceTags(),
		})
	}
	for i, f := range launches {
		var inst activities.Instance
		if err := f.Get(ctx, &inst); err != nil {
			return fail(stepLaunch, fmt.Errorf("launch %s: %w", plan.Servers[i].Name, err))
		}
		res.Instances[plan.Servers[i].Name] = inst.ID
	}
	tracker.Done(stepLaunch, fmt.Sprintf("%d instances launched", len(res.Instances)))

	tracker.Start(stepWaitRunning, "waiting for the instances to run")
	waits := make([]workflow.Future, len(plan.Servers))
	for i, s := range plan.Servers {
		waits[i] = workflow.ExecuteActivity(waitCtx, cloud.WaitInstanceRunning, activities.WaitInstanceInput{
			InstanceID: res.Instances[s.Name], PollInterval: timing.PollInterval,
		})
	}
	for i, f := range waits {
		if err := f.Get(ctx, nil); err != nil {
			return fail(stepWaitRunning, fmt.Errorf("instance of %s: %w", plan.Servers[i].Name, err))
		}
	}
	tracker.Done(stepWaitRunning, fmt.Sprintf("%d instances running", len(plan.Servers)))

	tracker.Start(stepCreateVols, fmt.Sprintf("creating %d volumes", len(plan.Volumes)))
	creates := make([]workflow.Future, len(plan.Volumes))
	for i, v := range plan.Volumes {
		peer := ""
		if v.DRBDPeerServer != "" {
			peer = res.Instances[v.DRBDPeerServer]
		}
		creates[i] = workflow.ExecuteActivity(callCtx, cloud.CreateVolume, activities.CreateVolumeInput{
			Scope: demoFleetScope, Step: "create/" + v.Name, Name: v.Name, Zone: v.Zone, SizeGiB: v.SizeGiB, Tags: v.VolumeTags(peer),
		})
	}
	createdStates := make([]string, len(plan.Volumes))
	for i, f := range creates {
		var vol activities.Volume
		if err := f.Get(ctx, &vol); err != nil {
			return fail(stepCreateVols, fmt.Errorf("create %s: %w", plan.Volumes[i].Name, err))
		}
		res.Volumes[plan.Volumes[i].Name] = vol.ID
		createdStates[i] = vol.State
	}
	tracker.Done(stepCreateVols, fmt.Sprintf("%d volumes created", len(res.Volumes)))

	// Only volumes still being created need the wait: a volume a previous run attached is
	// in-use and never becomes available again.
	var creating []activities.PlannedVolume
	for i, v := range plan.Volumes {
		if createdStates[i] == "creating" {
			creating = append(creating, v)
		}
	}
	if err := eachVolume(ctx, creating, stepWaitVolumes, tracker, func(v activities.PlannedVolume) workflow.Future {
		return workflow.ExecuteActivity(waitCtx, cloud.WaitVolumeAvailable, activities.WaitVolumeInput{
			VolumeID: res.Volumes[v.Name], PollInterval: timing.PollInterval,
		})
	}, "waiting for the new volumes to become available", "volumes available"); err != nil {
		return res, err
	}
	if err := eachVolume(ctx, plan.Volumes, stepAttachVols, tracker, func(v activities.PlannedVolume) workflow.Future {
		return workflow.ExecuteActivity(callCtx, cloud.AttachVolume, activities.AttachVolumeInput{
			VolumeID: res.Volumes[v.Name], InstanceID: res.Instances[v.Server], Device: v.Device,
		})
	}, "attaching the volumes", "volumes attached"); err != nil {
		return res, err
	}
	if err := eachVolume(ctx, plan.Volumes, stepWaitAttached, tracker, func(v activities.PlannedVolume) workflow.Future {
		return workflow.ExecuteActivity(waitCtx, cloud.WaitVolumeAttached, activities.WaitVolumeInput{
			VolumeID: res.Volumes[v.Name], PollInterval: timing.PollInterval,
		})
	}, "waiting for the attachments", "volumes attached and seen by their hosts"); err != nil {
		return res, err
	}

	resources := plan.DRBDResources()
	tracker.Start(stepCheckDRBD, fmt.Sprintf("checking %d DRBD pairs on their primaries", len(resources)))
	inSync, err := checkDRBD(workflow.WithActivityOptions(ctx, timing.hostOptions()), ctx, hosts, plan, res.Instances, timing)
	if err != nil {
		return fail(stepCheckDRBD, err)
	}
	res.DRBDInSync = inSync
	tracker.Done(stepCheckDRBD, fmt.Sprintf("%d of %d DRBD pairs in sync", inSync, len(resources)))
	tracker.Finish(fmt.Sprintf("demo fleet ready: %d instances, %d data volumes, %d DRBD pairs in sync", len(res.Instances), len(res.Volumes), inSync))
	return res, nil
}

// eachVolume runs one activity per planned volume in parallel as one step.
func eachVolume(ctx workflow.Context, volumes []activities.PlannedVolume, step string, tracker *Tracker,
	start func(activities.PlannedVolume) workflow.Future, running, done string) error {
	tracker.Start(step, running)
	futures := make([]workflow.Future, len(volumes))
	for i, v := range volumes {
		futures[i] = start(v)
	}
	for i, f := range futures {
		if err := f.Get(ctx, nil); err != nil {
			err = fmt.Errorf("%s: %w", volumes[i].Name, err)
			tracker.Fail(step, err)
			return err
		}
	}
	tracker.Done(step, fmt.Sprintf("%d %s", len(volumes), done))
	return nil
}

// drbdCheckAttempts bounds how often check-drbd looks again for pairs not yet in sync.
const drbdCheckAttempts = 10

// ErrDRBDNotInSync is the error type of a demo fleet whose DRBD pairs did not come up.
const ErrDRBDNotInSync = "DRBDNotInSync"

// checkDRBD reads `drbdadm status` on every primary until every planned resource is in sync,
// polling at the timing's interval, and returns how many are.
func checkDRBD(actCtx, ctx workflow.Context, hosts *activities.Hosts, plan activities.FleetPlan, instances map[string]string, timing FleetTiming) (int, error) {
	primaries := map[string][]string{} // server -> resources it is primary of
	var servers []string
	for _, v := range plan.Volumes {
		if v.DRBDRole != activities.DRBDPrimary {
			continue
		}
		if primaries[v.Server] == nil {
			servers = append(servers, v.Server)
		}
		primaries[v.Server] = append(primaries[v.Server], v.DRBDResource)
	}
	want := len(plan.DRBDResources())
	inSync := 0
	for attempt := 1; ; attempt++ {
		inSync = 0
		for _, s := range servers {
			var out activities.DRBDStatusOutput
			if err := workflow.ExecuteActivity(actCtx, hosts.DRBDStatus, activities.DRBDStatusInput{InstanceID: instances[s]}).Get(ctx, &out); err != nil {
				return 0, fmt.Errorf("drbdadm status on %s: %w", s, err)
			}
			for _, r := range out.Resources {
				for _, name := range primaries[s] {
					if r.Name == name && r.InSync() {
						inSync++
					}
				}
			}
		}
		if inSync == want {
			return inSync, nil
		}
		if attempt == drbdCheckAttempts {
			return inSync, temporal.NewNonRetryableApplicationError(
				fmt.Sprintf("%d of %d DRBD pairs in sync after %d checks", inSync, want, attempt), ErrDRBDNotInSync, nil)
		}
		if err := workflow.Sleep(ctx, timing.PollInterval); err != nil {
			return inSync, err
		}
	}
}
