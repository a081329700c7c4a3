package jail

import (
	"bufio"
	"context"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/anyops/anyops/internal/testenv"
)

// On cgroup v2 the init is cloned straight into its cgroup (CLONE_INTO_CGROUP), the sandbox
// sees its cgroup as "/", and CleanupStale and Destroy kill through cgroup.kill and remove
// the cgroup. The console hosts give the limit controllers to v1, so this runs on the hybrid
// layout's unified hierarchy, which holds none of them: it proves the v2 mechanics; the
// limits themselves are proven by the suite on whichever version the host gives.
func TestCgroupV2Mechanics(t *testing.T) {
	f := newFixture(t)
	if f.m.CgroupVersion() == "v2" {
		t.Skip("the whole suite already runs on cgroup v2 on this host")
	}
	root := cgroup2MountPoint(t)
	if root == "" {
		testenv.Missing(t, "a cgroup2 mount (the hybrid layout's /sys/fs/cgroup/unified)")
	}
	drv, err := newCgroupV2Driver(root, "anyops-test-v2-"+randomID(), nil)
	if err != nil {
		t.Fatal(err)
	}
	m := &Manager{cfg: f.m.cfg, rootDir: f.m.rootDir, cgroups: drv}
	t.Cleanup(func() {
		if err := m.RemoveCgroupParent(); err != nil {
			t.Error(err)
		}
	})
	spec := f.spec(t, `echo "inside=$(grep '^0::' /proc/self/cgroup)"; sleep 60`)
	sb, err := m.Start(context.Background(), spec)
	if err != nil {
		t.Fatal(err)
	}
	defer sb.Destroy()
	out := collect(sb.PTY())
	dir := filepath.Join(drv.parents[""], spec.ID)
	procs, err := os.ReadFile(filepath.Join(dir, "cgroup.procs"))
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(strings.Fields(string(procs)), strconv.Itoa(sb.Pid())) {
		t.Fatalf("init %d is not in its v2 cgroup %s (procs %q)", sb.Pid(), dir, procs)
	}
	if !out.waitFor("inside=0::/\n", 10*time.Second) {
		t.Fatalf("the sandbox does not see its cgroup as the root: %q", out.String())
	}
	n, err := m.CleanupStale()
	if err != nil || n != 1 {
		t.Fatalf("CleanupStale = %d, %v; want 1", n, err)
	}
	select {
	case <-sb.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("sandbox survived CleanupStale on v2")
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Fatalf("v2 cgroup still there: %v", err)
	}
}

// cgroup2MountPoint returns where a cgroup2 file system is mounted, or "".
func cgroup2MountPoint(t *testing.T) string {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if sep := slices.Index(fields, "-"); sep >= 5 && sep+1 < len(fields) && fields[sep+1] == "cgroup2" {
			return unescapeMountinfo(fields[4])
		}
	}
	return ""
}
