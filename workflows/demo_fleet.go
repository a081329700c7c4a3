package workflows

import (
	"fmt"
	"slices"
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
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&t.PollInterval, DefaultPollInterval)
	def(&t.HeartbeatTimeout, DefaultHeartbeatTimeout)
	def(&t.CallTimeout, DefaultCallTimeout)
	def(&t.WaitTimeout, DefaultWaitTimeout)
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
	// Devices maps volume names to the device their host sees them as (/dev/nvme1n1 on the
	// demo's Nitro instances).
	Devices map[string]string `json:"devices"`
	// DRBDInSync counts the DRBD resources found in sync on their primaries.
	DRBDInSync int `json:"drbd_in_sync"`
	// Arrays maps "server:/dev/mdN" to the array's members, in order (DRBD devices).
	Arrays map[string][]string `json:"arrays"`
	// Exports lists the NFS exports ("server:/srv/home").
	Exports []string `json:"exports"`
}

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
	stepLaunch       = "launch-instances"
	stepWaitRunning  = "wait-instances-running"
	stepCreateVols   = "create-volumes"
	stepWaitVolumes  = "wait-volumes-available"
	stepAttachVols   = "attach-volumes"
	stepWaitAttached = "wait-volumes-attached"
	stepFindDevices  = "find-devices"
	stepConfigDRBD   = "configure-drbd"
	stepCheckDRBD    = "check-drbd"
	stepArrays       = "assemble-arrays"
	stepExports      = "mount-and-export"
)

// DemoFleetSteps are DemoFleet's steps in order.
var DemoFleetSteps = []string{stepPlan, stepLaunch, stepWaitRunning, stepCreateVols, stepWaitVolumes, stepAttachVols,
	stepWaitAttached, stepFindDevices, stepConfigDRBD, stepCheckDRBD, stepArrays, stepExports}

// DemoFleet builds inventory.DemoFleet in the cloud: one instance per server (tagged with
// name, cluster, role, zone and release), one volume per data volume (tagged with kind,
// criticality, RAID group, cluster and its DRBD pair) attached at its device. Then it sets the
// hosts up as real ones are: it finds each volume's device by the volume's id (the demo's m5
// and c5 instances are Nitro: /dev/nvmeNn1, whatever the attach asked for), configures every
// DRBD pair through its resource file on both hosts (create-md, up, and the file server as the
// initial primary of the brand new pair), checks that every pair is in sync, assembles the
// file server's md0 over its DRBD devices (created the first time), and makes, mounts and
// exports its file system. Every call is idempotent — instances and volumes carry a
// ClientToken from the workflow id, demoFleetScope and the step, attaching first looks at the
// current attachment, each host step looks first for what an earlier attempt did — so a
// worker killed at any point, or a second run, creates nothing twice.
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
	res := DemoFleetResult{Instances: map[string]string{}, Volumes: map[string]string{}, Devices: map[string]string{}, Arrays: map[string][]string{}}
	ips := map[string]string{} // server -> private IP
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
		ips[plan.Servers[i].Name] = inst.PrivateIP
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
	}, "waiting for the new volumes to become available", "volumes available", nil); err != nil {
		return res, err
	}
	if err := eachVolume(ctx, plan.Volumes, stepAttachVols, tracker, func(v activities.PlannedVolume) workflow.Future {
		return workflow.ExecuteActivity(callCtx, cloud.AttachVolume, activities.AttachVolumeInput{
			VolumeID: res.Volumes[v.Name], InstanceID: res.Instances[v.Server], Device: v.Device,
		})
	}, "attaching the volumes", "volumes attached", nil); err != nil {
		return res, err
	}
	if err := eachVolume(ctx, plan.Volumes, stepWaitAttached, tracker, func(v activities.PlannedVolume) workflow.Future {
		return workflow.ExecuteActivity(waitCtx, cloud.WaitVolumeAttached, activities.WaitVolumeInput{
			VolumeID: res.Volumes[v.Name], PollInterval: timing.PollInterval,
		})
	}, "waiting for the attachments", "volumes attached and seen by their hosts", nil); err != nil {
		return res, err
	}

	hostCtx := workflow.WithActivityOptions(ctx, timing.hostOptions())
	devices := map[string]activities.VolumeDevice{}
	if err := eachVolume(ctx, plan.Volumes, stepFindDevices, tracker, func(v activities.PlannedVolume) workflow.Future {
		return workflow.ExecuteActivity(hostCtx, hosts.FindVolumeDevice, activities.VolumeDeviceInput{
			InstanceID: res.Instances[v.Server], VolumeID: res.Volumes[v.Name],
		})
	}, "finding each volume's device by its id", "devices found", func(v activities.PlannedVolume, f workflow.Future) error {
		var d activities.VolumeDevice
		if err := f.Get(ctx, &d); err != nil {
			return err
		}
		devices[v.Name], res.Devices[v.Name] = d, d.Device
		return nil
	}); err != nil {
		return res, err
	}

	resources := plan.DRBDResources()
	tracker.Start(stepConfigDRBD, fmt.Sprintf("configuring %d DRBD pairs: resource files, metadata, up, initial primary", len(resources)))
	if err := configureDRBD(hostCtx, ctx, hosts, plan, res.Instances, ips, devices); err != nil {
		return fail(stepConfigDRBD, err)
	}
	tracker.Done(stepConfigDRBD, fmt.Sprintf("%d DRBD pairs configured", len(resources)))

	tracker.Start(stepCheckDRBD, fmt.Sprintf("checking %d DRBD pairs on their primaries", len(resources)))
	inSync, err := checkDRBD(hostCtx, ctx, hosts, plan, res.Instances, timing)
	if err != nil {
		return fail(stepCheckDRBD, err)
	}
	res.DRBDInSync = inSync
	tracker.Done(stepCheckDRBD, fmt.Sprintf("%d of %d DRBD pairs in sync", inSync, len(resources)))

	arrays := demoArrays(plan)
	tracker.Start(stepArrays, fmt.Sprintf("assembling %d md arrays over their DRBD devices", len(arrays)))
	for _, a := range arrays {
		var out activities.EnsureRAIDOutput
		if err := workflow.ExecuteActivity(hostCtx, hosts.EnsureRAID, activities.EnsureRAIDInput{
			InstanceID: res.Instances[a.server], Device: a.device, Level: "0", Members: a.members,
		}).Get(ctx, &out); err != nil {
			return fail(stepArrays, fmt.Errorf("%s on %s: %w", a.device, a.server, err))
		}
		res.Arrays[a.server+":"+a.device] = a.members
	}
	tracker.Done(stepArrays, fmt.Sprintf("%d md arrays running", len(arrays)))

	tracker.Start(stepExports, fmt.Sprintf("making, mounting and exporting %d file systems", len(arrays)))
	for _, a := range arrays {
		if err := exportArray(hostCtx, ctx, hosts, res.Instances[a.server], a); err != nil {
			return fail(stepExports, fmt.Errorf("%s on %s: %w", a.device, a.server, err))
		}
		res.Exports = append(res.Exports, a.server+":"+a.mountPoint)
	}
	tracker.Done(stepExports, fmt.Sprintf("exported %v", res.Exports))
	tracker.Finish(fmt.Sprintf("demo fleet ready: %d instances, %d data volumes, %d DRBD pairs in sync, exports %v",
		len(res.Instances), len(res.Volumes), inSync, res.Exports))
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

// together starts one activity per item, waits for all, and returns the first error, named
// after its item; collect, when not nil, reads each result.
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

// The demo fleet's DRBD and NFS settings.
const (
	// drbdBasePort is the TCP port of the first DRBD resource; each next one takes the next.
	drbdBasePort = 7789
	// demoNFSClients are the clients of the file server's exports: cloudsim's VPC.
	demoNFSClients = "10.0.0.0/16"
	demoNFSOptions = "rw,sync,no_subtree_check"
)

// drbdPair is one planned DRBD resource: its minor, and the volume on each side.
type drbdPair struct {
	name               string
	minor              int
	primary, secondary activities.PlannedVolume
}

// drbdPairs are the plan's DRBD resources in order; a resource's minor (and port offset) is
// its position.
func drbdPairs(plan activities.FleetPlan) []drbdPair {
	var out []drbdPair
	for i, name := range plan.DRBDResources() {
		p := drbdPair{name: name, minor: i}
		for _, v := range plan.Volumes {
			switch {
			case v.DRBDResource != name:
			case v.DRBDRole == activities.DRBDPrimary:
				p.primary = v
			default:
				p.secondary = v
			}
		}
		out = append(out, p)
	}
	return out
}

// configureDRBD sets every pair up as on real hosts, each phase across all pairs at once: the
// same resource file on both hosts (disks by their stable by-id links, hosts by the names they
// give themselves), metadata on both, both up, then the primary's side made the initial
// primary. The demo's volumes are new and empty, so the initial sync is skipped; the
// activity's interlock refuses that (and any forcing) for a pair that has held data.
func configureDRBD(actCtx, ctx workflow.Context, hosts *activities.Hosts, plan activities.FleetPlan,
	instances, ips map[string]string, devices map[string]activities.VolumeDevice) error {
	pairs := drbdPairs(plan)
	var servers []string
	for _, p := range pairs {
		for _, s := range []string{p.primary.Server, p.secondary.Server} {
			if !slices.Contains(servers, s) {
				servers = append(servers, s)
			}
		}
	}
	hostnames := map[string]string{}
	if err := together(ctx, servers, func(s string) string { return s }, func(s string) workflow.Future {
		return workflow.ExecuteActivity(actCtx, hosts.HostName, activities.InstanceRef{InstanceID: instances[s]})
	}, func(s string, f workflow.Future) error {
		var name string
		err := f.Get(ctx, &name)
		hostnames[s] = name
		return err
	}); err != nil {
		return fmt.Errorf("host names: %w", err)
	}
	confs := map[string]activities.DRBDResourceConfig{}
	type side struct {
		pair   drbdPair
		server string
	}
	var sides []side
	for _, p := range pairs {
		node := func(v activities.PlannedVolume, id int) activities.DRBDNode {
			return activities.DRBDNode{Hostname: hostnames[v.Server], Address: ips[v.Server], NodeID: id, Disk: devices[v.Name].StablePath()}
		}
		confs[p.name] = activities.DRBDResourceConfig{Name: p.name, Minor: p.minor, Port: drbdBasePort + p.minor,
			Nodes: []activities.DRBDNode{node(p.primary, 0), node(p.secondary, 1)}}
		sides = append(sides, side{p, p.primary.Server}, side{p, p.secondary.Server})
	}
	phases := []struct {
		name  string
		start func(side) workflow.Future
	}{
		{"resource file", func(s side) workflow.Future {
			return workflow.ExecuteActivity(actCtx, hosts.ConfigureDRBD, activities.ConfigureDRBDInput{InstanceID: instances[s.server], Resource: confs[s.pair.name]})
		}},
		{"create-md", func(s side) workflow.Future {
			return workflow.ExecuteActivity(actCtx, hosts.CreateDRBDMetadata, activities.DRBDResourceInput{InstanceID: instances[s.server], Resource: s.pair.name})
		}},
		{"up", func(s side) workflow.Future {
			return workflow.ExecuteActivity(actCtx, hosts.DRBDUp, activities.DRBDResourceInput{InstanceID: instances[s.server], Resource: s.pair.name})
		}},
	}
	for _, ph := range phases {
		if err := together(ctx, sides, func(s side) string { return s.pair.name + " on " + s.server }, ph.start, nil); err != nil {
			return fmt.Errorf("%s: %w", ph.name, err)
		}
	}
	return together(ctx, pairs, func(p drbdPair) string { return p.name }, func(p drbdPair) workflow.Future {
		return workflow.ExecuteActivity(actCtx, hosts.DRBDInitialPrimary, activities.DRBDInitialPrimaryInput{
			Resource: p.name, Primary: instances[p.primary.Server], Secondary: instances[p.secondary.Server], SkipInitialSync: true,
		})
	}, nil)
}

// demoArray is an md array of the plan on the server that holds its members' DRBD primaries.
type demoArray struct {
	server, device, mountPoint string
	members                    []string
}

// demoArrays are the plan's md arrays over DRBD devices, on the servers holding the primaries
// (the backup holds the same superblocks, replicated, for the day it takes over). Members go in
// the plan's order; an array is mounted at /srv/<kind of its volumes>.
func demoArrays(plan activities.FleetPlan) []demoArray {
	minor := map[string]int{}
	for _, p := range drbdPairs(plan) {
		minor[p.name] = p.minor
	}
	var out []demoArray
	for _, v := range plan.Volumes {
		if v.RAIDGroup == "" || v.DRBDRole != activities.DRBDPrimary {
			continue
		}
		dev := "/dev/" + v.RAIDGroup
		i := slices.IndexFunc(out, func(a demoArray) bool { return a.server == v.Server && a.device == dev })
		if i < 0 {
			out = append(out, demoArray{server: v.Server, device: dev, mountPoint: "/srv/" + string(v.Kind)})
			i = len(out) - 1
		}
		out[i].members = append(out[i].members, fmt.Sprintf("/dev/drbd%d", minor[v.DRBDResource]))
	}
	return out
}

// exportArray makes the array's file system (once), mounts it and exports it over NFS.
func exportArray(actCtx, ctx workflow.Context, hosts *activities.Hosts, instance string, a demoArray) error {
	if err := workflow.ExecuteActivity(actCtx, hosts.MakeFilesystem, activities.MakeFilesystemInput{
		InstanceID: instance, Device: a.device, FSType: "ext4",
	}).Get(ctx, nil); err != nil {
		return fmt.Errorf("mkfs: %w", err)
	}
	if err := workflow.ExecuteActivity(actCtx, hosts.Mount, activities.MountInput{
		InstanceID: instance, Device: a.device, MountPoint: a.mountPoint, FSType: "ext4",
	}).Get(ctx, nil); err != nil {
		return fmt.Errorf("mount: %w", err)
	}
	if err := workflow.ExecuteActivity(actCtx, hosts.ExportNFS, activities.NFSExportInput{
		InstanceID: instance, Path: a.mountPoint, Clients: demoNFSClients, Options: demoNFSOptions,
	}).Get(ctx, nil); err != nil {
		return fmt.Errorf("export: %w", err)
	}
	return nil
}
