package workflows

import (
	"fmt"
	"strings"
	"time"

	"go.temporal.io/sdk/workflow"

	"github.com/anyops/anyops"
	"github.com/anyops/anyops/activities"
)

// BuildServerWorkflowType is the registered name of BuildServer.
const BuildServerWorkflowType = "BuildServer"

// BuildServerWorkflowID is the business key of building one server: one build per name.
func BuildServerWorkflowID(server string) string { return "build-server/" + server }

// BuildServerInput is one server to build.
type BuildServerInput struct {
	// Scope is the idempotency scope of what the build creates: with the build's workflow id
	// and each step it makes the ClientTokens. A build that a later run must find again (the
	// demo fleet) passes a fixed scope; a recovery passes its first run's id.
	Scope   string                   `json:"scope"`
	Server  activities.PlannedServer `json:"server"`
	ImageID string                   `json:"image_id,omitempty"`
	// Volumes are the data volumes to create and attach to the server (their Server is its
	// name): a file or backup server's DRBD backing disks, its logs and Dropbox volumes.
	Volumes []activities.PlannedVolume `json:"volumes,omitempty"`
	Timing  RecoveryTiming             `json:"timing,omitempty"`
	// NotifyWorkflowID, when set, is sent SignalServerRunning with the server (its instance,
	// address and host name) as soon as it runs, before its bootstrap ends.
	NotifyWorkflowID string `json:"notify_workflow_id,omitempty"`
}

// SignalServerRunning is the signal BuildServer sends its NotifyWorkflowID with a BuiltServer
// (no volumes yet) once the server runs and answers.
const SignalServerRunning = "ServerRunning"

// BuiltServer is a server a build made: its instance, the name its host gives itself, and
// where it sees each of its volumes.
type BuiltServer struct {
	Name       string      `json:"name"`
	Role       anyops.Role `json:"role"`
	InstanceID string      `json:"instance_id"`
	PrivateIP  string      `json:"private_ip"`
	VPCID      string      `json:"vpc_id"`
	Hostname   string      `json:"hostname"`
	// Volumes maps volume names to ids, Devices volume names to where the host sees them.
	Volumes map[string]string                  `json:"volumes"`
	Devices map[string]activities.VolumeDevice `json:"devices"`
	// Bootstrapped is false when the host had been bootstrapped for its role before.
	Bootstrapped bool `json:"bootstrapped"`
}

// Steps of BuildServer, as its Status shows them.
const (
	stepLaunch       = "launch"
	stepWaitRunning  = "wait-running"
	stepBootstrap    = "bootstrap"
	stepCreateVols   = "create-volumes"
	stepWaitVolumes  = "wait-volumes-available"
	stepAttachVols   = "attach-volumes"
	stepWaitAttached = "wait-volumes-attached"
	stepFindDevices  = "find-devices"
	stepRecordServer = "record-server"
)

// BuildServerSteps are BuildServer's steps in order.
var BuildServerSteps = []string{stepLaunch, stepWaitRunning, stepBootstrap, stepCreateVols, stepWaitVolumes,
	stepAttachVols, stepWaitAttached, stepFindDevices, stepRecordServer}

// BuildServer builds one server of a role: it launches the instance (a ClientToken from the
// build's id, the scope and the step), waits until it runs, and then at once, side by side,
// bootstraps it through SSM (anyops-bootstrap: the role's packages and services, the ~19
// minutes of a new server) and creates, attaches and finds its data volumes — each found on
// the host by its volume id, never by the name it was attached as (Nitro). Then it records the
// server and its volumes in the inventory. DRBD, md and NFS are the cluster's: they need both
// sides of a pair (BuildCluster, or the recovery that asked for the server). Every call is
// idempotent, so a worker killed at any point, or a second run, creates nothing twice.
func BuildServer(ctx workflow.Context, in BuildServerInput) (BuiltServer, error) {
	tracker, err := NewTracker(ctx, BuildServerSteps...)
	if err != nil {
		return BuiltServer{}, err
	}
	timing := in.Timing.withDefaults()
	image := in.ImageID
	if image == "" {
		image = DemoImageID
	}
	s := in.Server
	_ = workflow.UpsertTypedSearchAttributes(ctx, SearchCluster.ValueSet(s.Cluster), SearchZone.ValueSet(s.Zone), SearchServer.ValueSet(s.Name))
	callCtx := workflow.WithActivityOptions(ctx, timing.callOptions())
	waitCtx := workflow.WithActivityOptions(ctx, timing.waitOptions())
	hostCtx := workflow.WithActivityOptions(ctx, timing.hostOptions())
	res := BuiltServer{Name: s.Name, Role: s.Role, Volumes: map[string]string{}, Devices: map[string]activities.VolumeDevice{}}
	fail := func(step string, err error) (BuiltServer, error) {
		tracker.Fail(step, err)
		return res, err
	}

	tracker.Start(stepLaunch, fmt.Sprintf("launching %s (%s) in %s", s.Name, s.InstanceType, s.Zone))
	var inst activities.Instance
	if err := workflow.ExecuteActivity(callCtx, recCloud.RunInstance, activities.RunInstanceInput{
		Scope: in.Scope, Step: "launch/" + s.Name, Name: s.Name, ImageID: image, InstanceType: s.InstanceType, Zone: s.Zone, Tags: s.InstanceTags(),
	}).Get(ctx, &inst); err != nil {
		return fail(stepLaunch, err)
	}
	res.InstanceID, res.PrivateIP, res.VPCID = inst.ID, inst.PrivateIP, inst.VPCID
	tracker.Done(stepLaunch, inst.ID)

	tracker.Start(stepWaitRunning, "waiting for "+inst.ID+" to run")
	if err := workflow.ExecuteActivity(waitCtx, recCloud.WaitInstanceRunning, activities.WaitInstanceInput{
		InstanceID: inst.ID, PollInterval: timing.PollInterval,
	}).Get(ctx, nil); err != nil {
		return fail(stepWaitRunning, err)
	}
	tracker.Done(stepWaitRunning, inst.ID+" running")

	// The bootstrap is the long part: it starts first and runs while the volumes are made.
	tracker.Start(stepBootstrap, fmt.Sprintf("anyops-bootstrap --role %s on %s", s.Role, inst.ID))
	// The command's own bound (SSM's executionTimeout) runs on the host's clock, which under
	// cloudsim is simulated already: the policy's bound in simulated time, never its real time.
	boot := workflow.ExecuteActivity(workflow.WithActivityOptions(ctx, timing.longHostOptions(timing.BuildTimeout)),
		recHosts.Bootstrap, activities.BootstrapInput{InstanceID: inst.ID, Role: s.Role, Timeout: timing.onHost(timing.BuildTimeout)})

	var name string
	if err := workflow.ExecuteActivity(hostCtx, recHosts.HostName, activities.InstanceRef{InstanceID: inst.ID}).Get(ctx, &name); err != nil {
		return fail(stepBootstrap, fmt.Errorf("host name: %w", err))
	}
	res.Hostname = name
	if in.NotifyWorkflowID != "" {
		// Whoever asked may start to use the running host (attach volumes, set DRBD up) while
		// it bootstraps.
		running := res
		running.Volumes, running.Devices = nil, nil
		if err := workflow.SignalExternalWorkflow(ctx, in.NotifyWorkflowID, "", SignalServerRunning, running).Get(ctx, nil); err != nil {
			workflow.GetLogger(ctx).Warn("could not tell the server runs", "workflow", in.NotifyWorkflowID, "err", err)
		}
	}

	created, err := createVolumes(ctx, callCtx, tracker, in.Scope, in.Volumes)
	if err != nil {
		return res, err
	}
	for name, v := range created {
		res.Volumes[name] = v.ID
	}
	if err := attachVolumes(ctx, callCtx, waitCtx, hostCtx, tracker, timing, inst.ID, in.Volumes, res.Volumes, created, res.Devices); err != nil {
		return res, err
	}
	var booted activities.BootstrapOutput
	if err := boot.Get(ctx, &booted); err != nil {
		return fail(stepBootstrap, err)
	}
	res.Bootstrapped = !booted.Already
	tracker.Done(stepBootstrap, lastLineOf(booted.Result.Stdout))

	tracker.Start(stepRecordServer, "recording "+s.Name+" in the inventory")
	rec := activities.FleetRecord{Servers: []activities.ServerRecord{{PlannedServer: s, InstanceID: inst.ID, PrivateIP: inst.PrivateIP, State: anyops.ServerRunning}}}
	for _, v := range in.Volumes {
		rec.Volumes = append(rec.Volumes, volumeRecord(v, res.Volumes[v.Name], s.Name))
	}
	if err := workflow.ExecuteActivity(callCtx, recInv.RecordFleet, rec).Get(ctx, nil); err != nil {
		return fail(stepRecordServer, err)
	}
	tracker.Done(stepRecordServer, fmt.Sprintf("%s and %d volumes recorded", s.Name, len(in.Volumes)))
	tracker.Finish(fmt.Sprintf("%s built: %s at %s (%s), %d volumes", s.Name, inst.ID, inst.PrivateIP, name, len(in.Volumes)))
	return res, nil
}

// volumeRecord is the inventory row of a planned volume attached to server.
func volumeRecord(v activities.PlannedVolume, id, server string) activities.VolumeRecord {
	return activities.VolumeRecord{VolumeID: id, Kind: v.Kind, Criticality: v.Criticality, SizeGiB: v.SizeGiB, Zone: v.Zone,
		Cluster: v.Cluster, Server: server, Device: v.Device, RAIDGroup: v.RAIDGroup, State: anyops.VolumeInUse}
}

// createVolumes creates the planned volumes (ClientTokens from the step "create/<name>"),
// waits for the new ones, and returns them by name.
func createVolumes(ctx, callCtx workflow.Context, tracker *Tracker, scope string, volumes []activities.PlannedVolume) (map[string]activities.Volume, error) {
	out := map[string]activities.Volume{}
	// A DRBD volume's peer is tagged once the cluster knows it (BuildCluster).
	err := eachVolume(ctx, volumes, stepCreateVols, tracker, func(v activities.PlannedVolume) workflow.Future {
		return workflow.ExecuteActivity(callCtx, recCloud.CreateVolume, activities.CreateVolumeInput{
			Scope: scope, Step: "create/" + v.Name, Name: v.Name, Zone: v.Zone, SizeGiB: v.SizeGiB, Tags: v.VolumeTags(""),
		})
	}, "creating the data volumes", "volumes created", func(v activities.PlannedVolume, f workflow.Future) error {
		var vol activities.Volume
		if err := f.Get(ctx, &vol); err != nil {
			return err
		}
		out[v.Name] = vol
		return nil
	})
	return out, err
}

// attachVolumes waits until the volumes just created are available (a volume an earlier run
// attached is in-use and never available again), attaches each to the instance at its planned
// device, waits for the attachments and finds each volume's device on the host by its id.
func attachVolumes(ctx, callCtx, waitCtx, hostCtx workflow.Context, tracker *Tracker, timing RecoveryTiming, instance string,
	volumes []activities.PlannedVolume, ids map[string]string, created map[string]activities.Volume, devices map[string]activities.VolumeDevice) error {
	var creating []activities.PlannedVolume
	for _, v := range volumes {
		if created[v.Name].State == string(anyops.VolumeCreating) {
			creating = append(creating, v)
		}
	}
	if err := eachVolume(ctx, creating, stepWaitVolumes, tracker, func(v activities.PlannedVolume) workflow.Future {
		return workflow.ExecuteActivity(waitCtx, recCloud.WaitVolumeAvailable, activities.WaitVolumeInput{VolumeID: ids[v.Name], PollInterval: timing.PollInterval})
	}, "waiting for the new volumes to become available", "volumes available", nil); err != nil {
		return err
	}
	if err := eachVolume(ctx, volumes, stepAttachVols, tracker, func(v activities.PlannedVolume) workflow.Future {
		return workflow.ExecuteActivity(callCtx, recCloud.AttachVolume, activities.AttachVolumeInput{VolumeID: ids[v.Name], InstanceID: instance, Device: v.Device})
	}, "attaching the volumes", "volumes attached", nil); err != nil {
		return err
	}
	if err := eachVolume(ctx, volumes, stepWaitAttached, tracker, func(v activities.PlannedVolume) workflow.Future {
		return workflow.ExecuteActivity(waitCtx, recCloud.WaitVolumeAttached, activities.WaitVolumeInput{VolumeID: ids[v.Name], PollInterval: timing.PollInterval})
	}, "waiting for the attachments", "volumes attached and seen by their host", nil); err != nil {
		return err
	}
	return eachVolume(ctx, volumes, stepFindDevices, tracker, func(v activities.PlannedVolume) workflow.Future {
		return workflow.ExecuteActivity(hostCtx, recHosts.FindVolumeDevice, activities.VolumeDeviceInput{InstanceID: instance, VolumeID: ids[v.Name]})
	}, "finding each volume's device by its id", "devices found", func(v activities.PlannedVolume, f workflow.Future) error {
		var d activities.VolumeDevice
		if err := f.Get(ctx, &d); err != nil {
			return err
		}
		devices[v.Name] = d
		return nil
	})
}

// longHostOptions are the options of a host command that runs for up to d (a bootstrap, a
// file system check of a big volume): it heartbeats every SSM poll, so the heartbeat timeout
// finds a dead worker long before d is over.
func (t RecoveryTiming) longHostOptions(d time.Duration) workflow.ActivityOptions {
	o := t.hostOptions()
	o.StartToCloseTimeout = d + o.StartToCloseTimeout
	return o
}

// boundedWaitOptions are the options of a wait that heartbeats every poll and may last d.
func (t RecoveryTiming) boundedWaitOptions(d time.Duration) workflow.ActivityOptions {
	o := t.waitOptions()
	o.StartToCloseTimeout = d
	return o
}

// lastLineOf is the last non-empty line of a command's output, for a step's message.
func lastLineOf(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return lines[len(lines)-1]
}
