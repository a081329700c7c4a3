package images_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/anyops/anyops"
	"github.com/anyops/anyops/internal/mountinfo"
	"github.com/anyops/anyops/internal/testenv"
	"github.com/anyops/anyops/sandboxd/images"
	"github.com/anyops/anyops/sandboxd/images/imagestest"
)

// smallRecipe is the quickest image to build: the essential set and GNU hello.
var smallRecipe = imagestest.PinRecipes[0]

// A built image is a Debian root whose manifest lists exactly what dpkg says is installed in
// it (read here with the host's dpkg-query on the image's database), holds the requested
// package, has the mount points and neutral /etc files sandboxes need and no manuals, and is
// not rebuilt: a second build of the same recipe returns it at once, and one with other
// packages under the same name:version is refused.
func TestBuildMakesARootAndItsManifest(t *testing.T) {
	img, _ := imagestest.Pinned(t)
	name := img.Name
	s := imagestest.Store(t)
	m, err := s.Manifest(img)
	if err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("dpkg-query", "--admindir="+filepath.Join(img.Root, "var/lib/dpkg"), "-W",
		"-f", `${db:Status-Abbrev} ${Package} ${Version}\n`).Output()
	if err != nil {
		t.Fatalf("dpkg-query on the image: %v", err)
	}
	dpkg := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		if f := strings.Fields(line); len(f) == 3 && f[0] == "ii" {
			dpkg[f[1]] = f[2]
		}
	}
	if len(dpkg) != len(m.Packages) {
		t.Errorf("manifest lists %d packages, dpkg %d", len(m.Packages), len(dpkg))
	}
	for p, v := range dpkg {
		if m.Packages[p] != v {
			t.Errorf("package %s: manifest %q, dpkg %q", p, m.Packages[p], v)
		}
	}
	for _, p := range []string{"hello", "bash", "dpkg", "libc6"} {
		if m.Packages[p] == "" {
			t.Errorf("image lacks package %s", p)
		}
	}
	if m.Name != name || m.Version != "1" || m.Recipe.Suite != images.DefaultSuite || m.SizeBytes < 10<<20 || m.CreatedAt.IsZero() || !strings.HasPrefix(m.Builder, "mmdebstrap") {
		t.Errorf("manifest = %+v", m)
	}

	for _, d := range []string{"dev", "proc", "tmp", "home", "run", "usr/bin"} {
		if st, err := os.Stat(filepath.Join(img.Root, d)); err != nil || !st.IsDir() {
			t.Errorf("image lacks /%s", d)
		}
	}
	if st, err := os.Stat(filepath.Join(img.Root, "tmp")); err != nil || st.Mode()&os.ModeSticky == 0 || st.Mode().Perm() != 0o777 {
		t.Errorf("/tmp mode %v, want sticky and world-writable", st.Mode())
	}
	if b, _ := os.ReadFile(filepath.Join(img.Root, "etc/hostname")); string(b) != "sandbox\n" {
		t.Errorf("/etc/hostname = %q, want the neutral name, not the build host's", b)
	}
	if b, _ := os.ReadFile(filepath.Join(img.Root, "etc/hosts")); !strings.Contains(string(b), "localhost") {
		t.Errorf("/etc/hosts = %q", b)
	}
	if _, err := os.Stat(filepath.Join(img.Root, "usr/share/man/man1/hello.1.gz")); err == nil {
		t.Error("manuals are in the image")
	}
	if _, err := os.Stat(filepath.Join(img.Root, "usr/share/doc/hello/copyright")); err != nil {
		t.Errorf("copyright files are not in the image: %v", err)
	}
	if st, err := os.Stat(img.Root); err != nil || st.Sys().(*syscall.Stat_t).Uid != 0 {
		t.Errorf("image root not owned by root: %v", err)
	}

	again, built, err := s.Build(context.Background(), name, "1", images.Recipe{Packages: []string{"hello", "hello"}}, nil)
	if err != nil || built || again != img {
		t.Fatalf("second build = %v, built %v, %v; want the same image, not rebuilt", again, built, err)
	}
	if _, _, err := s.Build(context.Background(), name, "1", images.Recipe{Packages: []string{"tree"}}, nil); anyops.ErrorCode(err) != anyops.ECONFLICT {
		t.Fatalf("build of %s:1 with other packages = %v, want ECONFLICT", name, err)
	}
	if got, err := s.Get(name + ":1"); err != nil || got != img {
		t.Fatalf("Get = %v, %v", got, err)
	}
}

// requireBuilder stops a test that must run mmdebstrap itself (not find a cached image).
func requireBuilder(t *testing.T) {
	t.Helper()
	testenv.RequireRoot(t)
	if _, err := exec.LookPath("mmdebstrap"); err != nil {
		testenv.Missing(t, "mmdebstrap (apt-get install mmdebstrap)")
	}
}

// leftovers lists what a build left in a store: version and partial-build directories.
func leftovers(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	entries, _ := filepath.Glob(filepath.Join(dir, "*", "*"))
	hidden, _ := filepath.Glob(filepath.Join(dir, "*", ".*"))
	for _, e := range append(entries, hidden...) {
		out = append(out, strings.TrimPrefix(e, dir+"/"))
	}
	return out
}

// A build that fails (its archive does not answer: port 9 is discard, closed here) leaves no
// image, listed or not, and no partial tree; and the partial tree of a build that died
// earlier is discarded.
func TestFailedBuildLeavesNothing(t *testing.T) {
	requireBuilder(t)
	s, err := images.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	died := filepath.Join(s.Dir(), "broken", ".build-1-died", "root", "etc")
	if err := os.MkdirAll(died, 0o755); err != nil {
		t.Fatal(err)
	}
	unreachable := images.Recipe{Packages: []string{"hello"}, Mirrors: []string{"deb http://127.0.0.1:9/debian bookworm main"}}
	_, built, err := s.Build(context.Background(), "broken", "1", unreachable, nil)
	if err == nil || built {
		t.Fatalf("build from an unreachable archive = built %v, %v; want an error", built, err)
	}
	if !strings.Contains(err.Error(), "apt-get update") {
		t.Errorf("error does not say what failed: %v", err)
	}
	if left := leftovers(t, s.Dir()); len(left) != 0 {
		t.Errorf("failed build left %v", left)
	}
	if got := s.List(); len(got) != 0 {
		t.Errorf("List after a failed build = %v", got)
	}
}

// A build cancelled while mmdebstrap unpacks packages (with /proc and /dev mounted in its
// chroot, in its own mount namespace) stops it with everything it started, and leaves no
// tree, no mount and no process behind.
func TestCancelledBuildLeavesNothing(t *testing.T) {
	requireBuilder(t)
	s, err := images.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	progress := &signalWriter{marker: "I: extracting archives", seen: make(chan struct{})}
	done := make(chan error, 1)
	go func() {
		_, _, err := s.Build(ctx, "cancelled", "1", smallRecipe, progress)
		done <- err
	}()
	select {
	case <-progress.seen:
		time.Sleep(time.Second) // into the extraction
	case err := <-done:
		t.Fatalf("build ended before it could be cancelled: %v", err)
	case <-time.After(2 * time.Minute):
		t.Fatal("mmdebstrap printed nothing for 2 minutes")
	}
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("cancelled build = %v, want context.Canceled", err)
		}
	case <-time.After(time.Minute):
		t.Fatal("cancelled build did not return")
	}
	if left := leftovers(t, s.Dir()); len(left) != 0 {
		t.Errorf("cancelled build left %v", left)
	}
	if m := mountinfo.Under(s.Dir()); len(m) != 0 {
		t.Errorf("cancelled build left mounts %v", m)
	}
	if procs := processesMentioning(s.Dir()); len(procs) != 0 {
		t.Errorf("cancelled build left processes: %v", procs)
	}
}

// signalWriter closes seen once marker has been written to it.
type signalWriter struct {
	mu     sync.Mutex
	buf    bytes.Buffer
	marker string
	seen   chan struct{}
	closed bool
}

func (w *signalWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf.Write(p)
	if !w.closed && strings.Contains(w.buf.String(), w.marker) {
		w.closed = true
		close(w.seen)
	}
	return len(p), nil
}

// processesMentioning lists the command lines that name dir.
func processesMentioning(dir string) []string {
	var out []string
	cmdlines, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	for _, f := range cmdlines {
		if b, err := os.ReadFile(f); err == nil && bytes.Contains(b, []byte(dir)) {
			out = append(out, strings.ReplaceAll(string(b), "\x00", " "))
		}
	}
	return out
}
