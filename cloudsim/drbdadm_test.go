package cloudsim

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
)

// pairConf is a DRBD 9 resource file for a pair of hosts, each with its own disk.
func pairConf(res string, minor, port int, hostA, ipA, diskA, hostB, ipB, diskB string) string {
	return fmt.Sprintf(`resource %s {
  device /dev/drbd%d;
  meta-disk internal;
  on %s {
    node-id 0;
    address %s:%d;
    disk %s;
  }
  on %s {
    node-id 1;
    address %s:%d;
    disk %s;
  }
  connection-mesh {
    hosts %s %s;
  }
}
`, res, minor, hostA, ipA, port, diskA, hostB, ipB, port, diskB, hostA, hostB)
}

// writeFileScript is the plain-command script that writes content to file, as the host
// activities do it.
func writeFileScript(file, content string) string {
	var b strings.Builder
	b.WriteString("printf '%s\\n'")
	for _, line := range strings.Split(strings.TrimSuffix(content, "\n"), "\n") {
		b.WriteString(" '" + strings.ReplaceAll(line, "'", `'\''`) + "'")
	}
	return b.String() + " > " + file
}

// TestDRBDConfiguredByFiles sets a pair up as on real hosts: a resource file on each host
// naming the disks by their by-id links, create-md, up, and — both sides brand new — the
// initial sync skipped with new-current-uuid --clear-bitmap. It shows the errors DRBD gives
// for steps out of order and for metadata or a file system already on a disk, the peer found
// by its address, a changed file applied with adjust, and the resource back after a reboot
// because the file says so.
func TestDRBDConfiguredByFiles(t *testing.T) {
	f := newFixture(t, Config{Speed: frozen})
	a := f.run(t, "us-east-1a", nil)
	b := f.run(t, "us-east-1b", nil)
	f.sim.Advance(bootTime)
	host := func(id string) (string, string) {
		ip := aws.ToString(f.instance(t, id).PrivateIpAddress)
		return "ip-" + dashIP(ip), ip
	}
	hostA, ipA := host(a)
	hostB, ipB := host(b)
	va := f.createVolume(t, "us-east-1a", 10, nil)
	vb := f.createVolume(t, "us-east-1b", 10, nil)
	vc := f.createVolume(t, "us-east-1a", 10, nil)
	f.sim.Advance(volumeCreateTime)
	f.attach(t, va, a, "/dev/sdf")
	f.attach(t, vb, b, "/dev/sdf")
	f.attach(t, vc, a, "/dev/sdg")
	f.sim.Advance(attachTime)
	byID := func(vol string) string { return byIDPrefix + nvmeSerial(vol) }
	logs0 := pairConf("logs0", 0, 7789, hostA, ipA, byID(va), hostB, ipB, byID(vb))
	write := writeFileScript("/etc/drbd.d/logs0.res", logs0)
	single := "resource data1 { device /dev/drbd1; disk " + byID(vc) + "; meta-disk internal; on " + hostA + " { node-id 0; address " + ipA + ":7790; } }"

	f.runSteps(t, []shellStep{
		{a, "drbdadm status logs0", 10, "not defined in your config"},
		{a, write, 0, ""},
		{b, write, 0, ""},
		{a, "drbdadm status logs0", 10, "No such resource"},
		{a, "drbdadm up logs0", 10, "No valid meta data found"},
		{a, "drbdadm get-gi logs0", 255, "No valid meta data found"},
		{a, "drbdadm up nosuch", 10, "'nosuch' not defined in your config (for this host)."},
		{a, "drbdadm create-md logs0", 0, "New drbd meta data block successfully created"},
		{a, "drbdadm create-md logs0", 40, "Do you really want to overwrite the existing meta-data?"},
		{a, "drbdadm get-gi logs0", 0, "0000000000000004:0000000000000000:0000000000000000:0000000000000000:0:0:0:0:1:"},
		{b, "drbdadm create-md logs0 && drbdadm up logs0", 0, ""},
		{a, "drbdadm up logs0", 0, ""},
		{a, "drbdadm up logs0", 10, "Minor or volume exists already"},
		{a, "drbdadm status logs0", 0, "logs0 role:Secondary\n  disk:Inconsistent\n  " + hostB + " role:Secondary\n    replication:Established peer-disk:Inconsistent\n"},
		{a, "mkfs.ext4 -q /dev/nvme1n1", 1, "apparently in use by the system"}, // DRBD holds its disk
		{a, "drbdadm primary logs0", 11, "Need access to UpToDate data"},
		{a, "drbdadm new-current-uuid --clear-bitmap logs0/0", 0, ""},
		{b, "drbdadm status logs0", 0, "logs0 role:Secondary\n  disk:UpToDate\n  " + hostA + " role:Secondary\n    replication:Established peer-disk:UpToDate\n"},
		{a, "drbdadm new-current-uuid --clear-bitmap logs0", 11, "only for a brand new pair"},
		{a, "drbdadm primary logs0 && mkfs.ext4 -q /dev/drbd0 && drbdadm get-gi logs0", 0, ":1:1:1:0:0:0:0:1:"},
		{b, "blkid -o value -s TYPE /dev/nvme1n1", 0, "ext4\n"}, // replicated, readable under DRBD
		{b, "drbdadm primary logs0", 11, "Multiple primaries"},

		// A file system on a disk is never overwritten by create-md.
		{a, "mkfs.ext4 -q /dev/nvme2n1", 0, ""},
		{a, writeFileScript("/etc/drbd.d/data1.res", single) + " && drbdadm create-md --force data1", 40, "Operation refused."},
		// status of all is what is up: data1, configured but down, is no error there.
		{a, "drbdadm status", 0, "logs0 role:Primary"},
		{a, "drbdadm status data1", 10, "data1: No such resource"},
		{a, "rm /etc/drbd.d/data1.res", 0, ""},

		// Both files change the port: the link drops while they disagree, adjust applies each.
		{a, writeFileScript("/etc/drbd.d/logs0.res", strings.ReplaceAll(logs0, ":7789", ":7800")) + " && drbdadm adjust logs0 && drbdadm status logs0", 0, hostB + " connection:Connecting"},
	})
	f.sim.Advance(10 * time.Second) // the primary writes 50 MB while they are apart
	f.runSteps(t, []shellStep{
		{b, "drbdadm status logs0", 0, "disk:Outdated"}, // fenced by the live primary
		{b, writeFileScript("/etc/drbd.d/logs0.res", strings.ReplaceAll(logs0, ":7789", ":7800")) + " && drbdadm adjust logs0", 0, ""},
		{a, "drbdadm status logs0", 0, "replication:SyncSource"}, // only what it wrote meanwhile
	})
	f.sim.Advance(time.Minute)
	f.runSteps(t, []shellStep{{a, "drbdadm status logs0", 0, "replication:Established peer-disk:UpToDate"}})

	// A reboot of the backup renames nothing that matters (the file names the disk by id) and
	// the drbd service brings the resource up again from the file.
	f.ec2.StopInstances(f.ctx, &ec2.StopInstancesInput{InstanceIds: []string{b}})
	f.sim.Advance(stopTime)
	f.ec2.StartInstances(f.ctx, &ec2.StartInstancesInput{InstanceIds: []string{b}})
	f.sim.Advance(bootTime)
	f.runSteps(t, []shellStep{
		{b, "drbdadm status logs0", 0, "logs0 role:Secondary\n  disk:Inconsistent\n  " + hostA + " role:Primary\n    replication:SyncTarget"},
	})
	f.sim.Advance(time.Minute) // what the primary wrote while the backup was down
	f.runSteps(t, []shellStep{
		{b, "drbdadm status logs0", 0, "logs0 role:Secondary\n  disk:UpToDate\n  " + hostA + " role:Primary\n    replication:Established peer-disk:UpToDate\n"},
	})
}

// TestDRBDInitialFullSync is the other way to start a new pair: the designated primary forced
// to Primary (its data becomes the data), and the peer resyncs the whole device from it.
func TestDRBDInitialFullSync(t *testing.T) {
	f := newFixture(t, Config{Speed: frozen})
	a := f.run(t, "us-east-1a", nil)
	b := f.run(t, "us-east-1a", nil)
	f.sim.Advance(bootTime)
	ipA := aws.ToString(f.instance(t, a).PrivateIpAddress)
	ipB := aws.ToString(f.instance(t, b).PrivateIpAddress)
	va := f.createVolume(t, "us-east-1a", 100, nil) // 100 GiB: 1024 s at 100 MB/s
	vb := f.createVolume(t, "us-east-1a", 100, nil)
	f.sim.Advance(volumeCreateTime)
	f.attach(t, va, a, "/dev/sdf")
	f.attach(t, vb, b, "/dev/sdf")
	f.sim.Advance(attachTime)
	conf := writeFileScript("/etc/drbd.d/home0.res", pairConf("home0", 0, 7789, "ip-"+dashIP(ipA), ipA, "/dev/nvme1n1", "ip-"+dashIP(ipB), ipB, "/dev/nvme1n1"))
	f.runSteps(t, []shellStep{
		{a, conf + " && drbdadm create-md home0 && drbdadm up home0", 0, ""},
		{b, conf + " && drbdadm create-md home0 && drbdadm up home0", 0, ""},
		{a, "drbdadm primary --force home0 && drbdadm status home0", 0, "replication:SyncSource peer-disk:Inconsistent done:0.00"},
	})
	f.sim.Advance(512 * time.Second)
	f.runSteps(t, []shellStep{{b, "drbdadm status home0", 0, "replication:SyncTarget peer-disk:UpToDate done:50.00"}})
	f.sim.Advance(600 * time.Second)
	f.runSteps(t, []shellStep{{b, "drbdadm status home0", 0, "disk:UpToDate"}})
}
