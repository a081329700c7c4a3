package teardown

import (
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/anyops/anyops/internal/mountinfo"
	"github.com/anyops/anyops/internal/testenv"
)

// TestRemoveStateDirUnmountsBeforeDeleting proves RemoveStateDir never deletes through a
// mount: with a directory bind-mounted (writable, so a delete through it would succeed) and
// another mount nested inside it, it undoes both, innermost first, and the mounted
// directories' own files survive while the state dir is gone.
func TestRemoveStateDirUnmountsBeforeDeleting(t *testing.T) {
	testenv.RequireRoot(t)
	outer, inner := t.TempDir(), t.TempDir()
	for _, d := range []string{outer, inner} {
		if err := os.WriteFile(filepath.Join(d, "keep"), []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Mkdir(filepath.Join(outer, "nested"), 0o755); err != nil {
		t.Fatal(err)
	}
	state, err := os.MkdirTemp("", "teardown-test-")
	if err != nil {
		t.Fatal(err)
	}
	target := filepath.Join(state, "image")
	if err := os.Mkdir(target, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mount(outer, target, "", unix.MS_BIND, ""); err != nil {
		t.Fatalf("bind mount: %v", err)
	}
	if err := unix.Mount(inner, filepath.Join(target, "nested"), "", unix.MS_BIND, ""); err != nil {
		t.Fatalf("nested bind mount: %v", err)
	}
	t.Cleanup(func() { // only if the code under test failed to
		_ = unix.Unmount(filepath.Join(target, "nested"), unix.MNT_DETACH)
		_ = unix.Unmount(target, unix.MNT_DETACH)
	})
	if got, want := mountinfo.Under(state), []string{target, filepath.Join(target, "nested")}; !slices.Equal(got, want) {
		t.Fatalf("MountsUnder = %v, want %v", got, want)
	}
	if got := mountinfo.Under(target + "x"); len(got) != 0 {
		t.Fatalf("MountsUnder of a sibling name = %v, want none (prefix is a path, not a string)", got)
	}

	if err := RemoveStateDir(state); err != nil {
		t.Fatalf("RemoveStateDir: %v", err)
	}
	if _, err := os.Stat(state); !os.IsNotExist(err) {
		t.Errorf("state dir: %v, want removed", err)
	}
	if m := mountinfo.Under(state); len(m) != 0 {
		t.Errorf("mounts left: %v", m)
	}
	for _, d := range []string{outer, inner} {
		if _, err := os.Stat(filepath.Join(d, "keep")); err != nil {
			t.Errorf("a file of a mounted directory was deleted through the mount: %v", err)
		}
	}
	if err := RemoveStateDir(state); err != nil {
		t.Errorf("RemoveStateDir of a dir already gone: %v, want nil", err)
	}
}

// TestRemoveCgroupParentRemovesEveryHierarchy proves the parent goes from every hierarchy it
// was made in: the one cgroup v2 tree, or each v1 controller's tree.
func TestRemoveCgroupParentRemovesEveryHierarchy(t *testing.T) {
	testenv.RequireRoot(t)
	parent := "anyops-teardown-test-" + strconv.Itoa(os.Getpid())
	var made []string
	if isCgroupFS(cgroupRoot) { // v2 (or a hybrid's unified tree mounted at the root)
		made = append(made, filepath.Join(cgroupRoot, parent))
	}
	hierarchies, _ := filepath.Glob(cgroupRoot + "/*")
	for _, h := range hierarchies {
		if isCgroupFS(h) && !isCgroupFS(cgroupRoot) {
			made = append(made, filepath.Join(h, parent))
		}
	}
	if len(made) == 0 {
		testenv.Missing(t, "no cgroup hierarchy under %s", cgroupRoot)
	}
	for _, d := range made {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatalf("make %s: %v", d, err)
		}
		t.Cleanup(func() { _ = unix.Rmdir(d) }) // only if the code under test failed to
	}

	RemoveCgroupParent(parent)
	for _, d := range made {
		if _, err := os.Stat(d); !os.IsNotExist(err) {
			t.Errorf("%s after RemoveCgroupParent: %v, want removed", d, err)
		}
	}
}

// isCgroupFS tells whether dir is the root of a cgroup (v1) or cgroup2 file system.
func isCgroupFS(dir string) bool {
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		return false
	}
	return st.Type == unix.CGROUP_SUPER_MAGIC || st.Type == unix.CGROUP2_SUPER_MAGIC
}
