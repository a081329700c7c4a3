package jail

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/anyops/anyops"
	"github.com/anyops/anyops/internal/testenv"
	"github.com/anyops/anyops/sandboxd/images"
	"github.com/anyops/anyops/sandboxd/images/imagestest"
	"github.com/anyops/anyops/sandboxd/network"
	"github.com/anyops/anyops/sandboxd/network/networktest"
)

// The test binary is the sandboxes' init: Manager.Start re-executes it.
func TestMain(m *testing.M) {
	MaybeInit()
	testenv.Main(m)
}

// fixture is a Manager on a private cgroup parent (and so network name) with the console
// image, for one test.
type fixture struct {
	m     *Manager
	image images.Image
	dir   string
}

const testUID, testGID = 54321, 54321

func newFixture(t testing.TB) *fixture {
	t.Helper()
	return newNetworkFixture(t, network.Config{})
}

// newNetworkFixture is newFixture with the sandboxes' network configured by netCfg; a zero
// pool is a free /24 of its own (networktest.Pool).
func newNetworkFixture(t testing.TB, netCfg network.Config) *fixture {
	t.Helper()
	testenv.RequireRoot(t)
	dir := t.TempDir()
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	_, img := imagestest.Console(t)
	if !netCfg.Pool.IsValid() {
		netCfg.Pool = networktest.Pool(t)
	}
	m, err := NewManager(Config{StateDir: filepath.Join(dir, "state"), CgroupParent: "anyops-test-" + randomID(), Network: netCfg})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if n, err := m.CleanupStale(); n != 0 || err != nil {
			t.Errorf("sandboxes left behind by the test: %d (%v)", n, err)
		}
		if err := m.RemoveCgroupParent(); err != nil {
			t.Error(err)
		}
		if err := m.Close(); err != nil {
			t.Error(err)
		}
	})
	return &fixture{m: m, image: img, dir: dir}
}

func randomID() string {
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// home makes a home directory owned by uid.
func (f *fixture) home(t testing.TB, user string, uid int) string {
	t.Helper()
	p := filepath.Join(f.dir, "homes", user)
	if err := os.MkdirAll(p, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(p, uid, uid); err != nil {
		t.Fatal(err)
	}
	return p
}

// spec is a sandbox of user "alice" running script with sh, with the free plan's limits.
func (f *fixture) spec(t testing.TB, script string) Spec {
	return Spec{
		ID:        "t-" + randomID(),
		User:      "alice",
		UID:       testUID,
		GID:       testGID,
		ImageRoot: f.image.Root,
		Home:      f.home(t, "alice", testUID),
		Command:   []string{"/bin/sh", "-c", script},
		Limits:    anyops.PlanLimits(anyops.PlanFree),
		Network:   anyops.NetworkNone,
	}
}

// result is what a sandbox printed on its terminal and its exit code.
type result struct {
	out  string
	code int
}

// run starts spec, collects its terminal output until it exits (or timeout), destroys it.
func (f *fixture) run(t *testing.T, spec Spec, timeout time.Duration) result {
	t.Helper()
	sb, err := f.m.Start(context.Background(), spec)
	if err != nil {
		t.Fatalf("start sandbox: %v", err)
	}
	out := collect(sb.PTY())
	timer := time.AfterFunc(timeout, func() {
		t.Errorf("sandbox %s still running after %v; killing it", spec.ID, timeout)
		_ = sb.Destroy()
	})
	code, err := sb.Wait()
	timer.Stop()
	if err != nil {
		t.Fatalf("wait: %v", err)
	}
	text := out.String() // drained to the hangup before Destroy closes the PTY
	if err := sb.Destroy(); err != nil {
		t.Fatalf("destroy: %v", err)
	}
	return result{out: text, code: code}
}

// output gathers what a PTY master reads until the terminal hangs up.
type output struct {
	mu   sync.Mutex
	buf  bytes.Buffer
	done chan struct{}
}

func collect(master *os.File) *output {
	o := &output{done: make(chan struct{})}
	go func() {
		defer close(o.done)
		b := make([]byte, 4096)
		for {
			n, err := master.Read(b)
			o.mu.Lock()
			o.buf.Write(b[:n])
			o.mu.Unlock()
			if err != nil {
				return
			}
		}
	}()
	return o
}

// String waits briefly for the reader to drain, then returns the output with CRLF as LF.
func (o *output) String() string {
	select {
	case <-o.done:
	case <-time.After(2 * time.Second):
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	return strings.ReplaceAll(o.buf.String(), "\r\n", "\n")
}

// waitFor reads until the output (CRLF as LF) contains want or timeout passes.
func (o *output) waitFor(want string, timeout time.Duration) bool {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		o.mu.Lock()
		ok := strings.Contains(strings.ReplaceAll(o.buf.String(), "\r\n", "\n"), want)
		o.mu.Unlock()
		if ok {
			return true
		}
		time.Sleep(5 * time.Millisecond)
	}
	return false
}

// cgroupFile reads a cgroup interface file of sandbox id: controller names the v1 hierarchy
// (ignored on v2).
func (f *fixture) cgroupFile(t *testing.T, id, controller, file string) string {
	t.Helper()
	parent := f.m.cgroups.parents[controller]
	if f.m.cgroups.v2 {
		parent = f.m.cgroups.parents[""]
	}
	b, err := os.ReadFile(filepath.Join(parent, id, file))
	if err != nil {
		t.Fatalf("read cgroup file: %v", err)
	}
	return strings.TrimSpace(string(b))
}
