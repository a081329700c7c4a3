package homes

import (
	"fmt"
	"os"
	"path/filepath"
	"unsafe"

	"golang.org/x/sys/unix"
)

// The btrfs ioctls homes need (linux/btrfs.h). x/sys/unix has no wrappers for them; the
// argument structs are fixed-size and simple.
const (
	btrfsSubvolumeIno  = 256        // BTRFS_FIRST_FREE_OBJECTID: the root inode of every subvolume
	iocSubvolCreate    = 0x5000940e // _IOW(0x94, 14, struct btrfs_ioctl_vol_args)
	iocSnapDestroy     = 0x5000940f // _IOW(0x94, 15, struct btrfs_ioctl_vol_args)
	iocQuotaCtl        = 0xc0109428 // _IOWR(0x94, 40, struct btrfs_ioctl_quota_ctl_args)
	iocQgroupLimit     = 0x8030942b // _IOR(0x94, 43, struct btrfs_ioctl_qgroup_limit_args)
	quotaCtlEnable     = 1          // BTRFS_QUOTA_CTL_ENABLE
	qgroupLimitMaxRfer = 1 << 0     // BTRFS_QGROUP_LIMIT_MAX_RFER
)

type volArgs struct {
	fd   int64
	name [4088]byte // BTRFS_PATH_NAME_MAX + 1
}

type quotaCtlArgs struct {
	cmd, status uint64
}

type qgroupLimitArgs struct {
	qgroupid                                  uint64
	flags, maxRfer, maxExcl, rsvRfer, rsvExcl uint64
}

// IsBtrfs reports whether path is on a btrfs file system.
func IsBtrfs(path string) bool {
	var st unix.Statfs_t
	return unix.Statfs(path, &st) == nil && st.Type == unix.BTRFS_SUPER_MAGIC
}

func ioctl(fd *os.File, req uintptr, arg unsafe.Pointer) error {
	if _, _, e := unix.Syscall(unix.SYS_IOCTL, fd.Fd(), req, uintptr(arg)); e != 0 {
		return e
	}
	return nil
}

func openDir(path string) (*os.File, error) {
	return os.OpenFile(path, os.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW, 0)
}

// onParent runs an ioctl taking a name on the parent directory of path.
func onParent(path string, req uintptr) error {
	parent, err := openDir(filepath.Dir(path))
	if err != nil {
		return err
	}
	defer parent.Close()
	var a volArgs
	name := filepath.Base(path)
	if len(name) >= len(a.name) {
		return fmt.Errorf("name %q too long", name)
	}
	copy(a.name[:], name)
	return ioctl(parent, req, unsafe.Pointer(&a))
}

func createSubvolume(path string) error { return onParent(path, iocSubvolCreate) }

func destroySubvolume(path string) error { return onParent(path, iocSnapDestroy) }

// enableQuota switches quota groups on for the file system of root; on one that has them
// already it does nothing.
func enableQuota(root string) error {
	f, err := openDir(root)
	if err != nil {
		return err
	}
	defer f.Close()
	a := quotaCtlArgs{cmd: quotaCtlEnable}
	return ioctl(f, iocQuotaCtl, unsafe.Pointer(&a))
}

// limitSubvolume limits the bytes the subvolume at path references to max (0: no limit).
func limitSubvolume(path string, max int64) error {
	f, err := openDir(path)
	if err != nil {
		return err
	}
	defer f.Close()
	// qgroupid 0 is the subvolume's own quota group, 0/<its id>.
	a := qgroupLimitArgs{flags: qgroupLimitMaxRfer, maxRfer: uint64(max)}
	if max <= 0 {
		a.maxRfer = ^uint64(0) // the kernel's "no limit"
	}
	return ioctl(f, iocQgroupLimit, unsafe.Pointer(&a))
}
