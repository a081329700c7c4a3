package cloudsim

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
)

// TestModifyVolumeFollowsAWSRules goes through Elastic Volumes as AWS documents them: the size
// only grows, every type's ranges, no magnetic volume on either side (snapshot and restore
// instead), the modification optimizing before the next may start, and four per rolling
// 24 hours — each refusal with AWS's error code, changing nothing.
func TestModifyVolumeFollowsAWSRules(t *testing.T) {
	f := newFixture(t, Config{Speed: frozen})
	create := func(vtype ec2types.VolumeType, size int32) string {
		out, err := f.ec2.CreateVolume(f.ctx, &ec2.CreateVolumeInput{AvailabilityZone: aws.String("us-east-1a"), Size: aws.Int32(size), VolumeType: vtype})
		if err != nil {
			t.Fatalf("CreateVolume %s %d: %v", vtype, size, err)
		}
		return *out.VolumeId
	}
	magnetic, ssd := create(ec2types.VolumeTypeStandard, 500), create(ec2types.VolumeTypeGp2, 500)
	f.sim.Advance(volumeCreateTime)
	refused := []struct {
		name string
		in   ec2.ModifyVolumeInput
		code string
	}{
		{"magnetic to SSD", ec2.ModifyVolumeInput{VolumeId: aws.String(magnetic), VolumeType: ec2types.VolumeTypeGp3}, "UnsupportedOperation"},
		{"SSD to magnetic", ec2.ModifyVolumeInput{VolumeId: aws.String(ssd), VolumeType: ec2types.VolumeTypeStandard}, "UnsupportedOperation"},
		{"smaller", ec2.ModifyVolumeInput{VolumeId: aws.String(ssd), Size: aws.Int32(100)}, "InvalidParameterValue"},
		{"beyond gp2's 16 TiB", ec2.ModifyVolumeInput{VolumeId: aws.String(ssd), Size: aws.Int32(20000)}, "InvalidParameterValue"},
		{"IOPS on gp2", ec2.ModifyVolumeInput{VolumeId: aws.String(ssd), Iops: aws.Int32(5000)}, "InvalidParameterCombination"},
		{"gp3 below 3000 IOPS", ec2.ModifyVolumeInput{VolumeId: aws.String(ssd), VolumeType: ec2types.VolumeTypeGp3, Iops: aws.Int32(1000)}, "InvalidParameterValue"},
		{"throughput on io1", ec2.ModifyVolumeInput{VolumeId: aws.String(ssd), VolumeType: ec2types.VolumeTypeIo1, Throughput: aws.Int32(500)}, "InvalidParameterCombination"},
		{"gp3 throughput above its IOPS allow", ec2.ModifyVolumeInput{VolumeId: aws.String(ssd), VolumeType: ec2types.VolumeTypeGp3, Throughput: aws.Int32(1000)}, "InvalidParameterValue"},
		{"nothing changes", ec2.ModifyVolumeInput{VolumeId: aws.String(ssd), Size: aws.Int32(500)}, "InvalidParameterCombination"},
	}
	for _, c := range refused {
		_, err := f.ec2.ModifyVolume(f.ctx, &c.in)
		if code := apiCode(t, err); code != c.code {
			t.Errorf("%s: %q, want %s", c.name, code, c.code)
		}
	}
	if v := f.volume(t, ssd); v.VolumeType != ec2types.VolumeTypeGp2 || *v.Size != 500 {
		t.Fatalf("refusals changed the volume: %s %d", v.VolumeType, *v.Size)
	}

	// gp2 → gp3 in place: the volume has the new type at once, performs as the lower of the two
	// while optimizing, and no second modification starts before the first completed.
	mod, err := f.ec2.ModifyVolume(f.ctx, &ec2.ModifyVolumeInput{VolumeId: aws.String(ssd), VolumeType: ec2types.VolumeTypeGp3, Iops: aws.Int32(6000), Throughput: aws.Int32(500)})
	if err != nil || *mod.VolumeModification.TargetThroughput != 500 || *mod.VolumeModification.OriginalIops != 1500 {
		t.Fatalf("gp2 → gp3: %v %+v", err, mod)
	}
	if d, _ := f.sim.Volume(ssd); d.ThroughputMBps != 250 {
		t.Fatalf("while modifying: %.0f MB/s, want gp2's 250", d.ThroughputMBps)
	}
	f.sim.Advance(modifyingTime)
	_, err = f.ec2.ModifyVolume(f.ctx, &ec2.ModifyVolumeInput{VolumeId: aws.String(ssd), Size: aws.Int32(600)})
	if code := apiCode(t, err); code != "IncorrectModificationState" {
		t.Fatalf("a second modification while optimizing: %q", code)
	}
	f.sim.Advance(optimizeDuration(500))
	mods, _ := f.ec2.DescribeVolumesModifications(f.ctx, &ec2.DescribeVolumesModificationsInput{VolumeIds: []string{ssd}})
	if m := mods.VolumesModifications[0]; m.ModificationState != ec2types.VolumeModificationStateCompleted || *m.TargetThroughput != 500 {
		t.Fatalf("after optimizing: %+v", m)
	}
	if d, _ := f.sim.Volume(ssd); d.ThroughputMBps != 500 {
		t.Fatalf("completed: %.0f MB/s, want the new 500", d.ThroughputMBps)
	}
	// Three more within the day; the fifth is refused until the first leaves the window.
	for i, size := range []int32{600, 700, 800} {
		if _, err := f.ec2.ModifyVolume(f.ctx, &ec2.ModifyVolumeInput{VolumeId: aws.String(ssd), Size: aws.Int32(size)}); err != nil {
			t.Fatalf("modification %d: %v", i+2, err)
		}
		f.sim.Advance(modifyingTime + optimizeDuration(size))
	}
	_, err = f.ec2.ModifyVolume(f.ctx, &ec2.ModifyVolumeInput{VolumeId: aws.String(ssd), Size: aws.Int32(900)})
	if code := apiCode(t, err); code != "VolumeModificationRateExceeded" || !strings.Contains(err.Error(), "again after") {
		t.Fatalf("a fifth modification in 24 h: %v", err)
	}
	f.sim.Advance(24 * time.Hour)
	if _, err := f.ec2.ModifyVolume(f.ctx, &ec2.ModifyVolumeInput{VolumeId: aws.String(ssd), Size: aws.Int32(900)}); err != nil {
		t.Fatalf("a day later: %v", err)
	}
}

// TestSnapshotsFollowChangedBlocks: the write model decides what a snapshot moves — a mounted
// file system takes 5 MB/s, so an incremental snapshot after ten minutes moves about 3 GB, and
// a DRBD secondary's disk changes by what it is sent, so its incrementals follow the
// primary's writes too.
func TestSnapshotsFollowChangedBlocks(t *testing.T) {
	f := newFixture(t, Config{Speed: frozen})
	id := f.run(t, "us-east-1a", nil)
	f.sim.Advance(bootTime)
	vol := f.createVolume(t, "us-east-1a", 200, nil)
	f.sim.Advance(volumeCreateTime)
	f.attach(t, vol, id, "/dev/sdf")
	f.sim.Advance(attachTime)
	f.runSteps(t, []shellStep{{id, "mkfs.ext4 -q /dev/nvme1n1 && mount /dev/nvme1n1 /srv/logs", 0, ""}})
	f.sim.Advance(10 * time.Minute)
	first, _ := f.ec2.CreateSnapshot(f.ctx, &ec2.CreateSnapshotInput{VolumeId: aws.String(vol)})
	d, _ := f.sim.Volume(vol)
	if d.WrittenBytes < 2900*mb || d.WrittenBytes > 3100*mb || d.ChangedBytes != 0 || d.LastSnapshot != *first.SnapshotId {
		t.Fatalf("after 10 minutes mounted: %+v, want about 3000 MB written and the changes counted from the snapshot", d)
	}
	f.sim.Advance(2 * time.Minute)
	second, _ := f.ec2.CreateSnapshot(f.ctx, &ec2.CreateSnapshotInput{VolumeId: aws.String(vol)})
	f.sim.Advance(time.Minute)
	out, _ := f.ec2.DescribeSnapshots(f.ctx, &ec2.DescribeSnapshotsInput{SnapshotIds: []string{*first.SnapshotId, *second.SnapshotId}})
	for _, sn := range out.Snapshots {
		if sn.State != ec2types.SnapshotStateCompleted {
			t.Fatalf("snapshot %s %s after a minute", *sn.SnapshotId, sn.State)
		}
	}
	var moved string
	for _, e := range f.sim.Events(0, 10000) {
		if e.Type == "snapshot.completed" && e.Resource == *second.SnapshotId {
			moved = e.Message
		}
	}
	if !strings.Contains(moved, "(0.59 GiB moved") { // 2 min at 5 MB/s: 600 MB
		t.Fatalf("the incremental: %q, want 0.59 GiB moved", moved)
	}
	// Unmounted, nothing is written: the next incremental moves nothing.
	f.runSteps(t, []shellStep{{id, "umount /srv/logs", 0, ""}})
	before, _ := f.sim.Volume(vol)
	f.sim.Advance(time.Hour)
	if d, _ := f.sim.Volume(vol); d.ChangedBytes != before.ChangedBytes {
		t.Fatalf("an unmounted volume changed: %+v, was %+v", d, before)
	}
}

// TestRestoredVolumeLoadsLazily: a volume created from a snapshot has every block in S3 until
// read; fsck (which reads the file system's metadata) pays the slow first reads, a provisioned
// initialization rate loads it all in the background, and an initialized volume reads at its
// throughput.
func TestRestoredVolumeLoadsLazily(t *testing.T) {
	f := newFixture(t, Config{Speed: frozen})
	id := f.run(t, "us-east-1a", nil)
	f.sim.Advance(bootTime)
	src := f.createVolume(t, "us-east-1a", 500, nil)
	f.sim.Advance(volumeCreateTime)
	f.attach(t, src, id, "/dev/sdf")
	f.sim.Advance(attachTime)
	f.runSteps(t, []shellStep{{id, "mkfs.ext4 -q /dev/nvme1n1", 0, ""}})
	f.sim.FillVolume(src, 400)
	snap, _ := f.ec2.CreateSnapshot(f.ctx, &ec2.CreateSnapshotInput{VolumeId: aws.String(src)})
	f.sim.Advance(time.Hour)
	lazy, err := f.ec2.CreateVolume(f.ctx, &ec2.CreateVolumeInput{AvailabilityZone: aws.String("us-east-1a"), SnapshotId: snap.SnapshotId, VolumeType: ec2types.VolumeTypeGp3})
	if err != nil {
		t.Fatal(err)
	}
	_, err = f.ec2.CreateVolume(f.ctx, &ec2.CreateVolumeInput{AvailabilityZone: aws.String("us-east-1a"), Size: aws.Int32(10), VolumeInitializationRate: aws.Int32(200)})
	if code := apiCode(t, err); code != "InvalidParameterValue" {
		t.Fatalf("an initialization rate without a snapshot: %q", code)
	}
	fast, err := f.ec2.CreateVolume(f.ctx, &ec2.CreateVolumeInput{AvailabilityZone: aws.String("us-east-1a"), SnapshotId: snap.SnapshotId, VolumeType: ec2types.VolumeTypeGp3, VolumeInitializationRate: aws.Int32(300)})
	if err != nil || aws.ToInt32(fast.VolumeInitializationRate) != 300 {
		t.Fatalf("with an initialization rate: %v %+v", err, fast)
	}
	f.sim.Advance(volumeCreateTime)
	if d, _ := f.sim.Volume(*lazy.VolumeId); d.UnhydratedBytes != 400*gib || d.ReadMBps > 41 {
		t.Fatalf("restored: %+v, want 400 GiB to load, read at the lazy-load rate", d)
	}
	f.attach(t, *lazy.VolumeId, id, "/dev/sdg")
	f.sim.Advance(attachTime)
	// fsck -f reads 1% of 400 GiB: 4 GiB at 40 MiB/s ≈ 102 s on the restored volume, 33 s at
	// gp3's 125 MiB/s on the one it was taken of (each + 5 s + 500 s for the check itself).
	timeFsck := func(dev string) time.Duration {
		start := f.sim.Now()
		if _, stderr, code, _ := f.shell(t, id, "fsck -f -n "+dev); code != 0 {
			t.Fatalf("fsck %s: %d %s", dev, code, stderr)
		}
		return f.sim.Now().Sub(start)
	}
	if restored, orig := timeFsck("/dev/nvme2n1"), timeFsck("/dev/nvme1n1"); restored-orig < 60*time.Second {
		t.Fatalf("fsck took %s on the restored volume and %s on the original", restored, orig)
	}
	f.sim.Advance(400 * gib / (300 * mb) * time.Second)
	if d, _ := f.sim.Volume(*fast.VolumeId); d.UnhydratedBytes != 0 || d.ReadMBps != 125 {
		t.Fatalf("after initializing at 300 MiB/s: %+v", d)
	}
	if !slicesContainsEvent(f.sim.Events(0, 10000), "volume.initialized") {
		t.Fatal("no volume.initialized event")
	}
	// The control API's bad input changes nothing.
	if status, body := f.post(t, "/_sim/volumes/"+src+"/fill", "application/json", `{"gib": -1}`, nil); status != http.StatusBadRequest || !strings.Contains(body, `"code"`) {
		t.Fatalf("fill -1: %d %s", status, body)
	}
	if status, _ := f.post(t, "/_sim/volumes/vol-0000000000000dead/fill", "application/json", `{"gib": 1}`, nil); status != http.StatusNotFound {
		t.Fatalf("fill of a missing volume: %d", status)
	}
}
