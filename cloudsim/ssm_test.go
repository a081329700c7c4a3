package cloudsim

import (
	"strings"
	"testing"
	"time"

	"github.com/anyops/anyops"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	ssmtypes "github.com/aws/aws-sdk-go-v2/service/ssm/types"
)

// TestSSMCommandsAndErrors runs scripts through SendCommand/GetCommandInvocation with the SDK
// and checks output, exit codes and SSM's error codes.
func TestSSMCommandsAndErrors(t *testing.T) {
	f := newFixture(t, Config{Speed: frozen})
	// A file server: its image has no nginx (a role's image ships the role's packages).
	id := f.run(t, "us-east-1a", map[string]string{"anyops:role": "file"})
	_, err := f.ssm.SendCommand(f.ctx, sendShell(id, "true"))
	if code := apiCode(t, err); code != "InvalidInstanceId" {
		t.Fatalf("SendCommand to a pending instance: %q, want InvalidInstanceId", code)
	}
	f.sim.Advance(bootTime)

	tests := []struct {
		name       string
		script     []string
		wantCode   int32
		wantStatus string
		wantOut    string // substring of stdout
		wantErr    string // substring of stderr
	}{
		{"unknown command fails as a shell would", []string{"frobnicate --now"}, 127, "Failed", "", "frobnicate: command not found"},
		{"echo and hostname", []string{"echo hello", "hostname"}, 0, "Success", "hello\nip-10-0-", ""},
		{"set -e stops at the first failure", []string{"set -e", "false", "echo unreachable"}, 1, "Failed", "", ""},
		{"set -e spares a failure left of &&, as bash does", []string{"set -e", "false && echo no", "echo reached"}, 0, "Success", "reached", ""},
		{"set -e stops at a failure right of ||", []string{"set -e", "false || false", "echo unreachable"}, 1, "Failed", "", ""},
		{"without set -e the last status counts", []string{"false", "echo reached"}, 0, "Success", "reached", ""},
		{"&& and || short-circuit", []string{"false && echo no || echo yes"}, 0, "Success", "yes", ""},
		{"exit code is kept", []string{"exit 3"}, 3, "Failed", "", ""},
		{"pipes into grep", []string{"dpkg-query -W openssl | grep -q 1.0.1f && echo vulnerable"}, 0, "Success", "vulnerable", ""},
		{"grep -x matches whole lines", []string{"echo ext4 | grep -q -x -F ext && echo no", "echo ext4 | grep -x -F ext4"}, 0, "Success", "ext4\n", ""},
		{"a service the host does not have", []string{"systemctl restart nginx"}, 5, "Failed", "", "Unit nginx.service not found"},
		{"health probe of a service the host does not have", []string{"curl -fsS http://localhost/health"}, 7, "Failed", "", "Connection refused"},
		{"apt-get without -y aborts", []string{"apt-get upgrade"}, 1, "Failed", "Abort", ""},
		{"unknown package", []string{"apt-get install -y leftpad"}, 100, "Failed", "", "Unable to locate package leftpad"},
		{"--only-upgrade skips what is not installed", []string{"apt-get install -y -q --only-upgrade nginx openssl", "dpkg-query -W nginx"}, 1, "Failed",
			"Skipping nginx, it is not installed and only upgrades are requested.\n1 upgraded, 0 newly installed", "no packages found matching nginx"},
		{"variables are refused, not guessed", []string{"echo $HOME"}, 2, "Failed", "", "not simulated"},
		{"redirect into a file outside /etc is refused", []string{"echo x > /var/log/motd"}, 2, "Failed", "", "simulated only under /etc"},
		{"2>&1 merges stderr into stdout", []string{"nosuch 2>&1"}, 127, "Failed", "command not found", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out, stderr, code, status := f.shell(t, id, tc.script...)
			if code != tc.wantCode || status != tc.wantStatus || !strings.Contains(out, tc.wantOut) || !strings.Contains(stderr, tc.wantErr) {
				t.Fatalf("exit %d %s\nstdout: %q\nstderr: %q\nwant exit %d %s, stdout ∋ %q, stderr ∋ %q",
					code, status, out, stderr, tc.wantCode, tc.wantStatus, tc.wantOut, tc.wantErr)
			}
		})
	}

	errorCases := []struct {
		name string
		call func() error
		want string
	}{
		{"document other than AWS-RunShellScript", func() error {
			in := sendShell(id, "true")
			in.DocumentName = aws.String("AWS-RunPowerShellScript")
			_, err := f.ssm.SendCommand(f.ctx, in)
			return err
		}, "InvalidDocument"},
		{"no commands", func() error {
			_, err := f.ssm.SendCommand(f.ctx, &ssm.SendCommandInput{DocumentName: aws.String("AWS-RunShellScript"), InstanceIds: []string{id}})
			return err
		}, "InvalidParameters"},
		{"instance that does not exist", func() error {
			_, err := f.ssm.SendCommand(f.ctx, sendShell("i-0000000000000dead", "true"))
			return err
		}, "InvalidInstanceId"},
		{"invocation of a command never sent", func() error {
			_, err := f.ssm.GetCommandInvocation(f.ctx, &ssm.GetCommandInvocationInput{CommandId: aws.String("3f1e6a2e-7b7e-4c2a-9f0e-2b8c1d7e9a11"), InstanceId: aws.String(id)})
			return err
		}, "InvocationDoesNotExist"},
		{"malformed command id", func() error {
			_, err := f.ssm.GetCommandInvocation(f.ctx, &ssm.GetCommandInvocationInput{CommandId: aws.String("nope"), InstanceId: aws.String(id)})
			return err
		}, "InvalidCommandId"},
	}
	for _, tc := range errorCases {
		t.Run(tc.name, func(t *testing.T) {
			if code := apiCode(t, tc.call()); code != tc.want {
				t.Fatalf("got %q, want %s", code, tc.want)
			}
		})
	}
}

// TestClusterBootstrapTakesTwentyMinutes proves a new server is ready about 20 simulated
// minutes after launch (boot + first bootstrap), and that SDK waiters see it through.
func TestClusterBootstrapTakesTwentyMinutes(t *testing.T) {
	f := newFixture(t, Config{Speed: frozen})
	start := f.sim.Now()
	id := f.run(t, "us-east-1a", map[string]string{"anyops:role": "web"})
	f.sim.Advance(bootTime)
	out, err := f.ssm.SendCommand(f.ctx, sendShell(id, "anyops-bootstrap", "systemctl is-active nginx", "curl -fsS http://localhost/health"))
	if err != nil {
		t.Fatal(err)
	}
	f.sim.Advance(bootstrapTime - time.Minute)
	inv, _ := f.ssm.GetCommandInvocation(f.ctx, &ssm.GetCommandInvocationInput{CommandId: out.Command.CommandId, InstanceId: aws.String(id)})
	if inv.Status != ssmtypes.CommandInvocationStatusInProgress || inv.ResponseCode != -1 {
		t.Fatalf("bootstrap a minute before it ends: %s exit %d", inv.Status, inv.ResponseCode)
	}
	f.sim.Advance(time.Minute + time.Second)
	w := ssm.NewCommandExecutedWaiter(f.ssm, func(o *ssm.CommandExecutedWaiterOptions) {
		o.MinDelay, o.MaxDelay = 10*time.Millisecond, 20*time.Millisecond
	})
	if err := w.Wait(f.ctx, &ssm.GetCommandInvocationInput{CommandId: out.Command.CommandId, InstanceId: aws.String(id)}, 5*time.Second); err != nil {
		t.Fatalf("CommandExecuted waiter: %v", err)
	}
	inv, _ = f.ssm.GetCommandInvocation(f.ctx, &ssm.GetCommandInvocationInput{CommandId: out.Command.CommandId, InstanceId: aws.String(id)})
	if inv.ResponseCode != 0 || !strings.Contains(*inv.StandardOutputContent, "active\nok\n") {
		t.Fatalf("bootstrap result: exit %d %q", inv.ResponseCode, *inv.StandardOutputContent)
	}
	if took := f.sim.Now().Sub(start); took < 19*time.Minute || took > 21*time.Minute {
		t.Fatalf("launch to serving took %s, want about 20 min", took)
	}
	// Heartbleed: upgrade, restart, verify.
	stdout, _, code, _ := f.shell(t, id, "set -e", "apt-get -y upgrade", "systemctl restart nginx", "dpkg-query -W -f '${Version}' openssl")
	if code != 0 || !strings.HasSuffix(stdout, "1.0.1f-1ubuntu2.2") {
		t.Fatalf("patch run: exit %d %q", code, stdout)
	}
}

// TestDRBDReplication follows a DRBD pair configured by volume tags through initial sync,
// a disconnect fault and the resync of what changed meanwhile, in DRBD 9's status format.
func TestDRBDReplication(t *testing.T) {
	f := newFixture(t, Config{Speed: frozen})
	file := f.run(t, "us-east-1a", map[string]string{"anyops:role": "file"})
	backup := f.run(t, "us-east-1b", map[string]string{"anyops:role": "backup"})
	f.sim.Advance(bootTime)
	const size = 100 // GiB: a full sync at 100 MB/s takes 1024 s
	primary := f.createVolume(t, "us-east-1a", size, map[string]string{anyops.TagDRBDResource: "home0", anyops.TagDRBDPeer: backup, FixtureTagDRBDRole: "primary"})
	secondary := f.createVolume(t, "us-east-1b", size, map[string]string{anyops.TagDRBDResource: "home0", anyops.TagDRBDPeer: file, FixtureTagDRBDRole: "secondary"})
	f.sim.Advance(volumeCreateTime)
	f.attach(t, primary, file, "/dev/sdf")
	f.attach(t, secondary, backup, "/dev/sdf")
	f.sim.Advance(attachTime)

	status := func(inst string) string {
		out, stderr, code, _ := f.shell(t, inst, "drbdadm status home0")
		if code != 0 {
			t.Fatalf("drbdadm status on %s: exit %d %s", inst, code, stderr)
		}
		return out
	}
	backupHost := "ip-" + dashIP(*f.instance(t, backup).PrivateIpAddress)
	f.sim.Advance(512 * time.Second) // half the full sync
	want := "home0 role:Primary\n  disk:UpToDate\n  " + backupHost + " role:Secondary\n    replication:SyncSource peer-disk:Inconsistent done:50.00\n"
	if got := status(file); got != want {
		t.Fatalf("half way through the initial sync:\n got %q\nwant %q", got, want)
	}
	if got := status(backup); !strings.Contains(got, "role:Secondary\n  disk:Inconsistent\n") || !strings.Contains(got, "replication:SyncTarget peer-disk:UpToDate done:50.") {
		t.Fatalf("backup side during sync: %q", got)
	}
	f.sim.Advance(600 * time.Second)
	if got := status(file); !strings.Contains(got, "replication:Established peer-disk:UpToDate") {
		t.Fatalf("after the full sync: %q", got)
	}

	fault := f.injectFault(t, map[string]any{"type": "drbd-disconnect", "instance_id": backup, "resource": "home0"})
	// While apart the primary makes its file system: the resync brings it to the backup.
	if _, stderr, code, _ := f.shell(t, file, "mkfs.ext4 -q /dev/drbd0"); code != 0 {
		t.Fatalf("mkfs on the primary: exit %d %s", code, stderr)
	}
	// Ten minutes apart in all (mkfs took 5 s of them): the primary writes 5 MB/s meanwhile,
	// 3000 MB to resync.
	f.sim.Advance(10*time.Minute - 5*time.Second)
	if got := status(file); !strings.Contains(got, backupHost+" connection:Connecting") {
		t.Fatalf("while disconnected: %q", got)
	}
	if got := status(backup); !strings.Contains(got, "disk:Outdated") {
		t.Fatalf("backup while disconnected: %q", got)
	}
	f.sim.ClearFault(fault)
	f.sim.Advance(15 * time.Second)
	if got := status(file); !strings.Contains(got, "replication:SyncSource peer-disk:Inconsistent done:50.00") {
		t.Fatalf("resync of 3000 MB at 100 MB/s after 15 s: %q", got)
	}
	f.sim.Advance(20 * time.Second)
	if got := status(file); !strings.Contains(got, "replication:Established peer-disk:UpToDate") {
		t.Fatalf("after the resync: %q", got)
	}

	// Fail over: the backup becomes primary, mounts and exports the data.
	_, stderr, code, _ := f.shell(t, backup, "drbdadm primary home0")
	if code != 11 || !strings.Contains(stderr, "Multiple primaries") {
		t.Fatalf("second primary while connected: exit %d %s", code, stderr)
	}
	_, stderr, code, _ = f.shell(t, file, "set -e", "drbdadm secondary home0")
	if code != 0 {
		t.Fatalf("demote: %s", stderr)
	}
	out, stderr, code, _ := f.shell(t, backup, "set -e", "drbdadm primary home0", "mount /dev/drbd0 /srv/home", "exportfs -o rw,sync 10.0.0.0/16:/srv/home", "exportfs -v")
	if code != 0 || !strings.Contains(out, "/srv/home\t10.0.0.0/16(rw,sync)") {
		t.Fatalf("take over on the backup: exit %d\n%s%s", code, out, stderr)
	}
	_, stderr, code, _ = f.shell(t, backup, "umount /srv/home")
	if code != 32 || !strings.Contains(stderr, "busy") {
		t.Fatalf("umount of an exported filesystem: exit %d %s", code, stderr)
	}
}

// TestDescribeInstanceInformation shows the SSM agent online only where the host is reachable.
func TestDescribeInstanceInformation(t *testing.T) {
	f := newFixture(t, Config{Speed: frozen})
	ok := f.run(t, "us-east-1a", nil)
	bad := f.run(t, "us-east-1a", nil)
	f.sim.Advance(bootTime)
	f.injectFault(t, map[string]any{"type": "hardware-failure", "instance_id": bad})
	out, err := f.ssm.DescribeInstanceInformation(f.ctx, &ssm.DescribeInstanceInformationInput{})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]ssmtypes.PingStatus{}
	for _, i := range out.InstanceInformationList {
		got[*i.InstanceId] = i.PingStatus
	}
	if got[ok] != ssmtypes.PingStatusOnline || got[bad] != ssmtypes.PingStatusConnectionLost {
		t.Fatalf("ping status: %+v", got)
	}
}

// TestRebootClearsHostState proves a stop/start loses what lived in memory — mounts, exports,
// the DRBD Primary role — so recovery code must redo it, as on a real host.
func TestRebootClearsHostState(t *testing.T) {
	f := newFixture(t, Config{Speed: frozen})
	a := f.run(t, "us-east-1a", nil)
	b := f.run(t, "us-east-1b", nil)
	f.sim.Advance(bootTime)
	va := f.createVolume(t, "us-east-1a", 10, map[string]string{anyops.TagDRBDResource: "home0", anyops.TagDRBDPeer: b, FixtureTagDRBDRole: "primary"})
	vb := f.createVolume(t, "us-east-1b", 10, map[string]string{anyops.TagDRBDResource: "home0", anyops.TagDRBDPeer: a, FixtureTagDRBDRole: "secondary", FixtureTagDRBDDisk: "UpToDate"})
	f.sim.Advance(volumeCreateTime)
	f.attach(t, va, a, "/dev/sdf")
	f.attach(t, vb, b, "/dev/sdf")
	f.sim.Advance(attachTime)
	if out, stderr, code, _ := f.shell(t, a, "set -e", "mkfs.ext4 -q /dev/drbd0", "mount /dev/drbd0 /srv/home", "exportfs -o rw '*:/srv/home'", "drbdadm status home0"); code != 0 ||
		!strings.Contains(out, "replication:Established peer-disk:UpToDate") {
		t.Fatalf("pre-synced pair, mounted and exported: exit %d\n%s%s", code, out, stderr)
	}
	f.ec2.StopInstances(f.ctx, &ec2.StopInstancesInput{InstanceIds: []string{a}})
	f.sim.Advance(stopTime)
	f.ec2.StartInstances(f.ctx, &ec2.StartInstancesInput{InstanceIds: []string{a}})
	f.sim.Advance(bootTime)
	out, _, _, _ := f.shell(t, a, "drbdadm status home0; mountpoint /srv/home; exportfs")
	want := "home0 role:Secondary\n  disk:UpToDate\n"
	if !strings.HasPrefix(out, want) || !strings.Contains(out, "/srv/home is not a mountpoint") || strings.Contains(out, "*(rw)") {
		t.Fatalf("after reboot:\n%s\nwant DRBD back as Secondary, nothing mounted or exported", out)
	}
}

// TestRAIDFromTags assembles md arrays whose members carry fixture RAID tags, the way mdadm
// finds members by their superblocks, then mounts and checks them.
func TestRAIDFromTags(t *testing.T) {
	f := newFixture(t, Config{Speed: frozen})
	id := f.run(t, "us-east-1a", nil)
	f.sim.Advance(bootTime)
	for i, dev := range []string{"/dev/sdf", "/dev/sdg"} {
		v := f.createVolume(t, "us-east-1a", int32(100*(i+1)), map[string]string{FixtureTagRAID: "md0"})
		f.sim.Advance(volumeCreateTime)
		f.attach(t, v, id, dev)
	}
	f.sim.Advance(attachTime)
	steps := []struct {
		script   string
		wantCode int32
		wantText string
	}{
		{"mdadm --detail /dev/md0 >/dev/null 2>&1 && echo already-active && exit 0\nmdadm --assemble /dev/md0 --scan", 0, "mdadm: /dev/md0 has been started with 2 drives."},
		{"mdadm --detail /dev/md0 >/dev/null 2>&1 && echo already-active && exit 0\nmdadm --assemble /dev/md0 --scan", 0, "already-active"},
		{"mdadm --assemble --scan", 1, "No arrays found"},                   // all already running
		{"cat /proc/mdstat", 0, "md0 : active raid0 nvme1n1[0] nvme2n1[1]"}, // m5 is Nitro
		{"fsck -n /dev/md0", 8, "Bad magic number"},                         // nothing made a file system yet
		{"mkfs.ext4 -q /dev/md0 && fsck -n /dev/md0", 0, "clean"},
		{"mkfs.ext4 -q /dev/md0", 1, "contains a ext4 file system\nProceed anyway? (y,N)"}, // no terminal to say yes
		{"mount /dev/md0 /srv/logs && mount | grep -q -F '/dev/md0 on /srv/logs type ' && echo mounted", 0, "mounted"},
		{"mdadm --stop /dev/md0", 1, "Cannot get exclusive access"},
		{"mdadm --assemble /dev/md1 --scan", 1, "/dev/md1 not identified"},
	}
	for _, st := range steps {
		out, stderr, code, _ := f.shell(t, id, st.script)
		if code != st.wantCode || !strings.Contains(out+stderr, st.wantText) {
			t.Fatalf("%s: exit %d\n%s%s\nwant exit %d containing %q", st.script, code, out, stderr, st.wantCode, st.wantText)
		}
	}
}

// TestRAIDOnDRBD builds the demo fleet's home storage — md0 over DRBD devices, one DRBD
// resource per volume pair — and fails it over to the backup in the order a real one needs.
func TestRAIDOnDRBD(t *testing.T) {
	f := newFixture(t, Config{Speed: frozen})
	file := f.run(t, "us-east-1a", map[string]string{"anyops:role": "file"})
	backup := f.run(t, "us-east-1a", map[string]string{"anyops:role": "backup"})
	f.sim.Advance(bootTime)
	for i, dev := range []string{"/dev/sdf", "/dev/sdg"} {
		res := "live-r" + itoa(int64(i))
		pv := f.createVolume(t, "us-east-1a", 100, map[string]string{FixtureTagRAID: "md0", anyops.TagDRBDResource: res, anyops.TagDRBDPeer: backup, FixtureTagDRBDRole: "primary", FixtureTagDRBDDisk: "UpToDate"})
		sv := f.createVolume(t, "us-east-1a", 100, map[string]string{FixtureTagRAID: "md0", anyops.TagDRBDResource: res, anyops.TagDRBDPeer: file, FixtureTagDRBDRole: "secondary", FixtureTagDRBDDisk: "UpToDate"})
		f.sim.Advance(volumeCreateTime)
		f.attach(t, pv, file, dev)
		f.attach(t, sv, backup, dev)
	}
	f.sim.Advance(attachTime)
	steps := []struct {
		inst     string
		script   string
		wantCode int32
		wantText string
	}{
		{file, "mdadm --assemble /dev/md0 --scan && cat /proc/mdstat", 0, "md0 : active raid0 drbd0[0] drbd1[1]"},
		{file, "mkfs.ext4 -q /dev/md0 && mount /dev/md0 /srv/home && exportfs -o rw,sync '10.0.0.0/16:/srv/home'", 0, ""},
		{backup, "mdadm --assemble /dev/md0 --scan", 1, "Wrong medium type"},
		{file, "drbdadm secondary live-r0", 11, "held open"},
		{file, "exportfs -u '10.0.0.0/16:/srv/home' && umount /srv/home && mdadm --stop /dev/md0 && drbdadm secondary all", 0, ""},
		{backup, "set -e\ndrbdadm primary all\nmdadm --assemble /dev/md0 --scan\nfsck -n /dev/md0\nmount /dev/md0 /srv/home", 0, "clean"},
	}
	for _, st := range steps {
		out, stderr, code, _ := f.shell(t, st.inst, st.script)
		if code != st.wantCode || !strings.Contains(out+stderr, st.wantText) {
			t.Fatalf("%s: exit %d\n%s%s\nwant exit %d containing %q", st.script, code, out, stderr, st.wantCode, st.wantText)
		}
	}
}

// TestDRBDFailoverAfterHardwareFailure: when the primary's host dies the backup keeps
// UpToDate data and can be promoted without --force; the old primary, back on new hardware,
// comes up Secondary and resyncs what was written meanwhile.
func TestDRBDFailoverAfterHardwareFailure(t *testing.T) {
	f := newFixture(t, Config{Speed: frozen})
	file := f.run(t, "us-east-1a", nil)
	backup := f.run(t, "us-east-1a", nil)
	f.sim.Advance(bootTime)
	pv := f.createVolume(t, "us-east-1a", 100, map[string]string{anyops.TagDRBDResource: "home0", anyops.TagDRBDPeer: backup, FixtureTagDRBDRole: "primary", FixtureTagDRBDDisk: "UpToDate"})
	sv := f.createVolume(t, "us-east-1a", 100, map[string]string{anyops.TagDRBDResource: "home0", anyops.TagDRBDPeer: file, FixtureTagDRBDRole: "secondary", FixtureTagDRBDDisk: "UpToDate"})
	f.sim.Advance(volumeCreateTime)
	f.attach(t, pv, file, "/dev/sdf")
	f.attach(t, sv, backup, "/dev/sdf")
	f.sim.Advance(attachTime)

	f.injectFault(t, map[string]any{"type": "hardware-failure", "instance_id": file})
	f.sim.Advance(time.Minute)
	out, stderr, code, _ := f.shell(t, backup, "drbdadm status home0", "drbdadm primary home0", "drbdadm status home0")
	if code != 0 || !strings.Contains(out, "home0 role:Secondary\n  disk:UpToDate\n") || !strings.Contains(out, "home0 role:Primary\n  disk:UpToDate\n") {
		t.Fatalf("promote the backup after the primary died: exit %d\n%s%s", code, out, stderr)
	}
	// Writes go on for 10 minutes at 5 MB/s; then the old primary is force-stopped and started.
	f.sim.Advance(10 * time.Minute)
	f.ec2.StopInstances(f.ctx, &ec2.StopInstancesInput{InstanceIds: []string{file}, Force: aws.Bool(true)})
	f.sim.Advance(forcedHungStop)
	f.ec2.StartInstances(f.ctx, &ec2.StartInstancesInput{InstanceIds: []string{file}})
	f.sim.Advance(bootTime)
	out, _, _, _ = f.shell(t, file, "drbdadm status home0")
	if !strings.HasPrefix(out, "home0 role:Secondary\n  disk:Inconsistent\n") || !strings.Contains(out, "replication:SyncTarget peer-disk:UpToDate done:0.00") {
		t.Fatalf("old primary back on new hardware:\n%s\nwant Secondary resyncing what it missed", out)
	}
	f.sim.Advance(2 * time.Minute) // 21 min × 5 MB/s = 6300 MB at 100 MB/s: 63 s
	out, _, _, _ = f.shell(t, file, "drbdadm status home0")
	if !strings.Contains(out, "disk:UpToDate") || !strings.Contains(out, "replication:Established") {
		t.Fatalf("after the resync:\n%s", out)
	}
}

// TestListCommands proves ListCommands as the SDK calls it: newest first by instance, with
// each command's comment and status, and the InvokedAfter and Status filters.
func TestListCommands(t *testing.T) {
	f := newFixture(t, Config{Speed: frozen})
	a := f.run(t, "us-east-1a", map[string]string{"anyops:role": "web"})
	b := f.run(t, "us-east-1a", map[string]string{"anyops:role": "web"})
	f.sim.Advance(bootTime)
	first := sendShell(a, "true")
	first.Comment = aws.String("first")
	if _, err := f.ssm.SendCommand(f.ctx, first); err != nil {
		t.Fatal(err)
	}
	f.sim.Advance(time.Minute)
	mid := f.sim.Now()
	second := sendShell(a, "sleep 30")
	second.Comment = aws.String("second [k=1]")
	if _, err := f.ssm.SendCommand(f.ctx, second); err != nil {
		t.Fatal(err)
	}
	if _, err := f.ssm.SendCommand(f.ctx, sendShell(b, "true")); err != nil {
		t.Fatal(err)
	}
	out, err := f.ssm.ListCommands(f.ctx, &ssm.ListCommandsInput{InstanceId: aws.String(a)})
	if err != nil || len(out.Commands) != 2 || aws.ToString(out.Commands[0].Comment) != "second [k=1]" || out.Commands[0].Status != "InProgress" {
		t.Fatalf("ListCommands by instance: %+v, %v", out, err)
	}
	out, err = f.ssm.ListCommands(f.ctx, &ssm.ListCommandsInput{InstanceId: aws.String(a),
		Filters: []ssmtypes.CommandFilter{{Key: ssmtypes.CommandFilterKeyInvokedAfter, Value: aws.String(mid.Add(-time.Second).Format(time.RFC3339))}}})
	if err != nil || len(out.Commands) != 1 || aws.ToString(out.Commands[0].Comment) != "second [k=1]" {
		t.Fatalf("InvokedAfter: %+v, %v", out, err)
	}
	out, err = f.ssm.ListCommands(f.ctx, &ssm.ListCommandsInput{InstanceId: aws.String(a),
		Filters: []ssmtypes.CommandFilter{{Key: ssmtypes.CommandFilterKeyStatus, Value: aws.String("Success")}}})
	if err != nil || len(out.Commands) != 1 || aws.ToString(out.Commands[0].Comment) != "first" {
		t.Fatalf("Status: %+v, %v", out, err)
	}
}
