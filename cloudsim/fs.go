// Block devices, file systems and mounts: mount, umount, mountpoint, fsck.

package cloudsim

import (
	"fmt"
	"path"
	"slices"
	"strings"
	"time"
)

// resolveDevice finds what a device path is on this host: an attached volume, a DRBD device
// (and its backing volume), or an active md array.
func (x *execCtx) resolveDevice(dev string) (vols []*volume, drbd *drbdRes, ok bool) {
	have := x.s.devices(x.h)
	if v, found := have[x.devName(dev)]; found {
		return []*volume{v}, nil, true
	}
	// A partition of an attached volume (/dev/xvdf1, /dev/nvme1n1p1) is the volume for our
	// purposes.
	if base, isPart := partitionBase(dev); isPart {
		if v, found := have[x.devName(base)]; found {
			return []*volume{v}, nil, true
		}
	}
	for _, r := range x.h.DRBD {
		if r.device() == dev && r.Up {
			return []*volume{x.s.st.Volumes[r.VolumeID]}, r, true
		}
	}
	if a := x.h.MD[dev]; a != nil && a.Active {
		for _, d := range a.Devices {
			vols = append(vols, x.volumeOf(d))
		}
		return vols, nil, true
	}
	return nil, nil, false
}

// drbdByDevice is the up DRBD resource whose device is dev, or nil.
func (x *execCtx) drbdByDevice(dev string) *drbdRes {
	for _, r := range x.h.DRBD {
		if r.Up && r.device() == dev {
			return r
		}
	}
	return nil
}

// volumeOf is the volume under a device path: attached directly or through DRBD.
func (x *execCtx) volumeOf(dev string) *volume {
	if v, ok := x.s.devices(x.h)[x.devName(dev)]; ok {
		return v
	}
	if r := x.drbdByDevice(dev); r != nil {
		return x.s.st.Volumes[r.VolumeID]
	}
	return nil
}

// heldOpen is whether a device is mounted or a member of an active md array.
func (x *execCtx) heldOpen(dev string) bool {
	if _, mounted := x.mountedDevice(dev); mounted {
		return true
	}
	for _, a := range x.h.MD {
		if a.Active && slices.Contains(a.Devices, x.devName(dev)) {
			return true
		}
	}
	return false
}

func (x *execCtx) devNames(devs []string) []string {
	out := make([]string, len(devs))
	for i, d := range devs {
		out[i] = x.devName(d)
	}
	return out
}

func (x *execCtx) mountedDevice(dev string) (string, bool) {
	for _, mp := range sortedKeys(x.h.Mounts) {
		if m := x.h.Mounts[mp]; m.Device == dev || m.Device == x.devName(dev) {
			return mp, true
		}
	}
	return "", false
}

// volumesOf are the volumes an opened device's data lives on.
func (bd blockDev) volumesOf() []*volume {
	if bd.array == nil {
		return []*volume{bd.vol}
	}
	var out []*volume
	for _, m := range bd.members {
		out = append(out, m.vol)
	}
	return out
}

func cmdFsck(x *execCtx, args []string, _ string) result {
	var dev string
	force := false
	for _, a := range args {
		if !strings.HasPrefix(a, "-") {
			dev = a
		} else if strings.Contains(a, "f") {
			force = true
		}
	}
	if dev == "" {
		return fail(8, "Usage: fsck [-fnpy] device")
	}
	if mp, mounted := x.mountedDevice(dev); mounted {
		return fail(8, "%s is mounted on %s.\ne2fsck: Cannot continue, aborting.", dev, mp)
	}
	bd, why := x.openDevice(dev, true)
	if why != "" {
		return fail(8, "fsck.ext4: %s while trying to open %s", why, dev)
	}
	if x.content(bd).FS == "" {
		return fail(8, "fsck.ext4: Bad magic number in super-block while trying to open %s\n\nThe superblock could not be read or does not describe a valid ext2/ext3/ext4\nfilesystem.", dev)
	}
	var size int32
	corrupt := false
	for _, v := range bd.volumesOf() {
		size += v.SizeGiB
		corrupt = corrupt || v.Corrupt
	}
	// As e2fsck: a consistent file system (after its journal is replayed) is only checked in
	// full when forced; one with errors always is, about a second per GiB.
	dur := 5 * time.Second
	if force || corrupt {
		dur += time.Duration(size) * time.Second
	}
	if corrupt {
		return result{out: fmt.Sprintf("%s contains a file system with errors, check forced.\nPass 1: Checking inodes, blocks, and sizes\nInode 7 has illegal block(s).\n", dev),
			err:  fmt.Sprintf("%s: UNEXPECTED INCONSISTENCY; RUN fsck MANUALLY.\n\t(i.e., without -a or -p options)\n\n%s: ***** FILE SYSTEM WAS MODIFIED *****\n%s: ********** WARNING: Filesystem still has errors **********\n", dev, dev, dev),
			code: 4, dur: dur}
	}
	return result{out: fmt.Sprintf("%s: clean, 11/%d files, %d/%d blocks\n", dev, int(size)*65536, int(size)*4096, int(size)*262144), dur: dur}
}

// cmdMount mounts the file system on a device: one mkfs made (mount detects its type when -t
// is not given); a device without one fails as mount does.
func cmdMount(x *execCtx, args []string, _ string) result {
	fstype, options := "", ""
	var pos []string
	for i := 0; i < len(args); i++ {
		switch a := args[i]; {
		case a == "-t" && i+1 < len(args):
			fstype, i = args[i+1], i+1
		case a == "-o" && i+1 < len(args):
			options, i = args[i+1], i+1
		case strings.HasPrefix(a, "-"):
		default:
			pos = append(pos, a)
		}
	}
	if len(pos) == 0 {
		return ok(x.mountList())
	}
	if len(pos) != 2 {
		return fail(1, "mount: only `mount [-t type] [-o options] DEVICE DIR` is simulated")
	}
	dev, dir := pos[0], path.Clean(pos[1])
	if fstype == "nfs4" || fstype == "nfs" || fstype == "" && strings.Contains(dev, ":") && !strings.HasPrefix(dev, "/") {
		return x.mountNFS(dev, dir, options)
	}
	if _, busy := x.h.Mounts[dir]; busy {
		return fail(32, "mount: %s: %s already mounted or mount point busy.", dir, dev)
	}
	if mp, mounted := x.mountedDevice(dev); mounted {
		return fail(32, "mount: %s: %s already mounted on %s.", dir, dev, mp)
	}
	bd, why := x.openDevice(dev, true)
	switch why {
	case "":
	case openMissing:
		return fail(32, "mount: %s: special device %s does not exist.", dir, dev)
	case openWrongMT:
		return fail(32, "mount: %s: wrong medium type (%s is Secondary).", dir, dev)
	default:
		return fail(32, "mount: %s: %s already mounted or mount point busy.", dir, dev)
	}
	badFS := fail(32, "mount: %s: wrong fs type, bad option, bad superblock on %s, missing codepage or helper program, or other error.", dir, dev)
	found := x.content(bd).FS
	if found == "" || (fstype != "" && fstype != found) {
		return badFS
	}
	for _, v := range bd.volumesOf() {
		if v.Corrupt {
			return badFS
		}
	}
	x.h.Mounts[dir] = mountEntry{Device: bd.name, FSType: found}
	x.s.event(x.now, "host.mount", x.h.InstanceID, "%s mounted on %s on %s", dev, dir, x.h.Hostname)
	return result{dur: time.Second}
}

// mountList is what `mount` prints; procMounts is /proc/mounts, the kernel's form.
func (x *execCtx) mountList() string {
	var b strings.Builder
	for _, mp := range sortedKeys(x.h.Mounts) {
		m := x.h.Mounts[mp]
		fmt.Fprintf(&b, "%s on %s type %s (%s)\n", m.Device, mp, m.FSType, m.options())
	}
	return b.String()
}

func (x *execCtx) procMounts() string {
	var b strings.Builder
	for _, mp := range sortedKeys(x.h.Mounts) {
		m := x.h.Mounts[mp]
		fmt.Fprintf(&b, "%s %s %s %s 0 0\n", m.Device, mp, m.FSType, m.options())
	}
	return b.String()
}

func (m mountEntry) options() string {
	if m.Options != "" {
		return m.Options
	}
	return "rw,relatime"
}

func cmdUmount(x *execCtx, args []string, _ string) result {
	var target string
	force, lazy := false, false
	for _, a := range args {
		switch {
		case !strings.HasPrefix(a, "-"):
			target = a
		case a == "-f" || a == "--force":
			force = true
		case a == "-l" || a == "--lazy":
			lazy = true
		case a == "-fl" || a == "-lf":
			force, lazy = true, true
		}
	}
	if target == "" {
		return fail(1, "Usage: umount DIR|DEVICE")
	}
	mp := path.Clean(target)
	if _, ok := x.h.Mounts[mp]; !ok {
		var found bool
		if mp, found = x.mountedDevice(target); !found {
			return fail(32, "umount: %s: not mounted.", target)
		}
	}
	if m := x.h.Mounts[mp]; m.isNFS() {
		return x.umountNFS(mp, m, force, lazy)
	}
	if mp == "/" {
		return fail(32, "umount: /: target is busy.")
	}
	for ex := range x.h.Exports {
		if p := ex[strings.IndexByte(ex, ':')+1:]; p == mp || strings.HasPrefix(p, mp+"/") {
			return fail(32, "umount: %s: target is busy (exported over NFS as %s).", mp, ex)
		}
	}
	delete(x.h.Mounts, mp)
	x.s.event(x.now, "host.umount", x.h.InstanceID, "%s unmounted on %s", mp, x.h.Hostname)
	return result{dur: time.Second}
}

func cmdMountpoint(x *execCtx, args []string, _ string) result {
	quiet := false
	var dir string
	for _, a := range args {
		if a == "-q" {
			quiet = true
		} else {
			dir = a
		}
	}
	if m, mounted := x.h.Mounts[dir]; mounted {
		if m.isNFS() {
			if _, _, why := x.s.nfsTarget(x.h, m, x.now); why != "" && why != nfsStaleHandle {
				return x.hang() // mountpoint stats the directory: a stale hard mount blocks it
			}
		}
		if quiet {
			return ok("")
		}
		return ok(dir + " is a mountpoint\n")
	}
	if quiet {
		return result{code: 32}
	}
	return result{out: dir + " is not a mountpoint\n", code: 32}
}
