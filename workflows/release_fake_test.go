package workflows

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/workflow"

	"github.com/anyops/anyops"
	"github.com/anyops/anyops/activities"
)

// A small model of a live cluster for the testsuite tests of Release: a file server with two
// DRBD resources (md0 over them) and a logs and a Dropbox volume, its backup, one web client;
// the cloud's attachments, DRBD's nodes and the clients' mounts follow what the workflow does,
// and every call that changes something is logged in order. (Release runs on cloudsim in the
// integration tests; this model checks its decisions and their order.)

type releaseFleet struct {
	callLog

	zone              string
	file, backup, web activities.ServerInfo
	inventoryVolumes  []activities.VolumeInfo
	replicas          []activities.ReplicaInfo
	// extra is a volume attached by hand to the file server that the inventory does not know.
	extra bool
	// attached maps a volume to the instance it is attached to ("" detached).
	attached map[string]string
	// backupBehind: the backup's copies are not UpToDate (a resync under way).
	backupBehind bool
	// behindAtCutover sets backupBehind when the cutover starts (its first DRBDConfigOf).
	behindAtCutover bool
	// unhealthy: the new cluster's clients fail their read/write check.
	unhealthy bool
	// mounts maps a client instance to the address its NFS mount reaches.
	mounts map[string]string
	// primary is, per resource, the instance that is Primary.
	primary    map[string]string
	terminated []string
	built      map[string]BuiltServer
}

func newReleaseFleet() *releaseFleet {
	f := &releaseFleet{zone: "us-east-1a", attached: map[string]string{}, mounts: map[string]string{}, primary: map[string]string{}, built: map[string]BuiltServer{}}
	f.file = activities.ServerInfo{Name: "live-file", Role: anyops.RoleFile, Zone: f.zone, Cluster: "live", InstanceID: "i-0f11e000000000001", InstanceType: "m5.2xlarge", PrivateIP: "10.0.1.10", State: anyops.ServerRunning}
	f.backup = activities.ServerInfo{Name: "live-backup", Role: anyops.RoleBackup, Zone: f.zone, Cluster: "live", InstanceID: "i-0ba0c000000000002", InstanceType: "m5.2xlarge", PrivateIP: "10.0.1.11", State: anyops.ServerRunning}
	f.web = activities.ServerInfo{Name: "live-web1", Role: anyops.RoleWeb, Zone: f.zone, Cluster: "live", InstanceID: "i-0e0b0000000000003", InstanceType: "m5.large", PrivateIP: "10.0.1.20", State: anyops.ServerRunning}
	for i := range 2 {
		res := resourceName(i)
		pv, sv := fmt.Sprintf("vol-0a%015d", i), fmt.Sprintf("vol-0b%015d", i)
		f.replicas = append(f.replicas, activities.ReplicaInfo{Name: res, Minor: i, PrimaryServer: f.file.Name, SecondaryServer: f.backup.Name, PrimaryVolume: pv, SecondaryVolume: sv, State: anyops.ReplicaUpToDate})
		f.inventoryVolumes = append(f.inventoryVolumes,
			activities.VolumeInfo{VolumeID: pv, Kind: anyops.VolumeHome, Criticality: anyops.Critical, SizeGiB: 100, Zone: f.zone, Cluster: "live", Server: f.file.Name, Device: fmt.Sprintf("/dev/sd%c", 'f'+i), RAIDGroup: "md0", DRBDResource: res},
			activities.VolumeInfo{VolumeID: sv, Kind: anyops.VolumeHome, Criticality: anyops.Critical, SizeGiB: 100, Zone: f.zone, Cluster: "live", Server: f.backup.Name, Device: fmt.Sprintf("/dev/sd%c", 'f'+i), RAIDGroup: "md0", DRBDResource: res})
		f.attached[pv], f.attached[sv] = f.file.InstanceID, f.backup.InstanceID
		f.primary[res] = f.file.InstanceID
	}
	f.inventoryVolumes = append(f.inventoryVolumes,
		activities.VolumeInfo{VolumeID: "vol-0109500000000000l", Kind: anyops.VolumeLogs, Criticality: anyops.Critical, SizeGiB: 500, Zone: f.zone, Cluster: "live", Server: f.file.Name, Device: "/dev/sdl"},
		activities.VolumeInfo{VolumeID: "vol-0d0b0000000000000", Kind: anyops.VolumeDropbox, Criticality: anyops.Deferrable, SizeGiB: 1000, Zone: f.zone, Cluster: "live", Server: f.file.Name, Device: "/dev/sdm"})
	f.attached["vol-0109500000000000l"], f.attached["vol-0d0b0000000000000"] = f.file.InstanceID, f.file.InstanceID
	f.mounts[f.web.InstanceID] = f.file.PrivateIP
	return f
}

const extraVolume = "vol-0e0e0000000000099"

func hostnameOf(ip string) string { return "ip-" + strings.ReplaceAll(ip, ".", "-") }

// servers are the instances the model knows, old and new.
func (f *releaseFleet) servers() []activities.ServerInfo {
	out := []activities.ServerInfo{f.file, f.backup, f.web}
	for _, b := range f.built {
		out = append(out, activities.ServerInfo{Name: b.Name, Role: b.Role, InstanceID: b.InstanceID, PrivateIP: b.PrivateIP})
	}
	return out
}

func (f *releaseFleet) serverOf(instance string) activities.ServerInfo {
	for _, s := range f.servers() {
		if s.InstanceID == instance {
			return s
		}
	}
	return activities.ServerInfo{}
}

// The reads.

func (f *releaseFleet) ClusterTimeScale(context.Context, string) (float64, error) { return 0, nil }

func (f *releaseFleet) ClusterVolumes(_ context.Context, in activities.ClusterVolumesInput) (activities.ClusterVolumes, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := activities.ClusterVolumes{Snapshots: map[string][]activities.Snapshot{}}
	mine := map[string]bool{f.file.InstanceID: true, f.backup.InstanceID: true, f.web.InstanceID: true}
	vols := slices.Clone(f.inventoryVolumes)
	if f.extra {
		vols = append(vols, activities.VolumeInfo{VolumeID: extraVolume, SizeGiB: 50, Zone: f.zone, Device: "/dev/sdq"})
		f.attached[extraVolume] = f.file.InstanceID
	}
	for _, v := range vols {
		inst := f.attached[v.VolumeID]
		if !mine[inst] {
			continue
		}
		out.Volumes = append(out.Volumes, activities.Volume{ID: v.VolumeID, State: "in-use", Zone: v.Zone, SizeGiB: v.SizeGiB, VolumeType: "gp3", Iops: 3000, Throughput: 125,
			Attachments: []activities.Attachment{{VolumeID: v.VolumeID, InstanceID: inst, Device: v.Device, State: "attached"}}})
	}
	return out, nil
}

func (f *releaseFleet) ClusterInventory(_ context.Context, in activities.ClusterInventoryInput) (activities.ClusterInventory, error) {
	return activities.ClusterInventory{Cluster: "live", Zone: f.zone, State: anyops.ClusterLive, Release: "v1", Servers: []activities.ServerInfo{f.file, f.backup, f.web},
		Volumes: f.inventoryVolumes, Replicas: f.replicas, Classifications: map[string]activities.Classification{}, Rates: map[string]activities.VolumeRates{}}, nil
}

// DRBDStatus: the instance's resources, UpToDate, with every other node of the resource a
// connected peer (the backup's disk Inconsistent while it is behind).
func (f *releaseFleet) DRBDStatus(_ context.Context, in activities.DRBDStatusInput) (activities.DRBDStatusOutput, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out activities.DRBDStatusOutput
	for _, r := range f.replicas {
		role := "Secondary"
		if f.primary[r.Name] == in.InstanceID {
			role = "Primary"
		}
		res := activities.DRBDResource{Name: r.Name, Role: role, Disk: "UpToDate"}
		for _, s := range f.drbdNodes(r.Name) {
			if s.InstanceID == in.InstanceID {
				continue
			}
			disk := "UpToDate"
			if f.backupBehind && s.InstanceID == f.backup.InstanceID {
				disk = "Inconsistent"
			}
			res.Peers = append(res.Peers, activities.DRBDPeer{Name: hostnameOf(s.PrivateIP), Connection: "Connected", Replication: "Established", PeerDisk: disk})
		}
		out.Resources = append(out.Resources, res)
	}
	return out, nil
}

// drbdNodes are the servers holding a resource's disks now: whoever has its volumes attached.
func (f *releaseFleet) drbdNodes(res string) []activities.ServerInfo {
	var out []activities.ServerInfo
	for _, r := range f.replicas {
		if r.Name != res {
			continue
		}
		for _, v := range []string{r.PrimaryVolume, r.SecondaryVolume} {
			if s := f.serverOf(f.attached[v]); s.InstanceID != "" {
				out = append(out, s)
			}
		}
	}
	if b, ok := f.built["live-2-backup"]; ok {
		out = append(out, activities.ServerInfo{Name: b.Name, InstanceID: b.InstanceID, PrivateIP: b.PrivateIP})
	}
	return out
}

func (f *releaseFleet) Mounts(_ context.Context, in activities.InstanceRef) ([]activities.HostMount, error) {
	return []activities.HostMount{{Device: "/dev/md0", MountPoint: "/srv/home", FSType: "ext4"},
		{Device: "/dev/nvme3n1", MountPoint: "/srv/logs", FSType: "ext4"}, {Device: "/dev/nvme4n1", MountPoint: "/srv/dropbox", FSType: "ext4"}}, nil
}

func (f *releaseFleet) DRBDConfigOf(_ context.Context, in activities.DRBDResourceInput) (activities.DRBDResourceConfig, error) {
	f.mu.Lock()
	if f.behindAtCutover {
		f.backupBehind, f.behindAtCutover = true, false
	}
	f.mu.Unlock()
	i := slices.IndexFunc(f.replicas, func(r activities.ReplicaInfo) bool { return r.Name == in.Resource })
	return activities.DRBDResourceConfig{Name: in.Resource, Minor: i, Port: 7789 + i, Nodes: []activities.DRBDNode{
		{Hostname: hostnameOf(f.file.PrivateIP), Address: f.file.PrivateIP, NodeID: 0, Disk: "/dev/sdf"},
		{Hostname: hostnameOf(f.backup.PrivateIP), Address: f.backup.PrivateIP, NodeID: 1, Disk: "/dev/sdf"}}}, nil
}

func (f *releaseFleet) InstanceStatus(_ context.Context, in activities.InstanceRef) (activities.InstanceHealth, error) {
	return activities.InstanceHealth{InstanceID: in.InstanceID, State: "running", SystemStatus: "ok", InstanceStatus: "ok"}, nil
}

func (f *releaseFleet) ProbeHost(context.Context, activities.InstanceRef) (activities.HostProbe, error) {
	return activities.HostProbe{Reachable: true}, nil
}

func (f *releaseFleet) HostName(_ context.Context, in activities.InstanceRef) (string, error) {
	return hostnameOf(f.serverOf(in.InstanceID).PrivateIP), nil
}

func (f *releaseFleet) WaitVolumeAvailable(_ context.Context, in activities.WaitVolumeInput) (activities.Volume, error) {
	return activities.Volume{ID: in.VolumeID, State: "available"}, nil
}

func (f *releaseFleet) WaitVolumeAttached(_ context.Context, in activities.WaitVolumeInput) (activities.Volume, error) {
	return activities.Volume{ID: in.VolumeID, State: "in-use"}, nil
}

func (f *releaseFleet) FindVolumeDevice(_ context.Context, in activities.VolumeDeviceInput) (activities.VolumeDevice, error) {
	return activities.VolumeDevice{VolumeID: in.VolumeID, Device: "/dev/nvme9n1", ByID: "/dev/disk/by-id/nvme-Amazon_Elastic_Block_Store_" + strings.ReplaceAll(in.VolumeID, "-", "")}, nil
}

func (f *releaseFleet) CheckMount(_ context.Context, in activities.CheckMountInput) (activities.MountHealth, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	ip := f.mounts[in.InstanceID]
	_, isNew := f.builtByInstance(in.InstanceID)
	ok := !(isNew && f.unhealthy)
	return activities.MountHealth{Mounted: true, Mount: activities.NFSMount{Server: ip}, Reads: ok, Writes: ok, Serving: ok, Detail: "probe"}, nil
}

func (f *releaseFleet) builtByInstance(instance string) (BuiltServer, bool) {
	for _, b := range f.built {
		if b.InstanceID == instance {
			return b, true
		}
	}
	return BuiltServer{}, false
}

// The changes, logged.

func (f *releaseFleet) RecordAudit(_ context.Context, r activities.AuditRecord) error {
	f.log("RecordAudit %s", r.Action)
	return nil
}

func (f *releaseFleet) RecordFleet(_ context.Context, r activities.FleetRecord) error {
	for _, c := range r.Clusters {
		f.log("RecordFleet cluster %s %s", c.Name, c.State)
	}
	for _, v := range r.Volumes {
		f.log("RecordFleet volume %s on %s", v.VolumeID, v.Server)
	}
	return nil
}

func (f *releaseFleet) UnexportNFS(_ context.Context, in activities.NFSExportInput) (activities.CommandResult, error) {
	f.log("UnexportNFS %s", f.serverOf(in.InstanceID).Name)
	return activities.CommandResult{}, nil
}

func (f *releaseFleet) Umount(_ context.Context, in activities.UmountInput) (activities.CommandResult, error) {
	f.log("Umount %s %s", f.serverOf(in.InstanceID).Name, in.MountPoint)
	return activities.CommandResult{EndedAt: time.Now()}, nil
}

func (f *releaseFleet) StopRAID(_ context.Context, in activities.StopRAIDInput) (activities.CommandResult, error) {
	f.log("StopRAID %s", f.serverOf(in.InstanceID).Name)
	return activities.CommandResult{}, nil
}

func (f *releaseFleet) DRBDSecondary(_ context.Context, in activities.DRBDResourceInput) (activities.CommandResult, error) {
	f.log("DRBDSecondary %s %s", f.serverOf(in.InstanceID).Name, in.Resource)
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.primary[in.Resource] == in.InstanceID {
		f.primary[in.Resource] = ""
	}
	return activities.CommandResult{}, nil
}

func (f *releaseFleet) DRBDRemove(_ context.Context, in activities.DRBDResourceInput) (activities.CommandResult, error) {
	f.log("DRBDRemove %s %s", f.serverOf(in.InstanceID).Name, in.Resource)
	return activities.CommandResult{}, nil
}

func (f *releaseFleet) DetachVolume(_ context.Context, in activities.DetachVolumeInput) (activities.Attachment, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.attached[in.VolumeID] == in.InstanceID {
		f.attached[in.VolumeID] = ""
		f.calls = append(f.calls, fmt.Sprintf("DetachVolume %s from %s", in.VolumeID, f.serverOf(in.InstanceID).Name))
	}
	return activities.Attachment{VolumeID: in.VolumeID, State: "detached"}, nil
}

func (f *releaseFleet) AttachVolume(_ context.Context, in activities.AttachVolumeInput) (activities.Attachment, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	switch f.attached[in.VolumeID] {
	case in.InstanceID:
	case "":
		f.attached[in.VolumeID] = in.InstanceID
		f.calls = append(f.calls, fmt.Sprintf("AttachVolume %s to %s", in.VolumeID, f.serverOf(in.InstanceID).Name))
	default:
		return activities.Attachment{}, fmt.Errorf("%s is attached to %s already (VolumeInUse)", in.VolumeID, f.attached[in.VolumeID])
	}
	return activities.Attachment{VolumeID: in.VolumeID, InstanceID: in.InstanceID, State: "attached"}, nil
}

func (f *releaseFleet) ConfigureDRBD(_ context.Context, in activities.ConfigureDRBDInput) (activities.ConfigureDRBDOutput, error) {
	f.log("ConfigureDRBD %s %s", f.serverOf(in.InstanceID).Name, in.Resource.Name)
	return activities.ConfigureDRBDOutput{}, nil
}

func (f *releaseFleet) DRBDUp(_ context.Context, in activities.DRBDResourceInput) (activities.DRBDUpOutput, error) {
	f.log("DRBDUp %s %s", f.serverOf(in.InstanceID).Name, in.Resource)
	return activities.DRBDUpOutput{}, nil
}

func (f *releaseFleet) DRBDPromote(_ context.Context, in activities.DRBDPromoteInput) (activities.DRBDPromoteOutput, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, r := range in.Resources {
		if p := f.primary[r]; p != "" && p != in.InstanceID {
			return activities.DRBDPromoteOutput{}, fmt.Errorf("%s is Primary on %s already (two-primaries)", r, p)
		}
		f.primary[r] = in.InstanceID
	}
	f.calls = append(f.calls, "DRBDPromote "+f.serverOf(in.InstanceID).Name)
	return activities.DRBDPromoteOutput{}, nil
}

func (f *releaseFleet) AssembleRAID(_ context.Context, in activities.AssembleRAIDInput) (activities.AssembleRAIDOutput, error) {
	f.log("AssembleRAID %s", f.serverOf(in.InstanceID).Name)
	return activities.AssembleRAIDOutput{}, nil
}

func (f *releaseFleet) Mount(_ context.Context, in activities.MountInput) (activities.CommandResult, error) {
	f.log("Mount %s %s", f.serverOf(in.InstanceID).Name, in.MountPoint)
	return activities.CommandResult{}, nil
}

func (f *releaseFleet) ExportNFS(_ context.Context, in activities.NFSExportInput) (activities.CommandResult, error) {
	f.log("ExportNFS %s", f.serverOf(in.InstanceID).Name)
	return activities.CommandResult{}, nil
}

func (f *releaseFleet) EnsurePrivateZone(_ context.Context, in activities.EnsurePrivateZoneInput) (activities.HostedZone, error) {
	f.log("EnsurePrivateZone %s", in.Name)
	return activities.HostedZone{ID: "/hostedzone/ZNEW", Name: in.Name + "."}, nil
}

func (f *releaseFleet) ZoneByName(_ context.Context, in activities.ZoneByNameInput) (activities.HostedZone, error) {
	return activities.HostedZone{ID: "/hostedzone/ZOLD", Name: in.Name + "."}, nil
}

func (f *releaseFleet) SwitchRecord(_ context.Context, in activities.SwitchRecordInput) (activities.RecordChange, error) {
	f.log("SwitchRecord %s %s", in.Name, strings.Join(in.Values, ","))
	return activities.RecordChange{ChangeID: "/change/C1", Status: "PENDING"}, nil
}

func (f *releaseFleet) WaitRecordInSync(context.Context, activities.WaitRecordInput) (activities.RecordChange, error) {
	return activities.RecordChange{Status: "INSYNC"}, nil
}

func (f *releaseFleet) RemountNFS(_ context.Context, in activities.MountNFSInput) (activities.MountNFSOutput, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.mounts[in.InstanceID] = in.ExpectedServer
	f.calls = append(f.calls, fmt.Sprintf("RemountNFS %s %s", f.serverOf(in.InstanceID).Name, in.ExpectedServer))
	return activities.MountNFSOutput{Mount: activities.NFSMount{Server: in.ExpectedServer}}, nil
}

func (f *releaseFleet) TagResource(context.Context, activities.TagResourceInput) error { return nil }

func (f *releaseFleet) TerminateInstance(_ context.Context, in activities.TerminateInstanceInput) (activities.InstanceStateChange, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.terminated = append(f.terminated, f.serverOf(in.InstanceID).Name)
	f.calls = append(f.calls, "TerminateInstance "+f.serverOf(in.InstanceID).Name)
	return activities.InstanceStateChange{InstanceID: in.InstanceID, Current: "terminated"}, nil
}

func (f *releaseFleet) SetServerState(_ context.Context, in activities.SetServerStateInput) error {
	f.log("SetServerState %s %s", in.Server, in.State)
	return nil
}

// fakeBuildServer stands in for BuildServer: each new server gets an address of its own.
func (f *releaseFleet) fakeBuildServer(ctx workflow.Context, in BuildServerInput) (BuiltServer, error) {
	f.log("BuildServer %s", in.Server.Name)
	if err := workflow.Sleep(ctx, buildTime); err != nil {
		return BuiltServer{}, err
	}
	ip := map[anyops.Role]string{anyops.RoleFile: "10.0.2.10", anyops.RoleBackup: "10.0.2.11", anyops.RoleWeb: "10.0.2.20"}[in.Server.Role]
	b := BuiltServer{Name: in.Server.Name, Role: in.Server.Role, InstanceID: "i-0ne" + strings.ReplaceAll(ip, ".", ""), PrivateIP: ip, Hostname: hostnameOf(ip),
		VPCID: "vpc-1", Volumes: map[string]string{}}
	f.mu.Lock()
	f.built[b.Name] = b
	f.mu.Unlock()
	return b, nil
}

func (f *releaseFleet) env(t *testing.T) *testsuite.TestWorkflowEnvironment {
	t.Helper()
	var suite testsuite.WorkflowTestSuite
	env := suite.NewTestWorkflowEnvironment()
	env.RegisterWorkflowWithOptions(Release, workflow.RegisterOptions{Name: ReleaseWorkflowType})
	env.RegisterWorkflowWithOptions(f.fakeBuildServer, workflow.RegisterOptions{Name: BuildServerWorkflowType})
	env.RegisterActivity(f)
	env.SetTestTimeout(time.Minute)
	return env
}

// releaseInput is a release of live to version 2 in its own zone, with no seeding of the new
// backup (its own test is SeedReplica's) and a one-day retention.
func releaseInput(policy ReleasePolicy) ReleaseInput {
	policy.NoNewBackupSeed = true
	if policy.Retention == 0 {
		policy.Retention = 24 * time.Hour
	}
	return ReleaseInput{Cluster: "live", Version: "2", Policy: policy, RequestedBy: "api:operator"}
}

func (f *releaseFleet) result(t *testing.T, env *testsuite.TestWorkflowEnvironment) ReleaseResult {
	t.Helper()
	if !env.IsWorkflowCompleted() {
		t.Fatal("the release did not complete")
	}
	if err := env.GetWorkflowError(); err != nil {
		t.Fatalf("release: %v\ncalls: %v", err, f.calls)
	}
	var res ReleaseResult
	if err := env.GetWorkflowResult(&res); err != nil {
		t.Fatal(err)
	}
	return res
}
