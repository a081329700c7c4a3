package cloudsim

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
)

// TestUnknownActionIsAnAWSError proves that what cloudsim does not implement is refused the
// way AWS refuses it, never answered with a 200.
func TestUnknownActionIsAnAWSError(t *testing.T) {
	f := newFixture(t, Config{})
	tests := []struct {
		name       string
		header     map[string]string
		ctype      string
		body       string
		wantStatus int
		wantInBody string
	}{
		{"EC2 action not implemented", nil, "application/x-www-form-urlencoded", "Action=CreateVpc&Version=2016-11-15", 400, "<Code>InvalidAction</Code>"},
		{"EC2 request without Action", nil, "application/x-www-form-urlencoded", "Version=2016-11-15", 400, "<Code>MissingAction</Code>"},
		{"EC2 malformed query", nil, "application/x-www-form-urlencoded", "Action=%zz", 400, "<Code>MalformedQueryString</Code>"},
		{"SSM operation not implemented", map[string]string{"X-Amz-Target": "AmazonSSM.CreateDocument"}, "application/x-amz-json-1.1", "{}", 400, `"__type":"UnknownOperationException"`},
		{"target of another service", map[string]string{"X-Amz-Target": "DynamoDB_20120810.ListTables"}, "application/x-amz-json-1.0", "{}", 400, `"__type":"UnknownOperationException"`},
		{"SSM body not JSON", map[string]string{"X-Amz-Target": "AmazonSSM.SendCommand"}, "application/x-amz-json-1.1", "{nope", 400, `"__type":"SerializationException"`},
		{"unknown control endpoint", nil, "application/json", "{}", 404, `"code":"not_found"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := "/"
			if tc.wantStatus == 404 {
				path = "/_sim/nothing"
			}
			status, body := f.post(t, path, tc.ctype, tc.body, tc.header)
			if status != tc.wantStatus || !strings.Contains(body, tc.wantInBody) {
				t.Fatalf("got %d %s, want %d containing %s", status, body, tc.wantStatus, tc.wantInBody)
			}
		})
	}
}

// TestInstanceLifecycle drives launch, status checks, stop, start and terminate with the SDK's
// own waiters while the simulated clock runs.
func TestInstanceLifecycle(t *testing.T) {
	f := newFixture(t, Config{})
	id := f.run(t, "us-east-1b", map[string]string{"Name": "file1", "anyops:role": "file"})
	if got := f.instance(t, id); got.State.Name != ec2types.InstanceStateNamePending || *got.Placement.AvailabilityZone != "us-east-1b" {
		t.Fatalf("fresh instance: state %s zone %s, want pending in us-east-1b", got.State.Name, *got.Placement.AvailabilityZone)
	}
	fast := func(o *ec2.InstanceRunningWaiterOptions) {
		o.MinDelay, o.MaxDelay = 10*time.Millisecond, 20*time.Millisecond
	}
	if err := ec2.NewInstanceRunningWaiter(f.ec2, fast).Wait(f.ctx, &ec2.DescribeInstancesInput{InstanceIds: []string{id}}, 20*time.Second); err != nil {
		t.Fatalf("InstanceRunning waiter: %v", err)
	}
	got := f.instance(t, id)
	if len(got.BlockDeviceMappings) != 1 || *got.BlockDeviceMappings[0].DeviceName != "/dev/xvda" || got.PrivateIpAddress == nil {
		t.Fatalf("running instance lacks its boot volume or address: %+v", got)
	}

	f.sim.Advance(statusInitTime)
	st, err := f.ec2.DescribeInstanceStatus(f.ctx, &ec2.DescribeInstanceStatusInput{InstanceIds: []string{id}})
	if err != nil || len(st.InstanceStatuses) != 1 {
		t.Fatalf("DescribeInstanceStatus: %v %+v", err, st)
	}
	if s := st.InstanceStatuses[0]; s.SystemStatus.Status != ec2types.SummaryStatusOk || s.InstanceStatus.Status != ec2types.SummaryStatusOk {
		t.Fatalf("healthy instance status: system %s instance %s, want ok ok", s.SystemStatus.Status, s.InstanceStatus.Status)
	}

	if _, err := f.ec2.StopInstances(f.ctx, &ec2.StopInstancesInput{InstanceIds: []string{id}}); err != nil {
		t.Fatal(err)
	}
	stopped := func(o *ec2.InstanceStoppedWaiterOptions) {
		o.MinDelay, o.MaxDelay = 10*time.Millisecond, 20*time.Millisecond
	}
	if err := ec2.NewInstanceStoppedWaiter(f.ec2, stopped).Wait(f.ctx, &ec2.DescribeInstancesInput{InstanceIds: []string{id}}, 20*time.Second); err != nil {
		t.Fatalf("InstanceStopped waiter: %v", err)
	}
	// A stopped instance is not in the default status listing, and is with IncludeAllInstances.
	st, _ = f.ec2.DescribeInstanceStatus(f.ctx, &ec2.DescribeInstanceStatusInput{InstanceIds: []string{id}})
	all, _ := f.ec2.DescribeInstanceStatus(f.ctx, &ec2.DescribeInstanceStatusInput{InstanceIds: []string{id}, IncludeAllInstances: aws.Bool(true)})
	if len(st.InstanceStatuses) != 0 || len(all.InstanceStatuses) != 1 || all.InstanceStatuses[0].InstanceState.Name != ec2types.InstanceStateNameStopped {
		t.Fatalf("stopped instance: default listing %d, IncludeAllInstances %+v", len(st.InstanceStatuses), all.InstanceStatuses)
	}

	if _, err := f.ec2.StartInstances(f.ctx, &ec2.StartInstancesInput{InstanceIds: []string{id}}); err != nil {
		t.Fatal(err)
	}
	if err := ec2.NewInstanceRunningWaiter(f.ec2, fast).Wait(f.ctx, &ec2.DescribeInstancesInput{InstanceIds: []string{id}}, 20*time.Second); err != nil {
		t.Fatalf("InstanceRunning waiter after start: %v", err)
	}
	term, err := f.ec2.TerminateInstances(f.ctx, &ec2.TerminateInstancesInput{InstanceIds: []string{id}})
	if err != nil || term.TerminatingInstances[0].CurrentState.Name != ec2types.InstanceStateNameShuttingDown ||
		term.TerminatingInstances[0].PreviousState.Name != ec2types.InstanceStateNameRunning {
		t.Fatalf("TerminateInstances: %v %+v", err, term)
	}
	terminated := func(o *ec2.InstanceTerminatedWaiterOptions) {
		o.MinDelay, o.MaxDelay = 10*time.Millisecond, 20*time.Millisecond
	}
	if err := ec2.NewInstanceTerminatedWaiter(f.ec2, terminated).Wait(f.ctx, &ec2.DescribeInstancesInput{InstanceIds: []string{id}}, 20*time.Second); err != nil {
		t.Fatalf("InstanceTerminated waiter: %v", err)
	}
	// Its boot volume was delete-on-termination.
	vols, _ := f.ec2.DescribeVolumes(f.ctx, &ec2.DescribeVolumesInput{})
	if len(vols.Volumes) != 0 {
		t.Fatalf("boot volume outlived its terminated instance: %+v", vols.Volumes)
	}
	_, err = f.ec2.StartInstances(f.ctx, &ec2.StartInstancesInput{InstanceIds: []string{id}})
	if code := apiCode(t, err); code != "IncorrectInstanceState" {
		t.Fatalf("starting a terminated instance: %q, want IncorrectInstanceState", code)
	}
}

// TestClientTokenIdempotency proves a retried RunInstances or CreateVolume creates one
// resource, and that a token reused for a different request is refused.
func TestClientTokenIdempotency(t *testing.T) {
	f := newFixture(t, Config{Speed: frozen})
	run := func(token string, itype ec2types.InstanceType) (string, error) {
		out, err := f.ec2.RunInstances(f.ctx, &ec2.RunInstancesInput{ImageId: aws.String("ami-1"), MinCount: aws.Int32(1), MaxCount: aws.Int32(1),
			InstanceType: itype, ClientToken: aws.String(token)})
		if err != nil {
			return "", err
		}
		return *out.Instances[0].InstanceId, nil
	}
	create := func(token string, size int32) (string, error) {
		out, err := f.ec2.CreateVolume(f.ctx, &ec2.CreateVolumeInput{AvailabilityZone: aws.String("us-east-1a"), Size: aws.Int32(size), ClientToken: aws.String(token)})
		if err != nil {
			return "", err
		}
		return *out.VolumeId, nil
	}
	tests := []struct {
		name      string
		first     func() (string, error)
		again     func() (string, error)
		different func() (string, error)
		count     func() int
	}{
		{"RunInstances",
			func() (string, error) { return run("tok-run", ec2types.InstanceTypeM5Large) },
			func() (string, error) { return run("tok-run", ec2types.InstanceTypeM5Large) },
			func() (string, error) { return run("tok-run", ec2types.InstanceTypeM5Xlarge) },
			func() int {
				out, _ := f.ec2.DescribeInstances(f.ctx, &ec2.DescribeInstancesInput{})
				return len(out.Reservations)
			}},
		{"CreateVolume",
			func() (string, error) { return create("tok-vol", 100) },
			func() (string, error) { return create("tok-vol", 100) },
			func() (string, error) { return create("tok-vol", 200) },
			func() int {
				out, _ := f.ec2.DescribeVolumes(f.ctx, &ec2.DescribeVolumesInput{Filters: []ec2types.Filter{{Name: aws.String("size"), Values: []string{"100"}}}})
				return len(out.Volumes)
			}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a, err := tc.first()
			if err != nil {
				t.Fatal(err)
			}
			b, err := tc.again()
			if err != nil {
				t.Fatal(err)
			}
			if a != b {
				t.Fatalf("same ClientToken, same parameters: got %s then %s, want the first result again", a, b)
			}
			if n := tc.count(); n != 1 {
				t.Fatalf("same ClientToken twice created %d resources, want 1", n)
			}
			_, err = tc.different()
			if code := apiCode(t, err); code != "IdempotentParameterMismatch" {
				t.Fatalf("same ClientToken, different parameters: %q, want IdempotentParameterMismatch", code)
			}
			if n := tc.count(); n != 1 {
				t.Fatalf("a mismatched token created a resource: %d", n)
			}
		})
	}
}

// TestVolumeLifecycle covers create, attach, detach, modify and delete, each with the error
// EC2 gives when the state does not allow it.
func TestVolumeLifecycle(t *testing.T) {
	f := newFixture(t, Config{})
	inst := f.run(t, "us-east-1a", nil)
	other := f.run(t, "us-east-1b", nil)
	vol := f.createVolume(t, "us-east-1a", 500, map[string]string{"anyops:kind": "home"})
	fast := func(o *ec2.VolumeAvailableWaiterOptions) {
		o.MinDelay, o.MaxDelay = 10*time.Millisecond, 20*time.Millisecond
	}
	if err := ec2.NewVolumeAvailableWaiter(f.ec2, fast).Wait(f.ctx, &ec2.DescribeVolumesInput{VolumeIds: []string{vol}}, 20*time.Second); err != nil {
		t.Fatalf("VolumeAvailable waiter: %v", err)
	}
	running := func(o *ec2.InstanceRunningWaiterOptions) {
		o.MinDelay, o.MaxDelay = 10*time.Millisecond, 20*time.Millisecond
	}
	if err := ec2.NewInstanceRunningWaiter(f.ec2, running).Wait(f.ctx, &ec2.DescribeInstancesInput{InstanceIds: []string{inst, other}}, 20*time.Second); err != nil {
		t.Fatal(err)
	}

	_, err := f.ec2.AttachVolume(f.ctx, &ec2.AttachVolumeInput{VolumeId: aws.String(vol), InstanceId: aws.String(other), Device: aws.String("/dev/sdf")})
	if code := apiCode(t, err); code != "InvalidVolume.ZoneMismatch" {
		t.Fatalf("attach across zones: %q, want InvalidVolume.ZoneMismatch", code)
	}
	f.attach(t, vol, inst, "/dev/sdf")
	inUse := func(o *ec2.VolumeInUseWaiterOptions) {
		o.MinDelay, o.MaxDelay = 10*time.Millisecond, 20*time.Millisecond
	}
	if err := ec2.NewVolumeInUseWaiter(f.ec2, inUse).Wait(f.ctx, &ec2.DescribeVolumesInput{VolumeIds: []string{vol}}, 20*time.Second); err != nil {
		t.Fatal(err)
	}
	f.sim.Advance(attachTime)
	if v := f.volume(t, vol); len(v.Attachments) != 1 || v.Attachments[0].State != ec2types.VolumeAttachmentStateAttached || *v.Attachments[0].InstanceId != inst {
		t.Fatalf("attached volume: %+v", v.Attachments)
	}
	byAttachment, _ := f.ec2.DescribeVolumes(f.ctx, &ec2.DescribeVolumesInput{Filters: []ec2types.Filter{
		{Name: aws.String("attachment.instance-id"), Values: []string{inst}}, {Name: aws.String("tag:anyops:kind"), Values: []string{"ho*"}}}})
	if len(byAttachment.Volumes) != 1 || *byAttachment.Volumes[0].VolumeId != vol {
		t.Fatalf("filter by attachment.instance-id and tag wildcard: %+v", byAttachment.Volumes)
	}

	errorCases := []struct {
		name string
		call func() error
		want string
	}{
		{"attach an attached volume", func() error {
			_, err := f.ec2.AttachVolume(f.ctx, &ec2.AttachVolumeInput{VolumeId: aws.String(vol), InstanceId: aws.String(inst), Device: aws.String("/dev/sdg")})
			return err
		}, "VolumeInUse"},
		{"delete an attached volume", func() error {
			_, err := f.ec2.DeleteVolume(f.ctx, &ec2.DeleteVolumeInput{VolumeId: aws.String(vol)})
			return err
		}, "VolumeInUse"},
		{"detach the root volume of a running instance", func() error {
			root := *f.instance(t, inst).BlockDeviceMappings[0].Ebs.VolumeId
			_, err := f.ec2.DetachVolume(f.ctx, &ec2.DetachVolumeInput{VolumeId: aws.String(root)})
			return err
		}, "OperationNotPermitted"},
		{"shrink a volume", func() error {
			_, err := f.ec2.ModifyVolume(f.ctx, &ec2.ModifyVolumeInput{VolumeId: aws.String(vol), Size: aws.Int32(100)})
			return err
		}, "InvalidParameterValue"},
		{"describe a volume that never existed", func() error {
			_, err := f.ec2.DescribeVolumes(f.ctx, &ec2.DescribeVolumesInput{VolumeIds: []string{"vol-0123456789abcdef0"}})
			return err
		}, "InvalidVolume.NotFound"},
		{"describe an instance that never existed", func() error {
			_, err := f.ec2.DescribeInstances(f.ctx, &ec2.DescribeInstancesInput{InstanceIds: []string{"i-0123456789abcdef0"}})
			return err
		}, "InvalidInstanceID.NotFound"},
		{"create a volume in a zone of another region", func() error {
			_, err := f.ec2.CreateVolume(f.ctx, &ec2.CreateVolumeInput{AvailabilityZone: aws.String("eu-west-1a"), Size: aws.Int32(1)})
			return err
		}, "InvalidParameterValue"},
		{"filter that does not exist", func() error {
			_, err := f.ec2.DescribeVolumes(f.ctx, &ec2.DescribeVolumesInput{Filters: []ec2types.Filter{{Name: aws.String("colour"), Values: []string{"red"}}}})
			return err
		}, "InvalidParameterValue"},
	}
	for _, tc := range errorCases {
		t.Run(tc.name, func(t *testing.T) {
			if code := apiCode(t, tc.call()); code != tc.want {
				t.Fatalf("got %q, want %s", code, tc.want)
			}
		})
	}

	mod, err := f.ec2.ModifyVolume(f.ctx, &ec2.ModifyVolumeInput{VolumeId: aws.String(vol), Size: aws.Int32(1000)})
	if err != nil || mod.VolumeModification.ModificationState != ec2types.VolumeModificationStateModifying || *mod.VolumeModification.TargetSize != 1000 {
		t.Fatalf("ModifyVolume: %v %+v", err, mod)
	}
	_, err = f.ec2.ModifyVolume(f.ctx, &ec2.ModifyVolumeInput{VolumeId: aws.String(vol), Size: aws.Int32(2000)})
	if code := apiCode(t, err); code != "IncorrectModificationState" {
		t.Fatalf("second modification while one runs: %q, want IncorrectModificationState", code)
	}
	f.sim.Advance(6 * time.Hour)
	mods, err := f.ec2.DescribeVolumesModifications(f.ctx, &ec2.DescribeVolumesModificationsInput{VolumeIds: []string{vol}})
	if err != nil || len(mods.VolumesModifications) != 1 || mods.VolumesModifications[0].ModificationState != ec2types.VolumeModificationStateCompleted ||
		*mods.VolumesModifications[0].Progress != 100 {
		t.Fatalf("DescribeVolumesModifications after 6h: %v %+v", err, mods)
	}

	if _, err := f.ec2.DetachVolume(f.ctx, &ec2.DetachVolumeInput{VolumeId: aws.String(vol)}); err != nil {
		t.Fatal(err)
	}
	if err := ec2.NewVolumeAvailableWaiter(f.ec2, fast).Wait(f.ctx, &ec2.DescribeVolumesInput{VolumeIds: []string{vol}}, 20*time.Second); err != nil {
		t.Fatalf("VolumeAvailable after detach: %v", err)
	}
	_, err = f.ec2.DetachVolume(f.ctx, &ec2.DetachVolumeInput{VolumeId: aws.String(vol)})
	if code := apiCode(t, err); code != "IncorrectState" {
		t.Fatalf("detach a detached volume: %q, want IncorrectState", code)
	}
	if _, err := f.ec2.DeleteVolume(f.ctx, &ec2.DeleteVolumeInput{VolumeId: aws.String(vol)}); err != nil {
		t.Fatal(err)
	}
	deleted := func(o *ec2.VolumeDeletedWaiterOptions) {
		o.MinDelay, o.MaxDelay = 10*time.Millisecond, 20*time.Millisecond
	}
	if err := ec2.NewVolumeDeletedWaiter(f.ec2, deleted).Wait(f.ctx, &ec2.DescribeVolumesInput{VolumeIds: []string{vol}}, 5*time.Second); err != nil {
		t.Fatalf("VolumeDeleted waiter: %v", err)
	}
}

// TestSnapshotProgressFollowsTheClock proves Progress is the real percentage of the time
// model: a first snapshot moves the whole volume at 20 MB/s, the next only changed data.
func TestSnapshotProgressFollowsTheClock(t *testing.T) {
	f := newFixture(t, Config{Speed: frozen})
	vol := f.createVolume(t, "us-east-1a", 1000, nil)
	f.sim.Advance(volumeCreateTime)
	snap, err := f.ec2.CreateSnapshot(f.ctx, &ec2.CreateSnapshotInput{VolumeId: aws.String(vol), Description: aws.String("dropbox"),
		TagSpecifications: []ec2types.TagSpecification{{ResourceType: ec2types.ResourceTypeSnapshot, Tags: toTags(map[string]string{"purpose": "zone-move"})}}})
	if err != nil || snap.State != ec2types.SnapshotStatePending || *snap.Progress != "0%" {
		t.Fatalf("CreateSnapshot: %v %+v", err, snap)
	}
	full := time.Duration(1000 * gib / firstSnapshotRate * float64(time.Second)) // ≈ 14.2 h
	progress := func() string {
		out, err := f.ec2.DescribeSnapshots(f.ctx, &ec2.DescribeSnapshotsInput{SnapshotIds: []string{*snap.SnapshotId}})
		if err != nil {
			t.Fatal(err)
		}
		return *out.Snapshots[0].Progress
	}
	steps := []struct {
		advance time.Duration
		want    string
	}{
		{10 * time.Minute, "1%"}, // the Dropbox volume of the zone move: <1% would be 0%, 10 min of 14 h is 1.17%
		{full/2 - 10*time.Minute, "50%"},
		{full/2 - time.Minute, "99%"},
	}
	for _, st := range steps {
		f.sim.Advance(st.advance)
		if got := progress(); got != st.want {
			t.Fatalf("after +%s: progress %s, want %s", st.advance, got, st.want)
		}
	}
	f.sim.Advance(time.Minute)
	completed := func(o *ec2.SnapshotCompletedWaiterOptions) {
		o.MinDelay, o.MaxDelay = 10*time.Millisecond, 20*time.Millisecond
	}
	if err := ec2.NewSnapshotCompletedWaiter(f.ec2, completed).Wait(f.ctx, &ec2.DescribeSnapshotsInput{SnapshotIds: []string{*snap.SnapshotId}}, 5*time.Second); err != nil {
		t.Fatalf("SnapshotCompleted waiter: %v", err)
	}
	if got := progress(); got != "100%" {
		t.Fatalf("completed snapshot progress %s", got)
	}

	// The second snapshot is incremental: 5% of 1000 GiB at 200 MB/s ≈ 4.3 min.
	incr, err := f.ec2.CreateSnapshot(f.ctx, &ec2.CreateSnapshotInput{VolumeId: aws.String(vol)})
	if err != nil {
		t.Fatal(err)
	}
	f.sim.Advance(5 * time.Minute)
	out, _ := f.ec2.DescribeSnapshots(f.ctx, &ec2.DescribeSnapshotsInput{Filters: []ec2types.Filter{{Name: aws.String("status"), Values: []string{"completed"}}}})
	if len(out.Snapshots) != 2 {
		t.Fatalf("incremental snapshot %s not completed after 5 min: %+v", *incr.SnapshotId, out.Snapshots)
	}
	byTag, _ := f.ec2.DescribeSnapshots(f.ctx, &ec2.DescribeSnapshotsInput{Filters: []ec2types.Filter{{Name: aws.String("tag:purpose"), Values: []string{"zone-move"}}}})
	if len(byTag.Snapshots) != 1 || *byTag.Snapshots[0].SnapshotId != *snap.SnapshotId {
		t.Fatalf("snapshot tag filter: %+v", byTag.Snapshots)
	}

	cp, err := f.ec2.CopySnapshot(f.ctx, &ec2.CopySnapshotInput{SourceSnapshotId: snap.SnapshotId, SourceRegion: aws.String("us-east-1")})
	if err != nil {
		t.Fatalf("CopySnapshot: %v", err)
	}
	f.sim.Advance(time.Hour)
	cpOut, _ := f.ec2.DescribeSnapshots(f.ctx, &ec2.DescribeSnapshotsInput{SnapshotIds: []string{*cp.SnapshotId}})
	if p := *cpOut.Snapshots[0].Progress; p != "17%" { // 1 h × 50 MB/s of 1000 GiB = 17.6%
		t.Fatalf("copy progress after 1h: %s, want 17%%", p)
	}
	// A volume restored from a completed snapshot.
	restored, err := f.ec2.CreateVolume(f.ctx, &ec2.CreateVolumeInput{AvailabilityZone: aws.String("us-east-1c"), SnapshotId: snap.SnapshotId})
	if err != nil || *restored.Size != 1000 {
		t.Fatalf("CreateVolume from snapshot: %v %+v", err, restored)
	}
	_, err = f.ec2.CreateVolume(f.ctx, &ec2.CreateVolumeInput{AvailabilityZone: aws.String("us-east-1c"), SnapshotId: cp.SnapshotId})
	if code := apiCode(t, err); code != "IncorrectState" {
		t.Fatalf("volume from a pending snapshot: %q, want IncorrectState", code)
	}
	if _, err := f.ec2.DeleteSnapshot(f.ctx, &ec2.DeleteSnapshotInput{SnapshotId: incr.SnapshotId}); err != nil {
		t.Fatal(err)
	}
	_, err = f.ec2.DescribeSnapshots(f.ctx, &ec2.DescribeSnapshotsInput{SnapshotIds: []string{*incr.SnapshotId}})
	if code := apiCode(t, err); code != "InvalidSnapshot.NotFound" {
		t.Fatalf("deleted snapshot: %q, want InvalidSnapshot.NotFound", code)
	}
}

// TestSnapshotFaults proves stuck and slow snapshot faults change progress from the moment
// they are injected, and clearing them resumes the normal rate.
func TestSnapshotFaults(t *testing.T) {
	f := newFixture(t, Config{Speed: frozen})
	vol := f.createVolume(t, "us-east-1a", 100, nil)
	f.sim.Advance(volumeCreateTime)
	snap, _ := f.ec2.CreateSnapshot(f.ctx, &ec2.CreateSnapshotInput{VolumeId: aws.String(vol)})
	full := time.Duration(100 * gib / firstSnapshotRate * float64(time.Second)) // ≈ 85 min
	f.sim.Advance(full / 4)
	stuck := f.injectFault(t, map[string]any{"type": "stuck-snapshot", "snapshot_id": *snap.SnapshotId})
	f.sim.Advance(10 * time.Hour)
	progress := func() string {
		out, _ := f.ec2.DescribeSnapshots(f.ctx, &ec2.DescribeSnapshotsInput{SnapshotIds: []string{*snap.SnapshotId}})
		return *out.Snapshots[0].Progress
	}
	if p := progress(); p != "25%" {
		t.Fatalf("stuck snapshot moved: %s, want 25%%", p)
	}
	if !f.sim.ClearFault(stuck) {
		t.Fatal("ClearFault: fault not found")
	}
	f.injectFault(t, map[string]any{"type": "slow-snapshot", "volume_id": vol, "factor": 5})
	f.sim.Advance(full / 4 * 5)
	if p := progress(); p != "50%" {
		t.Fatalf("slowed 5× for 5× a quarter's time: %s, want 50%%", p)
	}
}

// TestHardwareFault proves a failure injected through /_sim/faults shows the instance impaired
// with ImpairedSince, makes a plain stop hang, and a forced stop end it in 10 minutes.
func TestHardwareFault(t *testing.T) {
	f := newFixture(t, Config{Speed: frozen})
	id := f.run(t, "us-east-1a", nil)
	f.sim.Advance(bootTime + statusInitTime)
	failedAt := f.sim.Now()
	f.injectFault(t, map[string]any{"type": "hardware-failure", "instance_id": id})
	f.sim.Advance(time.Minute)

	st, err := f.ec2.DescribeInstanceStatus(f.ctx, &ec2.DescribeInstanceStatusInput{InstanceIds: []string{id}})
	if err != nil || len(st.InstanceStatuses) != 1 {
		t.Fatalf("DescribeInstanceStatus: %v", err)
	}
	sys := st.InstanceStatuses[0].SystemStatus
	if sys.Status != ec2types.SummaryStatusImpaired || sys.Details[0].Status != ec2types.StatusTypeFailed ||
		sys.Details[0].ImpairedSince == nil || !sys.Details[0].ImpairedSince.Equal(failedAt) {
		t.Fatalf("system status after hardware fault: %+v (details %+v), want impaired since %s", sys, sys.Details, failedAt)
	}
	impaired, _ := f.ec2.DescribeInstanceStatus(f.ctx, &ec2.DescribeInstanceStatusInput{Filters: []ec2types.Filter{
		{Name: aws.String("system-status.status"), Values: []string{"impaired"}}}})
	if len(impaired.InstanceStatuses) != 1 {
		t.Fatalf("system-status.status=impaired filter: %+v", impaired.InstanceStatuses)
	}
	// The host is gone: SSM cannot reach it.
	_, err = f.ssm.SendCommand(f.ctx, sendShell(id, "true"))
	if code := apiCode(t, err); code != "InvalidInstanceId" {
		t.Fatalf("SendCommand to failed hardware: %q, want InvalidInstanceId", code)
	}

	if _, err := f.ec2.StopInstances(f.ctx, &ec2.StopInstancesInput{InstanceIds: []string{id}}); err != nil {
		t.Fatal(err)
	}
	f.sim.Advance(30 * time.Minute)
	if s := f.instance(t, id).State.Name; s != ec2types.InstanceStateNameStopping {
		t.Fatalf("plain stop on failed hardware after 30 min: %s, want still stopping", s)
	}
	if _, err := f.ec2.StopInstances(f.ctx, &ec2.StopInstancesInput{InstanceIds: []string{id}, Force: aws.Bool(true)}); err != nil {
		t.Fatal(err)
	}
	f.sim.Advance(forcedHungStop)
	if s := f.instance(t, id).State.Name; s != ec2types.InstanceStateNameStopped {
		t.Fatalf("forced stop after 10 min: %s, want stopped", s)
	}
	active, _ := f.sim.Faults()
	if len(active) != 0 {
		t.Fatalf("the fault should resolve when the instance leaves the failed host: %+v", active)
	}
	var events struct{ Events []Event }
	f.getJSON(t, "/_sim/events?since=0&type=instance.,fault.&resource="+id, &events)
	var types []string
	for _, e := range events.Events {
		if e.Resource == id {
			types = append(types, e.Type)
		}
	}
	want := "instance.launched instance.running fault.hardware-failure instance.stopping instance.stop-hung instance.force-stop instance.stopped fault.resolved"
	if got := strings.Join(types, " "); got != want {
		t.Fatalf("event log for %s:\n got %s\nwant %s", id, got, want)
	}
}

// TestCorruptBootDisk proves the corrupt-boot-disk fault shows after the next restart: the
// instance runs but fails its instance check, and fsck of its boot volume elsewhere fails.
func TestCorruptBootDisk(t *testing.T) {
	f := newFixture(t, Config{Speed: frozen})
	id := f.run(t, "us-east-1a", nil)
	rescue := f.run(t, "us-east-1a", nil)
	f.sim.Advance(bootTime + statusInitTime)
	f.injectFault(t, map[string]any{"type": "corrupt-boot-disk", "instance_id": id})
	f.ec2.StopInstances(f.ctx, &ec2.StopInstancesInput{InstanceIds: []string{id}})
	f.sim.Advance(stopTime)
	f.ec2.StartInstances(f.ctx, &ec2.StartInstancesInput{InstanceIds: []string{id}})
	f.sim.Advance(bootTime + statusInitTime)
	st, _ := f.ec2.DescribeInstanceStatus(f.ctx, &ec2.DescribeInstanceStatusInput{InstanceIds: []string{id}})
	if s := st.InstanceStatuses[0]; s.SystemStatus.Status != ec2types.SummaryStatusOk || s.InstanceStatus.Status != ec2types.SummaryStatusImpaired {
		t.Fatalf("after restart with a corrupt boot disk: system %s instance %s, want ok impaired", s.SystemStatus.Status, s.InstanceStatus.Status)
	}
	// Move the boot volume to a rescue instance and fsck it there.
	f.ec2.StopInstances(f.ctx, &ec2.StopInstancesInput{InstanceIds: []string{id}})
	f.sim.Advance(stopTime)
	root := *f.instance(t, id).BlockDeviceMappings[0].Ebs.VolumeId
	if _, err := f.ec2.DetachVolume(f.ctx, &ec2.DetachVolumeInput{VolumeId: aws.String(root)}); err != nil {
		t.Fatal(err)
	}
	f.sim.Advance(detachTime)
	f.attach(t, root, rescue, "/dev/sdf")
	f.sim.Advance(attachTime)
	// m5 is Nitro: whatever the attach asked for, the rescue host sees the disk as NVMe.
	out, stderr, code, status := f.shell(t, rescue, "fsck -y /dev/nvme1n1p1")
	if code != 4 || status != "Failed" || !strings.Contains(stderr, "UNEXPECTED INCONSISTENCY") {
		t.Fatalf("fsck of the corrupt boot disk: exit %d %s\n%s%s", code, status, out, stderr)
	}
}

// TestThrottling proves throttle faults return RequestLimitExceeded, which the SDK retries.
func TestThrottling(t *testing.T) {
	f := newFixture(t, Config{Speed: frozen})
	f.injectFault(t, map[string]any{"type": "throttle", "action": "DescribeInstances", "count": 2})
	out, err := f.ec2.DescribeInstances(f.ctx, &ec2.DescribeInstancesInput{})
	if err != nil {
		t.Fatalf("two throttled attempts should be retried away: %v", err)
	}
	if attempts, ok := retry.GetAttemptResults(out.ResultMetadata); !ok || len(attempts.Results) != 3 {
		t.Fatalf("want 3 attempts (2 throttled), got %+v", attempts)
	}
	// Other actions are not throttled by a fault on DescribeInstances.
	f.injectFault(t, map[string]any{"type": "throttle", "action": "DescribeInstances", "count": 10})
	if _, err := f.ec2.DescribeVolumes(f.ctx, &ec2.DescribeVolumesInput{}); err != nil {
		t.Fatalf("DescribeVolumes under a DescribeInstances throttle: %v", err)
	}
	_, err = f.ec2.DescribeInstances(f.ctx, &ec2.DescribeInstancesInput{})
	if code := apiCode(t, err); code != "RequestLimitExceeded" {
		t.Fatalf("more throttling than retries: %q, want RequestLimitExceeded", code)
	}
	// SSM throttles with its own code, which the SDK also retries.
	f.injectFault(t, map[string]any{"type": "throttle", "action": "DescribeInstanceInformation", "count": 1})
	info, err := f.ssm.DescribeInstanceInformation(f.ctx, &ssm.DescribeInstanceInformationInput{})
	if err != nil {
		t.Fatalf("one throttled SSM attempt should be retried away: %v", err)
	}
	if attempts, _ := retry.GetAttemptResults(info.ResultMetadata); len(attempts.Results) != 2 {
		t.Fatalf("want 2 SSM attempts, got %d", len(attempts.Results))
	}
}

// TestZoneOutage proves a zone outage impairs its instances and refuses new capacity there.
func TestZoneOutage(t *testing.T) {
	f := newFixture(t, Config{Speed: frozen})
	id := f.run(t, "us-east-1c", nil)
	f.sim.Advance(bootTime + statusInitTime)
	f.injectFault(t, map[string]any{"type": "zone-outage", "zone": "us-east-1c"})
	zones, err := f.ec2.DescribeAvailabilityZones(f.ctx, &ec2.DescribeAvailabilityZonesInput{ZoneNames: []string{"us-east-1c"}})
	if err != nil || zones.AvailabilityZones[0].State != ec2types.AvailabilityZoneStateImpaired {
		t.Fatalf("DescribeAvailabilityZones: %v %+v", err, zones)
	}
	st, _ := f.ec2.DescribeInstanceStatus(f.ctx, &ec2.DescribeInstanceStatusInput{InstanceIds: []string{id}})
	if st.InstanceStatuses[0].SystemStatus.Status != ec2types.SummaryStatusImpaired {
		t.Fatalf("instance in the failed zone: %+v", st.InstanceStatuses[0].SystemStatus)
	}
	_, err = f.ec2.RunInstances(f.ctx, &ec2.RunInstancesInput{ImageId: aws.String("ami-1"), MinCount: aws.Int32(1), MaxCount: aws.Int32(1),
		Placement: &ec2types.Placement{AvailabilityZone: aws.String("us-east-1c")}})
	if code := apiCode(t, err); code != "InsufficientInstanceCapacity" {
		t.Fatalf("RunInstances in the failed zone: %q", code)
	}
	if _, err := f.ec2.RunInstances(f.ctx, &ec2.RunInstancesInput{ImageId: aws.String("ami-1"), MinCount: aws.Int32(1), MaxCount: aws.Int32(1),
		Placement: &ec2types.Placement{AvailabilityZone: aws.String("us-east-1a")}}); err != nil {
		t.Fatalf("RunInstances in a healthy zone: %v", err)
	}
}

// TestTagsAndPagination covers CreateTags, DeleteTags, DescribeTags filters and NextToken.
func TestTagsAndPagination(t *testing.T) {
	f := newFixture(t, Config{Speed: frozen})
	var vols []string
	for range 5 {
		vols = append(vols, f.createVolume(t, "us-east-1a", 10, nil))
	}
	if _, err := f.ec2.CreateTags(f.ctx, &ec2.CreateTagsInput{Resources: vols[:3], Tags: toTags(map[string]string{"cluster": "c1"})}); err != nil {
		t.Fatal(err)
	}
	_, err := f.ec2.CreateTags(f.ctx, &ec2.CreateTagsInput{Resources: []string{vols[0], "vol-0000000000000dead"}, Tags: toTags(map[string]string{"x": "y"})})
	if code := apiCode(t, err); code != "InvalidVolume.NotFound" {
		t.Fatalf("CreateTags naming a missing volume: %q", code)
	}
	if v := f.volume(t, vols[0]); len(v.Tags) != 1 {
		t.Fatalf("a failed CreateTags changed tags: %+v", v.Tags)
	}
	tags, err := f.ec2.DescribeTags(f.ctx, &ec2.DescribeTagsInput{Filters: []ec2types.Filter{{Name: aws.String("key"), Values: []string{"cluster"}},
		{Name: aws.String("resource-type"), Values: []string{"volume"}}}})
	if err != nil || len(tags.Tags) != 3 {
		t.Fatalf("DescribeTags: %v %+v", err, tags)
	}
	if _, err := f.ec2.DeleteTags(f.ctx, &ec2.DeleteTagsInput{Resources: vols[:1], Tags: []ec2types.Tag{{Key: aws.String("cluster")}}}); err != nil {
		t.Fatal(err)
	}
	var seen []string
	p := ec2.NewDescribeVolumesPaginator(f.ec2, &ec2.DescribeVolumesInput{MaxResults: aws.Int32(2)})
	pages := 0
	for p.HasMorePages() {
		out, err := p.NextPage(f.ctx)
		if err != nil {
			t.Fatal(err)
		}
		pages++
		for _, v := range out.Volumes {
			seen = append(seen, *v.VolumeId)
		}
	}
	if pages != 3 || len(seen) != 5 {
		t.Fatalf("paginating 5 volumes by 2: %d pages, %d volumes", pages, len(seen))
	}
	cl, _ := f.ec2.DescribeVolumes(f.ctx, &ec2.DescribeVolumesInput{Filters: []ec2types.Filter{{Name: aws.String("tag:cluster"), Values: []string{"c1"}}}})
	if len(cl.Volumes) != 2 {
		t.Fatalf("after DeleteTags, 2 volumes keep the cluster tag, got %d", len(cl.Volumes))
	}
}

// TestRawQueryShapes checks what the SDK does not: the namespace and requestId of a response
// and the XML error envelope with its status codes.
func TestRawQueryShapes(t *testing.T) {
	f := newFixture(t, Config{Speed: frozen})
	status, body := f.post(t, "/", "application/x-www-form-urlencoded", "Action=DescribeAvailabilityZones&Version=2016-11-15", nil)
	if status != http.StatusOK || !strings.Contains(body, `<DescribeAvailabilityZonesResponse xmlns="http://ec2.amazonaws.com/doc/2016-11-15/">`) ||
		!strings.Contains(body, "<requestId>") || !strings.Contains(body, "<zoneName>us-east-1a</zoneName>") {
		t.Fatalf("DescribeAvailabilityZones: %d %s", status, body)
	}
	status, body = f.post(t, "/", "application/x-www-form-urlencoded", "Action=DeleteVolume&Version=2016-11-15&VolumeId=vol-0123", nil)
	if status != 400 || !strings.Contains(body, "<Response><Errors><Error><Code>InvalidVolume.NotFound</Code>") || !strings.Contains(body, "<RequestID>") {
		t.Fatalf("error envelope: %d %s", status, body)
	}
	f.injectFault(t, map[string]any{"type": "throttle", "count": 1})
	status, body = f.post(t, "/", "application/x-www-form-urlencoded", "Action=DescribeVolumes&Version=2016-11-15", nil)
	if status != 503 || !strings.Contains(body, "RequestLimitExceeded") {
		t.Fatalf("throttled request: %d %s", status, body)
	}
}

// TestRefusedCallsChangeNothing proves a call naming several resources is refused as a whole
// when one of them may not change, as EC2 does.
func TestRefusedCallsChangeNothing(t *testing.T) {
	f := newFixture(t, Config{Speed: frozen})
	running := f.run(t, "us-east-1a", nil)
	gone := f.run(t, "us-east-1a", nil)
	f.sim.Advance(bootTime)
	f.ec2.TerminateInstances(f.ctx, &ec2.TerminateInstancesInput{InstanceIds: []string{gone}})
	f.sim.Advance(terminateTime)

	_, err := f.ec2.StopInstances(f.ctx, &ec2.StopInstancesInput{InstanceIds: []string{running, gone}})
	if code := apiCode(t, err); code != "IncorrectInstanceState" {
		t.Fatalf("stop a running and a terminated instance: %q, want IncorrectInstanceState", code)
	}
	if s := f.instance(t, running).State.Name; s != ec2types.InstanceStateNameRunning {
		t.Fatalf("the refused stop changed %s to %s", running, s)
	}
	_, err = f.ec2.RunInstances(f.ctx, &ec2.RunInstancesInput{ImageId: aws.String("ami-1"), MinCount: aws.Int32(1), MaxCount: aws.Int32(1),
		BlockDeviceMappings: []ec2types.BlockDeviceMapping{{DeviceName: aws.String("/dev/sdf"), Ebs: &ec2types.EbsBlockDevice{SnapshotId: aws.String("snap-0000000000000dead")}}}})
	if code := apiCode(t, err); code != "InvalidSnapshot.NotFound" {
		t.Fatalf("launch from a missing snapshot: %q", code)
	}
	byZone, _ := f.ec2.DescribeInstances(f.ctx, &ec2.DescribeInstancesInput{Filters: []ec2types.Filter{
		{Name: aws.String("availability-zone"), Values: []string{"us-east-1a"}},
		{Name: aws.String("instance-state-name"), Values: []string{"running", "pending"}}}})
	if len(byZone.Reservations) != 1 || *byZone.Reservations[0].Instances[0].InstanceId != running {
		t.Fatalf("a refused launch left an instance behind, or the filters are wrong: %+v", byZone.Reservations)
	}
	vols, _ := f.ec2.DescribeVolumes(f.ctx, &ec2.DescribeVolumesInput{Filters: []ec2types.Filter{{Name: aws.String("attachment.device"), Values: []string{"/dev/*"}}}})
	if len(vols.Volumes) != 1 {
		t.Fatalf("a wildcard must match across slashes, and only the running instance keeps a boot volume: %d", len(vols.Volumes))
	}
}
