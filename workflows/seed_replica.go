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

// SeedReplicaWorkflowType is the registered name of SeedReplica.
const SeedReplicaWorkflowType = "SeedReplica"

// SeedReplicaWorkflowID is the business key of seeding a server with replicas: one at a time.
func SeedReplicaWorkflowID(server string) string { return "seed-replica/" + server }

// SeedNode is a node of a DRBD resource now: its instance and how the resource file names it.
type SeedNode struct {
	InstanceID string              `json:"instance_id"`
	Node       activities.DRBDNode `json:"node"`
	Primary    bool                `json:"primary,omitempty"`
}

// SeedResource is one DRBD resource the new node joins.
type SeedResource struct {
	Name  string     `json:"name"`
	Minor int        `json:"minor"`
	Port  int        `json:"port"`
	Nodes []SeedNode `json:"nodes"`
	// Source is the volume the copy is taken of: a secondary's backing disk, never the
	// serving one; SourceNodeID its node's id, which the copy carries in its metadata.
	Source       string `json:"source"`
	SourceNodeID int    `json:"source_node_id"`
	// SizeGiB of the source; the new volume is at least that.
	SizeGiB int32 `json:"size_gib"`
	// Tags go on the new volume (its kind, cluster, name).
	Tags map[string]string `json:"tags,omitempty"`
}

// SeedReplicaInput is a server to make a new node of DRBD resources, seeded from snapshots of
// a secondary's disks so that it resyncs only what changes after the copy.
type SeedReplicaInput struct {
	Scope  string            `json:"scope"`
	Target BuiltServer       `json:"target"`
	Zone   string            `json:"zone"`
	NodeID int               `json:"node_id"` // the new node's id, free in every resource
	Spec   anyops.VolumeSpec `json:"spec"`    // the new volumes' type etc.; SizeGiB 0: the source's
	Seeds  []SeedResource    `json:"seeds"`
	Policy SeedReplicaPolicy `json:"policy,omitempty"`
	Timing RecoveryTiming    `json:"timing,omitempty"`
}

// SeedReplicaPolicy says how the copies are made.
type SeedReplicaPolicy struct {
	// InitRateMiBps is the new volumes' initialization rate (EBS's provisioned rate, 100–300
	// MiB/s): their blocks load in the background, so a promotion of the new node never reads
	// at the lazy-load rate. 0: DefaultSeedInitRate.
	InitRateMiBps int32 `json:"init_rate_mibps,omitempty"`
	// NoWarmUp skips the warm-up snapshot of each source taken before the seed point, which
	// makes the seed snapshot an incremental one (a first snapshot of a big volume takes hours,
	// and everything written while it runs would have to resync).
	NoWarmUp bool `json:"no_warm_up,omitempty"`
}

// DefaultSeedInitRate is the initialization rate of a seeded volume.
const DefaultSeedInitRate = 300

// SeedReplicaResult names what the seeding made.
type SeedReplicaResult struct {
	// Volumes and Devices map resource names to the new volume and its stable device path.
	Volumes map[string]string `json:"volumes"`
	Devices map[string]string `json:"devices"`
	// Snapshots maps resource names to the seed snapshot.
	Snapshots map[string]string `json:"snapshots"`
	// InSyncAt is when the new node was UpToDate in every resource.
	InSyncAt time.Time `json:"in_sync_at"`
}

// Steps of SeedReplica.
const (
	stepSeedWarmUp   = "warm-up-snapshots"
	stepSeedJoin     = "configure-new-node"
	stepSeedPoint    = "seed-point"
	stepSeedSnapshot = "seed-snapshots"
	stepSeedVolumes  = "seed-volumes"
	stepSeedAdopt    = "adopt-copies"
	stepSeedSync     = "resync-delta"
)

// SeedReplicaSteps are SeedReplica's steps in order.
var SeedReplicaSteps = []string{stepSeedWarmUp, stepSeedJoin, stepSeedPoint, stepSeedSnapshot, stepSeedVolumes, stepSeedAdopt, stepSeedSync}

// SeedReplica makes Target a new node of every resource, with data seeded from snapshots of a
// secondary's disks, as DRBD's user's guide does truck-based replication: the new node in
// every node's resource file (the others adjust; the file server keeps its backup UpToDate
// throughout), a new generation with the bitmaps cleared on the Primary (its bits for the new
// node count from here), a snapshot of each source, a second new generation (the first goes
// into the new node's bitmaps), a volume from each snapshot on Target, its node id fixed,
// the resource brought up there — and it resyncs only what was written since the seed point.
// A warm-up snapshot first makes that seed snapshot an incremental one. Every step is
// idempotent (ClientTokens and tags from the scope and step; the host steps look first), so a
// worker killed anywhere makes nothing twice.
func SeedReplica(ctx workflow.Context, in SeedReplicaInput) (SeedReplicaResult, error) {
	tracker, err := NewTracker(ctx, SeedReplicaSteps...)
	if err != nil {
		return SeedReplicaResult{}, err
	}
	timing := in.Timing.withDefaults()
	callCtx := workflow.WithActivityOptions(ctx, timing.callOptions())
	hostCtx := workflow.WithActivityOptions(ctx, timing.hostOptions())
	waitCtx := workflow.WithActivityOptions(ctx, timing.waitOptions())
	syncCtx := workflow.WithActivityOptions(ctx, timing.boundedWaitOptions(timing.SyncTimeout))
	res := SeedReplicaResult{Volumes: map[string]string{}, Devices: map[string]string{}, Snapshots: map[string]string{}}
	fail := func(step string, err error) (SeedReplicaResult, error) {
		tracker.Fail(step, err)
		return res, err
	}
	if len(in.Seeds) == 0 || in.Target.InstanceID == "" || in.Target.Hostname == "" {
		return res, temporal.NewNonRetryableApplicationError("a seeding needs resources and a built target", activities.ErrInvalidInput, nil)
	}
	newNode := activities.DRBDNode{Hostname: in.Target.Hostname, Address: in.Target.PrivateIP, NodeID: in.NodeID, Disk: activities.DRBDDiskPending}
	config := func(s SeedResource, withNew *activities.DRBDNode) activities.DRBDResourceConfig {
		c := activities.DRBDResourceConfig{Name: s.Name, Minor: s.Minor, Port: s.Port}
		for _, n := range s.Nodes {
			c.Nodes = append(c.Nodes, n.Node)
		}
		if withNew != nil {
			c.Nodes = append(c.Nodes, *withNew)
		}
		return c
	}
	primaryOf := func(s SeedResource) string {
		i := slices.IndexFunc(s.Nodes, func(n SeedNode) bool { return n.Primary })
		if i < 0 {
			return ""
		}
		return s.Nodes[i].InstanceID
	}
	name := func(s SeedResource) string { return s.Name }
	snapshot := func(s SeedResource, step string) workflow.Future {
		return workflow.ExecuteActivity(callCtx, recCloud.CreateSnapshot, activities.CreateSnapshotInput{
			Scope: in.Scope, Step: step + "/" + s.Name, VolumeID: s.Source, Name: s.Name + " " + step,
			Description: fmt.Sprintf("anyops %s of %s for %s", step, s.Name, in.Target.Name), Tags: s.Tags,
		})
	}
	waitSnapshot := func(id string) workflow.Future {
		return workflow.ExecuteActivity(syncCtx, recCloud.WaitSnapshot, activities.WaitSnapshotInput{SnapshotID: id, PollInterval: timing.PollInterval})
	}

	if !in.Policy.NoWarmUp {
		tracker.Start(stepSeedWarmUp, fmt.Sprintf("a first snapshot of %d sources, so the seed snapshot is an incremental one", len(in.Seeds)))
		warm := map[string]string{}
		if err := together(ctx, in.Seeds, name, func(s SeedResource) workflow.Future { return snapshot(s, "seed-warm-up") }, func(s SeedResource, f workflow.Future) error {
			var sn activities.Snapshot
			err := f.Get(ctx, &sn)
			warm[s.Name] = sn.ID
			return err
		}); err != nil {
			return fail(stepSeedWarmUp, err)
		}
		if err := together(ctx, in.Seeds, name, func(s SeedResource) workflow.Future { return waitSnapshot(warm[s.Name]) }, nil); err != nil {
			return fail(stepSeedWarmUp, err)
		}
		tracker.Done(stepSeedWarmUp, "warm-up snapshots completed")
	} else {
		tracker.Done(stepSeedWarmUp, "skipped by policy")
	}

	tracker.Start(stepSeedJoin, fmt.Sprintf("adding %s (node %d) to the resource files of %d resources", in.Target.Name, in.NodeID, len(in.Seeds)))
	type nodeAt struct {
		seed SeedResource
		inst string
		conf activities.DRBDResourceConfig
	}
	var current []nodeAt
	for _, s := range in.Seeds {
		for _, n := range s.Nodes {
			current = append(current, nodeAt{s, n.InstanceID, config(s, &newNode)})
		}
	}
	if err := together(ctx, current, func(n nodeAt) string { return n.seed.Name + " on " + n.inst }, func(n nodeAt) workflow.Future {
		return workflow.ExecuteActivity(hostCtx, recHosts.ConfigureDRBD, activities.ConfigureDRBDInput{InstanceID: n.inst, Resource: n.conf})
	}, nil); err != nil {
		return fail(stepSeedJoin, err)
	}
	tracker.Done(stepSeedJoin, "every node knows the new one")

	tracker.Start(stepSeedPoint, "new generations with the bitmaps cleared on the primaries: the seed point")
	if err := together(ctx, in.Seeds, name, func(s SeedResource) workflow.Future {
		return workflow.ExecuteActivity(hostCtx, recHosts.DRBDNewGeneration, activities.DRBDNewGenerationInput{
			InstanceID: primaryOf(s), Resource: s.Name, ClearBitmap: true, SeedPeer: in.Target.Hostname})
	}, nil); err != nil {
		return fail(stepSeedPoint, err)
	}
	tracker.Done(stepSeedPoint, "the new node's bits count from here")

	tracker.Start(stepSeedSnapshot, "the seed snapshots of the secondaries' disks")
	if err := together(ctx, in.Seeds, name, func(s SeedResource) workflow.Future { return snapshot(s, "seed") }, func(s SeedResource, f workflow.Future) error {
		var sn activities.Snapshot
		err := f.Get(ctx, &sn)
		res.Snapshots[s.Name] = sn.ID
		return err
	}); err != nil {
		return fail(stepSeedSnapshot, err)
	}
	// The copies are taken (their point in time is now): the generation they carry goes into
	// the new node's bitmaps, and writes from here on count there.
	if err := together(ctx, in.Seeds, name, func(s SeedResource) workflow.Future {
		return workflow.ExecuteActivity(hostCtx, recHosts.DRBDNewGeneration, activities.DRBDNewGenerationInput{
			InstanceID: primaryOf(s), Resource: s.Name, SeedPeer: in.Target.Hostname})
	}, nil); err != nil {
		return fail(stepSeedSnapshot, err)
	}
	if err := together(ctx, in.Seeds, name, func(s SeedResource) workflow.Future { return waitSnapshot(res.Snapshots[s.Name]) }, nil); err != nil {
		return fail(stepSeedSnapshot, err)
	}
	tracker.Done(stepSeedSnapshot, "seed snapshots completed")

	tracker.Start(stepSeedVolumes, fmt.Sprintf("volumes from the seed snapshots on %s in %s", in.Target.Name, in.Zone))
	initRate := in.Policy.InitRateMiBps
	if initRate == 0 {
		initRate = DefaultSeedInitRate
	}
	created := map[string]activities.Volume{}
	if err := together(ctx, in.Seeds, name, func(s SeedResource) workflow.Future {
		spec := in.Spec
		return workflow.ExecuteActivity(callCtx, recCloud.CreateVolumeFromSnapshot, activities.CreateVolumeFromSnapshotInput{
			Scope: in.Scope, Step: "seed-volume/" + s.Name + "/" + in.Target.Name, Name: in.Target.Name + "/" + s.Name,
			SnapshotID: res.Snapshots[s.Name], Zone: in.Zone, SizeGiB: max(spec.SizeGiB, s.SizeGiB), VolumeType: string(spec.Type),
			Iops: spec.Iops, Throughput: spec.Throughput, InitRateMiBps: initRate, Tags: s.Tags,
		})
	}, func(s SeedResource, f workflow.Future) error {
		var v activities.Volume
		err := f.Get(ctx, &v)
		created[s.Name], res.Volumes[s.Name] = v, v.ID
		return err
	}); err != nil {
		return fail(stepSeedVolumes, err)
	}
	if err := together(ctx, in.Seeds, name, func(s SeedResource) workflow.Future {
		if created[s.Name].State != string(anyops.VolumeCreating) {
			return readyFuture(ctx)
		}
		return workflow.ExecuteActivity(waitCtx, recCloud.WaitVolumeAvailable, activities.WaitVolumeInput{VolumeID: res.Volumes[s.Name], PollInterval: timing.PollInterval})
	}, nil); err != nil {
		return fail(stepSeedVolumes, err)
	}
	if err := together(ctx, in.Seeds, name, func(s SeedResource) workflow.Future {
		return workflow.ExecuteActivity(callCtx, recCloud.AttachVolume, activities.AttachVolumeInput{VolumeID: res.Volumes[s.Name], InstanceID: in.Target.InstanceID, Device: seedDevice(s.Minor)})
	}, nil); err != nil {
		return fail(stepSeedVolumes, err)
	}
	if err := together(ctx, in.Seeds, name, func(s SeedResource) workflow.Future {
		return workflow.ExecuteActivity(waitCtx, recCloud.WaitVolumeAttached, activities.WaitVolumeInput{VolumeID: res.Volumes[s.Name], PollInterval: timing.PollInterval})
	}, nil); err != nil {
		return fail(stepSeedVolumes, err)
	}
	if err := together(ctx, in.Seeds, name, func(s SeedResource) workflow.Future {
		return workflow.ExecuteActivity(hostCtx, recHosts.FindVolumeDevice, activities.VolumeDeviceInput{InstanceID: in.Target.InstanceID, VolumeID: res.Volumes[s.Name]})
	}, func(s SeedResource, f workflow.Future) error {
		var d activities.VolumeDevice
		err := f.Get(ctx, &d)
		res.Devices[s.Name] = d.StablePath()
		return err
	}); err != nil {
		return fail(stepSeedVolumes, err)
	}
	tracker.Done(stepSeedVolumes, fmt.Sprintf("%d seeded volumes attached", len(res.Volumes)))

	tracker.Start(stepSeedAdopt, "the resource files with the new node's disks, the copies' node ids made its own")
	var all []nodeAt
	for _, s := range in.Seeds {
		n := newNode
		n.Disk = res.Devices[s.Name]
		for _, cur := range s.Nodes {
			all = append(all, nodeAt{s, cur.InstanceID, config(s, &n)})
		}
		all = append(all, nodeAt{s, in.Target.InstanceID, config(s, &n)})
	}
	if err := together(ctx, all, func(n nodeAt) string { return n.seed.Name + " on " + n.inst }, func(n nodeAt) workflow.Future {
		return workflow.ExecuteActivity(hostCtx, recHosts.ConfigureDRBD, activities.ConfigureDRBDInput{InstanceID: n.inst, Resource: n.conf})
	}, nil); err != nil {
		return fail(stepSeedAdopt, err)
	}
	if err := together(ctx, in.Seeds, name, func(s SeedResource) workflow.Future {
		return workflow.ExecuteActivity(hostCtx, recHosts.DRBDAdoptCopy, activities.DRBDAdoptCopyInput{InstanceID: in.Target.InstanceID, Resource: s.Name,
			Minor: s.Minor, Disk: res.Devices[s.Name], FromNodeID: s.SourceNodeID, ToNodeID: in.NodeID})
	}, nil); err != nil {
		return fail(stepSeedAdopt, err)
	}
	tracker.Done(stepSeedAdopt, "copies adopted")

	tracker.Start(stepSeedSync, "bringing the new node up: it resyncs what changed since the seed point")
	if err := together(ctx, in.Seeds, name, func(s SeedResource) workflow.Future {
		return workflow.ExecuteActivity(hostCtx, recHosts.DRBDUp, activities.DRBDResourceInput{InstanceID: in.Target.InstanceID, Resource: s.Name})
	}, nil); err != nil {
		return fail(stepSeedSync, err)
	}
	var names []string
	for _, s := range in.Seeds {
		names = append(names, s.Name)
	}
	if err := waitUpToDate(ctx, hostCtx, in.Target.InstanceID, names, timing); err != nil {
		return fail(stepSeedSync, err)
	}
	res.InSyncAt = workflow.Now(ctx)
	tracker.Done(stepSeedSync, fmt.Sprintf("%s UpToDate in %d resources", in.Target.Name, len(names)))
	tracker.Finish(fmt.Sprintf("%s seeded: %d resources in sync", in.Target.Name, len(names)))
	return res, nil
}

// seedDevice is the device name a seeded volume of a resource is attached as: sdf on, by
// minor (Nitro hosts see NVMe names whatever it is; FindVolumeDevice finds them by id).
func seedDevice(minor int) string { return fmt.Sprintf("/dev/sd%c", 'f'+rune(minor%10)) }

// readyFuture is a future that is already done, for a step with nothing to wait for.
func readyFuture(ctx workflow.Context) workflow.Future {
	f, s := workflow.NewFuture(ctx)
	s.Set(nil, nil)
	return f
}

// ErrResyncTimeout is the error type of a wait for DRBD disks that did not get in sync in time.
const ErrResyncTimeout = "ResyncTimeout"

// waitUpToDate polls `drbdadm status` on an instance until every resource named has an
// UpToDate disk and every connected peer too, or the timing's SyncTimeout passes.
func waitUpToDate(ctx, hostCtx workflow.Context, instance string, resources []string, timing RecoveryTiming) error {
	deadline := workflow.Now(ctx).Add(timing.SyncTimeout)
	for {
		var out activities.DRBDStatusOutput
		if err := workflow.ExecuteActivity(hostCtx, recHosts.DRBDStatus, activities.DRBDStatusInput{InstanceID: instance}).Get(ctx, &out); err != nil {
			return fmt.Errorf("drbdadm status on %s: %w", instance, err)
		}
		pending := 0
		for _, name := range resources {
			i := slices.IndexFunc(out.Resources, func(r activities.DRBDResource) bool { return r.Name == name })
			if i < 0 || !upToDateWithPeers(out.Resources[i]) {
				pending++
			}
		}
		if pending == 0 {
			return nil
		}
		if !workflow.Now(ctx).Before(deadline) {
			return temporal.NewNonRetryableApplicationError(fmt.Sprintf("%d of %d resources on %s not UpToDate after %s", pending, len(resources), instance, timing.SyncTimeout), ErrResyncTimeout, nil)
		}
		if err := workflow.Sleep(ctx, timing.PollInterval); err != nil {
			return err
		}
	}
}

// upToDateWithPeers: the local disk is UpToDate and so is every connected peer's.
func upToDateWithPeers(r activities.DRBDResource) bool {
	if r.Disk != "UpToDate" {
		return false
	}
	connected := 0
	for _, p := range r.Peers {
		if p.Connection == "Connected" {
			connected++
			if p.PeerDisk != "UpToDate" {
				return false
			}
		}
	}
	return connected > 0
}
