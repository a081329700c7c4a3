package jail

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/creack/pty"

	"github.com/anyops/anyops"
)

// A bad spec is refused with EINVALID before anything is created.
func TestStartRejectsBadSpecs(t *testing.T) {
	f := newFixture(t)
	cases := []struct {
		name   string
		mutate func(*Spec)
	}{
		{"id with upper case", func(s *Spec) { s.ID = "Bad" }},
		{"id with a slash", func(s *Spec) { s.ID = "a/../b" }},
		{"empty id", func(s *Spec) { s.ID = "" }},
		{"id too long", func(s *Spec) { s.ID = strings.Repeat("a", 65) }},
		{"root uid", func(s *Spec) { s.UID = 0 }},
		{"root gid", func(s *Spec) { s.GID = 0 }},
		{"negative uid", func(s *Spec) { s.UID = -5 }},
		{"user with a colon", func(s *Spec) { s.User = "a:b" }},
		{"user with a slash", func(s *Spec) { s.User = "../etc" }},
		{"relative image root", func(s *Spec) { s.ImageRoot = "images/console" }},
		{"missing image root", func(s *Spec) { s.ImageRoot = "/nonexistent/image" }},
		{"image without /proc", func(s *Spec) { s.ImageRoot = t.TempDir() }},
		{"missing home", func(s *Spec) { s.Home = "/nonexistent/home" }},
		{"bad hostname", func(s *Spec) { s.Hostname = "a b" }},
		{"unknown network", func(s *Spec) { s.Network = "bridge" }},
		{"env without =", func(s *Spec) { s.Env = []string{"JUSTNAME"} }},
		{"empty program", func(s *Spec) { s.Command = []string{""} }},
		{"NUL in an argument", func(s *Spec) { s.Command = []string{"/bin/echo", "a\x00b"} }},
		{"NUL in the environment", func(s *Spec) { s.Env = []string{"A=b\x00c"} }},
		{"negative memory", func(s *Spec) { s.Limits.MemoryBytes = -1 }},
		{"one cpu share", func(s *Spec) { s.Limits.CPUShares = 1 }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			spec := f.spec(t, "true")
			tc.mutate(&spec)
			sb, err := f.m.Start(context.Background(), spec)
			if err == nil {
				_ = sb.Destroy()
				t.Fatal("Start accepted the spec")
			}
			if anyops.ErrorCode(err) != anyops.EINVALID {
				t.Fatalf("error code %q (%v), want EINVALID", anyops.ErrorCode(err), err)
			}
		})
	}
	if n, err := f.m.CleanupStale(); n != 0 || err != nil {
		t.Fatalf("a refused spec left %d cgroups (%v)", n, err)
	}
}

// Wait reports the command's exit status, and 128+signal when a signal ended it.
func TestExitCodeIsForwarded(t *testing.T) {
	f := newFixture(t)
	for _, tc := range []struct {
		script string
		want   int
	}{
		{"exit 0", 0},
		{"exit 3", 3},
		{"exit 255", 255},
		{"kill -TERM $$", 128 + 15},
		{"kill -KILL $$", 128 + 9},
		{"/nonexistent/program", 127},
	} {
		t.Run(tc.script, func(t *testing.T) {
			if r := f.run(t, f.spec(t, tc.script), 20*time.Second); r.code != tc.want {
				t.Fatalf("exit code %d, want %d (output %q)", r.code, tc.want, r.out)
			}
		})
	}
}

// A command that cannot be started is a Start error, and nothing is left behind.
func TestStartFailsForMissingCommand(t *testing.T) {
	f := newFixture(t)
	spec := f.spec(t, "")
	spec.Command = []string{"no-such-program"}
	if sb, err := f.m.Start(context.Background(), spec); err == nil {
		_ = sb.Destroy()
		t.Fatal("Start of a missing program succeeded")
	} else if !strings.Contains(err.Error(), "no-such-program") {
		t.Fatalf("error %q does not name the program", err)
	}
	if n, _ := f.m.CleanupStale(); n != 0 {
		t.Fatalf("failed start left %d cgroups", n)
	}
}

// The command runs as the given user in its home, with login defaults overridable by Env,
// the requested hostname and terminal size, in a session of its own on the PTY.
func TestCommandEnvironment(t *testing.T) {
	f := newFixture(t)
	spec := f.spec(t, `echo "id=$(id -u):$(id -g) user=$(id -un) home=$HOME pwd=$(pwd) host=$(hostname) term=$TERM extra=$EXTRA size=$(stty size)"
exec python3 -c 'import os; print("session-leader", os.getsid(0) == os.getpid(), "foreground", os.tcgetpgrp(0) == os.getpgrp())'`)
	spec.Hostname = "console-7"
	spec.Env = []string{"TERM=vt100", "EXTRA=yes"}
	spec.Rows, spec.Cols = 40, 100
	r := f.run(t, spec, 20*time.Second)
	want := fmt.Sprintf("id=%d:%d user=alice home=/home/alice pwd=/home/alice host=console-7 term=vt100 extra=yes size=40 100", testUID, testGID)
	if !strings.Contains(r.out, want) {
		t.Errorf("output %q lacks %q", r.out, want)
	}
	if !strings.Contains(r.out, "session-leader True foreground True") {
		t.Errorf("command is not a session leader in the foreground of its terminal: %q", r.out)
	}
}

// The daemon drives the shell through the PTY: input in, output out, resize.
func TestInteractiveShellOverPTY(t *testing.T) {
	f := newFixture(t)
	spec := f.spec(t, "")
	spec.Command = nil // the default login shell
	sb, err := f.m.Start(context.Background(), spec)
	if err != nil {
		t.Fatal(err)
	}
	defer sb.Destroy()
	out := collect(sb.PTY())
	if err := pty.Setsize(sb.PTY(), &pty.Winsize{Rows: 33, Cols: 77}); err != nil {
		t.Fatal(err)
	}
	if _, err := sb.PTY().Write([]byte("echo \"sum=$((20+22)) size=$(stty size)\"\n")); err != nil {
		t.Fatal(err)
	}
	if !out.waitFor("sum=42 size=33 77", 10*time.Second) {
		t.Fatalf("no answer from the shell: %q", out.String())
	}
	if _, err := sb.PTY().Write([]byte("exit 7\n")); err != nil {
		t.Fatal(err)
	}
	if code, err := sb.Wait(); err != nil || code != 7 {
		t.Fatalf("Wait = %d, %v; want 7", code, err)
	}
}

// A second sandbox with a running sandbox's ID is an ECONFLICT; Destroy is idempotent and
// makes Wait return 137.
func TestConflictAndIdempotentDestroy(t *testing.T) {
	f := newFixture(t)
	spec := f.spec(t, "sleep 60")
	sb, err := f.m.Start(context.Background(), spec)
	if err != nil {
		t.Fatal(err)
	}
	if other, err := f.m.Start(context.Background(), spec); err == nil {
		_ = other.Destroy()
		t.Fatal("second sandbox with the same id started")
	} else if anyops.ErrorCode(err) != anyops.ECONFLICT {
		t.Fatalf("error %v, want ECONFLICT", err)
	}
	for i := 0; i < 3; i++ {
		if err := sb.Destroy(); err != nil {
			t.Fatalf("Destroy #%d: %v", i+1, err)
		}
	}
	if code, _ := sb.Wait(); code != 137 {
		t.Fatalf("Wait after Destroy = %d, want 137", code)
	}
	// The ID is free again.
	spec.Command = []string{"/bin/true"}
	if r := f.run(t, spec, 20*time.Second); r.code != 0 {
		t.Fatalf("sandbox reusing a destroyed sandbox's id exited %d", r.code)
	}
}

// The plan's limits reach the cgroup: CPU shares 150/300/700/2 as in the original consoles,
// memory and pids.
func TestPlanLimitsReachTheCgroup(t *testing.T) {
	f := newFixture(t)
	for _, plan := range anyops.Plans {
		t.Run(string(plan), func(t *testing.T) {
			spec := f.spec(t, "sleep 60")
			spec.Limits = anyops.PlanLimits(plan)
			sb, err := f.m.Start(context.Background(), spec)
			if err != nil {
				t.Fatal(err)
			}
			defer sb.Destroy()
			l := spec.Limits
			var checks map[[2]string]string
			if f.m.CgroupVersion() == "v2" {
				checks = map[[2]string]string{
					{"", "cpu.weight"}: fmt.Sprint(sharesToWeight(l.CPUShares)),
					{"", "memory.max"}: fmt.Sprint(l.MemoryBytes),
					{"", "pids.max"}:   fmt.Sprint(l.Pids),
				}
			} else {
				checks = map[[2]string]string{
					{"cpu", "cpu.shares"}:               fmt.Sprint(l.CPUShares),
					{"memory", "memory.limit_in_bytes"}: fmt.Sprint(l.MemoryBytes),
					{"pids", "pids.max"}:                fmt.Sprint(l.Pids),
				}
			}
			for k, want := range checks {
				if got := f.cgroupFile(t, spec.ID, k[0], k[1]); got != want {
					t.Errorf("%s = %s, want %s", k[1], got, want)
				}
			}
		})
	}
}

// CleanupStale kills and removes sandboxes a previous daemon left (simulated by a second
// manager on the same cgroup parent, as a restarted daemon would be).
func TestCleanupStaleRemovesOrphans(t *testing.T) {
	f := newFixture(t)
	spec := f.spec(t, "sleep 600")
	sb, err := f.m.Start(context.Background(), spec)
	if err != nil {
		t.Fatal(err)
	}
	restarted, err := NewManager(Config{StateDir: filepath.Join(f.dir, "state"), CgroupParent: f.m.cfg.CgroupParent})
	if err != nil {
		t.Fatal(err)
	}
	n, err := restarted.CleanupStale()
	if err != nil || n != 1 {
		t.Fatalf("CleanupStale = %d, %v; want 1", n, err)
	}
	select {
	case <-sb.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("orphaned sandbox still runs after CleanupStale")
	}
	if _, err := os.Stat(filepath.Join(f.m.cgroups.cgroupFor(spec.ID).dirs[0])); !os.IsNotExist(err) {
		t.Fatalf("cgroup still there: %v", err)
	}
	if err := sb.Destroy(); err != nil {
		t.Fatalf("Destroy after CleanupStale: %v", err)
	}
}

// SIGTERM, SIGHUP and SIGINT sent to the init (the host pid the daemon knows) reach the
// command's process group, so a daemon can ask a sandbox to stop before killing it.
func TestSignalsToInitReachTheCommand(t *testing.T) {
	f := newFixture(t)
	for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGHUP, syscall.SIGINT} {
		t.Run(sig.String(), func(t *testing.T) {
			sb, err := f.m.Start(context.Background(), f.spec(t, "echo ready; exec sleep 60"))
			if err != nil {
				t.Fatal(err)
			}
			defer sb.Destroy()
			if !collect(sb.PTY()).waitFor("ready", 10*time.Second) {
				t.Fatal("command did not start")
			}
			if err := syscall.Kill(sb.Pid(), sig); err != nil {
				t.Fatal(err)
			}
			select {
			case <-sb.Done():
			case <-time.After(10 * time.Second):
				t.Fatalf("%v to the init did not end the command", sig)
			}
			if code, _ := sb.Wait(); code != 128+int(sig) {
				t.Fatalf("exit code %d, want %d", code, 128+int(sig))
			}
		})
	}
}
