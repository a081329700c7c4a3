package workflows

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/workflow"

	"github.com/anyops/anyops"
	"github.com/anyops/anyops/activities"
)

// A small model of a cluster for the testsuite tests of the recoveries: the activities the
// workflows call, by their names, over a few facts a test sets (the backup's disks, a corrupt
// boot disk, how long a build takes, a spare in the zone), with every call logged in order, so
// that a test can see which way won, what was fenced before what, and what was cancelled.
// (The same workflows run on cloudsim and the real dev server in failover_cloudsim_test.go
// and integration/.)

type fakeFleet struct {
	mu    sync.Mutex
	calls []string

	primary, backup activities.ServerInfo
	clients         []activities.ServerInfo
	spares          []activities.ServerInfo
	// backupDisk is the backup's disk state of every resource.
	backupDisk string
	// corruptBoot: the repaired primary comes back without an operating system.
	corruptBoot bool
	// stopHangs: a graceful stop never ends (failed hardware).
	stopHangs bool
	// servesNothing: the file server is the primary of no DRBD resource (a replacement
	// still bootstrapping).
	servesNothing bool
	// inSyncAfter is how many WaitDRBDInSync calls report progress before in sync; negative:
	// never.
	inSyncAfter int
	syncCalls   int
	// states of the instances, by id.
	state map[string]string
	// fenced records FenceInstance calls.
	fenced []string
	// promoted records DRBDPromote inputs.
	promoted []activities.DRBDPromoteInput
	audits   []activities.AuditRecord
	records  []activities.FleetRecord
	// now is the test environment's clock; stops are the workflow times of the StopInstance
	// calls on the primary, forced or not.
	now   func() time.Time
	stops map[bool]time.Time
}

const fakeResources = 4

func newFakeFleet() *fakeFleet {
	f := &fakeFleet{backupDisk: "UpToDate", state: map[string]string{}, stops: map[bool]time.Time{}}
	f.primary = activities.ServerInfo{Name: "live-file", Role: anyops.RoleFile, Zone: "us-east-1a", Cluster: "live", InstanceID: "i-0f11e000000000001", InstanceType: "m5.2xlarge", PrivateIP: "10.0.1.10", State: anyops.ServerImpaired}
	f.backup = activities.ServerInfo{Name: "live-backup", Role: anyops.RoleBackup, Zone: "us-east-1a", Cluster: "live", InstanceID: "i-0ba0c000000000002", InstanceType: "m5.2xlarge", PrivateIP: "10.0.1.11", State: anyops.ServerRunning}
	for i, name := range []string{"live-web1", "live-console1"} {
		role := anyops.RoleWeb
		if strings.Contains(name, "console") {
			role = anyops.RoleConsole
		}
		f.clients = append(f.clients, activities.ServerInfo{Name: name, Role: role, Zone: "us-east-1a", Cluster: "live", InstanceID: fmt.Sprintf("i-0c11e00000000001%d", i), PrivateIP: fmt.Sprintf("10.0.1.2%d", i), State: anyops.ServerRunning})
	}
	f.state[f.primary.InstanceID], f.state[f.backup.InstanceID] = "running", "running"
	return f
}

func (f *fakeFleet) log(format string, args ...any) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, fmt.Sprintf(format, args...))
}

// index is the position of the first call with the prefix, -1 when none.
func (f *fakeFleet) index(prefix string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.IndexFunc(f.calls, func(c string) bool { return strings.HasPrefix(c, prefix) })
}

func (f *fakeFleet) count(prefix string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for _, c := range f.calls {
		if strings.HasPrefix(c, prefix) {
			n++
		}
	}
	return n
}

// logged says whether a call starting with prefix and ending with suffix was made.
func (f *fakeFleet) logged(prefix, suffix string) bool { return f.indexOf(prefix, suffix) >= 0 }

// indexOf is the position of the first call starting with prefix and ending with suffix, -1
// when none.
func (f *fakeFleet) indexOf(prefix, suffix string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.IndexFunc(f.calls, func(c string) bool { return strings.HasPrefix(c, prefix) && strings.HasSuffix(c, suffix) })
}

func resourceName(i int) string { return fmt.Sprintf("live-r%d", i) }

// The activities.

func (f *fakeFleet) RecoveryTarget(_ context.Context, in activities.RecoveryTargetInput) (activities.RecoveryTarget, error) {
	f.log("RecoveryTarget %s", in.Server)
	t := activities.RecoveryTarget{Server: f.primary, ClusterState: anyops.ClusterLive, Peers: map[string]activities.ServerInfo{f.backup.Name: f.backup},
		Clients: f.clients, Spares: f.spares}
	if in.Server == f.backup.Name {
		t.Server, t.Peers = f.backup, map[string]activities.ServerInfo{f.primary.Name: f.primary}
	}
	for i := range fakeResources {
		if f.servesNothing {
			break
		}
		r := resourceName(i)
		t.Replicas = append(t.Replicas, activities.ReplicaInfo{Name: r, Minor: i, PrimaryServer: f.primary.Name, SecondaryServer: f.backup.Name,
			PrimaryVolume: fmt.Sprintf("vol-0a%015d", i), SecondaryVolume: fmt.Sprintf("vol-0b%015d", i)})
		own, peer := fmt.Sprintf("vol-0a%015d", i), fmt.Sprintf("vol-0b%015d", i)
		if in.Server == f.backup.Name {
			own, peer = peer, own
		}
		t.Volumes = append(t.Volumes, activities.VolumeInfo{VolumeID: own, Kind: anyops.VolumeHome, SizeGiB: 500, Server: t.Server.Name, Device: fmt.Sprintf("/dev/xvd%c", 'f'+i), RAIDGroup: "md0", DRBDResource: r})
		t.PeerVolumes = append(t.PeerVolumes, activities.VolumeInfo{VolumeID: peer, Kind: anyops.VolumeHome, SizeGiB: 500, Device: fmt.Sprintf("/dev/xvd%c", 'f'+i), RAIDGroup: "md0", DRBDResource: r})
	}
	return t, nil
}

func (f *fakeFleet) InstanceStatus(_ context.Context, in activities.InstanceRef) (activities.InstanceHealth, error) {
	f.log("InstanceStatus %s", in.InstanceID)
	h := activities.InstanceHealth{InstanceID: in.InstanceID, State: f.state[in.InstanceID], SystemStatus: "ok", InstanceStatus: "ok"}
	if in.InstanceID == f.primary.InstanceID {
		h.SystemStatus = "impaired"
		if f.corruptBoot && f.state[in.InstanceID] == "running" {
			h.SystemStatus, h.InstanceStatus = "ok", "impaired"
		}
	}
	return h, nil
}

func (f *fakeFleet) DRBDStatus(_ context.Context, in activities.DRBDStatusInput) (activities.DRBDStatusOutput, error) {
	f.log("DRBDStatus %s", in.InstanceID)
	var out activities.DRBDStatusOutput
	for i := range fakeResources {
		out.Resources = append(out.Resources, activities.DRBDResource{Name: resourceName(i), Role: "Secondary", Disk: f.backupDisk,
			Volumes: []activities.DRBDVolume{{Disk: f.backupDisk}}})
	}
	return out, nil
}

func (f *fakeFleet) NoteIncident(_ context.Context, n activities.IncidentNote) error {
	if n.Kind != activities.IncidentEventWorkflow {
		f.log("NoteIncident %d %s", n.IncidentID, n.Kind)
	}
	return nil
}

func (f *fakeFleet) RecordAudit(_ context.Context, r activities.AuditRecord) error {
	f.log("RecordAudit %s %v", r.Action, r.Summary["interlock"])
	f.mu.Lock()
	f.audits = append(f.audits, r)
	f.mu.Unlock()
	return nil
}

func (f *fakeFleet) RecordFleet(_ context.Context, r activities.FleetRecord) error {
	f.log("RecordFleet")
	f.mu.Lock()
	f.records = append(f.records, r)
	f.mu.Unlock()
	return nil
}

func (f *fakeFleet) StopInstance(_ context.Context, in activities.StopInstanceInput) (activities.InstanceStateChange, error) {
	f.log("StopInstance %s force=%v", in.InstanceID, in.Force)
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.stops[in.Force]; !ok && in.InstanceID == f.primary.InstanceID && f.now != nil {
		f.stops[in.Force] = f.now()
	}
	if in.Force || !f.stopHangs {
		f.state[in.InstanceID] = "stopped"
	} else {
		f.state[in.InstanceID] = "stopping"
	}
	return activities.InstanceStateChange{InstanceID: in.InstanceID, Current: f.state[in.InstanceID]}, nil
}

func (f *fakeFleet) WaitInstanceStopped(_ context.Context, in activities.WaitInstanceInput) (activities.Instance, error) {
	f.mu.Lock()
	st := f.state[in.InstanceID]
	f.mu.Unlock()
	if st != "stopped" {
		// As the activity: a wait that reaches its Timeout gives up, retryably.
		return activities.Instance{}, fmt.Errorf("wait for instance stopped: exceeded max wait time for InstanceStopped waiter")
	}
	return activities.Instance{ID: in.InstanceID, State: st}, nil
}

func (f *fakeFleet) StartInstance(_ context.Context, in activities.InstanceRef) (activities.InstanceStateChange, error) {
	f.log("StartInstance %s", in.InstanceID)
	f.mu.Lock()
	f.state[in.InstanceID] = "running"
	f.mu.Unlock()
	return activities.InstanceStateChange{InstanceID: in.InstanceID, Current: "pending"}, nil
}

func (f *fakeFleet) WaitInstanceRunning(_ context.Context, in activities.WaitInstanceInput) (activities.Instance, error) {
	return activities.Instance{ID: in.InstanceID, State: "running"}, nil
}

func (f *fakeFleet) ProbeHost(_ context.Context, in activities.InstanceRef) (activities.HostProbe, error) {
	if in.InstanceID == f.primary.InstanceID && f.corruptBoot {
		return activities.HostProbe{Detail: "unreachable"}, nil
	}
	return activities.HostProbe{Reachable: true}, nil
}

func (f *fakeFleet) FenceInstance(_ context.Context, in activities.FenceInput) (activities.Fence, error) {
	f.log("FenceInstance %s", in.InstanceID)
	f.mu.Lock()
	defer f.mu.Unlock()
	f.fenced = append(f.fenced, in.InstanceID)
	if f.state[in.InstanceID] == "running" {
		f.state[in.InstanceID] = "stopping"
	}
	return activities.Fence{InstanceID: in.InstanceID, State: f.state[in.InstanceID]}, nil
}

func (f *fakeFleet) HostName(_ context.Context, in activities.InstanceRef) (string, error) {
	return "ip-" + strings.ReplaceAll(in.InstanceID, "i-", ""), nil
}

func (f *fakeFleet) DRBDPromote(_ context.Context, in activities.DRBDPromoteInput) (activities.DRBDPromoteOutput, error) {
	f.log("DRBDPromote %s", in.InstanceID)
	f.mu.Lock()
	f.promoted = append(f.promoted, in)
	f.mu.Unlock()
	if in.InstanceID == f.backup.InstanceID && f.backupDisk != "UpToDate" && (in.Override == nil || in.Override.Interlock != anyops.InterlockNotUpToDate) {
		return activities.DRBDPromoteOutput{}, activities.InterlockError(anyops.InterlockNotUpToDate, activities.ErrNotUpToDate, "the backup is %s", f.backupDisk)
	}
	return activities.DRBDPromoteOutput{Promoted: in.Resources}, nil
}

func (f *fakeFleet) AssembleRAID(_ context.Context, in activities.AssembleRAIDInput) (activities.AssembleRAIDOutput, error) {
	f.log("AssembleRAID %s %s", in.InstanceID, in.Device)
	return activities.AssembleRAIDOutput{}, nil
}

func (f *fakeFleet) Fsck(_ context.Context, in activities.FsckInput) (activities.FsckOutput, error) {
	return activities.FsckOutput{Clean: true}, nil
}

func (f *fakeFleet) Mount(_ context.Context, in activities.MountInput) (activities.CommandResult, error) {
	return activities.CommandResult{}, nil
}

func (f *fakeFleet) ExportNFS(_ context.Context, in activities.NFSExportInput) (activities.CommandResult, error) {
	f.log("ExportNFS %s", in.InstanceID)
	return activities.CommandResult{}, nil
}

func (f *fakeFleet) HealthProbe(_ context.Context, in activities.HealthProbeInput) (activities.HealthProbeOutput, error) {
	return activities.HealthProbeOutput{Healthy: true}, nil
}

func (f *fakeFleet) ZoneByName(_ context.Context, in activities.ZoneByNameInput) (activities.HostedZone, error) {
	return activities.HostedZone{ID: "/hostedzone/Z1", Name: in.Name}, nil
}

func (f *fakeFleet) SwitchRecord(_ context.Context, in activities.SwitchRecordInput) (activities.RecordChange, error) {
	f.log("SwitchRecord %s %v", in.Name, in.Values)
	return activities.RecordChange{ChangeID: "/change/C1", Status: "PENDING"}, nil
}

func (f *fakeFleet) WaitRecordInSync(_ context.Context, in activities.WaitRecordInput) (activities.RecordChange, error) {
	return activities.RecordChange{ChangeID: in.ChangeID, Status: "INSYNC"}, nil
}

func (f *fakeFleet) RemountNFS(_ context.Context, in activities.MountNFSInput) (activities.MountNFSOutput, error) {
	f.log("RemountNFS %s %s", in.InstanceID, in.ExpectedServer)
	return activities.MountNFSOutput{Mount: activities.NFSMount{Source: in.Source, MountPoint: "/home", Server: in.ExpectedServer}}, nil
}

func (f *fakeFleet) MountNFS(_ context.Context, in activities.MountNFSInput) (activities.MountNFSOutput, error) {
	f.log("MountNFS %s", in.InstanceID)
	return activities.MountNFSOutput{Mount: activities.NFSMount{Source: in.Source, MountPoint: "/home", Server: "10.0.1.99"}}, nil
}

func (f *fakeFleet) CheckMount(_ context.Context, in activities.CheckMountInput) (activities.MountHealth, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	server := ""
	for i := len(f.calls) - 1; i >= 0; i-- {
		if p := strings.Fields(f.calls[i]); len(p) == 3 && p[0] == "RemountNFS" && p[1] == in.InstanceID {
			server = p[2]
			break
		}
	}
	if server == "" {
		server = "10.0.1.99"
	}
	return activities.MountHealth{Mounted: true, Reads: true, Writes: true, Serving: true, Mount: activities.NFSMount{Server: server}}, nil
}

func (f *fakeFleet) WaitDRBDInSync(_ context.Context, in activities.WaitDRBDInSyncInput) (activities.DRBDSyncProgress, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.syncCalls++
	if f.inSyncAfter < 0 || f.syncCalls <= f.inSyncAfter {
		return activities.DRBDSyncProgress{Done: float64(f.syncCalls)}, nil
	}
	return activities.DRBDSyncProgress{InSync: true, Done: 100}, nil
}

func (f *fakeFleet) TagResource(_ context.Context, in activities.TagResourceInput) error {
	f.log("TagResource %s %v", in.ResourceID, in.Tags)
	return nil
}

func (f *fakeFleet) Bootstrap(_ context.Context, in activities.BootstrapInput) (activities.BootstrapOutput, error) {
	f.log("Bootstrap %s", in.InstanceID)
	return activities.BootstrapOutput{Already: true}, nil
}

func (f *fakeFleet) DetachFromFenced(_ context.Context, in activities.DetachFromFencedInput) (activities.Attachment, error) {
	f.log("DetachFromFenced %s", in.VolumeID)
	f.mu.Lock()
	defer f.mu.Unlock()
	if st := f.state[in.InstanceID]; st == "running" && in.Override == nil {
		return activities.Attachment{}, activities.InterlockError(anyops.InterlockUnfenced, activities.ErrUnfenced, "%s is running", in.InstanceID)
	}
	return activities.Attachment{VolumeID: in.VolumeID, State: "detaching"}, nil
}

func (f *fakeFleet) WaitVolumeAvailable(_ context.Context, in activities.WaitVolumeInput) (activities.Volume, error) {
	return activities.Volume{ID: in.VolumeID, State: "available"}, nil
}

func (f *fakeFleet) AttachVolume(_ context.Context, in activities.AttachVolumeInput) (activities.Attachment, error) {
	f.log("AttachVolume %s %s", in.VolumeID, in.InstanceID)
	return activities.Attachment{VolumeID: in.VolumeID, InstanceID: in.InstanceID, Device: in.Device, State: "attaching"}, nil
}

func (f *fakeFleet) WaitVolumeAttached(_ context.Context, in activities.WaitVolumeInput) (activities.Volume, error) {
	return activities.Volume{ID: in.VolumeID, State: "in-use"}, nil
}

func (f *fakeFleet) FindVolumeDevice(_ context.Context, in activities.VolumeDeviceInput) (activities.VolumeDevice, error) {
	return activities.VolumeDevice{VolumeID: in.VolumeID, Device: "/dev/nvme1n1", ByID: activities.NVMeByIDPrefix + strings.Replace(in.VolumeID, "-", "", 1)}, nil
}

func (f *fakeFleet) ReadDRBDConfig(_ context.Context, in activities.DRBDResourceInput) (activities.DRBDResourceConfig, error) {
	return activities.DRBDResourceConfig{Name: in.Resource, Minor: 0, Port: 7789, Nodes: []activities.DRBDNode{
		{Hostname: "ip-10-0-1-10", Address: f.primary.PrivateIP, NodeID: 0, Disk: "/dev/nvme1n1"},
		{Hostname: "ip-10-0-1-11", Address: f.backup.PrivateIP, NodeID: 1, Disk: "/dev/nvme1n1"},
	}}, nil
}

func (f *fakeFleet) ConfigureDRBD(_ context.Context, in activities.ConfigureDRBDInput) (activities.ConfigureDRBDOutput, error) {
	f.log("ConfigureDRBD %s %s", in.InstanceID, in.Resource.Name)
	return activities.ConfigureDRBDOutput{}, nil
}

func (f *fakeFleet) CreateDRBDMetadata(_ context.Context, in activities.DRBDResourceInput) (activities.CreateDRBDMetadataOutput, error) {
	return activities.CreateDRBDMetadataOutput{}, nil
}

func (f *fakeFleet) DRBDUp(_ context.Context, in activities.DRBDResourceInput) (activities.DRBDUpOutput, error) {
	return activities.DRBDUpOutput{}, nil
}

func (f *fakeFleet) TerminateUnused(_ context.Context, in activities.TerminateUnusedInput) (activities.InstanceStateChange, error) {
	f.log("TerminateUnused %s", in.InstanceID)
	return activities.InstanceStateChange{InstanceID: in.InstanceID, Current: "shutting-down"}, nil
}

func (f *fakeFleet) SetServerState(_ context.Context, in activities.SetServerStateInput) error {
	f.log("SetServerState %s %s", in.Server, in.State)
	return nil
}

func (f *fakeFleet) ConsolesOn(_ context.Context, in activities.ConsolesOnInput) ([]activities.ConsoleRef, error) {
	f.log("ConsolesOn %s", in.Server)
	return []activities.ConsoleRef{{ID: "c1", WorkflowID: "console/c1"}, {ID: "c2", WorkflowID: "console/c2"}}, nil
}

func (f *fakeFleet) MoveServer(_ context.Context, in activities.MoveServerInput) (bool, error) {
	f.log("MoveServer %s %s %s", in.Server, in.From, in.To)
	return true, nil
}

func (f *fakeFleet) LatestSnapshot(context.Context, activities.LatestSnapshotInput) (activities.LatestSnapshotOutput, error) {
	return activities.LatestSnapshotOutput{}, nil
}

// buildTime is how long the fake BuildServer takes (a workflow timer: the test
// environment skips it, in order), of which runTime until the server runs and bootstraps.
const (
	buildTime = 20 * time.Minute
	runTime   = 2 * time.Minute
)

// fakeBuildServer stands in for BuildServer: a server runs after runTime (and tells
// NotifyWorkflowID so, as BuildServer does) and is bootstrapped after buildTime.
func (f *fakeFleet) fakeBuildServer(ctx workflow.Context, in BuildServerInput) (BuiltServer, error) {
	f.log("BuildServer %s", in.Server.Name)
	built := BuiltServer{Name: in.Server.Name, Role: in.Server.Role, InstanceID: "i-0ne0000000000000a", PrivateIP: "10.0.1.50", Hostname: "ip-10-0-1-50"}
	for i, d := range []time.Duration{runTime, buildTime - runTime} {
		if err := workflow.Sleep(ctx, d); err != nil {
			f.log("BuildServer %s cancelled", in.Server.Name)
			return BuiltServer{}, err
		}
		if i == 0 && in.NotifyWorkflowID != "" {
			f.log("BuildServer %s runs", in.Server.Name)
			if err := workflow.SignalExternalWorkflow(ctx, in.NotifyWorkflowID, "", SignalServerRunning, built).Get(ctx, nil); err != nil {
				return BuiltServer{}, err
			}
		}
	}
	f.log("BuildServer %s bootstrapped", in.Server.Name)
	return built, nil
}

// fakeBackupRebuild stands in for BackupRebuild.
func (f *fakeFleet) fakeBackupRebuild(ctx workflow.Context, in BackupRebuildInput) (BackupRebuildResult, error) {
	f.log("BackupRebuild %s onto %q", in.Server, in.Onto)
	return BackupRebuildResult{Server: in.Server, Backup: activities.ServerInfo{Name: "live-file-new", InstanceID: "i-0ne0000000000000b"}}, nil
}

// env is a testsuite environment running the recoveries against the fake.
func (f *fakeFleet) env(t *testing.T) *testsuite.TestWorkflowEnvironment {
	t.Helper()
	var suite testsuite.WorkflowTestSuite
	env := suite.NewTestWorkflowEnvironment()
	env.RegisterWorkflowWithOptions(FileServerFailover, workflow.RegisterOptions{Name: FailoverWorkflowType})
	env.RegisterWorkflowWithOptions(ServerReplace, workflow.RegisterOptions{Name: ServerReplaceWorkflowType})
	env.RegisterWorkflowWithOptions(f.fakeBuildServer, workflow.RegisterOptions{Name: BuildServerWorkflowType})
	env.RegisterWorkflowWithOptions(f.fakeBackupRebuild, workflow.RegisterOptions{Name: BackupRebuildWorkflowType})
	env.RegisterActivity(f)
	env.SetTestTimeout(time.Minute)
	f.now = env.Now
	return env
}

// failoverInput is a failover of live-file with the production timing.
func failoverInput(policy FailoverPolicy) FailoverInput {
	return FailoverInput{RecoveryRequest: RecoveryRequest{Server: "live-file", IncidentID: 7, RequestedBy: "alarm:sns"}, Policy: policy}
}

// runFailover runs a failover to its end and returns its result.
func (f *fakeFleet) runFailover(t *testing.T, env *testsuite.TestWorkflowEnvironment, policy FailoverPolicy) FailoverResult {
	t.Helper()
	env.ExecuteWorkflow(FailoverWorkflowType, failoverInput(policy))
	if !env.IsWorkflowCompleted() {
		t.Fatal("the failover did not complete")
	}
	if err := env.GetWorkflowError(); err != nil {
		t.Fatalf("failover: %v\ncalls: %v", err, f.calls)
	}
	var res FailoverResult
	if err := env.GetWorkflowResult(&res); err != nil {
		t.Fatal(err)
	}
	return res
}

// status queries the running workflow's Status.
func status(t *testing.T, env *testsuite.TestWorkflowEnvironment) Status {
	t.Helper()
	v, err := env.QueryWorkflow(StatusQuery)
	if err != nil {
		t.Fatal(err)
	}
	var st Status
	if err := v.Get(&st); err != nil {
		t.Fatal(err)
	}
	return st
}

// decisions sends decision updates and keeps how each ended, to be checked once the workflow
// has run (the test environment answers an update after the callback that sent it).
type decisions struct {
	env  *testsuite.TestWorkflowEnvironment
	mu   sync.Mutex
	errs map[string]error // by label
	done map[string]bool
}

func newDecisions(env *testsuite.TestWorkflowEnvironment) *decisions {
	return &decisions{env: env, errs: map[string]error{}, done: map[string]bool{}}
}

// send sends the update under a label.
func (d *decisions) send(label, name string, in DecisionInput) {
	end := func(err error) {
		d.mu.Lock()
		defer d.mu.Unlock()
		d.errs[label], d.done[label] = err, true
	}
	d.env.UpdateWorkflow(name, label, &testsuite.TestUpdateCallback{
		OnReject: end, OnAccept: func() {}, OnComplete: func(_ any, err error) { end(err) },
	}, in)
}

// check fails the test when the labelled update did not end as wanted.
func (d *decisions) check(t *testing.T, label string, wantAccepted bool) {
	t.Helper()
	d.mu.Lock()
	defer d.mu.Unlock()
	switch {
	case !d.done[label]:
		t.Errorf("%s: no answer", label)
	case wantAccepted && d.errs[label] != nil:
		t.Errorf("%s: refused: %v", label, d.errs[label])
	case !wantAccepted && d.errs[label] == nil:
		t.Errorf("%s: accepted, want it refused", label)
	}
}

// branchOf is the named branch of a Status.
func branchOf(st Status, name anyops.RecoveryWay) Branch {
	for _, b := range st.Branches {
		if b.Name == string(name) {
			return b
		}
	}
	return Branch{}
}
