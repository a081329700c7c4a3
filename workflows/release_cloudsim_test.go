package workflows

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/google/uuid"
	"go.temporal.io/sdk/client"

	"github.com/anyops/anyops"
	"github.com/anyops/anyops/activities"
	"github.com/anyops/anyops/cloudsim"
	"github.com/anyops/anyops/inventory"
)

// simReleaseTiming is the production release timing at cloudsim's test speed.
func simReleaseTiming() ReleaseTiming {
	t := ReleaseTiming{RecoveryTiming: simTiming(), Speed: cloudsim.TestSpeed}
	t.ProgressInterval, t.PlanInterval = 50*time.Millisecond, 200*time.Millisecond
	return t
}

// TestReleaseOnCloudsim is a release of the demo fleet in its own zone on the real dev
// server and cloudsim: the plan has every attached volume (logs and Dropbox included), the
// new cluster is built and its backup seeded from snapshots, the old file server stops serving,
// the backup's volumes, logs and Dropbox are handed to the new file server, which serves with
// every resource UpToDate; every client reads and writes there; the old cluster is a standby
// until the retention ends, then retired.
func TestReleaseOnCloudsim(t *testing.T) {
	e := newFleetEnv(t)
	fleet := e.demoWithData(t, 5)
	var res ReleaseResult
	in := ReleaseInput{Cluster: inventory.DemoCluster, Version: "2", Timing: simReleaseTiming(), RequestedBy: "test",
		Policy: ReleasePolicy{NoApproval: true, Retention: time.Second}}
	e.recordAs = map[string]string{ReleaseWorkflowType: "release"} // for worker/replay_test.go
	e.run(t, ReleaseWorkflowType, anyops.ReleaseWorkflowID(inventory.DemoCluster)+"-"+uuid.NewString(), in, &res)
	t.Logf("result %+v", res)
	if res.Outcome != ReleaseLive || res.FileServer != "live-2-file" || res.RetiredAt == nil {
		t.Fatalf("outcome %s, file server %s, retired %v: want live-2-file live and the old cluster retired", res.Outcome, res.FileServer, res.RetiredAt)
	}
	var kinds []anyops.VolumeKind
	for _, m := range res.Plan.Volumes {
		kinds = append(kinds, m.Kind)
		if m.Kind == "" || m.Way == "" {
			t.Errorf("plan: %+v has no kind or way", m)
		}
	}
	for _, k := range []anyops.VolumeKind{anyops.VolumeHome, anyops.VolumeLogs, anyops.VolumeDropbox} {
		found := false
		for _, got := range kinds {
			found = found || got == k
		}
		if !found {
			t.Errorf("the plan forgot the %s volume: %v", k, kinds)
		}
	}
	newFile := getHost(t, e.endpoint, res.Servers["live-2-file"])
	for _, r := range activities.DemoFleetPlan().DRBDResources() {
		if d := newFile.DRBD[r]; d.Role != "Primary" || d.Disk != "UpToDate" {
			t.Errorf("%s on live-2-file: %+v, want Primary UpToDate", r, d)
		}
	}
	for _, name := range []string{inventory.DemoFileServer + "/logs", inventory.DemoFileServer + "/dropbox"} {
		if _, ok := res.Volumes[fleet.Volumes[name]]; !ok {
			t.Errorf("%s (%s) did not move: %v", name, fleet.Volumes[name], res.Volumes)
		}
	}
}

// TestReleasePlanFindsAHandAttachedVolumeOnCloudsim: a volume someone created and attached
// to the file server by hand, with no tags, is read from the cloud by its attachment and is a
// blocker of the dry run's plan; the dry run changes nothing.
func TestReleasePlanFindsAHandAttachedVolumeOnCloudsim(t *testing.T) {
	e := newFleetEnv(t)
	var fleet DemoFleetResult
	e.run(t, "DemoFleet", DemoFleetWorkflowID+"-"+uuid.NewString(), DemoFleetInput{Timing: fastTiming}, &fleet)
	ctx := context.Background()
	vol, err := e.aws.EC2.CreateVolume(ctx, &ec2.CreateVolumeInput{AvailabilityZone: aws.String(inventory.DemoZone), Size: aws.Int32(50), VolumeType: ec2types.VolumeTypeGp3})
	if err != nil {
		t.Fatal(err)
	}
	id := aws.ToString(vol.VolumeId)
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		out, err := e.aws.EC2.DescribeVolumes(ctx, &ec2.DescribeVolumesInput{VolumeIds: []string{id}})
		if err != nil {
			t.Fatal(err)
		}
		if out.Volumes[0].State == ec2types.VolumeStateAvailable {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s is %s", id, out.Volumes[0].State)
		}
	}
	if _, err := e.aws.EC2.AttachVolume(ctx, &ec2.AttachVolumeInput{VolumeId: aws.String(id), InstanceId: aws.String(fleet.Instances[inventory.DemoFileServer]), Device: aws.String("/dev/sdy")}); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		out, err := e.aws.EC2.DescribeVolumes(ctx, &ec2.DescribeVolumesInput{VolumeIds: []string{id}})
		if err != nil {
			t.Fatal(err)
		}
		if out.Volumes[0].State == ec2types.VolumeStateInUse {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s is %s", id, out.Volumes[0].State)
		}
	}
	before := lastSeq(e.sim)
	var res ReleaseResult
	in := ReleaseInput{Cluster: inventory.DemoCluster, Version: "2", TargetZone: inventory.DemoSpareZone, Timing: simReleaseTiming(), DryRun: true, RequestedBy: "test"}
	e.run(t, ReleaseWorkflowType, ReleasePlanWorkflowID(inventory.DemoCluster)+"-"+uuid.NewString(), in, &res)
	if res.Outcome != ReleaseDryRun || len(res.Plan.Blockers) != 1 || res.Plan.Blockers[0].VolumeID != id || res.Plan.Blockers[0].Kind != anyops.BlockerUnknownVolume {
		t.Fatalf("outcome %s, blockers %+v: want a dry run blocked by %s", res.Outcome, res.Plan.Blockers, id)
	}
	for _, ev := range e.sim.Events(before, 1000) {
		readOnly := strings.Contains(ev.Message, `"drbdadm status"`) || strings.Contains(ev.Message, `"cat /proc/mounts"`)
		switch {
		case ev.Seq <= before, strings.HasPrefix(ev.Type, "nfs."), strings.HasPrefix(ev.Type, "drbd."), ev.Type == "ssm.command.success":
		case ev.Type == "volume.attached" && strings.Contains(ev.Message, id): // the attachment above, logged as the world settles
		case ev.Type == "ssm.command.sent" && readOnly:
		default:
			t.Errorf("the dry run changed something: %s %s", ev.Type, ev.Message)
		}
	}
	// The zone move's ways: home by its replica, logs by a snapshot, Dropbox deferred.
	for _, m := range res.Plan.Volumes {
		switch {
		case m.Kind == anyops.VolumeLogs && (m.Way != anyops.WaySnapshot || m.Deferred):
			t.Errorf("logs: %+v, want a snapshot in the window", m)
		case m.Kind == anyops.VolumeDropbox && (m.Way != anyops.WaySnapshot || !m.Deferred):
			t.Errorf("dropbox: %+v, want a deferred snapshot", m)
		}
	}
}

// TestReleaseZoneMoveOnCloudsim is the seeds' release done right, on cloudsim: live moves
// from us-east-1a to us-east-1c. The backup moves ahead (a storage change, the file server
// hot throughout), the logs volume gets a full snapshot ahead and only an incremental in the
// window, Dropbox follows after the cutover and is attached in the background.
func TestReleaseZoneMoveOnCloudsim(t *testing.T) {
	e := newFleetEnv(t)
	fleet := e.demoWithData(t, 5)
	// Dropbox is full and its snapshot crawls, as in the post.
	dropbox := fleet.Volumes[inventory.DemoFileServer+"/dropbox"]
	if _, err := e.sim.FillVolume(dropbox, 20); err != nil {
		t.Fatal(err)
	}
	e.injectFault(t, map[string]any{"type": cloudsim.FaultSlowSnapshot, "volume_id": dropbox, "factor": 60})
	var res ReleaseResult
	in := ReleaseInput{Cluster: inventory.DemoCluster, Version: "2", TargetZone: inventory.DemoSpareZone, Timing: simReleaseTiming(), RequestedBy: "test",
		Policy: ReleasePolicy{NoApproval: true, Retention: time.Second}}
	// Status is watched while the release runs: Dropbox's copy shows its percent and an ETA
	// (the window at cloudsim's test speed is long in simulated time: the copy may be under way
	// before and after the new cluster is live).
	var (
		mu         sync.Mutex
		inProgress []VolumeProgress
	)
	watching := make(chan struct{})
	defer close(watching)
	watch := func(id string) {
		go func() {
			for {
				select {
				case <-watching:
					return
				case <-time.After(50 * time.Millisecond):
				}
				v, err := e.temporal.QueryWorkflow(context.Background(), id, "", StatusQuery)
				var st Status
				if err != nil || v.Get(&st) != nil {
					continue
				}
				for _, vp := range st.Volumes {
					if vp.VolumeID == dropbox && vp.Percent > 0 && vp.Percent < 100 && vp.ETA != nil {
						mu.Lock()
						inProgress = append(inProgress, vp)
						mu.Unlock()
					}
				}
			}
		}()
	}
	e.runRelease(t, in, &res, watch)
	t.Logf("outcome %s downtime %.1f s predicted %.0f s deferred %+v volumes %v", res.Outcome, res.DowntimeSeconds, res.PredictedDowntimeSeconds, res.Deferred, res.Volumes)
	if res.Outcome != ReleaseLive || res.FileServer != "live-2-file" {
		t.Fatalf("outcome %s on %s", res.Outcome, res.FileServer)
	}
	if len(res.Deferred) != 1 || res.Deferred[0].VolumeID != dropbox || res.Deferred[0].CompletedAt == nil || res.LiveAt == nil || !res.Deferred[0].CompletedAt.After(*res.LiveAt) {
		t.Errorf("deferred %+v (live at %v), want Dropbox attached after the cutover", res.Deferred, res.LiveAt)
	}
	mu.Lock()
	if len(inProgress) == 0 {
		t.Errorf("Status never showed Dropbox's copy in progress (percent, ETA)")
	} else {
		t.Logf("Dropbox in Status: %d samples, e.g. %d%% ETA %v", len(inProgress), inProgress[0].Percent, inProgress[0].ETA)
	}
	mu.Unlock()
	logs := fleet.Volumes[inventory.DemoFileServer+"/logs"]
	if nv := res.Volumes[logs]; nv == "" || nv == logs {
		t.Errorf("logs %s became %q, want a new volume in %s", logs, nv, inventory.DemoSpareZone)
	}
	newFile := getHost(t, e.endpoint, res.Servers["live-2-file"])
	for _, r := range activities.DemoFleetPlan().DRBDResources() {
		if d := newFile.DRBD[r]; d.Role != "Primary" || d.Disk != "UpToDate" {
			t.Errorf("%s on live-2-file: %+v, want Primary UpToDate", r, d)
		}
	}
}

// runRelease runs a release to its end (a zone move takes longer than run's two minutes); a
// release that fails or does not end says where it was.
// started, when not nil, is told the release's id once it runs.
func (e *fleetEnv) runRelease(t *testing.T, in ReleaseInput, res *ReleaseResult, started func(id string)) {
	t.Helper()
	id := anyops.ReleaseWorkflowID(in.Cluster) + "-" + uuid.NewString()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	run, err := e.temporal.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: id, TaskQueue: e.queue}, ReleaseWorkflowType, in)
	if err != nil {
		t.Fatal(err)
	}
	if started != nil {
		started(id)
	}
	if err := run.Get(ctx, res); err != nil {
		st := e.status(t, id)
		var steps []string
		for _, s := range st.Steps {
			steps = append(steps, fmt.Sprintf("%s %s: %s", s.Name, s.State, s.Message))
		}
		t.Fatalf("release: %v\nphase %s: %s\n%s\nvolumes %+v", err, st.Phase, st.Message, strings.Join(steps, "\n"), st.Volumes)
	}
}

// TestReleaseRollbackOnCloudsim: the new cluster's web server cannot write to its home (its
// health check after the names moved fails): the release rolls back by itself — the old file
// server, a connected Secondary throughout, is Primary again and serves with every resource
// UpToDate, the backup has its volumes back, nothing written is lost, and the new cluster is
// retired with its servers terminated.
func TestReleaseRollbackOnCloudsim(t *testing.T) {
	e := newFleetEnv(t)
	fleet := e.demoWithData(t, 5)
	since := lastSeq(e.sim)
	in := ReleaseInput{Cluster: inventory.DemoCluster, Version: "2", Timing: simReleaseTiming(), RequestedBy: "test",
		Policy: ReleasePolicy{NoApproval: true, NoNewBackupSeed: true, Retention: time.Second}}
	done := make(chan struct{})
	defer close(done)
	broken := make(chan string, 1)
	// Once the new cluster is built, its web server's probe writes fail (a command-failure
	// fault on timeout(1), which the mount check writes and reads through).
	breakWeb := func(id string) {
		go func() {
			for {
				select {
				case <-done:
					return
				case <-time.After(20 * time.Millisecond):
				}
				v, err := e.temporal.QueryWorkflow(context.Background(), id, "", StatusQuery)
				var st Status
				if err != nil || v.Get(&st) != nil || !slices.ContainsFunc(st.Steps, func(s Step) bool { return s.Name == stepRelBuild && s.State == StepDone }) {
					continue
				}
				srv, err := e.store.GetServer(context.Background(), "live-2-web1")
				if err != nil || srv.InstanceID == "" {
					continue
				}
				f, err := e.sim.InjectFault(cloudsim.Fault{Type: cloudsim.FaultCommandFailure, InstanceID: srv.InstanceID, Command: "timeout"})
				if err != nil {
					t.Error(err)
				}
				broken <- f.ID
				return
			}
		}()
	}
	var res ReleaseResult
	e.runRelease(t, in, &res, breakWeb)
	select {
	case <-broken:
	default:
		t.Fatal("the new web server was never broken")
	}
	t.Logf("outcome %s: %s", res.Outcome, res.RollbackReason)
	if res.Outcome != ReleaseRolledBack || res.FileServer != inventory.DemoFileServer {
		t.Fatalf("outcome %s on %s, want rolled back to %s", res.Outcome, res.FileServer, inventory.DemoFileServer)
	}
	file := getHost(t, e.endpoint, fleet.Instances[inventory.DemoFileServer])
	backup := getHost(t, e.endpoint, fleet.Instances[inventory.DemoBackup])
	for _, r := range activities.DemoFleetPlan().DRBDResources() {
		if d := file.DRBD[r]; d.Role != "Primary" || d.Disk != "UpToDate" || !d.Connected {
			t.Errorf("%s on the old file server: %+v, want Primary, UpToDate, connected", r, d)
		}
		if d := backup.DRBD[r]; d.Role != "Secondary" || d.Disk != "UpToDate" {
			t.Errorf("%s on the backup: %+v, want its volume back, Secondary UpToDate", r, d)
		}
	}
	exported := false
	for path, opts := range file.Exports {
		exported = exported || strings.Contains(path+":"+opts, "/srv/home")
	}
	if !exported {
		t.Errorf("the old file server does not export /srv/home: %v", file.Exports)
	}
	for _, ev := range e.sim.QueryEvents(cloudsim.EventQuery{Since: since, Types: []string{"data.lost", "drbd.split-brain"}}) {
		t.Errorf("%s: %s", ev.Type, ev.Message)
	}
	for name, id := range res.Servers {
		if srv, err := e.store.GetServer(context.Background(), name); err != nil || srv.State != anyops.ServerTerminated {
			t.Errorf("new server %s (%s): %+v %v, want terminated", name, id, srv.State, err)
		}
	}
}
