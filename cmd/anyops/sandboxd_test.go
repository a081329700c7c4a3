package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"syscall"
	"testing"
	"time"

	"github.com/anyops/anyops"
	"github.com/anyops/anyops/internal/mountinfo"
	"github.com/anyops/anyops/internal/testenv"
	"github.com/anyops/anyops/sandboxd/client"
	"github.com/anyops/anyops/sandboxd/images/imagestest"
	"github.com/anyops/anyops/sandboxd/sandboxdtest/teardown"
	"github.com/anyops/anyops/sandboxd/token"
	"github.com/anyops/anyops/sandboxd/wire"
)

// TestSandboxdStopLeavesTheMountTableAsItWas runs the real `anyops sandboxd` binary, starts
// sandboxes on it (one attached over the WebSocket), stops it with SIGTERM, and again with
// SIGINT, and proves that the mount table of the namespace it ran in is, mount for mount (ids
// included, so nothing was unmounted and mounted again), what it was before the daemon
// started, and that it stayed so while the sandboxes ran; a SIGTERM or SIGINT stop also ends
// every sandbox and removes the cgroups. Even SIGKILL, which runs no clean-up, leaves the
// mount table as it was: the daemon never mounts anything outside its sandboxes. (An earlier
// sandboxd bind-mounted the host's /usr into its image store, and an image's /usr mount was
// found on a host after a shutdown.)
//
// The daemon's "host" namespace is a copy of the real host's made for the test (unshare
// --mount --propagation private, held by a sleeping process, entered with nsenter): the
// daemon sees it as its host namespace and everything it mounts outside its sandboxes lands
// in it, while mounts that other tests on this machine make meanwhile do not. (A mount whose
// mount point another test deletes on the host goes from every namespace: such removals are
// not the daemon's.)
func TestSandboxdStopLeavesTheMountTableAsItWas(t *testing.T) {
	testenv.RequireRoot(t)
	for _, tool := range []string{"unshare", "nsenter"} {
		if _, err := exec.LookPath(tool); err != nil {
			testenv.Missing(t, "%s (util-linux)", tool)
		}
	}
	bin := anyopsBinary(t)
	store, _ := imagestest.Console(t)
	for _, tt := range []struct {
		name  string
		sig   syscall.Signal
		clean bool // the daemon gets to clean up
	}{{"SIGTERM", syscall.SIGTERM, true}, {"SIGINT", syscall.SIGINT, true}, {"SIGKILL", syscall.SIGKILL, false}} {
		t.Run(tt.name, func(t *testing.T) {
			holder := mountNamespace(t)
			before, err := mountinfo.ReadProcess(holder)
			if err != nil {
				t.Fatal(err)
			}
			dir := t.TempDir()
			priv, err := token.EnsureKeyPair(filepath.Join(dir, "sandboxd.key"))
			if err != nil {
				t.Fatal(err)
			}
			addr := fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
			b := make([]byte, 4)
			_, _ = rand.Read(b)
			parent := "anyops-stop-test-" + hex.EncodeToString(b)
			var out bytes.Buffer
			cmd := exec.Command("nsenter", fmt.Sprintf("--mount=/proc/%d/ns/mnt", holder), "--",
				bin, "sandboxd", "--addr", addr, "--public-key", filepath.Join(dir, "sandboxd.key.pub"),
				"--state-dir", filepath.Join(dir, "state"), "--storage-root", filepath.Join(dir, "homes"), "--home-quota", "none",
				"--image-store", store.Dir(), "--cgroup-parent", parent, "--slots", "3", "--log-level", "warn")
			cmd.Stdout, cmd.Stderr = &out, &out
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			exited := make(chan error, 1)
			go func() { exited <- cmd.Wait() }()
			t.Cleanup(func() {
				if cmd.ProcessState == nil {
					_ = cmd.Process.Kill()
					<-exited
				}
				if t.Failed() {
					t.Logf("sandboxd output:\n%s", out.String())
				}
			})
			testenv.WaitServing(t, "http://"+addr+"/healthz", exited, 30*time.Second)

			c, err := client.New("http://"+addr, token.NewSigner(priv))
			if err != nil {
				t.Fatal(err)
			}
			ctx := context.Background()
			var pids []int
			for i := range 2 {
				sb, err := c.Create(ctx, wire.CreateRequest{User: fmt.Sprintf("stop%d", i), UID: anyops.FirstSandboxID + 30001 + i, Plan: anyops.PlanFree})
				if err != nil {
					t.Fatalf("create: %v", err)
				}
				pids = append(pids, sb.Pid)
			}
			sbs, err := c.List(ctx)
			if err != nil || len(sbs) != 2 {
				t.Fatalf("list = %v, %v", sbs, err)
			}
			// An attached client must not hold the stop up.
			if conn, err := c.Dial(ctx, sbs[0].ID); err != nil {
				t.Fatalf("attach: %v", err)
			} else {
				defer conn.CloseNow()
			}
			running, err := mountinfo.ReadProcess(holder)
			if err != nil {
				t.Fatal(err)
			}
			if plus, minus := changed(before, running); len(plus)+len(minus) != 0 {
				t.Errorf("while sandboxes run, the mount table differs: added %v, removed %v", plus, minus)
			}

			if err := cmd.Process.Signal(tt.sig); err != nil {
				t.Fatal(err)
			}
			select {
			case err := <-exited:
				if tt.clean && err != nil {
					t.Fatalf("sandboxd after %s: %v", tt.name, err)
				}
			case <-time.After(30 * time.Second):
				t.Fatalf("sandboxd did not stop within 30s of %s", tt.name)
			}
			if !tt.clean { // the sandboxes go by their parent-death signal, the cgroups and the network table stay
				t.Cleanup(func() {
					teardown.RemoveCgroupParent(parent)
					if err := teardown.RemoveNetwork(parent); err != nil {
						t.Error(err)
					}
				})
				waitGone(t, pids)
			}
			after, err := mountinfo.ReadProcess(holder)
			if err != nil {
				t.Fatal(err)
			}
			if plus, minus := changed(before, after); len(plus)+len(minus) != 0 {
				t.Errorf("after %s the mount table differs: added %v, removed %v", tt.name, plus, minus)
			}
			for _, pid := range pids {
				if _, err := os.Stat(fmt.Sprintf("/proc/%d", pid)); err == nil {
					t.Errorf("sandbox init %d survives %s", pid, tt.name)
				}
			}
			if left, _ := filepath.Glob("/sys/fs/cgroup/*/" + parent); tt.clean && len(left) != 0 {
				t.Errorf("cgroup parent left after %s: %v", tt.name, left)
			}
		})
	}
}

// mountNamespace starts a process holding a new mount namespace, a private copy of this
// one, for the test, and returns its pid.
func mountNamespace(t *testing.T) int {
	t.Helper()
	holder := exec.Command("unshare", "--mount", "--propagation", "private", "sleep", "infinity")
	holder.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := holder.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = holder.Process.Kill(); _ = holder.Wait() })
	self, _ := os.Readlink("/proc/self/ns/mnt")
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		ns, err := os.Readlink(fmt.Sprintf("/proc/%d/ns/mnt", holder.Process.Pid))
		if err == nil && ns != self {
			if exe, _ := os.Readlink(fmt.Sprintf("/proc/%d/exe", holder.Process.Pid)); filepath.Base(exe) == "sleep" {
				return holder.Process.Pid // unshare has made the namespace and exec'd sleep
			}
		}
		if time.Now().After(deadline) {
			t.Fatal("unshare made no mount namespace")
		}
	}
}

// waitGone waits a few seconds for the processes to exit.
func waitGone(t *testing.T, pids []int) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		alive := 0
		for _, pid := range pids {
			if _, err := os.Stat(fmt.Sprintf("/proc/%d", pid)); err == nil {
				alive++
			}
		}
		if alive == 0 {
			return
		}
	}
}

// changed lists the mounts of after that before does not have, and those of before that
// after lacks although their mount point is still there.
func changed(before, after []mountinfo.Mount) (added, removed []mountinfo.Mount) {
	for _, m := range after {
		if !slices.Contains(before, m) {
			added = append(added, m)
		}
	}
	for _, m := range before {
		if _, err := os.Lstat(m.Point); err == nil && !slices.Contains(after, m) {
			removed = append(removed, m)
		}
	}
	return added, removed
}
