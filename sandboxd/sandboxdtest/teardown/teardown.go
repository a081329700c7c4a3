// Package teardown removes what a sandboxd run for a test or a benchmark leaves on the host:
// its cgroup parent, its network table and links, and its state dir, never deleting through a
// mount should one be left below it. It imports no testing, so benchmarks use it as well as
// tests.
package teardown

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/anyops/anyops/internal/mountinfo"
	"github.com/anyops/anyops/sandboxd/network"
)

// cgroupRoot is where every cgroup hierarchy of the host is mounted (v2 at the root, v1 one
// directory per controller).
const cgroupRoot = "/sys/fs/cgroup"

// RemoveCgroupParent removes the (by then empty) cgroup parent of a sandboxd in every
// hierarchy: a test's sandboxd has a parent of its own, because sandboxd kills whatever it
// finds under its parent at start and must not take another daemon's sandboxes.
func RemoveCgroupParent(parent string) {
	if parent == "" || strings.Contains(parent, "..") {
		return // never rmdir the root or above it
	}
	dirs, _ := filepath.Glob(cgroupRoot + "/*/" + parent)
	for _, d := range append(dirs, cgroupRoot+"/"+parent) {
		_ = syscall.Rmdir(d)
	}
}

// RemoveNetwork removes the nftables table and links of the sandboxd whose cgroup parent is
// parent (its network is named after it: network.InstanceName).
func RemoveNetwork(parent string) error {
	if parent == "" {
		return nil
	}
	_, err := network.RemoveLeftovers(network.InstanceName(parent))
	return err
}

// RemoveStateDir undoes the mounts below dir, innermost first, and only then removes dir:
// never delete through a mount. It leaves dir in place, and says so, when something stays
// mounted after a few rounds.
func RemoveStateDir(dir string) error {
	for range 3 {
		mounts := mountinfo.Under(dir)
		if len(mounts) == 0 {
			return os.RemoveAll(dir)
		}
		for i := len(mounts) - 1; i >= 0; i-- {
			_ = unix.Unmount(mounts[i], unix.MNT_DETACH)
		}
	}
	if mounts := mountinfo.Under(dir); len(mounts) > 0 {
		return fmt.Errorf("left %s in place: still mounted: %v", dir, mounts)
	}
	return os.RemoveAll(dir)
}
