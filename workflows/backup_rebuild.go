package workflows

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/anyops/anyops"
	"github.com/anyops/anyops/activities"
)

// BackupRebuild (backup-rebuild/<server>) replaces a failed backup server by a new one: the
// file server's data has no hot copy until the new backup is UpToDate, and the workflow shows
// that time. It fences the failed backup, takes the server it is given (a failover's kept
// server), the zone's warm spare or a new one, gives it a volume per DRBD resource — seeded
// from a snapshot of the serving volume when that is estimated to finish before a full resync
// (the snapshot reads the serving disk, the only copy: its load shows in Status), else empty —
// writes each resource's file on both sides with the new server in the failed one's place, and
// waits until every resource is UpToDate. A failover runs it as a child for a side that
// cannot come back.
func BackupRebuild(ctx workflow.Context, in BackupRebuildInput) (BackupRebuildResult, error) {
	r := &rebuild{in: in, timing: in.Timing.withDefaults(), policy: in.Policy.withDefaults(), scope: workflow.GetInfo(ctx).FirstRunID,
		res: BackupRebuildResult{Server: in.Server}}
	var err error
	if r.tracker, err = NewTracker(ctx, BackupRebuildSteps...); err != nil {
		return r.res, err
	}
	for _, step := range []struct {
		name string
		run  func(workflow.Context) error
	}{
		{stepAssess, r.assess}, {stepRebuildFence, r.fence}, {stepRebuildServer, r.server}, {stepRebuildVolumes, r.volumes},
		{stepConfigDRBD, r.configure}, {stepResync, r.resync}, {stepRecord, r.record},
	} {
		if err := step.run(ctx); err != nil {
			r.tracker.Fail(step.name, err)
			noteIncident(ctx, r.timing, in.IncidentID, fmt.Sprintf("backup rebuild of %s failed at %s: %v", in.Server, step.name, err))
			return r.res, err
		}
	}
	red := r.tracker.Redundancy()
	r.res.NoHotBackupSeconds = red.NoHotBackupSeconds
	msg := fmt.Sprintf("%s replaces %s as the backup of %s: every resource UpToDate (seeded by %s) after %.0f s without a hot backup",
		r.res.Backup.Name, in.Server, r.primary.Name, r.res.Seed, red.NoHotBackupSeconds)
	r.tracker.Finish(msg)
	resolveIncident(ctx, r.timing, in.IncidentID, msg)
	return r.res, nil
}

// Steps of BackupRebuild, as its Status shows them.
const (
	stepRebuildFence   = "fence"
	stepRebuildServer  = "new-server"
	stepRebuildVolumes = "seed-volumes"
	stepResync         = "resync"
)

// BackupRebuildSteps are BackupRebuild's steps in order.
var BackupRebuildSteps = []string{stepAssess, stepRebuildFence, stepRebuildServer, stepRebuildVolumes, stepConfigDRBD, stepResync, stepRecord}

// BackupRebuildResult is what a backup rebuild did.
type BackupRebuildResult struct {
	Server string `json:"server"`
	// Backup is the new backup server.
	Backup activities.ServerInfo `json:"backup"`
	// Seed is how its volumes got their first copy: snapshot or resync.
	Seed anyops.SeedPolicy `json:"seed"`
	// Volumes maps each DRBD resource to the new backup's volume.
	Volumes            map[string]string `json:"volumes"`
	NoHotBackupSeconds float64           `json:"no_hot_backup_seconds"`
}

// rebuild is one run of BackupRebuild.
type rebuild struct {
	in      BackupRebuildInput
	timing  RecoveryTiming
	policy  RebuildPolicy
	scope   string
	tracker *Tracker
	res     BackupRebuildResult

	target    activities.RecoveryTarget
	primary   activities.ServerInfo
	resources []activities.ReplicaInfo // the failed backup's resources
	backup    activities.ServerInfo    // the new one
	host      string
	devices   map[string]activities.VolumeDevice // resource -> the new volume's device
}

func (r *rebuild) callCtx(ctx workflow.Context) workflow.Context {
	return workflow.WithActivityOptions(ctx, r.timing.callOptions())
}
func (r *rebuild) hostCtx(ctx workflow.Context) workflow.Context {
	return workflow.WithActivityOptions(ctx, r.timing.hostOptions())
}

// assess reads the failed backup's resources and their serving side.
func (r *rebuild) assess(ctx workflow.Context) error {
	r.tracker.Start(stepAssess, "reading "+r.in.Server+" from the inventory")
	noteIncident(ctx, r.timing, r.in.IncidentID, fmt.Sprintf("backup rebuild of %s started (requested by %s)", r.in.Server, r.in.RequestedBy))
	if err := workflow.ExecuteActivity(r.callCtx(ctx), recInv.RecoveryTarget, activities.RecoveryTargetInput{Server: r.in.Server}).Get(ctx, &r.target); err != nil {
		return err
	}
	for _, rep := range r.target.Replicas {
		if rep.SecondaryServer == r.in.Server {
			r.resources = append(r.resources, rep)
		}
	}
	if len(r.resources) == 0 {
		return temporal.NewNonRetryableApplicationError(fmt.Sprintf("%s is the backup of no DRBD resource", r.in.Server), anyops.EINVALID, nil)
	}
	r.primary = r.target.Peers[r.resources[0].PrimaryServer]
	_ = workflow.UpsertTypedSearchAttributes(ctx, SearchCluster.ValueSet(r.target.Server.Cluster), SearchZone.ValueSet(r.target.Server.Zone))
	var health activities.InstanceHealth
	since := workflow.Now(ctx)
	if err := workflow.ExecuteActivity(r.callCtx(ctx), recCloud.InstanceStatus, activities.InstanceRef{InstanceID: r.target.Server.InstanceID}).Get(ctx, &health); err == nil &&
		health.ImpairedSince != nil && health.ImpairedSince.Before(since) && since.Sub(*health.ImpairedSince) < r.timing.SyncTimeout {
		since = *health.ImpairedSince // as FileServerFailover: the cloud's clock, when plausible
	}
	r.tracker.SetRedundancy(Redundancy{NoHotBackupSince: &since, Speed: r.timing.Speed, Message: fmt.Sprintf("%s serves the only copy until a new backup is UpToDate", r.primary.Name)})
	r.tracker.Done(stepAssess, fmt.Sprintf("%d resources of %s had their backup on %s", len(r.resources), r.primary.Name, r.in.Server))
	return nil
}

// fence stops the failed backup for good (a forced stop): it must not come back beside its
// replacement. Its volumes stay where they are, a stale copy, never deleted here.
func (r *rebuild) fence(ctx workflow.Context) error {
	if r.in.Onto == r.in.Server || r.target.Server.InstanceID == "" {
		r.tracker.Done(stepRebuildFence, "nothing to fence")
		return nil
	}
	r.tracker.Start(stepRebuildFence, "force-stopping "+r.in.Server)
	var f activities.Fence
	if err := workflow.ExecuteActivity(r.callCtx(ctx), recCloud.FenceInstance, activities.FenceInput{InstanceID: r.target.Server.InstanceID}).Get(ctx, &f); err != nil {
		return err
	}
	r.tracker.Done(stepRebuildFence, fmt.Sprintf("%s %s after a forced stop", r.in.Server, f.State))
	return nil
}

// server takes the server given, the zone's spare, or builds a new backup server.
func (r *rebuild) server(ctx workflow.Context) error {
	r.tracker.Start(stepRebuildServer, "choosing the new backup server")
	switch {
	case r.in.Onto != "":
		var t activities.RecoveryTarget
		if err := workflow.ExecuteActivity(r.callCtx(ctx), recInv.RecoveryTarget, activities.RecoveryTargetInput{Server: r.in.Onto}).Get(ctx, &t); err != nil {
			return err
		}
		r.backup = t.Server
	case len(r.target.Spares) > 0:
		r.backup = r.target.Spares[0]
	default:
		name := replacementName(r.in.Server, r.scope)
		r.tracker.Start(stepRebuildServer, "building "+name+" (about 20 minutes, most of it bootstrap)")
		planned := activities.PlannedServer{Name: name, Role: anyops.RoleBackup, Zone: r.target.Server.Zone, Cluster: r.target.Server.Cluster, InstanceType: r.target.Server.InstanceType}
		var built BuiltServer
		if err := workflow.ExecuteChildWorkflow(workflow.WithChildOptions(ctx, workflow.ChildWorkflowOptions{
			WorkflowID: BuildServerWorkflowID(name), WorkflowExecutionTimeout: r.timing.BuildTimeout + r.timing.WaitTimeout,
		}), BuildServerWorkflowType, BuildServerInput{Scope: r.scope, Server: planned, ImageID: r.policy.ImageID, Timing: r.in.Timing}).Get(ctx, &built); err != nil {
			return err
		}
		r.backup = activities.ServerInfo{Name: name, Role: anyops.RoleBackup, Zone: planned.Zone, Cluster: planned.Cluster, InstanceID: built.InstanceID,
			InstanceType: planned.InstanceType, PrivateIP: built.PrivateIP, State: anyops.ServerRunning}
	}
	// A file or backup server is bootstrapped for either role: the same packages and services.
	if r.backup.Role != anyops.RoleFile && r.backup.Role != anyops.RoleBackup {
		if err := workflow.ExecuteActivity(workflow.WithActivityOptions(ctx, r.timing.longHostOptions(r.timing.BuildTimeout)), recHosts.Bootstrap,
			activities.BootstrapInput{InstanceID: r.backup.InstanceID, Role: anyops.RoleBackup, Timeout: r.timing.onHost(r.timing.BuildTimeout)}).Get(ctx, nil); err != nil {
			return err
		}
	}
	if err := workflow.ExecuteActivity(r.hostCtx(ctx), recHosts.HostName, activities.InstanceRef{InstanceID: r.backup.InstanceID}).Get(ctx, &r.host); err != nil {
		return err
	}
	r.res.Backup = r.backup
	r.tracker.Done(stepRebuildServer, fmt.Sprintf("%s (%s, %s)", r.backup.Name, r.backup.InstanceID, r.backup.PrivateIP))
	return nil
}

// Rates of the simulated (and, roughly, the real) cloud that seedChoice weighs.
const (
	resyncRate       = 100e6 // DRBD resync, bytes per second
	firstSnapRate    = 20e6  // a volume's first snapshot
	incrementalRate  = 200e6 // a later snapshot reads 5% of the volume at this rate
	incrementalShare = 0.05
	changeRate       = 5e6 // what a busy file server writes: what the seed misses since its snapshot
)

// seedChoice says whether seeding a new replica of a volume of sizeGiB from a snapshot beats a
// full resync: with a snapshot of it already (taken age ago) the next one is incremental, and
// only what was written since it must resync; without one, a first snapshot reads the whole
// volume at a fifth of the resync's speed and never wins.
func seedChoice(policy anyops.SeedPolicy, sizeGiB int32, last *activities.Snapshot, age time.Duration) (anyops.SeedPolicy, time.Duration, time.Duration) {
	size := float64(sizeGiB) * (1 << 30)
	resync := time.Duration(size / resyncRate * float64(time.Second))
	snap := time.Duration(size / firstSnapRate * float64(time.Second))
	if last != nil {
		snap = time.Duration((size*incrementalShare/incrementalRate + min(size, changeRate*age.Seconds())/resyncRate) * float64(time.Second))
	}
	switch policy {
	case anyops.SeedSnapshot:
		return anyops.SeedSnapshot, snap, resync
	case anyops.SeedResync:
		return anyops.SeedResync, snap, resync
	}
	if snap < resync {
		return anyops.SeedSnapshot, snap, resync
	}
	return anyops.SeedResync, snap, resync
}

// volumes gives the new backup a volume per resource, as large as the serving one, seeded from
// a snapshot of it or empty, attached at the serving volume's device and found on the host.
func (r *rebuild) volumes(ctx workflow.Context) error {
	r.tracker.Start(stepRebuildVolumes, "estimating snapshot against resync")
	serving := map[string]activities.VolumeInfo{}
	for _, v := range r.target.PeerVolumes {
		serving[v.DRBDResource] = v
	}
	first := serving[r.resources[0].Name]
	var last activities.LatestSnapshotOutput
	if err := workflow.ExecuteActivity(r.callCtx(ctx), recCloud.LatestSnapshot, activities.LatestSnapshotInput{VolumeID: first.VolumeID}).Get(ctx, &last); err != nil {
		return err
	}
	var snap *activities.Snapshot
	var age time.Duration
	if last.Found {
		snap, age = &last.Snapshot, workflow.Now(ctx).Sub(last.Snapshot.TakenAt())
	}
	seed, snapTime, resyncTime := seedChoice(r.policy.Seed, first.SizeGiB, snap, age)
	r.res.Seed = seed
	r.tracker.Event(fmt.Sprintf("seed by %s (policy %s): a snapshot would take about %s, a full resync %s", seed, r.policy.Seed, snapTime.Round(time.Second), resyncTime.Round(time.Second)))
	callCtx := r.callCtx(ctx)
	waitCtx := workflow.WithActivityOptions(ctx, r.timing.boundedWaitOptions(r.timing.SyncTimeout))
	r.res.Volumes = map[string]string{}
	created := map[string]activities.Volume{}
	for _, rep := range r.resources {
		v := serving[rep.Name]
		name := r.backup.Name + "/" + rep.Name
		tags := map[string]string{anyops.TagKind: string(v.Kind), anyops.TagCriticality: string(v.Criticality), anyops.TagCluster: v.Cluster,
			anyops.TagDRBDResource: rep.Name, anyops.TagDRBDRole: activities.DRBDSecondary, anyops.TagDRBDPeer: r.primary.InstanceID}
		if v.RAIDGroup != "" {
			tags[anyops.TagRAID] = v.RAIDGroup
		}
		var vol activities.Volume
		if seed == anyops.SeedSnapshot {
			r.tracker.Start(stepRebuildVolumes, fmt.Sprintf("snapshot of %s on %s: it reads the serving disk, the only copy of the data, while it runs", v.VolumeID, r.primary.Name))
			var s activities.Snapshot
			if err := workflow.ExecuteActivity(workflow.WithActivityOptions(ctx, r.timing.hostOptions()), recCloud.CreateSnapshot, activities.CreateSnapshotInput{
				Scope: r.scope, Step: "seed/" + rep.Name, VolumeID: v.VolumeID, Name: name + "-seed", Description: "seed of a new backup of " + rep.Name,
			}).Get(ctx, &s); err != nil {
				return err
			}
			if err := workflow.ExecuteActivity(waitCtx, recCloud.WaitSnapshot, activities.WaitSnapshotInput{SnapshotID: s.ID, PollInterval: r.timing.PollInterval}).Get(ctx, &s); err != nil {
				return err
			}
			r.tracker.Event(fmt.Sprintf("snapshot %s of %s complete", s.ID, v.VolumeID))
			if err := workflow.ExecuteActivity(callCtx, recCloud.CreateVolumeFromSnapshot, activities.CreateVolumeFromSnapshotInput{
				Scope: r.scope, Step: "create/" + name, Name: name, SnapshotID: s.ID, Zone: r.backup.Zone, Tags: tags,
			}).Get(ctx, &vol); err != nil {
				return err
			}
		} else if err := workflow.ExecuteActivity(callCtx, recCloud.CreateVolume, activities.CreateVolumeInput{
			Scope: r.scope, Step: "create/" + name, Name: name, Zone: r.backup.Zone, SizeGiB: v.SizeGiB, Tags: tags,
		}).Get(ctx, &vol); err != nil {
			return err
		}
		created[rep.Name] = vol
		r.res.Volumes[rep.Name] = vol.ID
	}
	planned := make([]activities.PlannedVolume, 0, len(r.resources))
	ids, byName := map[string]string{}, map[string]activities.Volume{}
	for _, rep := range r.resources {
		name := r.backup.Name + "/" + rep.Name
		planned = append(planned, activities.PlannedVolume{Name: name, Device: serving[rep.Name].Device})
		ids[name], byName[name] = created[rep.Name].ID, created[rep.Name]
	}
	devices := map[string]activities.VolumeDevice{}
	if err := attachVolumes(ctx, callCtx, r.waitCtx(ctx), r.hostCtx(ctx), r.tracker, r.timing, r.backup.InstanceID, planned, ids, byName, devices); err != nil {
		return err
	}
	r.devices = map[string]activities.VolumeDevice{}
	for _, rep := range r.resources {
		r.devices[rep.Name] = devices[r.backup.Name+"/"+rep.Name]
	}
	r.tracker.Done(stepRebuildVolumes, fmt.Sprintf("%d volumes (%s) attached to %s", len(r.resources), seed, r.backup.Name))
	return nil
}

func (r *rebuild) waitCtx(ctx workflow.Context) workflow.Context {
	return workflow.WithActivityOptions(ctx, r.timing.waitOptions())
}

// configure writes each resource's file with the new backup in the failed one's place (its
// node id), on the serving side (adjusted: up, it connects to the new peer) and the new
// backup, creates metadata where there is none, and brings the resources up there: the
// resync starts.
func (r *rebuild) configure(ctx workflow.Context) error {
	r.tracker.Start(stepConfigDRBD, fmt.Sprintf("DRBD on %s in %s's place", r.backup.Name, r.in.Server))
	hostCtx := r.hostCtx(ctx)
	var names []string
	for _, rep := range r.resources {
		names = append(names, rep.Name)
	}
	confs, err := readDRBDConfigs(ctx, hostCtx, r.primary.InstanceID, names)
	if err != nil {
		return err
	}
	var pairs []drbdPair
	for _, rep := range r.resources {
		conf := confs[rep.Name]
		i := slices.IndexFunc(conf.Nodes, func(n activities.DRBDNode) bool { return n.Address == r.primary.PrivateIP })
		if i < 0 {
			return temporal.NewNonRetryableApplicationError(fmt.Sprintf("the file of %s on %s does not name it (%s)", rep.Name, r.primary.Name, r.primary.PrivateIP), activities.ErrUnexpectedOutput, nil)
		}
		own, other := conf.Nodes[i], conf.Nodes[1-i]
		pairs = append(pairs, drbdPair{Resource: rep.Name, Minor: conf.Minor,
			Primary: drbdSide{Server: r.primary.Name, InstanceID: r.primary.InstanceID, Hostname: own.Hostname, IP: own.Address, Disk: own.Disk, NodeID: own.NodeID},
			Secondary: drbdSide{Server: r.backup.Name, InstanceID: r.backup.InstanceID, Hostname: r.host, IP: r.backup.PrivateIP,
				VolumeID: r.res.Volumes[rep.Name], Disk: r.devices[rep.Name].StablePath(), NodeID: other.NodeID}})
	}
	if err := setUpDRBD(ctx, hostCtx, pairs, true, true); err != nil {
		return err
	}
	r.tracker.Done(stepConfigDRBD, fmt.Sprintf("%d resources up on %s, connecting to %s", len(pairs), r.backup.Name, r.primary.Name))
	return nil
}

// resync waits until every resource is UpToDate on both sides, within SyncTimeout, showing the
// progress and when it should end.
func (r *rebuild) resync(ctx workflow.Context) error {
	r.tracker.Start(stepResync, fmt.Sprintf("%s resyncing from %s", r.backup.Name, r.primary.Name))
	var names []string
	for _, rep := range r.resources {
		names = append(names, rep.Name)
	}
	if _, err := waitInSync(ctx, r.timing, r.tracker, stepResync, r.primary.InstanceID, names, r.backup.Name); err != nil {
		return err
	}
	now := workflow.Now(ctx)
	red := r.tracker.Redundancy()
	red.HotBackup, red.Backup, red.RestoredAt = true, r.backup.Name, &now
	red.Message = fmt.Sprintf("every resource UpToDate on %s and %s", r.primary.Name, r.backup.Name)
	r.tracker.SetRedundancy(red)
	r.tracker.Done(stepResync, red.Message)
	return nil
}

// record writes the new backup's role, its volumes and the replicas into the cloud's tags and
// the inventory; the failed backup stays in it, stopped, with its (stale) volumes.
func (r *rebuild) record(ctx workflow.Context) error {
	r.tracker.Start(stepRecord, "recording "+r.backup.Name+" as the backup")
	if err := workflow.ExecuteActivity(r.callCtx(ctx), recCloud.TagResource, activities.TagResourceInput{ResourceID: r.backup.InstanceID,
		Tags: map[string]string{anyops.TagRole: string(anyops.RoleBackup), anyops.TagCluster: r.target.Server.Cluster}}).Get(ctx, nil); err != nil {
		return err
	}
	b := r.backup
	rec := activities.FleetRecord{Servers: []activities.ServerRecord{{PlannedServer: activities.PlannedServer{Name: b.Name, Role: anyops.RoleBackup, Zone: b.Zone,
		Cluster: r.target.Server.Cluster, InstanceType: b.InstanceType}, InstanceID: b.InstanceID, PrivateIP: b.PrivateIP, State: anyops.ServerRunning}}}
	if r.target.Server.Name != b.Name {
		f := r.target.Server
		rec.Servers = append(rec.Servers, activities.ServerRecord{PlannedServer: activities.PlannedServer{Name: f.Name, Role: anyops.RoleBackup, Zone: f.Zone,
			Cluster: f.Cluster, InstanceType: f.InstanceType}, InstanceID: f.InstanceID, PrivateIP: f.PrivateIP, State: anyops.ServerStopped})
	}
	serving := map[string]activities.VolumeInfo{}
	for _, v := range r.target.PeerVolumes {
		serving[v.DRBDResource] = v
	}
	for _, rep := range r.resources {
		v := serving[rep.Name]
		rec.Volumes = append(rec.Volumes, activities.VolumeRecord{VolumeID: r.res.Volumes[rep.Name], Kind: v.Kind, Criticality: v.Criticality, SizeGiB: v.SizeGiB,
			Zone: b.Zone, Cluster: v.Cluster, Server: b.Name, Device: v.Device, RAIDGroup: v.RAIDGroup, State: anyops.VolumeInUse})
		rec.Replicas = append(rec.Replicas, activities.ReplicaRecord{Name: rep.Name, Cluster: r.target.Server.Cluster, PrimaryServer: r.primary.Name,
			SecondaryServer: b.Name, PrimaryVolume: v.VolumeID, SecondaryVolume: r.res.Volumes[rep.Name]})
	}
	if err := workflow.ExecuteActivity(r.callCtx(ctx), recInv.RecordFleet, rec).Get(ctx, nil); err != nil {
		return err
	}
	r.tracker.Done(stepRecord, fmt.Sprintf("%s is the backup of %s", b.Name, strings.Join(names(r.resources), ", ")))
	return nil
}

func names(rs []activities.ReplicaInfo) []string {
	out := make([]string, len(rs))
	for i, r := range rs {
		out[i] = r.Name
	}
	return out
}

// readDRBDConfigs reads the files of DRBD resources on a host, all at once (hostCtx carries
// the activity options); what could be read is returned with the first error.
func readDRBDConfigs(ctx, hostCtx workflow.Context, instanceID string, resources []string) (map[string]activities.DRBDResourceConfig, error) {
	confs := map[string]activities.DRBDResourceConfig{}
	err := together(ctx, resources, func(name string) string { return name }, func(name string) workflow.Future {
		return workflow.ExecuteActivity(hostCtx, recHosts.ReadDRBDConfig, activities.DRBDResourceInput{InstanceID: instanceID, Resource: name})
	}, func(name string, f workflow.Future) error {
		var conf activities.DRBDResourceConfig
		err := f.Get(ctx, &conf)
		confs[name] = conf
		return err
	})
	return confs, err
}
