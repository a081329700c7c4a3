package cloudsim

import (
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
)

// TestNitroTypes proves the hypervisor rule: Xen for the families AWS lists as Xen, Nitro for
// every later family, for a1/t3/z1d/i3en/p3dn, for .metal sizes and for families it has
// never heard of.
func TestNitroTypes(t *testing.T) {
	for typ, want := range map[string]bool{
		"m5.large": true, "m5.2xlarge": true, "m5d.xlarge": true, "c5.xlarge": true, "c5.2xlarge": true, "c5.large": true,
		"c5n.18xlarge": true, "r5.large": true, "r5b.metal": true, "t3.micro": true, "t3a.nano": true, "t4g.small": true,
		"m6i.large": true, "c6g.medium": true, "m7g.large": true, "a1.large": true, "z1d.large": true, "i3en.large": true,
		"p3dn.24xlarge": true, "i3.metal": true, "x2idn.16xlarge": true, "zz9.future": true,
		"m4.large": false, "m3.medium": false, "c4.large": false, "t2.micro": false, "i3.large": false, "r4.large": false,
		"m1.small": false, "x1e.xlarge": false, "p3.2xlarge": false, "d2.xlarge": false,
	} {
		if got := nitroType(typ); got != want {
			t.Errorf("nitroType(%q) = %v, want %v", typ, got, want)
		}
	}
}

// TestDeviceNamesNitroAndXen attaches the same way to a Nitro and a Xen instance and shows
// what each guest sees: on m5 the volume is /dev/nvme1n1 whatever was asked for, found through
// its by-id link named after the volume id, and the requested name does not exist; on m4 it is
// /dev/xvdf (its sd alias resolving there) and there is no by-id directory. DescribeVolumes
// reports the requested name on both, as AWS does.
func TestDeviceNamesNitroAndXen(t *testing.T) {
	f := newFixture(t, Config{Speed: frozen})
	nitro := f.runType(t, "us-east-1a", ec2types.InstanceTypeM5Large, nil)
	xen := f.runType(t, "us-east-1a", ec2types.InstanceTypeM4Large, nil)
	f.sim.Advance(bootTime)
	nv := f.createVolume(t, "us-east-1a", 10, nil)
	xv := f.createVolume(t, "us-east-1a", 10, nil)
	f.sim.Advance(volumeCreateTime)
	f.attach(t, nv, nitro, "/dev/sdf")
	f.attach(t, xv, xen, "/dev/sdf")
	f.sim.Advance(attachTime)
	for _, v := range []string{nv, xv} {
		if got := aws.ToString(f.volume(t, v).Attachments[0].Device); got != "/dev/sdf" {
			t.Errorf("DescribeVolumes %s device %q, want the requested /dev/sdf", v, got)
		}
	}
	byID := "/dev/disk/by-id/nvme-Amazon_Elastic_Block_Store_" + strings.Replace(nv, "-", "", 1)
	nitroRoot := "/dev/disk/by-id/nvme-Amazon_Elastic_Block_Store_" + strings.Replace(*f.instance(t, nitro).BlockDeviceMappings[0].Ebs.VolumeId, "-", "", 1)
	steps := []struct {
		inst     string
		script   string
		wantCode int32
		wantOut  string
	}{
		{nitro, "readlink -e " + byID, 0, "/dev/nvme1n1\n"},
		{nitro, "readlink " + byID, 0, "../../nvme1n1\n"},
		{nitro, "readlink -e " + nitroRoot + "-part1", 0, "/dev/nvme0n1p1\n"},
		{nitro, "readlink -e /dev/sdf", 1, ""},
		{nitro, "readlink -e /dev/xvdf", 1, ""},
		{nitro, "readlink -e /dev/nvme1n1", 0, "/dev/nvme1n1\n"},
		{nitro, "ls /dev/disk/by-id/", 0, strings.TrimPrefix(nitroRoot, "/dev/disk/by-id/")},
		{nitro, "ls -l /dev/disk/by-id | grep -F " + strings.Replace(nv, "-", "", 1), 0, " -> ../../nvme1n1\n"},
		{nitro, "mount /dev/sdf /srv", 32, ""},
		{nitro, "cat /proc/mounts | grep ' / '", 0, "/dev/nvme0n1p1 / ext4 rw"},
		{xen, "readlink -e /dev/sdf", 0, "/dev/xvdf\n"},
		{xen, "readlink -e /dev/xvdf", 0, "/dev/xvdf\n"},
		{xen, "ls -l /dev/disk/by-id/", 2, ""},
		{xen, "readlink -e " + byID, 1, ""},
		{xen, "cat /proc/mounts", 0, "/dev/xvda1 / ext4 rw"},
	}
	for _, st := range steps {
		out, stderr, code, _ := f.shell(t, st.inst, st.script)
		if code != st.wantCode || !strings.Contains(out, st.wantOut) {
			t.Errorf("%s on %s: exit %d\n%s%s\nwant exit %d with %q", st.script, st.inst, code, out, stderr, st.wantCode, st.wantOut)
		}
	}
	for inst, want := range map[string]map[string]string{nitro: {"/dev/nvme1n1": nv}, xen: {"/dev/xvdf": xv}} {
		var h struct{ Devices map[string]string }
		f.getJSON(t, "/_sim/hosts/"+inst, &h)
		for dev, vol := range want {
			if h.Devices[dev] != vol || len(h.Devices) != 2 {
				t.Errorf("GET /_sim/hosts/%s devices %v, want %s → %s and the root volume", inst, h.Devices, dev, vol)
			}
		}
	}
}

// TestNVMeNamesChangeAcrossReboot proves why only the by-id links may be relied on: a freed
// NVMe index is handed to the next volume attached, and a reboot names the controllers again
// in the order the guest finds them, so the same volume can come back under another name while
// its by-id link still leads to it.
func TestNVMeNamesChangeAcrossReboot(t *testing.T) {
	f := newFixture(t, Config{Speed: frozen})
	id := f.run(t, "us-east-1a", nil)
	f.sim.Advance(bootTime)
	vols := make([]string, 3)
	for i := range vols {
		vols[i] = f.createVolume(t, "us-east-1a", 10, nil)
	}
	f.sim.Advance(volumeCreateTime)
	devOf := func(vol string) string {
		t.Helper()
		out, stderr, code, _ := f.shell(t, id, "readlink -e /dev/disk/by-id/nvme-Amazon_Elastic_Block_Store_"+nvmeSerial(vol))
		if code != 0 {
			t.Fatalf("by-id link of %s: exit %d %s", vol, code, stderr)
		}
		return strings.TrimSpace(out)
	}
	f.attach(t, vols[0], id, "/dev/sdf")
	f.sim.Advance(attachTime)
	f.attach(t, vols[1], id, "/dev/sdg")
	f.sim.Advance(attachTime)
	if a, b := devOf(vols[0]), devOf(vols[1]); a != "/dev/nvme1n1" || b != "/dev/nvme2n1" {
		t.Fatalf("attached in order: %s %s, want nvme1n1 nvme2n1", a, b)
	}
	if _, err := f.ec2.DetachVolume(f.ctx, &ec2.DetachVolumeInput{VolumeId: aws.String(vols[0])}); err != nil {
		t.Fatal(err)
	}
	f.sim.Advance(detachTime)
	f.attach(t, vols[2], id, "/dev/sdh")
	f.sim.Advance(attachTime)
	if got := devOf(vols[2]); got != "/dev/nvme1n1" {
		t.Fatalf("the third volume got %s, want the freed nvme1n1", got)
	}

	// After a reboot the names follow the order the guest finds the controllers (here: by
	// volume id), not the order of attachment.
	f.ec2.StopInstances(f.ctx, &ec2.StopInstancesInput{InstanceIds: []string{id}})
	f.sim.Advance(stopTime)
	f.ec2.StartInstances(f.ctx, &ec2.StartInstancesInput{InstanceIds: []string{id}})
	f.sim.Advance(bootTime)
	first, second := vols[1], vols[2]
	if second < first {
		first, second = second, first
	}
	if a, b := devOf(first), devOf(second); a != "/dev/nvme1n1" || b != "/dev/nvme2n1" {
		t.Fatalf("after the reboot: %s is %s, %s is %s; want nvme1n1, nvme2n1 by volume id", first, a, second, b)
	}
}
