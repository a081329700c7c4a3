package cloudsim

import (
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/ec2"
)

// TestHostFiles proves the file table scripts configure hosts with: files under /etc are
// written by redirection from printf, read with cat and cmp, renamed into place with mv,
// removed with rm, listed with ls; anything outside /etc or beyond what the table holds is
// refused with a message; and the files survive a reboot, as files on the root disk do.
func TestHostFiles(t *testing.T) {
	f := newFixture(t, Config{Speed: frozen})
	id := f.run(t, "us-east-1a", nil)
	f.sim.Advance(bootTime)
	res := []string{"printf '%s\\n' 'resource r0 {' '  device /dev/drbd0;' '}' > /etc/drbd.d/r0.res.new"}
	steps := []struct {
		name     string
		script   []string
		wantCode int32
		wantOut  string
		wantErr  string
	}{
		{"the image's drbd.conf includes drbd.d", []string{"cat /etc/drbd.conf"}, 0, `include "drbd.d/*.res";`, ""},
		{"printf writes a file, one line per argument", append(res, "cat /etc/drbd.d/r0.res.new"), 0, "resource r0 {\n  device /dev/drbd0;\n}\n", ""},
		{"cmp against a missing file", []string{"printf '%s\\n' 'resource r0 {' | cmp -s - /etc/drbd.d/r0.res"}, 2, "", ""},
		{"mv puts it in place", []string{"mv /etc/drbd.d/r0.res.new /etc/drbd.d/r0.res", "ls /etc/drbd.d"}, 0, "global_common.conf\nr0.res\n", ""},
		{"cmp of the same content is silent and succeeds", []string{"printf '%s\\n' 'resource r0 {' '  device /dev/drbd0;' '}' | cmp -s - /etc/drbd.d/r0.res && echo same"}, 0, "same", ""},
		{"cmp tells where content differs", []string{"printf '%s\\n' 'resource r0 {' '  device /dev/drbd1;' '}' | cmp - /etc/drbd.d/r0.res"}, 1, "- /etc/drbd.d/r0.res differ: byte 33, line 2", ""},
		{"ls -l shows sizes", []string{"ls -l /etc/drbd.d/"}, 0, "-rw-r--r-- 1 root root 37 Jul 15 09:00 r0.res\n", ""},
		{">> appends, < reads", []string{"echo one >> /etc/motd", "echo two >> /etc/motd", "cat < /etc/motd"}, 0, "one\ntwo\n", ""},
		{"> truncates", []string{"echo three > /etc/motd", "cat /etc/motd"}, 0, "three\n", ""},
		{"rm removes, rm -f of nothing succeeds", []string{"rm /etc/motd", "rm -f /etc/motd", "cat /etc/motd"}, 1, "", "No such file or directory"},
		{"a missing directory fails the redirection, the command does not run", []string{"echo x > /etc/nosuch/file && echo ran"}, 1, "", "No such file or directory"},
		{"mkdir -p makes the directory", []string{"mkdir -p /etc/nosuch/deeper", "echo x > /etc/nosuch/deeper/file", "cat /etc/nosuch/deeper/file"}, 0, "x\n", ""},
		{"mkdir of an existing directory without -p", []string{"mkdir /etc/drbd.d"}, 1, "", "File exists"},
		{"the hostname file", []string{"cat /etc/hostname"}, 0, "ip-10-0-", ""},
		{"writing outside /etc is refused", []string{"printf x > /root/x"}, 2, "", "simulated only under /etc"},
		{"generated files are not written", []string{"echo x > /etc/exports"}, 2, "", "not simulated"},
		{"cat of a directory", []string{"cat /etc/drbd.d"}, 1, "", "Is a directory"},
		{"ls of an unsimulated directory", []string{"ls /proc"}, 2, "", "not simulated"},
		{"printf %d and %%", []string{"printf '%d%%\\n' 42"}, 0, "42%\n", ""},
		{"printf refuses what it does not simulate", []string{"printf '%5s' x"}, 1, "", "only %s, %d and %% are simulated"},
	}
	for _, st := range steps {
		out, stderr, code, _ := f.shell(t, id, st.script...)
		if code != st.wantCode || !strings.Contains(out, st.wantOut) || !strings.Contains(stderr, st.wantErr) {
			t.Fatalf("%s: exit %d\nstdout %q\nstderr %q\nwant exit %d, stdout ∋ %q, stderr ∋ %q", st.name, code, out, stderr, st.wantCode, st.wantOut, st.wantErr)
		}
	}

	f.ec2.StopInstances(f.ctx, &ec2.StopInstancesInput{InstanceIds: []string{id}})
	f.sim.Advance(stopTime)
	f.ec2.StartInstances(f.ctx, &ec2.StartInstancesInput{InstanceIds: []string{id}})
	f.sim.Advance(bootTime)
	if out, stderr, code, _ := f.shell(t, id, "cat /etc/drbd.d/r0.res"); code != 0 || !strings.Contains(out, "device /dev/drbd0;") {
		t.Fatalf("after a reboot: exit %d %s%s, want the file still there", code, out, stderr)
	}
}
