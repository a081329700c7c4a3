package cloudsim

import (
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/anyops/anyops"
)

// TestDRBDUnreplicatedBytesAreMeasured is the data accounting of a DRBD pair: while the
// backup is cut off, the Primary's acknowledged writes its peer lacks grow at the write rate
// and show where DRBD shows them (out-of-sync:KiB of `drbdadm status --verbose --statistics`,
// and the host JSON) — exactly, across scheduled faults firing in between; the file server
// then fails, the outdated backup is forced Primary, and when it serves the bytes it lacks
// are logged as data.lost (not before); the old Primary coming back beside the new one is a
// split brain (logged once), the pair refuses to connect, and --discard-my-data resolves it.
func TestDRBDUnreplicatedBytesAreMeasured(t *testing.T) {
	f := newFixture(t, Config{Speed: frozen})
	file, backup := f.drbdPair(t, "home0", 100)
	f.runSteps(t, []shellStep{{inst: file, script: "set -e\nmkfs.ext4 -q /dev/drbd0\nmkdir -p /srv/home\nmount /dev/drbd0 /srv/home\nexportfs -o rw 10.0.0.0/16:/srv/home"}})
	f.injectFault(t, map[string]any{"type": "drbd-disconnect", "instance_id": backup})
	// Two unrelated faults fire on the way: the world settles at each, and the bytes are
	// still counted once.
	if _, err := f.sim.LoadScenario([]byte(`[{"at":"3m","fault":{"type":"throttle","action":"DescribeTags","count":1}},` +
		`{"at":"6m","fault":{"type":"throttle","action":"DescribeTags","count":1}}]`)); err != nil {
		t.Fatal(err)
	}
	f.sim.Advance(10 * time.Minute)
	const apart = 10 * 60 * drbdChangeRate // bytes: 10 minutes at the write rate
	out, _, _, _ := f.shell(t, file, "drbdadm status --verbose --statistics home0")
	if !strings.Contains(out, " out-of-sync:3072000 ") || !strings.Contains(out, "connection:Connecting") || !strings.Contains(out, "replication:Off peer-disk:DUnknown") {
		t.Fatalf("the primary after 10 min apart (want out-of-sync:3072000 KiB):\n%s", out)
	}
	var view struct {
		DRBD map[string]struct {
			Ahead float64 `json:"ahead_bytes"`
		} `json:"drbd"`
	}
	f.getJSON(t, "/_sim/hosts/"+file, &view)
	if view.DRBD["home0"].Ahead != apart {
		t.Fatalf("host JSON ahead_bytes %v, want %v", view.DRBD["home0"].Ahead, float64(apart))
	}

	f.injectFault(t, map[string]any{"type": "hardware-failure", "instance_id": file})
	f.runSteps(t, []shellStep{
		{inst: backup, script: "drbdadm primary home0", wantCode: 11, wantText: "Need access to UpToDate data"},
		{inst: backup, script: "drbdadm primary --force home0 && mkdir -p /srv/home && mount /dev/drbd0 /srv/home"},
	})
	if lost := f.sim.QueryEvents(EventQuery{Types: []string{"data.lost"}}); len(lost) != 0 {
		t.Fatalf("data.lost before the promoted side serves: %+v", lost)
	}
	f.runSteps(t, []shellStep{{inst: backup, script: "exportfs -o rw 10.0.0.0/16:/srv/home"}})
	lost := f.sim.QueryEvents(EventQuery{Types: []string{"data.lost"}})
	if len(lost) != 1 || lost[0].Resource != backup || lost[0].Data["resource"] != "home0" || lost[0].Data["bytes"] != int64(apart) {
		t.Fatalf("data.lost once the forced backup serves: %+v, want %d bytes", lost, int64(apart))
	}
	if sb := f.sim.QueryEvents(EventQuery{Types: []string{"drbd.split-brain"}}); len(sb) != 0 {
		t.Fatalf("a failed old primary is no split brain: %+v", sb)
	}

	// The old primary's host comes back as it was: Primary beside the new one.
	active, _ := f.sim.Faults()
	for _, flt := range active {
		f.sim.ClearFault(flt.ID)
	}
	f.sim.Advance(time.Minute)
	sb := f.sim.QueryEvents(EventQuery{Types: []string{"drbd.split-brain"}})
	if len(sb) != 1 || sb[0].Data["kind"] != "two-primaries" {
		t.Fatalf("two live primaries: %+v, want one drbd.split-brain", sb)
	}
	out, _, _, _ = f.shell(t, file, "drbdadm status home0")
	if !strings.Contains(out, "connection:StandAlone") {
		t.Fatalf("the diverged pair must not connect:\n%s", out)
	}
	f.runSteps(t, []shellStep{
		{inst: file, script: "exportfs -u 10.0.0.0/16:/srv/home && umount /srv/home && drbdadm secondary home0 && drbdadm connect --discard-my-data home0"},
		{inst: backup, script: "drbdadm connect home0"},
	})
	f.sim.Advance(2 * time.Minute) // (10 min + 1 min) × 5 MB/s at most, at 100 MB/s
	out, _, _, _ = f.shell(t, file, "drbdadm status home0")
	if !strings.Contains(out, "role:Secondary\n  disk:UpToDate") || !strings.Contains(out, "peer-disk:UpToDate") {
		t.Fatalf("after discarding its data the old primary resyncs from the new one:\n%s", out)
	}
	if n := len(f.sim.QueryEvents(EventQuery{Types: []string{"drbd.split-brain"}})); n != 1 {
		t.Fatalf("%d split-brain events, want the one", n)
	}
}

// TestDRBDStatusVerboseStatisticsFormat: the verbose status of a pair in sync and resyncing,
// in drbdsetup's words and layout (wrapped at 80 columns).
func TestDRBDStatusVerboseStatisticsFormat(t *testing.T) {
	f := newFixture(t, Config{Speed: frozen})
	file, backup := f.drbdPair(t, "home0", 100)
	backupHost := "ip-" + dashIP(*f.instance(t, backup).PrivateIpAddress)
	out, _, _, _ := f.shell(t, file, "drbdadm status --verbose --statistics home0")
	want := "home0 node-id:0 role:Primary suspended:no\n" +
		"    write-ordering:flush\n" +
		"  volume:0 minor:0 disk:UpToDate quorum:yes\n" +
		"      size:104857600 read:0 written:0 al-writes:0 bm-writes:0 upper-pending:0\n" +
		"      lower-pending:0 al-suspended:no blocked:no\n" +
		"  " + backupHost + " node-id:1 connection:Connected role:Secondary congested:no\n" +
		"    volume:0 replication:Established peer-disk:UpToDate resync-suspended:no\n" +
		"        received:0 sent:0 out-of-sync:0 pending:0 unacked:0\n\n"
	if out != want {
		t.Fatalf("verbose statistics in sync:\n got %q\nwant %q", out, want)
	}
	f.injectFault(t, map[string]any{"type": "drbd-disconnect", "instance_id": backup})
	f.sim.Advance(100 * time.Second) // 500 MB apart
	active, _ := f.sim.Faults()
	f.sim.ClearFault(active[0].ID)
	f.sim.Advance(time.Second) // 100 MB of it resynced
	out, _, _, _ = f.shell(t, file, "drbdadm status --statistics home0")
	if !strings.Contains(out, "replication:SyncSource peer-disk:Inconsistent done:20.00") || !strings.Contains(out, "out-of-sync:409600") {
		t.Fatalf("resyncing, with the rest out of sync:\n%s", out)
	}
}

// TestDRBDTwoPrimariesNeedAllowTwoPrimaries: on a connected pair set up by files, a second
// Primary is refused unless the resource's net section allows two (and then no split brain is
// logged: both sides replicate).
func TestDRBDTwoPrimariesNeedAllowTwoPrimaries(t *testing.T) {
	for _, tc := range []struct {
		name, net string
		wantCode  int32
		wantText  string
	}{
		{"by default", "", 11, "Multiple primaries not allowed by config"},
		{"with allow-two-primaries", "  net { allow-two-primaries yes; }\n", 0, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, Config{Speed: frozen})
			a, b := f.run(t, "us-east-1a", nil), f.run(t, "us-east-1b", nil)
			f.sim.Advance(bootTime)
			ipA, ipB := aws.ToString(f.instance(t, a).PrivateIpAddress), aws.ToString(f.instance(t, b).PrivateIpAddress)
			va, vb := f.createVolume(t, "us-east-1a", 10, nil), f.createVolume(t, "us-east-1b", 10, nil)
			f.sim.Advance(volumeCreateTime)
			f.attach(t, va, a, "/dev/sdf")
			f.attach(t, vb, b, "/dev/sdf")
			f.sim.Advance(attachTime)
			conf := pairConf("r0", 0, 7789, "ip-"+dashIP(ipA), ipA, byIDPrefix+nvmeSerial(va), "ip-"+dashIP(ipB), ipB, byIDPrefix+nvmeSerial(vb))
			conf = strings.Replace(conf, "  meta-disk internal;\n", "  meta-disk internal;\n"+tc.net, 1)
			write := writeFileScript("/etc/drbd.d/r0.res", conf) + " && drbdadm create-md r0 && drbdadm up r0"
			f.runSteps(t, []shellStep{
				{a, write, 0, ""},
				{b, write, 0, ""},
				{a, "drbdadm new-current-uuid --clear-bitmap r0/0 && drbdadm primary r0", 0, ""},
				{b, "drbdadm primary r0", tc.wantCode, tc.wantText},
			})
			if sb := f.sim.QueryEvents(EventQuery{Types: []string{"drbd.split-brain"}}); len(sb) != 0 {
				t.Fatalf("split brain logged for a connected pair: %+v", sb)
			}
		})
	}
	parsed, err := parseDRBDFile("r.res", "resource r { device /dev/drbd0; disk /dev/xvdf; meta-disk internal; net { protocol C; allow-two-primaries; }\n"+
		"on a { node-id 0; address 10.0.0.1:7789; }\non b { node-id 1; address 10.0.0.2:7789; } }")
	if err != nil || !parsed.Resources[0].AllowTwoPrimaries {
		t.Fatalf("allow-two-primaries without a value means yes: %+v %v", parsed, err)
	}
}

// TestDRBDLostBytesOfAnInterruptedResync is the July 2014 case: the backup is half way
// through its resync when the file server's hardware fails; forced Primary and serving, it
// lacks the half it never received, and data.lost says so to the byte.
func TestDRBDLostBytesOfAnInterruptedResync(t *testing.T) {
	f := newFixture(t, Config{Speed: frozen})
	file := f.run(t, "us-east-1a", map[string]string{"anyops:role": "file"})
	backup := f.run(t, "us-east-1a", map[string]string{"anyops:role": "backup"})
	f.sim.Advance(bootTime)
	f.runSteps(t, []shellStep{{inst: backup, script: "anyops-bootstrap"}}) // nfs-server, before the pair exists
	const size = 100                                                       // GiB: a full resync at 100 MB/s takes 1024 s
	pv := f.createVolume(t, "us-east-1a", size, map[string]string{anyops.TagDRBDResource: "home0", anyops.TagDRBDPeer: backup, FixtureTagDRBDRole: "primary"})
	sv := f.createVolume(t, "us-east-1a", size, map[string]string{anyops.TagDRBDResource: "home0", anyops.TagDRBDPeer: file, FixtureTagDRBDRole: "secondary"})
	f.sim.Advance(volumeCreateTime)
	f.attach(t, pv, file, "/dev/sdf")
	f.attach(t, sv, backup, "/dev/sdf")
	f.sim.Advance(attachTime)
	linked := f.sim.Now() // the pair connects as the second attach completes
	f.runSteps(t, []shellStep{{inst: file, script: "mkfs.ext4 -q /dev/drbd0"}})
	f.sim.Advance(linked.Add(512 * time.Second).Sub(f.sim.Now()))
	out, _, _, _ := f.shell(t, file, "drbdadm status --statistics home0")
	if !strings.Contains(out, "done:50.00") || !strings.Contains(out, "out-of-sync:52428800") {
		t.Fatalf("half way (50 GiB = 52428800 KiB left):\n%s", out)
	}
	f.injectFault(t, map[string]any{"type": "hardware-failure", "instance_id": file})
	f.runSteps(t, []shellStep{{inst: backup, script: "set -e\ndrbdadm primary --force home0\nmkdir -p /srv/home\nmount /dev/drbd0 /srv/home\nexportfs -o rw 10.0.0.0/16:/srv/home"}})
	lost := f.sim.QueryEvents(EventQuery{Types: []string{"data.lost"}})
	if len(lost) != 1 || lost[0].Data["bytes"] != int64(size*gib/2) {
		t.Fatalf("data.lost: %+v, want %d bytes", lost, int64(size*gib/2))
	}
}
