package workflows

import (
	"fmt"
	"regexp"
	"slices"
	"strings"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/anyops/anyops"
	"github.com/anyops/anyops/activities"
)

// KindStorageChange is the operation kind of StorageChange.
const KindStorageChange = "storage-change"

// StorageChangeWorkflowType is the registered name of StorageChange.
const StorageChangeWorkflowType = "StorageChange"

// Ways a storage change goes.
const (
	StorageInPlace = "in-place" // Elastic Volumes: the volumes change while attached and UpToDate
	StorageSeed    = "seed"     // a new backup seeded from snapshots of the old one's volumes
	StorageAuto    = "auto"     // in place where every volume allows it, else seed
)

// StorageChangePolicy says how a storage change goes.
type StorageChangePolicy struct {
	// Way is auto (default), in-place or seed.
	Way string `json:"way,omitempty"`
	// InitRateMiBps is the seeded volumes' initialization rate (SeedReplicaPolicy).
	InitRateMiBps int32 `json:"init_rate_mibps,omitempty"`
	// KeepOld leaves the old backup running after it left its resources; by default it is
	// stopped, its volumes kept attached as a further copy.
	KeepOld bool `json:"keep_old,omitempty"`
	// ImageID is the new backup's image; DemoImageID when empty.
	ImageID string `json:"image_id,omitempty"`
}

// StorageChangeInput is the body of POST /v1/operations/storage-change.
type StorageChangeInput struct {
	// Server is the backup (or, in place only, file) server whose DRBD backing volumes change.
	Server string `json:"server"`
	// Spec is the volumes' new configuration; SizeGiB 0 keeps each one's size.
	Spec anyops.VolumeSpec `json:"spec"`
	// Zone moves the backup to another zone (always by seeding); "" keeps its zone.
	Zone string `json:"zone,omitempty"`
	// NewServer names the seeded backup (default <server>-<4 hex digits of the run>);
	// InstanceType is its type (default the old one's).
	NewServer    string `json:"new_server,omitempty"`
	InstanceType string `json:"instance_type,omitempty"`
	// Cluster records the new backup in another cluster than the old one's (a release's new
	// cluster); "" keeps it in the old one's.
	Cluster string              `json:"cluster,omitempty"`
	Policy  StorageChangePolicy `json:"policy,omitempty"`
	Timing  RecoveryTiming      `json:"timing,omitempty"`
	// Scope is the idempotency scope a parent passes (a release); "" is this run's chain.
	Scope       string `json:"scope,omitempty"`
	RequestedBy string `json:"requested_by,omitempty"`
}

func prepareStorageChange(in *StorageChangeInput, actor string) (string, temporal.SearchAttributes, error) {
	if err := setRequestedBy(&in.RequestedBy, actor); err != nil {
		return "", temporal.SearchAttributes{}, err
	}
	if err := in.validate(); err != nil {
		return "", temporal.SearchAttributes{}, err
	}
	return anyops.StorageChangeWorkflowID(in.Server), temporal.NewSearchAttributes(SearchServer.ValueSet(in.Server)), nil
}

func (in StorageChangeInput) validate() error {
	if !reServerName.MatchString(in.Server) {
		return anyops.Errorf(anyops.EINVALID, "server %q is not a server name (lower-case letters, digits and dashes, at most 63)", in.Server)
	}
	if in.NewServer != "" && (!reServerName.MatchString(in.NewServer) || in.NewServer == in.Server) {
		return anyops.Errorf(anyops.EINVALID, "new_server %q is not a server name other than server", in.NewServer)
	}
	if in.Cluster != "" && !reServerName.MatchString(in.Cluster) {
		return anyops.Errorf(anyops.EINVALID, "cluster %q is not a cluster name", in.Cluster)
	}
	if _, err := anyops.ParseVolumeType(string(in.Spec.Type)); err != nil {
		return anyops.Errorf(anyops.EINVALID, "spec.type: %v", err)
	}
	if in.Spec.SizeGiB != 0 {
		if err := in.Spec.Check(); err != nil {
			return anyops.Errorf(anyops.EINVALID, "spec: %v", err)
		}
	}
	if in.Zone != "" && !reZone.MatchString(in.Zone) {
		return anyops.Errorf(anyops.EINVALID, "zone %q is not an availability zone name", in.Zone)
	}
	if len(in.InstanceType) > 64 || len(in.Policy.ImageID) > 128 {
		return anyops.Errorf(anyops.EINVALID, "instance_type or policy.image_id too long")
	}
	switch in.Policy.Way {
	case "", StorageAuto, StorageInPlace, StorageSeed:
	default:
		return anyops.Errorf(anyops.EINVALID, "policy.way %q is not one of auto, in-place, seed", in.Policy.Way)
	}
	if in.Policy.InitRateMiBps != 0 && (in.Policy.InitRateMiBps < 100 || in.Policy.InitRateMiBps > 300) {
		return anyops.Errorf(anyops.EINVALID, "policy.init_rate_mibps is 100 to 300 (EBS's provisioned initialization rate)")
	}
	if in.Zone != "" && in.Policy.Way == StorageInPlace {
		return anyops.Errorf(anyops.EINVALID, "moving to zone %s cannot be done in place", in.Zone)
	}
	return in.Timing.validate()
}

// StorageChangeResult says what changed.
type StorageChangeResult struct {
	Way string `json:"way"`
	// Volumes are the volumes changed in place, or the new backup's seeded volumes, by
	// resource.
	Volumes map[string]string `json:"volumes"`
	// NewServer is the seeded backup, with its instance; OldServer the one it replaced.
	NewServer  string `json:"new_server,omitempty"`
	InstanceID string `json:"instance_id,omitempty"`
	OldServer  string `json:"old_server,omitempty"`
	// FileServer is the primary whose resources were kept with an UpToDate peer throughout.
	FileServer string `json:"file_server"`
	// Reasons says why each volume went the way it did (anyops.InPlace's words).
	Reasons []string `json:"reasons,omitempty"`
}

// Steps of StorageChange.
const (
	stepSCPlan     = "plan"
	stepSCModify   = "modify-in-place"
	stepSCBuild    = "build-new-backup"
	stepSCSeed     = "seed-new-backup"
	stepSCCheckHot = "check-new-backup-hot"
	stepSCRetire   = "retire-old-backup"
	stepSCRecord   = "record"
)

// StorageChangeSteps are StorageChange's steps in order (one of modify and build..retire runs).
var StorageChangeSteps = []string{stepSCPlan, stepSCModify, stepSCBuild, stepSCSeed, stepSCCheckHot, stepSCRetire, stepSCRecord}

// reZone is an availability zone's name: us-east-1c.
var reZone = regexp.MustCompile(`^[a-z]{2}(-[a-z]+)+-[0-9][a-z]$`)

// ErrFileServerLost is the error type of a storage change that stopped because its file
// server no longer serves (a failover is in charge; the old backup was never touched).
const ErrFileServerLost = "FileServerLost"

// StorageChange changes a backup's DRBD backing volumes (type, size, IOPS, throughput, zone)
// without ever leaving its file server with no hot copy. In place, where Elastic Volumes allow
// every volume's change and the zone stays: ModifyVolume, the volumes stay attached and
// UpToDate. Otherwise a new backup is built and seeded (SeedReplica: a third DRBD node whose
// volumes come from snapshots of the old backup's, resyncing only what changed since), and
// only once it is UpToDate in every resource — the no-uptodate-peer interlock, checked on the
// file server — does the old backup leave the resources and stop, its volumes kept as a
// further copy. A file server's volumes change only in place. If the file server stops
// serving meanwhile the change stops before it touches the old backup: the failover promotes
// it, still hot.
func StorageChange(ctx workflow.Context, in StorageChangeInput) (StorageChangeResult, error) {
	tracker, err := NewTracker(ctx, StorageChangeSteps...)
	if err != nil {
		return StorageChangeResult{}, err
	}
	timing := in.Timing.withDefaults()
	callCtx := workflow.WithActivityOptions(ctx, timing.callOptions())
	hostCtx := workflow.WithActivityOptions(ctx, timing.hostOptions())
	waitCtx := workflow.WithActivityOptions(ctx, timing.boundedWaitOptions(timing.SyncTimeout))
	scope := in.Scope
	if scope == "" {
		scope = workflow.GetInfo(ctx).FirstRunID
	}
	res := StorageChangeResult{Volumes: map[string]string{}}
	fail := func(step string, err error) (StorageChangeResult, error) {
		tracker.Fail(step, err)
		return res, err
	}

	tracker.Start(stepSCPlan, "reading "+in.Server+", its file server and its volumes")
	var target activities.RecoveryTarget
	if err := workflow.ExecuteActivity(callCtx, recInv.RecoveryTarget, activities.RecoveryTargetInput{Server: in.Server}).Get(ctx, &target); err != nil {
		return fail(stepSCPlan, err)
	}
	_ = workflow.UpsertTypedSearchAttributes(ctx, SearchCluster.ValueSet(target.Server.Cluster), SearchZone.ValueSet(target.Server.Zone))
	var fileServer activities.ServerInfo
	for _, r := range target.Replicas {
		if p, ok := target.Peers[r.PrimaryServer]; ok && r.SecondaryServer == in.Server {
			fileServer = p
		}
	}
	role := target.Server.Role
	var drbdVols []activities.VolumeInfo
	for _, v := range target.Volumes {
		if v.DRBDResource != "" {
			drbdVols = append(drbdVols, v)
		}
	}
	if len(drbdVols) == 0 {
		return fail(stepSCPlan, temporal.NewNonRetryableApplicationError(in.Server+" backs no DRBD resource", activities.ErrInvalidInput, nil))
	}
	var ids []string
	for _, v := range drbdVols {
		ids = append(ids, v.VolumeID)
	}
	var current []activities.Volume
	if err := workflow.ExecuteActivity(callCtx, recCloud.DescribeVolumes, activities.DescribeVolumesInput{VolumeIDs: ids}).Get(ctx, &current); err != nil {
		return fail(stepSCPlan, err)
	}
	zone := in.Zone
	if zone == "" {
		zone = target.Server.Zone
	}
	way := in.Policy.Way
	if way == "" || way == StorageAuto {
		way = StorageInPlace
		if zone != target.Server.Zone {
			way = StorageSeed
			res.Reasons = append(res.Reasons, "the backup moves to "+zone)
		}
	}
	specOf := func(v activities.Volume) anyops.VolumeSpec {
		s := in.Spec
		if s.SizeGiB == 0 {
			s.SizeGiB = v.SizeGiB
		}
		return s
	}
	for _, v := range current {
		if ok, why := anyops.InPlace(v.SpecOf(), specOf(v)); !ok {
			res.Reasons = append(res.Reasons, v.ID+": "+why)
			if in.Policy.Way == StorageInPlace {
				return fail(stepSCPlan, temporal.NewNonRetryableApplicationError("not in place: "+v.ID+": "+why, activities.ErrInvalidInput, nil))
			}
			way = StorageSeed
		}
		if err := specOf(v).Check(); err != nil {
			return fail(stepSCPlan, temporal.NewNonRetryableApplicationError(v.ID+": "+err.Error(), activities.ErrInvalidInput, nil))
		}
	}
	res.Way = way
	if way == StorageSeed && (role != anyops.RoleBackup || fileServer.Name == "") {
		return fail(stepSCPlan, temporal.NewNonRetryableApplicationError(fmt.Sprintf(
			"%s is a %s server: only a backup's volumes change by seeding a new one (change its backup, fail over, then change the old file server)", in.Server, role),
			activities.ErrInvalidInput, nil))
	}
	res.FileServer = fileServer.Name
	tracker.Done(stepSCPlan, fmt.Sprintf("%s: %d volumes %s (%s)", in.Server, len(current), way, strings.Join(res.Reasons, "; ")))

	if way == StorageInPlace {
		tracker.Start(stepSCModify, fmt.Sprintf("modifying %d volumes in place to %s", len(current), in.Spec.Type))
		if err := together(ctx, current, func(v activities.Volume) string { return v.ID }, func(v activities.Volume) workflow.Future {
			return workflow.ExecuteActivity(callCtx, recCloud.ModifyVolume, activities.ModifyVolumeInput{VolumeID: v.ID, Spec: specOf(v)})
		}, nil); err != nil {
			return fail(stepSCModify, err)
		}
		if err := together(ctx, current, func(v activities.Volume) string { return v.ID }, func(v activities.Volume) workflow.Future {
			return workflow.ExecuteActivity(waitCtx, recCloud.WaitVolumeModification, activities.WaitVolumeModificationInput{VolumeID: v.ID, PollInterval: timing.PollInterval})
		}, nil); err != nil {
			return fail(stepSCModify, err)
		}
		for _, v := range drbdVols {
			res.Volumes[v.DRBDResource] = v.VolumeID
		}
		if fileServer.InstanceID != "" {
			if err := checkHot(ctx, hostCtx, fileServer.InstanceID, resourcesOf(drbdVols), ""); err != nil {
				return fail(stepSCModify, err)
			}
		}
		tracker.Done(stepSCModify, "every volume has its new configuration and stayed UpToDate")
		for _, s := range []string{stepSCBuild, stepSCSeed, stepSCCheckHot, stepSCRetire, stepSCRecord} {
			tracker.Skip(s, "in place")
		}
		tracker.Finish(fmt.Sprintf("%d volumes of %s modified in place", len(current), in.Server))
		return res, nil
	}
	tracker.Skip(stepSCModify, "by seeding a new backup")

	newName := in.NewServer
	if newName == "" {
		newName = in.Server + "-" + strings.ReplaceAll(scope, "-", "")[:4]
	}
	cluster := in.Cluster
	if cluster == "" {
		cluster = target.Server.Cluster
	}
	itype := in.InstanceType
	if itype == "" {
		itype = target.Server.InstanceType
	}
	res.NewServer, res.OldServer = newName, in.Server
	tracker.Start(stepSCBuild, fmt.Sprintf("building %s (%s) in %s", newName, itype, zone))
	var built BuiltServer
	planned := activities.PlannedServer{Name: newName, Role: anyops.RoleBackup, Zone: zone, Cluster: cluster, InstanceType: itype}
	if err := workflow.ExecuteChildWorkflow(workflow.WithChildOptions(ctx, workflow.ChildWorkflowOptions{
		WorkflowID: BuildServerWorkflowID(newName), WorkflowExecutionTimeout: timing.BuildTimeout + timing.WaitTimeout,
	}), BuildServerWorkflowType, BuildServerInput{Scope: scope, Server: planned, ImageID: in.Policy.ImageID, Timing: in.Timing}).Get(ctx, &built); err != nil {
		return fail(stepSCBuild, err)
	}
	res.InstanceID = built.InstanceID
	tracker.Done(stepSCBuild, fmt.Sprintf("%s is %s at %s", newName, built.InstanceID, built.PrivateIP))

	tracker.Start(stepSCSeed, fmt.Sprintf("seeding %s from snapshots of %s's volumes", newName, in.Server))
	if err := fileServerServes(ctx, callCtx, fileServer); err != nil {
		return fail(stepSCSeed, err)
	}
	seeds, nodeID, err := seedsFrom(ctx, hostCtx, fileServer, target.Server, drbdVols, map[string]string{anyops.TagCluster: cluster, anyops.TagKind: string(anyops.VolumeHome)})
	if err != nil {
		return fail(stepSCSeed, err)
	}
	var seeded SeedReplicaResult
	if err := workflow.ExecuteChildWorkflow(workflow.WithChildOptions(ctx, workflow.ChildWorkflowOptions{WorkflowID: SeedReplicaWorkflowID(newName)}),
		SeedReplicaWorkflowType, SeedReplicaInput{Scope: scope, Target: built, Zone: zone, NodeID: nodeID, Spec: in.Spec, Seeds: seeds,
			Policy: SeedReplicaPolicy{InitRateMiBps: in.Policy.InitRateMiBps}, Timing: in.Timing}).Get(ctx, &seeded); err != nil {
		return fail(stepSCSeed, err)
	}
	res.Volumes = seeded.Volumes
	tracker.Done(stepSCSeed, fmt.Sprintf("%s UpToDate in %d resources", newName, len(seeded.Volumes)))

	// The interlock: the old backup leaves only once the file server sees the new one
	// UpToDate in every resource.
	tracker.Start(stepSCCheckHot, "checking on "+fileServer.Name+" that "+newName+" is a hot copy of every resource")
	if err := fileServerServes(ctx, callCtx, fileServer); err != nil {
		return fail(stepSCCheckHot, err)
	}
	if err := checkHot(ctx, hostCtx, fileServer.InstanceID, resourcesOf(drbdVols), built.Hostname); err != nil {
		return fail(stepSCCheckHot, err)
	}
	tracker.Done(stepSCCheckHot, newName+" UpToDate and connected in every resource")

	tracker.Start(stepSCRetire, fmt.Sprintf("taking %s out of its resources", in.Server))
	var staying []nodeFile
	for _, s := range seeds {
		conf := activities.DRBDResourceConfig{Name: s.Name, Minor: s.Minor, Port: s.Port}
		for _, n := range s.Nodes {
			if n.InstanceID != target.Server.InstanceID {
				conf.Nodes = append(conf.Nodes, n.Node)
			}
		}
		conf.Nodes = append(conf.Nodes, activities.DRBDNode{Hostname: built.Hostname, Address: built.PrivateIP, NodeID: nodeID, Disk: seeded.Devices[s.Name]})
		staying = append(staying, nodeFile{fileServer.InstanceID, conf}, nodeFile{built.InstanceID, conf})
	}
	if err := together(ctx, staying, func(n nodeFile) string { return n.conf.Name + " on " + n.instance }, func(n nodeFile) workflow.Future {
		return workflow.ExecuteActivity(hostCtx, recHosts.ConfigureDRBD, activities.ConfigureDRBDInput{InstanceID: n.instance, Resource: n.conf})
	}, nil); err != nil {
		return fail(stepSCRetire, err)
	}
	if err := together(ctx, seeds, func(s SeedResource) string { return s.Name }, func(s SeedResource) workflow.Future {
		return workflow.ExecuteActivity(hostCtx, recHosts.DRBDRemove, activities.DRBDResourceInput{InstanceID: target.Server.InstanceID, Resource: s.Name})
	}, nil); err != nil {
		return fail(stepSCRetire, err)
	}
	// FleetSync pairs a resource's volumes by their tags: the new backup's volumes carry the
	// pair, the old ones no longer do.
	var tagging []activities.TagResourceInput
	for _, s := range seeds {
		tagging = append(tagging,
			activities.TagResourceInput{ResourceID: seeded.Volumes[s.Name], Tags: map[string]string{anyops.TagDRBDResource: s.Name, anyops.TagDRBDRole: activities.DRBDSecondary, anyops.TagDRBDPeer: fileServer.InstanceID}},
			activities.TagResourceInput{ResourceID: s.Source, Tags: map[string]string{anyops.TagDRBDResource: "", anyops.TagDRBDRole: "", anyops.TagDRBDPeer: ""}})
	}
	if err := together(ctx, tagging, func(t activities.TagResourceInput) string { return t.ResourceID }, func(t activities.TagResourceInput) workflow.Future {
		return workflow.ExecuteActivity(callCtx, recCloud.TagResource, t)
	}, nil); err != nil {
		return fail(stepSCRetire, err)
	}
	if !in.Policy.KeepOld {
		if err := workflow.ExecuteActivity(callCtx, recCloud.StopInstance, activities.StopInstanceInput{InstanceID: target.Server.InstanceID}).Get(ctx, nil); err != nil {
			return fail(stepSCRetire, err)
		}
		// Stopped, not stopping, before it is recorded so: a stop takes EC2 a while.
		stopCtx := workflow.WithActivityOptions(ctx, timing.boundedWaitOptions(timing.StopTimeout))
		if err := workflow.ExecuteActivity(stopCtx, recCloud.WaitInstanceStopped, activities.WaitInstanceInput{InstanceID: target.Server.InstanceID,
			PollInterval: timing.PollInterval, Timeout: timing.StopTimeout}).Get(ctx, nil); err != nil {
			return fail(stepSCRetire, err)
		}
	}
	tracker.Done(stepSCRetire, in.Server+" left every resource; its volumes are kept")

	tracker.Start(stepSCRecord, "recording "+newName+" as the backup of "+fileServer.Name)
	rec := activities.FleetRecord{}
	for _, s := range seeds {
		rec.Volumes = append(rec.Volumes, activities.VolumeRecord{VolumeID: seeded.Volumes[s.Name], Kind: anyops.VolumeHome, Criticality: anyops.Critical,
			SizeGiB: max(in.Spec.SizeGiB, s.SizeGiB), Zone: zone, Cluster: cluster, Server: newName, Device: seedDevice(s.Minor), RAIDGroup: "md0", State: anyops.VolumeInUse})
		rec.Replicas = append(rec.Replicas, activities.ReplicaRecord{Name: s.Name, Cluster: target.Server.Cluster, PrimaryServer: fileServer.Name,
			SecondaryServer: newName, PrimaryVolume: primaryVolumeOf(target.Replicas, s.Name), SecondaryVolume: seeded.Volumes[s.Name]})
	}
	if err := workflow.ExecuteActivity(callCtx, recInv.RecordFleet, rec).Get(ctx, nil); err != nil {
		return fail(stepSCRecord, err)
	}
	state := anyops.ServerStopped
	if in.Policy.KeepOld {
		state = anyops.ServerRunning
	}
	if err := workflow.ExecuteActivity(callCtx, recInv.SetServerState, activities.SetServerStateInput{Server: in.Server, State: state}).Get(ctx, nil); err != nil {
		return fail(stepSCRecord, err)
	}
	tracker.Done(stepSCRecord, fmt.Sprintf("%s is the backup of %s", newName, fileServer.Name))
	tracker.Finish(fmt.Sprintf("%s replaced %s: %d resources seeded, the file server never without a hot copy", newName, in.Server, len(seeds)))
	return res, nil
}

// nodeFile is a resource file to write on an instance.
type nodeFile struct {
	instance string
	conf     activities.DRBDResourceConfig
}

func resourcesOf(vols []activities.VolumeInfo) []string {
	var out []string
	for _, v := range vols {
		out = append(out, v.DRBDResource)
	}
	slices.Sort(out)
	return out
}

func primaryVolumeOf(replicas []activities.ReplicaInfo, resource string) string {
	for _, r := range replicas {
		if r.Name == resource {
			return r.PrimaryVolume
		}
	}
	return ""
}

// fileServerServes stops a storage change whose file server no longer runs healthy: a
// failover is in charge now, and the old backup — never touched — is what it promotes.
func fileServerServes(ctx, callCtx workflow.Context, fs activities.ServerInfo) error {
	var h activities.InstanceHealth
	if err := workflow.ExecuteActivity(callCtx, recCloud.InstanceStatus, activities.InstanceRef{InstanceID: fs.InstanceID}).Get(ctx, &h); err != nil {
		return err
	}
	if h.State != "running" || h.Impaired() {
		return temporal.NewNonRetryableApplicationError(fmt.Sprintf("the file server %s is %s (system %s, instance %s): stopping before the old backup is touched; a failover promotes it",
			fs.Name, h.State, h.SystemStatus, h.InstanceStatus), ErrFileServerLost, nil)
	}
	return nil
}

// checkHot reads `drbdadm status` on the primary and requires every resource to have an
// UpToDate, connected peer — the one named peer, when given (its hostname). Else it is the
// no-uptodate-peer interlock's refusal.
func checkHot(ctx, hostCtx workflow.Context, primary string, resources []string, peer string) error {
	var out activities.DRBDStatusOutput
	if err := workflow.ExecuteActivity(hostCtx, recHosts.DRBDStatus, activities.DRBDStatusInput{InstanceID: primary}).Get(ctx, &out); err != nil {
		return err
	}
	for _, name := range resources {
		i := slices.IndexFunc(out.Resources, func(r activities.DRBDResource) bool { return r.Name == name })
		if i < 0 {
			return activities.InterlockError(anyops.InterlockNoUpToDatePeer, activities.ErrNotUpToDate, "%s is not up on %s", name, primary)
		}
		hot := slices.ContainsFunc(out.Resources[i].Peers, func(p activities.DRBDPeer) bool {
			return (peer == "" || p.Name == peer) && p.Connection == "Connected" && p.PeerDisk == "UpToDate"
		})
		if !hot {
			return activities.InterlockError(anyops.InterlockNoUpToDatePeer, activities.ErrNotUpToDate,
				"%s on %s has no UpToDate peer %s: %s", name, primary, peer, activities.FormatDRBDStatus(out.Resources[i:i+1]))
		}
	}
	return nil
}

// seedsFrom reads the resources' files on the file server and lays out the seeding: every
// node as it is, the backup's disk as the source, and the lowest node id free in every
// resource for the new node.
func seedsFrom(ctx, hostCtx workflow.Context, fileServer, backup activities.ServerInfo, vols []activities.VolumeInfo, tags map[string]string) ([]SeedResource, int, error) {
	var seeds []SeedResource
	used := map[int]bool{}
	for _, v := range vols {
		var conf activities.DRBDResourceConfig
		if err := workflow.ExecuteActivity(hostCtx, recHosts.DRBDConfigOf, activities.DRBDResourceInput{InstanceID: fileServer.InstanceID, Resource: v.DRBDResource}).Get(ctx, &conf); err != nil {
			return nil, 0, fmt.Errorf("%s on %s: %w", v.DRBDResource, fileServer.Name, err)
		}
		s := SeedResource{Name: conf.Name, Minor: conf.Minor, Port: conf.Port, Source: v.VolumeID, SourceNodeID: -1, SizeGiB: v.SizeGiB, Tags: tags}
		for _, n := range conf.Nodes {
			used[n.NodeID] = true
			node := SeedNode{Node: n}
			switch n.Address {
			case fileServer.PrivateIP:
				node.InstanceID, node.Primary = fileServer.InstanceID, true
			case backup.PrivateIP:
				node.InstanceID, s.SourceNodeID = backup.InstanceID, n.NodeID
			default:
				return nil, 0, temporal.NewNonRetryableApplicationError(fmt.Sprintf("%s has a node %s (%s) that is neither %s nor %s", conf.Name, n.Hostname, n.Address, fileServer.Name, backup.Name), activities.ErrInvalidInput, nil)
			}
			s.Nodes = append(s.Nodes, node)
		}
		if s.SourceNodeID < 0 {
			return nil, 0, temporal.NewNonRetryableApplicationError(fmt.Sprintf("%s's file on %s does not name %s", conf.Name, fileServer.Name, backup.Name), activities.ErrInvalidInput, nil)
		}
		seeds = append(seeds, s)
	}
	id := 0
	for used[id] {
		id++
	}
	return seeds, id, nil
}
