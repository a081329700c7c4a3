package cloudsim

import (
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
)

// TestBlockDataTravelsWithVolumes proves that what mkfs and mdadm --create write lives on the
// volumes, as on real disks: an array made on one host assembles from its superblocks on
// another after the volumes move (under other NVMe names), its file system mounts there, a
// snapshot restores a formatted volume, and the tools refuse to overwrite what is there
// without being forced — the guard that makes a retried script harmless.
func TestBlockDataTravelsWithVolumes(t *testing.T) {
	f := newFixture(t, Config{Speed: frozen})
	a := f.run(t, "us-east-1a", nil)
	b := f.run(t, "us-east-1a", nil)
	f.sim.Advance(bootTime)
	var vols []string
	for range 3 {
		vols = append(vols, f.createVolume(t, "us-east-1a", 1, nil))
	}
	f.sim.Advance(volumeCreateTime)
	for i, v := range vols {
		f.attach(t, v, a, "/dev/sd"+string(rune('f'+i)))
		f.sim.Advance(attachTime)
	}
	f.runSteps(t, []shellStep{
		{a, "mount /dev/nvme1n1 /srv", 32, "wrong fs type"},
		{a, "blkid /dev/nvme1n1", 2, ""},
		{a, "mdadm --examine /dev/nvme1n1", 1, "No md superblock detected on /dev/nvme1n1."},
		{a, "mdadm --create /dev/md0 --level=0 --raid-devices=2 /dev/nvme1n1 /dev/nvme2n1", 0, "array /dev/md0 started"},
		{a, "mkfs.ext4 -q /dev/nvme1n1", 1, "apparently in use by the system"},
		{a, "mkfs.ext4 -q /dev/md0 && blkid -o value -s TYPE /dev/md0", 0, "ext4\n"},
		{a, "blkid /dev/nvme2n1", 0, `TYPE="linux_raid_member"`},
		{a, "mdadm --examine /dev/nvme2n1", 0, "Device Role : Active device 1"},
		{a, "mount /dev/md0 /srv/home && mkfs.ext4 /dev/md0", 1, "/dev/md0 is mounted on /srv/home; will not make a filesystem here!"},
		{a, "umount /srv/home && mdadm --stop /dev/md0", 0, "stopped /dev/md0"},
		{a, "mdadm --create /dev/md0 --level=0 --raid-devices=2 /dev/nvme1n1 /dev/nvme2n1", 1, "appears to be part of a raid array"},
		{a, "mdadm --create /dev/md1 --level=0 --raid-devices=3 /dev/nvme1n1 /dev/nvme2n1", 2, "enough devices"},
		{a, "mkfs.ext4 -q /dev/nvme3n1 && mount /dev/nvme3n1 /srv/logs && blkid -o value -s TYPE /dev/nvme3n1", 0, "ext4"},
	})

	// Move the array's members to b, in the other order, after a volume of b's own.
	other := f.createVolume(t, "us-east-1a", 1, nil)
	f.sim.Advance(volumeCreateTime)
	f.attach(t, other, b, "/dev/sdf")
	f.sim.Advance(attachTime)
	for i, v := range []string{vols[1], vols[0]} {
		if _, err := f.ec2.DetachVolume(f.ctx, &ec2.DetachVolumeInput{VolumeId: aws.String(v)}); err != nil {
			t.Fatal(err)
		}
		f.sim.Advance(detachTime)
		f.attach(t, v, b, "/dev/sd"+string(rune('g'+i)))
		f.sim.Advance(attachTime)
	}
	f.runSteps(t, []shellStep{
		{b, "mdadm --assemble --scan", 0, "/dev/md0 has been started with 2 drives"},
		{b, "cat /proc/mdstat", 0, "md0 : active raid0 nvme3n1[0] nvme2n1[1]"},
		{b, "mount /dev/md0 /srv/home && mount", 0, "/dev/md0 on /srv/home type ext4"},
	})

	// A snapshot of the formatted logs volume restores a formatted volume.
	snap, err := f.ec2.CreateSnapshot(f.ctx, &ec2.CreateSnapshotInput{VolumeId: aws.String(vols[2])})
	if err != nil {
		t.Fatal(err)
	}
	f.sim.Advance(time.Minute)
	restored, err := f.ec2.CreateVolume(f.ctx, &ec2.CreateVolumeInput{AvailabilityZone: aws.String("us-east-1a"), SnapshotId: snap.SnapshotId})
	if err != nil {
		t.Fatal(err)
	}
	f.sim.Advance(volumeCreateTime)
	f.attach(t, *restored.VolumeId, b, "/dev/sdj")
	f.sim.Advance(attachTime)
	f.runSteps(t, []shellStep{{b, "blkid -o value -s TYPE /dev/nvme4n1", 0, "ext4\n"}})
}
