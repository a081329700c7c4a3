package homes

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"time"

	"golang.org/x/sys/unix"
)

// MinImageBytes is the smallest image MountImage makes: mkfs.btrfs refuses less than about
// 110 MiB.
const MinImageBytes = 256 << 20

// MountImage mounts a btrfs file system kept in the file image at mountpoint, through a loop
// device: a storage root with quotas for development and tests, on a host whose own disks
// are not btrfs. A missing image is made first: a sparse file of size bytes (at least
// MinImageBytes) formatted with mkfs.btrfs (btrfs-progs; there is no library for it). A
// mountpoint that is a btrfs mount already (a dev stack that did not stop cleanly) is used as
// it is. The returned function unmounts; the loop device goes with the unmount (autoclear).
func MountImage(image, mountpoint string, size int64) (unmount func() error, err error) {
	if err := os.MkdirAll(mountpoint, 0o755); err != nil {
		return nil, err
	}
	if IsBtrfs(mountpoint) && isMountPoint(mountpoint) {
		return func() error { return unmountDir(mountpoint) }, nil
	}
	if entries, err := os.ReadDir(mountpoint); err != nil || len(entries) > 0 {
		return nil, fmt.Errorf("homes: %s is not an empty directory to mount the home file system on (%v)", mountpoint, err)
	}
	if _, err := os.Stat(image); errors.Is(err, os.ErrNotExist) {
		if err := makeImage(image, max(size, MinImageBytes)); err != nil {
			return nil, err
		}
	}
	dev, err := attachLoop(image)
	if err != nil {
		return nil, err
	}
	defer dev.Close() // autoclear: the device is freed once unmounted and closed
	if err := unix.Mount(dev.Name(), mountpoint, "btrfs", unix.MS_NOSUID|unix.MS_NODEV, ""); err != nil {
		return nil, fmt.Errorf("homes: mount %s (%s) on %s: %w", image, dev.Name(), mountpoint, err)
	}
	return func() error { return unmountDir(mountpoint) }, nil
}

func makeImage(image string, size int64) error {
	if err := os.MkdirAll(filepath.Dir(image), 0o700); err != nil {
		return err
	}
	f, err := os.OpenFile(image, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	err = f.Truncate(size)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		var out []byte
		if out, err = exec.Command("mkfs.btrfs", "-q", image).CombinedOutput(); err != nil {
			err = fmt.Errorf("mkfs.btrfs (Debian: btrfs-progs): %v: %s", err, out)
		}
	}
	if err != nil {
		_ = os.Remove(image)
		return fmt.Errorf("homes: make image %s: %w", image, err)
	}
	return nil
}

// attachLoop binds image to a free loop device with LOOP_CONFIGURE and returns the device,
// open; another process taking the same free device first is retried.
func attachLoop(image string) (*os.File, error) {
	img, err := os.OpenFile(image, os.O_RDWR, 0)
	if err != nil {
		return nil, err
	}
	defer img.Close()
	ctl, err := os.OpenFile("/dev/loop-control", os.O_RDWR, 0)
	if err != nil {
		return nil, fmt.Errorf("homes: %w", err)
	}
	defer ctl.Close()
	for attempt := 0; ; attempt++ {
		n, err := unix.IoctlRetInt(int(ctl.Fd()), unix.LOOP_CTL_GET_FREE)
		if err != nil {
			return nil, fmt.Errorf("homes: find a free loop device: %w", err)
		}
		dev, err := os.OpenFile(fmt.Sprintf("/dev/loop%d", n), os.O_RDWR, 0)
		if err != nil {
			return nil, fmt.Errorf("homes: %w", err)
		}
		cfg := unix.LoopConfig{Fd: uint32(img.Fd())}
		cfg.Info.Flags = unix.LO_FLAGS_AUTOCLEAR
		err = unix.IoctlLoopConfigure(int(dev.Fd()), &cfg)
		if err == nil {
			return dev, nil
		}
		dev.Close()
		if !errors.Is(err, unix.EBUSY) || attempt >= 20 {
			return nil, fmt.Errorf("homes: configure loop device %d for %s: %w", n, image, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func isMountPoint(dir string) bool {
	var self, parent unix.Stat_t
	if unix.Lstat(dir, &self) != nil || unix.Lstat(filepath.Dir(dir), &parent) != nil {
		return false
	}
	return self.Dev != parent.Dev
}

func unmountDir(dir string) error {
	if err := unix.Unmount(dir, 0); err != nil && !errors.Is(err, unix.EINVAL) {
		// Busy (a process still in it): detach, the kernel finishes once it is free.
		if derr := unix.Unmount(dir, unix.MNT_DETACH); derr != nil {
			return fmt.Errorf("homes: unmount %s: %w", dir, err)
		}
	}
	return nil
}
