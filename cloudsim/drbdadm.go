// drbdadm: DRBD's administration tool, reading the resources of this host from the
// configuration files (drbdconf.go) as the real one does. A resource configured by volume tags
// (fixtures) needs no file: it is up already, and the commands that act on a running
// resource (status, primary, secondary, connect, disconnect, down) work on it too.

package cloudsim

import (
	"fmt"
	"slices"
	"strings"
	"time"
)

// drbdTarget is a resource named on drbdadm's command line: its configuration for this host
// (nil for a tag-configured resource) and its kernel state (nil before it was first up).
type drbdTarget struct {
	name        string
	conf        *drbdConf
	local, peer *drbdOn
	res         *drbdRes
}

func notDefined(name string) result {
	return fail(10, "'%s' not defined in your config (for this host).", name)
}

// drbdTargets resolves the names given (or all) against the configuration and the kernel.
func (x *execCtx) drbdTargets(sub string, names []string) ([]drbdTarget, *result) {
	conf, err := x.drbdConfig()
	if err != nil {
		r := fail(10, "%v", err)
		return nil, &r
	}
	if len(names) == 0 || (len(names) == 1 && names[0] == "all") {
		if sub != "status" && len(names) == 0 {
			r := fail(20, "drbdadm %s: missing resource name", sub)
			return nil, &r
		}
		known := map[string]bool{}
		for n, c := range conf {
			if local, _ := c.on(x.h.Hostname); local != nil {
				known[n] = true
			}
		}
		for n, r := range x.h.DRBD {
			if !r.Configured {
				known[n] = true
			}
		}
		names = sortedKeys(known)
	}
	var out []drbdTarget
	for _, n := range names {
		n = strings.TrimSuffix(n, "/0") // volume 0, the only one simulated
		t := drbdTarget{name: n, conf: conf[n], res: x.h.DRBD[n]}
		switch {
		case t.conf != nil:
			t.local, t.peer = t.conf.on(x.h.Hostname)
			if t.local == nil {
				r := notDefined(n)
				return nil, &r
			}
		case t.res != nil && !t.res.Configured:
		default:
			r := notDefined(n)
			return nil, &r
		}
		out = append(out, t)
	}
	return out, nil
}

func cmdDrbdadm(x *execCtx, args []string, _ string) result {
	var force, clearBitmap, verbose, statistics, discard bool
	var rest []string
	for _, a := range args {
		switch {
		case a == "--force":
			force = true
		case a == "--clear-bitmap":
			clearBitmap = true
		case a == "-v" || a == "--verbose":
			verbose = true
		case a == "-s" || a == "--statistics":
			statistics = true
		case a == "--discard-my-data":
			discard = true
		case a == "--" || strings.HasPrefix(a, "--max-peers="):
		case strings.HasPrefix(a, "-"):
			return fail(20, "drbdadm: option %s is not simulated", a)
		default:
			rest = append(rest, a)
		}
	}
	if len(rest) == 0 {
		return fail(20, "USAGE: drbdadm COMMAND [OPTION...] {all|RESOURCE...}")
	}
	sub, names := rest[0], rest[1:]
	switch sub {
	case "status", "create-md", "up", "adjust", "down", "primary", "secondary", "connect", "disconnect", "get-gi", "new-current-uuid":
	default:
		return fail(20, "drbdadm: Unknown command '%s'", sub)
	}
	targets, bad := x.drbdTargets(sub, names)
	if bad != nil {
		return *bad
	}
	var out strings.Builder
	var up []drbdTarget
	for _, t := range targets {
		if t.res != nil && t.res.Up {
			up = append(up, t)
		}
	}
	if sub == "status" && (len(names) == 0 || names[0] == "all") {
		// As drbdsetup status: all is what is up; a configured resource that is down is not
		// an error there.
		if len(up) == 0 {
			return fail(10, "# No currently configured DRBD found.")
		}
		targets = up
	}
	for i, t := range targets {
		var r result
		switch sub {
		case "status":
			if t.res == nil || !t.res.Up {
				return fail(10, "%s: No such resource\nCommand 'drbdsetup status %s' terminated with exit code 10", t.name, t.name)
			}
			if i > 0 && !verbose && !statistics {
				out.WriteString("\n")
			}
			if verbose || statistics {
				r = ok(x.s.drbdStatusVerbose(x.h, t.res, verbose, statistics))
			} else {
				r = ok(x.s.drbdStatus(x.h, t.res))
			}
		case "create-md":
			r = x.drbdCreateMD(t, force)
		case "up", "adjust":
			r = x.drbdUp(t, sub == "adjust")
		case "get-gi":
			r = x.drbdGetGI(t)
		case "new-current-uuid":
			r = x.drbdNewCurrentUUID(t, clearBitmap)
		case "connect":
			if discard && t.res != nil && t.res.Up && t.res.Role == "Primary" {
				return fail(11, "%s: State change failed: (-1) --discard-my-data on a Primary", t.res.device())
			}
			r = x.drbdRunning(sub, t, force)
			if r.code == 0 && discard {
				t.res.DiscardMyData = true
			}
		default:
			r = x.drbdRunning(sub, t, force)
		}
		out.WriteString(r.out)
		if r.code != 0 {
			return result{out: out.String(), err: r.err, code: r.code}
		}
	}
	x.s.advanceDRBD(x.now, x.now) // connection changes show at once
	return ok(out.String())
}

// drbdCreateMD writes fresh metadata on the backing disk. Metadata already there is kept
// unless --force overwrites it; a file system that internal metadata would truncate is never
// overwritten (drbdmeta's sanity check).
func (x *execCtx) drbdCreateMD(t drbdTarget, force bool) result {
	if t.res != nil && t.res.Up {
		return fail(20, "Device '%d' is configured!\nCommand 'drbdmeta %d v09 %s internal create-md 1' terminated with exit code 20", t.res.Minor, t.res.Minor, t.name)
	}
	if t.conf == nil {
		return fail(20, "%s: its meta data is in place (a resource configured by volume tags)", t.name)
	}
	v, bad := x.drbdBackingVolume(t)
	if bad != nil {
		return *bad
	}
	switch {
	case v.Data.DRBD != nil && !force:
		return fail(40, "You want me to create a v09 style flexible-size internal meta data block.\nThere appears to be a v09 flexible-size internal meta data block\nalready in place on %s at byte offset %d\n\nDo you really want to overwrite the existing meta-data?\n[need to type 'yes' to confirm] \nOperation canceled.",
			t.local.Disk, int64(v.SizeGiB)*gib-4096)
	case v.Data.DRBD == nil && v.Data.FS != "":
		return fail(40, "md_offset %d\nal_offset %d\nbm_offset %d\n\nFound %s filesystem\n    which uses %d kB\ncurrent configuration leaves usable %d kB\n\nDevice size would be truncated, which\nwould corrupt data and result in\n'access beyond end of device' errors.\nYou need to either\n   * use external meta data (recommended)\n   * shrink that filesystem first\n   * zero out the device (destroy the filesystem)\nOperation refused.\n\nCommand 'drbdmeta %d v09 %s internal create-md 1' terminated with exit code 40",
			int64(v.SizeGiB)*gib-4096, int64(v.SizeGiB)*gib-36864, int64(v.SizeGiB)*gib-36864-int64(v.SizeGiB)*32, v.Data.FS, int64(v.SizeGiB)*1<<20, int64(v.SizeGiB)*1<<20-64, t.local.Minor, t.local.Disk)
	}
	v.Data.DRBD = &drbdMeta{NodeID: t.local.NodeID, Gen: drbdJustCreated, Disk: "Inconsistent"}
	x.s.markDirty()
	x.s.event(x.now, "drbd.create-md", x.h.InstanceID, "drbd %s meta data created on %s (%s)", t.name, x.h.Hostname, t.local.Disk)
	return ok("initializing activity log\ninitializing bitmap (32 KB) to all zero\nWriting meta data...\nNew drbd meta data block successfully created.\n")
}

// drbdBackingVolume opens the configured disk for DRBD's exclusive use.
func (x *execCtx) drbdBackingVolume(t drbdTarget) (*volume, *result) {
	bd, why := x.openDevice(t.local.Disk, true)
	var r result
	switch {
	case why != "":
		r = fail(20, "open(%s) failed: %s\nCommand 'drbdmeta %d v09 %s internal create-md 1' terminated with exit code 20", t.local.Disk, why, t.local.Minor, t.local.Disk)
	case bd.vol == nil || bd.drbd != nil:
		r = fail(20, "%s: a DRBD device or an md array as the backing disk is not simulated", t.local.Disk)
	default:
		return bd.vol, nil
	}
	return nil, &r
}

// drbdUp attaches the backing disk and starts connecting to the peer; adjust does the same
// for a resource that is down and, for one that is up, applies a changed peer address or name.
func (x *execCtx) drbdUp(t drbdTarget, adjust bool) result {
	h := x.h
	r := t.res
	if r != nil && r.Up {
		if !adjust {
			return fail(10, "%s: Failure: (161) Minor or volume exists already (delete it first)", r.device())
		}
		if t.conf == nil {
			return ok("") // tag-configured: nothing in a file to apply
		}
		bd, _ := x.openDevice(t.local.Disk, false)
		if t.local.Minor != r.Minor || bd.vol == nil || bd.vol.ID != r.VolumeID {
			return fail(10, "%s: changing the device or backing disk of an up resource is not simulated; take it down first", t.name)
		}
		x.drbdApplyConfig(r, t)
		x.s.event(x.now, "drbd.adjust", h.InstanceID, "drbd %s adjusted on %s", t.name, h.Hostname)
		return ok("")
	}
	if t.conf == nil { // tag-configured, down since drbdadm down
		r.Up, r.Role, r.AdminDown = true, "Secondary", false
		x.s.event(x.now, "drbd.up", h.InstanceID, "drbd %s up on %s (disk %s)", t.name, h.Hostname, r.Disk)
		return ok("")
	}
	for _, other := range h.DRBD {
		if other.Up && other.Name != t.name && other.Minor == t.local.Minor {
			return fail(10, "/dev/drbd%d: Failure: (161) Minor or volume exists already (delete it first)", t.local.Minor)
		}
	}
	v, bad := x.drbdBackingVolume(t)
	if bad != nil {
		return fail(10, "%s\nCommand 'drbdsetup attach %d %s %s internal' terminated with exit code 10", strings.SplitN(bad.err, "\n", 2)[0], t.local.Minor, t.local.Disk, t.local.Disk)
	}
	if v.Data.DRBD == nil {
		return fail(10, "No valid meta data found\nCommand 'drbdmeta %d v09 %s internal apply-al' terminated with exit code 255", t.local.Minor, t.local.Disk)
	}
	m := v.Data.DRBD
	r = &drbdRes{Name: t.name, Minor: t.local.Minor, VolumeID: v.ID, Configured: true, Up: true, Role: "Secondary", Disk: m.Disk,
		Ahead: m.Ahead, Behind: m.Behind, Lacks: m.Lacks}
	x.drbdApplyConfig(r, t)
	h.DRBD[t.name] = r
	x.s.markDirty()
	x.s.event(x.now, "drbd.up", h.InstanceID, "drbd %s up on %s (disk %s)", t.name, h.Hostname, r.Disk)
	return ok("")
}

func (x *execCtx) drbdApplyConfig(r *drbdRes, t drbdTarget) {
	r.NodeID, r.LocalAddr = t.local.NodeID, t.local.Address
	r.AllowTwoPrimaries = t.conf.AllowTwoPrimaries
	r.PeerName, r.PeerAddr = "", ""
	if t.peer != nil {
		r.PeerName, r.PeerAddr = t.peer.Names[0], t.peer.Address
	}
	r.AdminDown = false
}

// drbdGetGI prints the data generation identifiers in drbdmeta's form: current UUID, bitmap
// UUID, two history UUIDs, then the flags (consistent, was up to date, primary, crashed
// primary, activity log clean, al disabled, lost quorum : peer connected, peer outdated,
// fencing, full sync, peer seen). A current UUID of 0000000000000004 means the disk has never
// held data: a brand new pair.
func (x *execCtx) drbdGetGI(t drbdTarget) result {
	var m *drbdMeta
	var r *drbdRes
	if t.res != nil && t.res.Up {
		r = t.res
		m = x.s.drbdMetaOf(r)
	} else if t.conf != nil {
		bd, why := x.openDevice(t.local.Disk, false)
		if why != "" || bd.vol == nil {
			return fail(20, "open(%s) failed: %s", t.local.Disk, why)
		}
		m = bd.vol.Data.DRBD
	} else {
		m = x.s.drbdMetaOf(t.res)
	}
	if m == nil {
		return fail(255, "No valid meta data found\nCommand 'drbdmeta %s v09 internal get-gi' terminated with exit code 255", t.name)
	}
	disk := m.Disk
	primary, connected, alClean := false, false, true
	if r != nil {
		disk, primary, connected, alClean = r.Disk, r.Role == "Primary", r.Connected, false
	}
	b := func(v bool) int {
		if v {
			return 1
		}
		return 0
	}
	return ok(fmt.Sprintf("%s:0000000000000000:0000000000000000:0000000000000000:%d:%d:%d:0:%d:0:0:%d:0:0:0:%d\n",
		m.Gen, b(disk == "UpToDate" || disk == "Outdated"), b(disk == "UpToDate"), b(primary), b(alClean), b(connected), b(connected)))
}

// drbdNewCurrentUUID with --clear-bitmap is DRBD's way to skip the initial sync of a brand new
// pair: both sides connected, both disks freshly created and never written, they become
// UpToDate together with one new data generation.
func (x *execCtx) drbdNewCurrentUUID(t drbdTarget, clearBitmap bool) result {
	r := t.res
	if r == nil || !r.Up {
		return fail(10, "%s: No such resource", t.name)
	}
	m := x.s.drbdMetaOf(r)
	if !clearBitmap {
		if r.Role != "Primary" || m == nil {
			return fail(11, "%s: State change failed: a new current UUID needs a Primary", r.device())
		}
		m.Gen = x.s.newGeneration()
		return ok("")
	}
	_, pr, linked := x.s.drbdLinked(x.h, r)
	if !linked {
		return fail(11, "%s: State change failed: (-10) --clear-bitmap needs the peer connected", r.device())
	}
	pm := x.s.drbdMetaOf(pr)
	if m == nil || pm == nil || m.Gen != drbdJustCreated || pm.Gen != drbdJustCreated || r.Disk != "Inconsistent" || pr.Disk != "Inconsistent" {
		return fail(11, "%s: State change failed: (-2) --clear-bitmap is only for a brand new pair (both disks just created, never written)", r.device())
	}
	gen := x.s.newGeneration()
	m.Gen, pm.Gen = gen, gen
	r.Disk, pr.Disk = "UpToDate", "UpToDate"
	r.Ahead, r.Behind, pr.Ahead, pr.Behind = 0, 0, 0, 0
	x.s.saveDRBDMeta(r)
	x.s.saveDRBDMeta(pr)
	x.s.event(x.now, "drbd.new-current-uuid", x.h.InstanceID, "drbd %s on %s and its peer UpToDate without an initial sync", t.name, x.h.Hostname)
	return ok("")
}

// drbdRunning runs the commands that act on an up resource.
func (x *execCtx) drbdRunning(sub string, t drbdTarget, force bool) result {
	h, r := x.h, t.res
	if sub == "down" {
		if r == nil || !r.Up {
			return ok("") // nothing to take down
		}
		if x.heldOpen(r.device()) {
			return fail(11, "%s: State change failed: (-12) Device is held open by someone", r.device())
		}
		x.s.saveDRBDMeta(r)
		r.Up, r.Role, r.Connected = false, "Secondary", false
		x.s.event(x.now, "drbd.down", h.InstanceID, "drbd %s down on %s", t.name, h.Hostname)
		return ok("")
	}
	if r == nil || !r.Up {
		return fail(10, "%s: No such resource", t.name)
	}
	switch sub {
	case "primary":
		_, pr, linked := x.s.drbdLinked(h, r)
		if linked && pr.Role == "Primary" && !r.AllowTwoPrimaries {
			return fail(11, "%s: State change failed: (-1) Multiple primaries not allowed by config", r.device())
		}
		if r.Disk != "UpToDate" && !force {
			return fail(11, "%s: State change failed: (-2) Need access to UpToDate data", r.device())
		}
		if r.Role != "Primary" {
			x.s.drbdPromoted(r, pr, linked)
		}
		if r.Disk == "Inconsistent" || r.Disk == "Outdated" {
			r.Disk, r.ResyncTotal, r.ResyncDone = "UpToDate", 0, 0
		}
		if m := x.s.drbdMetaOf(r); m != nil && (m.Gen == drbdJustCreated || force) {
			m.Gen = x.s.newGeneration() // this side's data is now the data
		}
		r.Role = "Primary"
		x.s.event(x.now, "drbd.primary", h.InstanceID, "drbd %s is Primary on %s (force=%v)", t.name, h.Hostname, force)
		// A forced primary makes the peer the one to resync, from scratch if it was
		// inconsistent too.
		if peer, pr, linked := x.s.drbdLinked(h, r); linked && pr.Disk != "UpToDate" && pr.ResyncTotal == 0 {
			x.s.drbdConnected(peer, pr, h, r, x.now)
		}
	case "secondary":
		if x.heldOpen(r.device()) {
			return fail(11, "%s: State change failed: (-12) Device is held open by someone", r.device())
		}
		r.Role = "Secondary"
		x.s.event(x.now, "drbd.secondary", h.InstanceID, "drbd %s is Secondary on %s", t.name, h.Hostname)
	case "disconnect":
		r.AdminDown = true
	case "connect":
		r.AdminDown = false
	}
	return ok("")
}

// drbdBoot is the drbd service at boot (drbdadm adjust all): every resource the configuration
// defines for this host comes up as Secondary where its backing disk and metadata are there.
func (s *Sim) drbdBoot(h *host, in *instance, at time.Time) {
	x := &execCtx{s: s, h: h, in: in, now: at}
	conf, err := x.drbdConfig()
	if err != nil {
		s.event(at, "drbd.config-error", h.InstanceID, "drbd on %s: %v", h.Hostname, err)
		return
	}
	for _, name := range sortedKeys(conf) {
		if local, _ := conf[name].on(h.Hostname); local == nil {
			continue
		}
		targets, bad := x.drbdTargets("adjust", []string{name})
		if bad == nil && !slices.ContainsFunc(targets, func(t drbdTarget) bool { return t.res != nil && t.res.Up }) {
			x.drbdUp(targets[0], true)
		}
	}
}
