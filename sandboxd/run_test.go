package sandboxd

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/anyops/anyops/internal/mountinfo"
	"github.com/anyops/anyops/internal/testenv"
	"github.com/anyops/anyops/sandboxd/client"
	"github.com/anyops/anyops/sandboxd/homes"
	"github.com/anyops/anyops/sandboxd/images/imagestest"
	"github.com/anyops/anyops/sandboxd/sandboxdtest/teardown"
	"github.com/anyops/anyops/sandboxd/token"
)

// TestRunServesAndShutsDownCleanly proves the daemon as `anyops sandboxd` runs it: it serves
// on its address with the key read from a file, mounts nothing on the host while its
// sandboxes run, and when its context ends it ends every sandbox and removes its cgroups
// before returning.
func TestRunServesAndShutsDownCleanly(t *testing.T) {
	testenv.RequireRoot(t)
	dir, err := os.MkdirTemp("", "sandboxd-run-test-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := teardown.RemoveStateDir(dir); err != nil {
			t.Log(err)
		}
	})
	keyFile := filepath.Join(dir, "sandboxd.key")
	priv, err := token.EnsureKeyPair(keyFile)
	if err != nil {
		t.Fatal(err)
	}
	addr := fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
	parent := "anyops-sandboxd-test-" + randomHex(4)
	images, _ := imagestest.Console(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() {
		done <- Run(ctx, Config{
			Addr: addr, PublicKeyFile: keyFile + ".pub", StorageRoot: filepath.Join(dir, "homes"), HomeQuota: homes.QuotaNone,
			StateDir: filepath.Join(dir, "state"), ImageStore: images.Dir(), CgroupParent: parent, Slots: 2,
			Logger: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})),
		})
	}()
	c, err := client.New("http://"+addr, token.NewSigner(priv))
	if err != nil {
		t.Fatal(err)
	}
	testenv.WaitServing(t, "http://"+addr+"/healthz", done, waitLimit)
	sb, err := c.Create(ctx, shell())
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{dir, images.Dir()} {
		if m := mountinfo.Under(d); len(m) != 0 {
			t.Errorf("host mounts under %s while a sandbox runs: %v", d, m)
		}
	}

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run: %v", err)
		}
	case <-time.After(waitLimit):
		t.Fatal("Run did not return after its context ended")
	}
	if _, err := os.Stat(fmt.Sprintf("/proc/%d", sb.Pid)); err == nil {
		t.Errorf("sandbox init %d survives the daemon's shutdown", sb.Pid)
	}
	if m := mountinfo.Under(dir); len(m) != 0 {
		t.Errorf("mounts left after shutdown: %v", m)
	}
	if cgs := cgroupChildren(parent); len(cgs) != 0 {
		t.Errorf("cgroups left after shutdown: %v", cgs)
	}
	if left, _ := filepath.Glob("/sys/fs/cgroup/*/" + parent); len(left) != 0 {
		t.Errorf("cgroup parent left after shutdown: %v", left)
	}
}
