package cloudsim

import (
	"strings"
	"testing"
	"time"

	"github.com/anyops/anyops"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/route53"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	ssmtypes "github.com/aws/aws-sdk-go-v2/service/ssm/types"
)

// nfsServer launches a bootstrapped file server with a 10 GiB data volume: ext4 made,
// mounted at /srv/home and exported to the VPC. It returns the instance and its address.
func (f *fixture) nfsServer(t *testing.T, zone string) (string, string) {
	t.Helper()
	inst := f.run(t, zone, map[string]string{"anyops:role": "file"})
	f.sim.Advance(bootTime)
	vol := f.createVolume(t, zone, 10, nil)
	f.sim.Advance(volumeCreateTime)
	f.attach(t, vol, inst, "/dev/sdf")
	f.sim.Advance(attachTime)
	f.runSteps(t, []shellStep{
		{inst: inst, script: "anyops-bootstrap"},
		{inst: inst, script: "set -e\nmkfs.ext4 -q /dev/nvme1n1\nmkdir -p /srv/home\nmount /dev/nvme1n1 /srv/home\nexportfs -o rw,sync,no_subtree_check 10.0.0.0/16:/srv/home"},
	})
	return inst, *f.instance(t, inst).PrivateIpAddress
}

// fileServiceName points files.live.internal at ip in a private zone and waits until INSYNC.
func (f *fixture) fileServiceName(t *testing.T, r53 *route53.Client, zoneID, ip string) {
	t.Helper()
	if _, err := r53.ChangeResourceRecordSets(f.ctx, &route53.ChangeResourceRecordSetsInput{HostedZoneId: aws.String(zoneID),
		ChangeBatch: upsertA("files.live.internal.", 60, ip)}); err != nil {
		t.Fatal(err)
	}
	f.sim.Advance(dnsPropagationMin + dnsPropagationSpread*time.Second)
}

// sendScript sends a script with an execution timeout and returns the command id.
func (f *fixture) sendScript(t *testing.T, inst string, timeout int, lines ...string) string {
	t.Helper()
	in := sendShell(inst, lines...)
	in.Parameters["executionTimeout"] = []string{itoa(int64(timeout))}
	out, err := f.ssm.SendCommand(f.ctx, in)
	if err != nil {
		t.Fatal(err)
	}
	return *out.Command.CommandId
}

func (f *fixture) invocation(t *testing.T, inst, id string) *ssm.GetCommandInvocationOutput {
	t.Helper()
	inv, err := f.ssm.GetCommandInvocation(f.ctx, &ssm.GetCommandInvocationInput{CommandId: aws.String(id), InstanceId: aws.String(inst)})
	if err != nil {
		t.Fatal(err)
	}
	return inv
}

// clientEvents are the nfs.client.* events of a client, in order: type and reason.
func (f *fixture) clientEvents(client string) []string {
	var out []string
	for _, e := range f.sim.QueryEvents(EventQuery{Types: []string{"nfs.client."}, Resource: client}) {
		out = append(out, strings.TrimPrefix(e.Type, "nfs.client.")+" "+e.Data["server"].(string))
	}
	return out
}

// TestNFSClientMountByNameHangsWhileServerGone is the file service as a client sees it: a web
// host mounts files.live.internal:/srv/home, writes and reads through it (the file lands on
// the server's volume); the server's hardware fails: the mount is stale at that moment (an
// event), a touch on it blocks until SSM's executionTimeout ends the command (TimedOut),
// `timeout 5 touch` ends with 124 after 5 s; `umount -f -l` detaches it anyway; the record
// moves to a second server, and a new mount binds to it while /proc/mounts shows the address.
func TestNFSClientMountByNameHangsWhileServerGone(t *testing.T) {
	f := newFixture(t, Config{Speed: frozen})
	r53 := f.route53()
	file1, ip1 := f.nfsServer(t, "us-east-1a")
	file2, ip2 := f.nfsServer(t, "us-east-1a")
	web := f.run(t, "us-east-1a", map[string]string{"anyops:role": "web"})
	f.sim.Advance(bootTime)
	zoneID := f.privateZone(t, r53, "live.internal.", "nfs")
	f.fileServiceName(t, r53, zoneID, ip1)

	f.runSteps(t, []shellStep{
		{inst: web, script: "mount -t nfs4 -o vers=4.2,hard files.live.internal:/srv/home /home"},
		{inst: web, script: "cat /proc/mounts | grep ' /home '", wantText: "files.live.internal:/srv/home /home nfs4 rw,relatime,vers=4.2,"},
		{inst: web, script: "mount | grep nfs4", wantText: "addr=" + ip1 + ")"},
		{inst: web, script: "printf '%s\\n' probe-1 | timeout 5 tee /home/.anyops-nfs-probe >/dev/null && timeout 5 cat /home/.anyops-nfs-probe", wantText: "probe-1\n"},
		{inst: web, script: "timeout 5 touch /home/.anyops-nfs-probe && test -w /home && stat -c '%n %s' /home/.anyops-nfs-probe && df -h /home", wantText: "/home/.anyops-nfs-probe 8"},
		{inst: web, script: "mount -t nfs4 files.live.internal:/srv/home /home", wantCode: 32, wantText: "busy or already mounted"},
		// On the server the file is on its own file system.
		{inst: file1, script: "cat /srv/home/.anyops-nfs-probe", wantText: "probe-1"},
	})

	f.injectFault(t, map[string]any{"type": "hardware-failure", "instance_id": file1})
	failedAt := f.sim.Now()
	stale := f.sim.QueryEvents(EventQuery{Types: []string{"nfs.client.stale"}, Resource: web})
	if len(stale) != 1 || !stale[0].Time.Equal(failedAt) || stale[0].Data["server"] != file1 || stale[0].Data["mount"] != "/home" {
		t.Fatalf("nfs.client.stale at the fault (%s): %+v", failedAt, stale)
	}
	if down := f.sim.QueryEvents(EventQuery{Types: []string{"nfs.server.down"}, Resource: file1}); len(down) != 1 || !down[0].Time.Equal(failedAt) {
		t.Fatalf("nfs.server.down of %s at the fault: %+v", file1, down)
	}

	hung := f.sendScript(t, web, 120, "echo before", "touch /home/x", "echo after")
	f.sim.Advance(119 * time.Second)
	if inv := f.invocation(t, web, hung); inv.Status != ssmtypes.CommandInvocationStatusInProgress {
		t.Fatalf("a touch on the stale mount after 119 s: %s, want InProgress (hard mount)", inv.Status)
	}
	f.sim.Advance(2 * time.Second)
	if inv := f.invocation(t, web, hung); inv.Status != ssmtypes.CommandInvocationStatusTimedOut || strings.Contains(aws.ToString(inv.StandardOutputContent), "after") {
		t.Fatalf("after its executionTimeout: %s %q, want TimedOut with nothing after the touch", inv.Status, aws.ToString(inv.StandardOutputContent))
	}
	probe := f.sendScript(t, web, 60, "timeout 5 touch /home/.anyops-nfs-probe")
	f.sim.Advance(4 * time.Second)
	if inv := f.invocation(t, web, probe); inv.Status != ssmtypes.CommandInvocationStatusInProgress {
		t.Fatalf("timeout 5 touch after 4 s: %s", inv.Status)
	}
	f.sim.Advance(2 * time.Second)
	if inv := f.invocation(t, web, probe); inv.Status != ssmtypes.CommandInvocationStatusFailed || inv.ResponseCode != 124 {
		t.Fatalf("timeout 5 touch after 6 s: %s exit %d, want Failed 124", inv.Status, inv.ResponseCode)
	}
	for _, script := range []string{"cat /home/.anyops-nfs-probe", "ls /home", "stat /home", "test -w /home", "df", "mountpoint -q /home", "printf x > /home/y", "umount /home"} {
		id := f.sendScript(t, web, 30, "timeout -s KILL 3 bash -c "+shellQuoteTest(script))
		f.sim.Advance(4 * time.Second)
		if inv := f.invocation(t, web, id); inv.ResponseCode != 137 {
			t.Fatalf("%s on the stale mount under timeout -s KILL 3: %s exit %d, want 137 (killed)", script, inv.Status, inv.ResponseCode)
		}
	}

	f.fileServiceName(t, r53, zoneID, ip2) // the record moves; the old mount stays on file1
	f.runSteps(t, []shellStep{
		{inst: web, script: "cat /proc/mounts | grep -c addr=" + ip1, wantText: "1"},
		{inst: web, script: "umount -f -l /home"},
		{inst: web, script: "sleep 61"}, // the old answer's TTL
		{inst: web, script: "mount -t nfs4 files.live.internal:/srv/home /home && timeout 5 touch /home/back && cat /proc/mounts | grep /home", wantText: "addr=" + ip2},
		{inst: file2, script: "ls /srv/home", wantText: "back"},
	})
	want := []string{"serving " + file1, "stale " + file1, "unmounted " + file1, "serving " + file2}
	if got := f.clientEvents(web); strings.Join(got, ",") != strings.Join(want, ",") {
		t.Fatalf("nfs.client events of the web host:\n got %v\nwant %v", got, want)
	}
}

func shellQuoteTest(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

// TestNFSServingFollowsTheServersStorage: a mount is served only while its server runs
// nfs-server, exports the path to the client, has its file system mounted — and, on DRBD,
// only while the device is Primary; every change of that is a client event at its moment.
func TestNFSServingFollowsTheServersStorage(t *testing.T) {
	f := newFixture(t, Config{Speed: frozen})
	file, ip := f.nfsServer(t, "us-east-1a")
	task := f.run(t, "us-east-1a", map[string]string{"anyops:role": "task"})
	f.sim.Advance(bootTime)
	f.runSteps(t, []shellStep{{inst: task, script: "mount -t nfs4 " + ip + ":/srv/home /home && timeout 5 touch /home/ok"}})
	probe := func(wantCode int32) {
		t.Helper()
		id := f.sendScript(t, task, 30, "timeout 2 touch /home/ok")
		f.sim.Advance(3 * time.Second)
		if inv := f.invocation(t, task, id); inv.ResponseCode != wantCode {
			t.Fatalf("probe: exit %d, want %d", inv.ResponseCode, wantCode)
		}
	}
	steps := []struct {
		name, script, undo string
	}{
		{"nfs-server stopped", "systemctl stop nfs-server", "systemctl start nfs-server"},
		{"the path unexported", "exportfs -u 10.0.0.0/16:/srv/home", "exportfs -o rw 10.0.0.0/16:/srv/home"},
		{"exported to other clients only", "exportfs -u 10.0.0.0/16:/srv/home && exportfs -o rw 10.9.0.0/16:/srv/home", "exportfs -o rw " + ip[:strings.LastIndex(ip, ".")] + ".0/24:/srv/home"},
	}
	for _, st := range steps {
		f.runSteps(t, []shellStep{{inst: file, script: st.script}})
		probe(124)
		f.runSteps(t, []shellStep{{inst: file, script: st.undo}})
		probe(0)
	}
	got := f.clientEvents(task)
	want := "serving " + file
	for range steps {
		want += ",stale " + file + ",serving " + file
	}
	if strings.Join(got, ",") != want {
		t.Fatalf("events: %v\nwant %s", got, want)
	}
	// A stopped server: the mount stays stale through the stop; the client's host going down
	// drops its mounts (an event too).
	f.ec2.StopInstances(f.ctx, &ec2.StopInstancesInput{InstanceIds: []string{file}})
	f.sim.Advance(stopTime)
	probe(124)
	f.ec2.StopInstances(f.ctx, &ec2.StopInstancesInput{InstanceIds: []string{task}})
	f.sim.Advance(stopTime)
	if got := f.clientEvents(task); got[len(got)-1] != "unmounted "+file {
		t.Fatalf("after the client stopped: %v", got)
	}
}

// TestNFSOnDRBDServesOnlyFromThePrimary: an export on md over DRBD serves while the DRBD
// devices are Primary; when the file server stops being Primary (it unexports, unmounts, stops
// md and demotes for the backup to take over) its clients are stale, and the backup serves once
// it is Primary with md assembled, mounted and exported.
func TestNFSOnDRBDServesOnlyFromThePrimary(t *testing.T) {
	f := newFixture(t, Config{Speed: frozen})
	file, backup := f.drbdPair(t, "home0", 10)
	web := f.run(t, "us-east-1a", map[string]string{"anyops:role": "web"})
	f.sim.Advance(bootTime)
	fileIP := *f.instance(t, file).PrivateIpAddress
	f.runSteps(t, []shellStep{
		{inst: file, script: "set -e\nmdadm --create /dev/md0 --level=0 --raid-devices=1 --run /dev/drbd0\nmkfs.ext4 -q /dev/md0\nmkdir -p /srv/home\nmount /dev/md0 /srv/home\nexportfs -o rw 10.0.0.0/16:/srv/home"},
		{inst: web, script: "mount -t nfs4 " + fileIP + ":/srv/home /home && printf '%s\\n' replicated > /home/f"},
		{inst: file, script: "set -e\nexportfs -u 10.0.0.0/16:/srv/home\numount /srv/home\nmdadm --stop /dev/md0\ndrbdadm secondary home0"},
		{inst: backup, script: "set -e\ndrbdadm primary home0\nmdadm --assemble /dev/md0 /dev/drbd0\nmkdir -p /srv/home\nmount /dev/md0 /srv/home\nexportfs -o rw 10.0.0.0/16:/srv/home\ncat /srv/home/f", wantText: "replicated"},
	})
	if got := f.clientEvents(web); strings.Join(got, ",") != "serving "+file+",stale "+file {
		t.Fatalf("the web host's mount of the demoted file server: %v", got)
	}
	backupIP := *f.instance(t, backup).PrivateIpAddress
	f.runSteps(t, []shellStep{{inst: web, script: "umount -l /home && mount -t nfs4 " + backupIP + ":/srv/home /home && cat /home/f", wantText: "replicated"}})
}

// drbdPair launches a bootstrapped file and backup server with one DRBD resource of gib GiB
// between them, configured by fixture tags and in sync, the file server Primary.
func (f *fixture) drbdPair(t *testing.T, res string, gib int32) (string, string) {
	t.Helper()
	file := f.run(t, "us-east-1a", map[string]string{"anyops:role": "file"})
	backup := f.run(t, "us-east-1a", map[string]string{"anyops:role": "backup"})
	f.sim.Advance(bootTime)
	pv := f.createVolume(t, "us-east-1a", gib, map[string]string{anyops.TagDRBDResource: res, anyops.TagDRBDPeer: backup, FixtureTagDRBDRole: "primary", FixtureTagDRBDDisk: "UpToDate"})
	sv := f.createVolume(t, "us-east-1a", gib, map[string]string{anyops.TagDRBDResource: res, anyops.TagDRBDPeer: file, FixtureTagDRBDRole: "secondary", FixtureTagDRBDDisk: "UpToDate"})
	f.sim.Advance(volumeCreateTime)
	f.attach(t, pv, file, "/dev/sdf")
	f.attach(t, sv, backup, "/dev/sdf")
	f.sim.Advance(attachTime)
	f.runSteps(t, []shellStep{{inst: file, script: "anyops-bootstrap"}, {inst: backup, script: "anyops-bootstrap"}})
	return file, backup
}
