package cloudsim

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
)

// meshConf is a DRBD 9 resource file for any number of hosts (node ids in order), each with its
// own disk, in a full mesh.
func meshConf(res string, minor, port int, hosts [][3]string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "resource %s {\n  device /dev/drbd%d;\n  meta-disk internal;\n", res, minor)
	var names []string
	for i, h := range hosts {
		fmt.Fprintf(&b, "  on %s {\n    node-id %d;\n    address %s:%d;\n    disk %s;\n  }\n", h[0], i, h[1], port, h[2])
		names = append(names, h[0])
	}
	fmt.Fprintf(&b, "  connection-mesh {\n    hosts %s;\n  }\n}\n", strings.Join(names, " "))
	return b.String()
}

// seedFixture is a file server F (Primary, writing) and its backup B in sync on 50 GiB disks,
// and a third instance N for a new backup, all in us-east-1a.
type seedFixture struct {
	*fixture
	f, b, n         string
	hf, hb, hn      [3]string // hostname, ip, disk of each
	vb              string
	confFB, confAll string
}

func newSeedFixture(t *testing.T) *seedFixture {
	f := newFixture(t, Config{Speed: frozen})
	sf := &seedFixture{fixture: f}
	sf.f, sf.b, sf.n = f.run(t, "us-east-1a", nil), f.run(t, "us-east-1a", nil), f.run(t, "us-east-1a", nil)
	f.sim.Advance(bootTime)
	disk := func(inst string) ([3]string, string) {
		v := f.createVolume(t, "us-east-1a", 50, nil)
		f.sim.Advance(volumeCreateTime)
		f.attach(t, v, inst, "/dev/sdf")
		f.sim.Advance(attachTime)
		ip := aws.ToString(f.instance(t, inst).PrivateIpAddress)
		return [3]string{"ip-" + dashIP(ip), ip, byIDPrefix + nvmeSerial(v)}, v
	}
	sf.hf, _ = disk(sf.f)
	sf.hb, sf.vb = disk(sf.b)
	ipN := aws.ToString(f.instance(t, sf.n).PrivateIpAddress)
	sf.hn = [3]string{"ip-" + dashIP(ipN), ipN, ""}
	sf.confFB = meshConf("home0", 0, 7789, [][3]string{sf.hf, sf.hb})
	f.runSteps(t, []shellStep{
		{sf.f, writeFileScript("/etc/drbd.d/home0.res", sf.confFB) + " && drbdadm create-md home0 && drbdadm up home0", 0, ""},
		{sf.b, writeFileScript("/etc/drbd.d/home0.res", sf.confFB) + " && drbdadm create-md home0 && drbdadm up home0", 0, ""},
		{sf.f, "drbdadm new-current-uuid --clear-bitmap home0/0 && drbdadm primary home0", 0, ""},
	})
	f.sim.Advance(10 * time.Minute) // 3 GB written, replicated
	f.runSteps(t, []shellStep{{sf.b, "drbdadm status home0", 0, "disk:UpToDate"}})
	return sf
}

// addN configures the three-node resource on F and B (N's disk given) and returns its file.
func (sf *seedFixture) addN(t *testing.T, diskN string) string {
	sf.hn[2] = diskN
	conf := meshConf("home0", 0, 7789, [][3]string{sf.hf, sf.hb, sf.hn})
	sf.runSteps(t, []shellStep{
		{sf.f, writeFileScript("/etc/drbd.d/home0.res", conf) + " && drbdadm adjust home0 && drbdadm status home0", 0, sf.hn[0] + " connection:Connecting"},
		{sf.b, writeFileScript("/etc/drbd.d/home0.res", conf) + " && drbdadm adjust home0", 0, ""},
	})
	return conf
}

// seed snapshots B's disk, waits for the snapshot, and attaches a volume made from it to N.
func (sf *seedFixture) seed(t *testing.T) string {
	snap, err := sf.ec2.CreateSnapshot(sf.ctx, &ec2.CreateSnapshotInput{VolumeId: aws.String(sf.vb)})
	if err != nil {
		t.Fatal(err)
	}
	return *snap.SnapshotId
}

func (sf *seedFixture) restoreOnN(t *testing.T, snap string) string {
	sf.sim.Advance(2 * time.Minute) // the snapshot of B's 3 GB completes
	out, err := sf.ec2.CreateVolume(sf.ctx, &ec2.CreateVolumeInput{AvailabilityZone: aws.String("us-east-1a"), SnapshotId: aws.String(snap), VolumeType: "gp3"})
	if err != nil {
		t.Fatal(err)
	}
	sf.sim.Advance(volumeCreateTime)
	sf.attach(t, *out.VolumeId, sf.n, "/dev/sdf")
	sf.sim.Advance(attachTime)
	return *out.VolumeId
}

// resyncs returns the resync events of a host since seq.
func (sf *seedFixture) resyncs(inst string, since int64) []string {
	var out []string
	for _, e := range sf.sim.Events(since, 10000) {
		if e.Type == "drbd.resync-started" && e.Resource == inst {
			out = append(out, e.Message)
		}
	}
	return out
}

// TestDRBDTruckBasedSeed adds a new backup N to a file server F that keeps its hot backup B
// all along, as DRBD 9's user's guide does truck-based replication: N configured on F and B,
// `new-current-uuid --clear-bitmap` on the primary, a snapshot of B's disk (the secondary, not
// the serving disk), `new-current-uuid`, a volume from the snapshot on N with its node id
// fixed (dump-md, sed, restore-md). N then resyncs only what F wrote since the seed point —
// not its 50 GiB — and B is UpToDate with F from start to end.
func TestDRBDTruckBasedSeed(t *testing.T) {
	sf := newSeedFixture(t)
	diskN := byIDPrefix + "pending"
	confAll := sf.addN(t, diskN)
	sf.runSteps(t, []shellStep{{sf.f, "drbdadm new-current-uuid --clear-bitmap home0/0", 0, ""}})
	snap := sf.seed(t)
	sf.runSteps(t, []shellStep{{sf.f, "drbdadm new-current-uuid home0/0", 0, ""}})
	vn := sf.restoreOnN(t, snap)
	confAll = strings.ReplaceAll(confAll, diskN, byIDPrefix+nvmeSerial(vn))
	for _, inst := range []string{sf.f, sf.b} {
		sf.runSteps(t, []shellStep{{inst, writeFileScript("/etc/drbd.d/home0.res", confAll) + " && drbdadm adjust home0", 0, ""}})
	}
	mark := sf.sim.Events(0, 1)[0].Seq
	if evs := sf.sim.Events(0, 10000); len(evs) > 0 {
		mark = evs[len(evs)-1].Seq
	}
	md := "/etc/drbd.d/home0.md"
	sf.runSteps(t, []shellStep{
		{sf.n, writeFileScript("/etc/drbd.d/home0.res", confAll), 0, ""},
		// The copy carries B's node id: DRBD refuses to attach it as node 2.
		{sf.n, "drbdadm up home0", 10, "The node-id in the meta data (1) does not match the configured node-id (2)"},
		{sf.n, "drbdadm -- --force dump-md home0 > " + md + ".orig && grep -c -F 'node-id 1;' < " + md + ".orig", 0, "1\n"},
		{sf.n, "sed -e 's/^node-id 1;$/node-id 2;/' -e 's/^peer.1. /peer-NEW /' -e 's/^peer.2. /peer[1] /' -e 's/^peer-NEW /peer[2] /' < " + md + ".orig > " + md +
			" && drbdmeta --force 0 v09 " + byIDPrefix + nvmeSerial(vn) + " internal restore-md " + md, 0, "successfully created"},
		{sf.n, "drbdadm up home0 && drbdadm status home0", 0, "replication:SyncTarget"},
		{sf.b, "drbdadm status home0", 0, sf.hf[0] + " role:Primary\n    replication:Established peer-disk:UpToDate\n"},
	})
	got := sf.resyncs(sf.n, mark)
	if len(got) != 1 || !strings.Contains(got[0], "the blocks changed since") || strings.Contains(got[0], "resyncing 50.00 GiB") {
		t.Fatalf("N's resync: %q, want one of only the blocks written since the seed point", got)
	}
	var gib float64
	fmt.Sscanf(got[0][strings.Index(got[0], "resyncing ")+len("resyncing "):], "%f", &gib)
	if gib <= 0 || gib > 1.5 { // F wrote about 2 min × 5 MB/s since the clear-bitmap
		t.Fatalf("N resyncs %.2f GiB, want the ~0.6 GiB written since the seed point:\n%s", gib, got[0])
	}
	sf.sim.Advance(time.Minute)
	for _, inst := range []string{sf.f, sf.b, sf.n} {
		out, _, _, _ := sf.shell(t, inst, "drbdadm status home0")
		if strings.Count(out, "peer-disk:UpToDate") != 2 || !strings.Contains(out, "  disk:UpToDate\n") {
			t.Fatalf("after the resync on %s:\n%s\nwant all three UpToDate", inst, out)
		}
	}
}

// TestDRBDSeedWithoutTheProcedureSyncsInFull proves the model never takes a copy for in sync
// when nothing tells what it lacks: a copy of B's disk brought in as N without the two
// new-current-uuid steps has B's generation, but F's bitmap for N counts from no known point
// (day 0), so N gets the whole device — slow, never wrong.
func TestDRBDSeedWithoutTheProcedureSyncsInFull(t *testing.T) {
	sf := newSeedFixture(t)
	diskN := byIDPrefix + "pending"
	confAll := sf.addN(t, diskN)
	snap := sf.seed(t)
	vn := sf.restoreOnN(t, snap)
	confAll = strings.ReplaceAll(confAll, diskN, byIDPrefix+nvmeSerial(vn))
	evs := sf.sim.Events(0, 10000)
	mark := evs[len(evs)-1].Seq
	md := "/etc/drbd.d/home0.md"
	for _, inst := range []string{sf.f, sf.b} {
		sf.runSteps(t, []shellStep{{inst, writeFileScript("/etc/drbd.d/home0.res", confAll) + " && drbdadm adjust home0", 0, ""}})
	}
	sf.runSteps(t, []shellStep{
		{sf.n, writeFileScript("/etc/drbd.d/home0.res", confAll) + " && drbdadm -- --force dump-md home0 > " + md + ".orig", 0, ""},
		{sf.n, "sed -e 's/^node-id 1;$/node-id 2;/' -e 's/^peer.1. /peer-NEW /' -e 's/^peer.2. /peer[1] /' -e 's/^peer-NEW /peer[2] /' < " + md + ".orig > " + md +
			" && drbdmeta --force 0 v09 " + byIDPrefix + nvmeSerial(vn) + " internal restore-md " + md + " && drbdadm up home0", 0, ""},
	})
	got := sf.resyncs(sf.n, mark)
	if len(got) != 1 || !strings.Contains(got[0], "resyncing 50.00 GiB (the whole device)") {
		t.Fatalf("N's resync: %q, want the whole device", got)
	}
}

// TestDRBDRefusesDivergedData: two nodes that both wrote while apart (split brain) and a disk
// of another resource (unrelated data) do not connect: StandAlone, as DRBD does by default;
// `connect --discard-my-data` on the victim then resyncs it from the survivor.
func TestDRBDRefusesDivergedData(t *testing.T) {
	sf := newSeedFixture(t)
	sf.runSteps(t, []shellStep{{sf.b, "drbdadm disconnect home0", 0, ""}})
	sf.sim.Advance(time.Minute)
	// B promoted while apart: both write.
	sf.runSteps(t, []shellStep{{sf.b, "drbdadm primary --force home0", 0, ""}})
	sf.sim.Advance(time.Minute)
	sf.runSteps(t, []shellStep{
		{sf.b, "drbdadm secondary home0 && drbdadm connect home0 && drbdadm status home0", 0, sf.hf[0] + " connection:StandAlone"},
	})
	if !slicesContainsEvent(sf.sim.Events(0, 10000), "drbd.split-brain") {
		t.Fatal("no drbd.split-brain event")
	}
	sf.runSteps(t, []shellStep{
		{sf.f, "drbdadm connect home0", 0, ""},
		{sf.b, "drbdadm connect --discard-my-data home0 && drbdadm status home0", 0, "replication:SyncTarget"},
	})
	sf.sim.Advance(time.Minute)
	sf.runSteps(t, []shellStep{{sf.b, "drbdadm status home0", 0, "  disk:UpToDate\n"}})
}

func slicesContainsEvent(evs []Event, typ string) bool {
	for _, e := range evs {
		if e.Type == typ {
			return true
		}
	}
	return false
}
