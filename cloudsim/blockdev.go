// What is on a block device, and who may open it: the layer mkfs, blkid, mdadm, mount and
// fsck share. A write through a Primary DRBD device lands on its backing volume and, while
// the peer is connected, on the peer's as well; a resync brings the rest over (drbd_resync.go).

package cloudsim

import (
	"fmt"
	"hash/fnv"
	"strings"
	"time"
)

// blockDev is a device path opened on a host: the volume its data lives on (reached directly
// or through a DRBD resource), or an active md array of such devices.
type blockDev struct {
	name    string   // the name the host knows it by
	vol     *volume  // nil for an array
	drbd    *drbdRes // the DRBD resource in between, if any
	array   *mdArray
	members []blockDev
}

// Why a device cannot be opened, as the kernel says it.
const (
	openMissing = "No such file or directory"
	openWrongMT = "Wrong medium type" // a Secondary DRBD device
	openBusy    = "Device or resource busy"
)

// openDevice opens a device path as a tool would. exclusive asks for sole use (mkfs, mdadm
// --create, drbdadm attach): a mounted device, a member of an active array or a volume a DRBD
// resource holds is busy then. A Secondary DRBD device does not open at all. The reason is
// "" on success.
func (x *execCtx) openDevice(dev string, exclusive bool) (blockDev, string) {
	name := x.devName(dev)
	vols, drbd, found := x.resolveDevice(dev)
	if !found {
		return blockDev{}, openMissing
	}
	if a := x.h.MD[name]; a != nil && a.Active {
		bd := blockDev{name: name, array: a}
		for _, m := range a.Devices {
			mb, why := x.openDevice(m, false)
			if why != "" {
				return blockDev{}, why
			}
			bd.members = append(bd.members, mb)
		}
		if exclusive && x.heldOpen(name) {
			return blockDev{}, openBusy
		}
		return bd, ""
	}
	if drbd != nil && drbd.Role != "Primary" {
		return blockDev{}, openWrongMT
	}
	bd := blockDev{name: name, vol: vols[0], drbd: drbd}
	if bd.vol == nil {
		return blockDev{}, openMissing
	}
	if exclusive && (x.heldOpen(name) || drbd == nil && x.drbdHolds(bd.vol)) {
		// DRBD holds its backing device exclusively; reading it (blkid, mdadm --examine)
		// still works, and finds what the DRBD device holds.
		return blockDev{}, openBusy
	}
	return bd, ""
}

// drbdHolds is whether an up DRBD resource of this host uses v as its backing device.
func (x *execCtx) drbdHolds(v *volume) bool {
	for _, r := range x.h.DRBD {
		if r.Up && r.VolumeID == v.ID {
			return true
		}
	}
	return false
}

// content is what a reader of the device finds: the volume's data, or for an array the file
// system its members' superblocks say it carries.
func (x *execCtx) content(bd blockDev) blockData {
	if bd.array == nil {
		return bd.vol.Data
	}
	fs := ""
	for i, m := range bd.members {
		md := m.vol.Data.MD
		if md == nil || (i > 0 && md.FS != fs) {
			return blockData{}
		}
		fs = md.FS
	}
	return blockData{FS: fs, Files: bd.members[0].vol.Data.MD.Files}
}

// write changes what is on the device: on its volume and, through a connected DRBD resource,
// on the peer's volume too. An array passes the change to each member.
func (x *execCtx) write(bd blockDev, change func(d *blockData)) {
	if bd.array != nil {
		for _, m := range bd.members {
			x.write(m, change)
		}
		return
	}
	change(&bd.vol.Data)
	if bd.drbd != nil {
		for _, pr := range x.s.drbdConnectedPeers(bd.drbd) {
			if pv := x.s.st.Volumes[pr.VolumeID]; pv != nil {
				change(&pv.Data)
			}
		}
	}
	x.s.markDirty()
}

// fsUUID is a stable, made-up file system UUID for what is on a volume.
func fsUUID(parts ...string) string {
	h := fnv.New128a()
	fmt.Fprint(h, strings.Join(parts, "/"))
	b := h.Sum(nil)
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

// cmdMkfs makes a file system (mkfs.ext4, mkfs.xfs, mkfs -t TYPE). Over a device that already
// holds a file system or an md superblock it asks whether to proceed and, with no terminal
// to answer (SSM's stdin), gives up, as mke2fs does; -F (mkfs.xfs: -f) forces it.
func cmdMkfs(fstype string) builtin {
	return func(x *execCtx, args []string, _ string) result {
		force := false
		typ := fstype
		var pos []string
		for i := 0; i < len(args); i++ {
			switch a := args[i]; {
			case a == "-t" && typ == "" && i+1 < len(args):
				typ, i = args[i+1], i+1
			case a == "-F" || a == "-f" || a == "-FF":
				force = true
			case a == "-q":
			case (a == "-L" || a == "-m" || a == "-E" || a == "-T" || a == "-O") && i+1 < len(args):
				i++
			case strings.HasPrefix(a, "-"):
				return fail(1, "mkfs: option %s is not simulated", a)
			default:
				pos = append(pos, a)
			}
		}
		if typ != "ext4" && typ != "xfs" {
			return fail(1, "mkfs: only ext4 and xfs are simulated, not %q", typ)
		}
		if len(pos) != 1 {
			return fail(1, "Usage: mkfs.%s [-F] [-q] device", typ)
		}
		dev := pos[0]
		if mp, mounted := x.mountedDevice(dev); mounted {
			return fail(1, "%s is mounted on %s; will not make a filesystem here!", dev, mp)
		}
		bd, why := x.openDevice(dev, true)
		switch why {
		case "":
		case openBusy:
			return fail(1, "%s is apparently in use by the system; will not make a filesystem here!", dev)
		default:
			return fail(1, "The file %s does not exist and no size was specified.", dev)
		}
		had := x.content(bd)
		if !force && (had.FS != "" || had.MD != nil) {
			what := "a " + had.FS + " file system"
			if had.FS == "" {
				what = "a linux_raid_member file system"
			}
			return result{out: fmt.Sprintf("mke2fs 1.42.9 (4-Feb-2014)\n%s contains %s\nProceed anyway? (y,N) \n", dev, what), code: 1, dur: time.Second}
		}
		x.write(bd, func(d *blockData) {
			if bd.array != nil {
				if d.MD != nil {
					d.MD.FS = typ
				}
				return
			}
			d.FS, d.MD = typ, nil
		})
		x.s.event(x.now, "host.mkfs", x.h.InstanceID, "%s file system made on %s on %s", typ, dev, x.h.Hostname)
		return result{out: "mke2fs 1.42.9 (4-Feb-2014)\nCreating filesystem with 4k blocks\nAllocating group tables: done\nWriting inode tables: done\nCreating journal (32768 blocks): done\nWriting superblocks and filesystem accounting information: done\n\n",
			dur: 5 * time.Second}
	}
}

// cmdBlkid prints what is on devices: `blkid DEV…` or `blkid -o value -s TYPE DEV`. Exit 2
// when it finds nothing, as blkid does.
func cmdBlkid(x *execCtx, args []string, _ string) result {
	valueOnly := false
	tag := ""
	var devs []string
	for i := 0; i < len(args); i++ {
		switch a := args[i]; {
		case a == "-o" && i+1 < len(args):
			if args[i+1] != "value" && args[i+1] != "full" {
				return fail(2, "blkid: output format %s is not simulated", args[i+1])
			}
			valueOnly, i = args[i+1] == "value", i+1
		case a == "-s" && i+1 < len(args):
			tag, i = args[i+1], i+1
		case a == "-p" || a == "-c" && i+1 < len(args) && args[i+1] == "/dev/null":
			if a == "-c" {
				i++
			}
		case strings.HasPrefix(a, "-"):
			return fail(2, "blkid: option %s is not simulated", a)
		default:
			devs = append(devs, a)
		}
	}
	if len(devs) == 0 {
		return fail(2, "cloudsim: blkid without a device is not simulated")
	}
	var b strings.Builder
	found := false
	for _, dev := range devs {
		bd, why := x.openDevice(dev, false)
		if why != "" {
			continue
		}
		d := x.content(bd)
		var kv [][2]string
		switch {
		case d.FS != "":
			kv = [][2]string{{"UUID", fsUUID(bd.name, d.FS)}, {"TYPE", d.FS}}
		case d.MD != nil:
			kv = [][2]string{{"UUID", d.MD.UUID}, {"LABEL", x.h.Hostname + ":" + strings.TrimPrefix(d.MD.Name, "/dev/md")}, {"TYPE", "linux_raid_member"}}
		default:
			continue
		}
		found = true
		var parts []string
		for _, p := range kv {
			switch {
			case tag != "" && p[0] != tag:
			case valueOnly:
				b.WriteString(p[1] + "\n")
			default:
				parts = append(parts, fmt.Sprintf("%s=%q", p[0], p[1]))
			}
		}
		if !valueOnly {
			fmt.Fprintf(&b, "%s: %s\n", dev, strings.Join(parts, " "))
		}
	}
	if !found {
		return result{code: 2}
	}
	return ok(b.String())
}
