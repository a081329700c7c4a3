// Package homestest gives tests a storage root whose homes get real quotas.
package homestest

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/anyops/anyops/internal/testenv"
	"github.com/anyops/anyops/sandboxd/homes"
)

// BtrfsRoot mounts a fresh btrfs file system (a loop-mounted image, see homes.MountImage) for
// the test and returns its mount point. It needs root and mkfs.btrfs (Debian: btrfs-progs);
// the file system is unmounted and its image removed when the test ends.
func BtrfsRoot(t testing.TB) string {
	t.Helper()
	testenv.RequireRoot(t)
	if _, err := exec.LookPath("mkfs.btrfs"); err != nil {
		testenv.Missing(t, "mkfs.btrfs (apt-get install btrfs-progs)")
	}
	dir, err := os.MkdirTemp("", "anyops-homes-")
	if err != nil {
		t.Fatal(err)
	}
	root := filepath.Join(dir, "homes")
	unmount, err := homes.MountImage(filepath.Join(dir, "homes.img"), root, homes.MinImageBytes)
	if err != nil {
		_ = os.RemoveAll(dir)
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := unmount(); err != nil {
			t.Log(err)
			return // never remove through a mount
		}
		_ = os.RemoveAll(dir)
	})
	return root
}
