// drbdadm: DRBD's administration tool, reading the resources of this host from the
// configuration files (drbdconf.go) as the real one does. A resource configured by volume tags
// (fixtures) needs no file: it is up already, and the commands that act on a running
// resource (status, primary, secondary, connect, disconnect, down) work on it too.

package cloudsim

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"
)

// drbdTarget is a resource named on drbdadm's command line: its configuration for this host
// (nil for a tag-configured resource) and its kernel state (nil before it was first up).
type drbdTarget struct {
	name  string
	conf  *drbdConf
	local *drbdOn
	peers []*drbdOn
	res   *drbdRes
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
			t.local, t.peers = t.conf.on(x.h.Hostname)
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
	var force, clearBitmap, discard, verbose, statistics bool
	var rest []string
	for _, a := range args {
		switch {
		case a == "--force":
			force = true
		case a == "--clear-bitmap":
			clearBitmap = true
		case a == "--discard-my-data":
			discard = true
		case a == "-v" || a == "--verbose":
			verbose = true
		case a == "-s" || a == "--statistics":
			statistics = true
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
	case "status", "create-md", "up", "adjust", "down", "primary", "secondary", "connect", "disconnect", "get-gi", "new-current-uuid", "dump-md":
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
		case "dump-md":
			r = x.drbdDumpMD(t, force)
		default:
			r = x.drbdRunning(sub, t, force, discard)
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
	for _, p := range t.peers {
		v.Data.DRBD.slot(p.NodeID)
	}
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
	if v.Data.DRBD.NodeID != t.local.NodeID {
		// The disk's metadata belongs to another node: a copy of a peer's disk whose node id
		// was not changed (dump-md, edit, restore-md), as truck-based replication requires.
		return fail(10, "/dev/drbd%d: Failure: (118) The node-id in the meta data (%d) does not match the configured node-id (%d)\nCommand 'drbdsetup attach %d %s %s internal' terminated with exit code 10",
			t.local.Minor, v.Data.DRBD.NodeID, t.local.NodeID, t.local.Minor, t.local.Disk, t.local.Disk)
	}
	disk := v.Data.DRBD.Disk
	if v.Data.DRBD.Gen == drbdJustCreated {
		disk = "Inconsistent"
	}
	r = &drbdRes{Name: t.name, Minor: t.local.Minor, VolumeID: v.ID, Configured: true, Up: true, Role: "Secondary", Disk: disk, Lacks: v.Data.DRBD.Lacks}
	x.drbdApplyConfig(r, t)
	h.DRBD[t.name] = r
	x.s.markDirty()
	x.s.event(x.now, "drbd.up", h.InstanceID, "drbd %s up on %s (disk %s)", t.name, h.Hostname, r.Disk)
	return ok("")
}

// drbdApplyConfig gives r this node's id and address and a connection per peer of the file,
// keeping the state of connections it already has; a peer gone from the file is
// disconnected. A bitmap slot is kept for every peer.
func (x *execCtx) drbdApplyConfig(r *drbdRes, t drbdTarget) {
	r.NodeID, r.LocalAddr = t.local.NodeID, t.local.Address
	r.AllowTwoPrimaries = t.conf.AllowTwoPrimaries
	var conns []*drbdConn
	m := x.s.drbdMetaOf(r)
	for _, p := range t.peers {
		c := r.conn(p.NodeID)
		if c == nil || c.Addr != p.Address {
			c = &drbdConn{NodeID: p.NodeID}
		}
		c.Name, c.Addr, c.StandAlone = p.Names[0], p.Address, ""
		conns = append(conns, c)
		if m != nil {
			m.slot(p.NodeID)
		}
	}
	for _, old := range r.Peers {
		if !slices.Contains(conns, old) && old.Connected {
			_, pr := x.s.drbdPeerOf(old, r.Name)
			x.s.drbdLostPeer(x.h, r, old, pr, x.now)
		}
	}
	r.Peers = conns
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
		disk, primary, alClean = r.Disk, r.Role == "Primary", false
		connected = slices.ContainsFunc(r.Peers, func(c *drbdConn) bool { return c.Connected })
	}
	b := func(v bool) int {
		if v {
			return 1
		}
		return 0
	}
	// The bitmap UUID shown is the first peer's (by node id), the history the newest two.
	bitmap, hist := "0000000000000000", []string{"0000000000000000", "0000000000000000"}
	if nodes := slices.Sorted(maps.Keys(m.Peers)); len(nodes) > 0 && m.Peers[nodes[0]].Bitmap != "" {
		bitmap = m.Peers[nodes[0]].Bitmap
	}
	copy(hist, m.History)
	return ok(fmt.Sprintf("%s:%s:%s:%s:%d:%d:%d:0:%d:0:0:%d:0:0:0:%d\n",
		m.Gen, bitmap, hist[0], hist[1], b(disk == "UpToDate" || disk == "Outdated"), b(disk == "UpToDate"), b(primary), b(alClean), b(connected), b(connected)))
}

// drbdNewCurrentUUID starts a new data generation (DRBD 9's new-current-uuid):
//   - with --clear-bitmap on a brand new pair (both disks connected, just created, never
//     written): both become UpToDate together, skipping the initial sync;
//   - with --clear-bitmap on a Primary: its bitmaps (and those of the peers it replicates to)
//     for every peer that is away are cleared and count from now, with no generation — the
//     first step of truck-based replication, before the copy is taken;
//   - without it, on a Primary: every peer that is away and has no generation in a bitmap
//     gets the one ending now, so a copy taken since the --clear-bitmap resyncs only what
//     changed after it.
func (x *execCtx) drbdNewCurrentUUID(t drbdTarget, clearBitmap bool) result {
	r := t.res
	if r == nil || !r.Up {
		return fail(10, "%s: No such resource", t.name)
	}
	m := x.s.drbdMetaOf(r)
	if m == nil {
		return fail(10, "%s: no disk attached", r.device())
	}
	if clearBitmap && r.Role != "Primary" {
		var peers []*drbdRes
		for _, c := range r.Peers {
			if _, pr, _, linked := x.s.drbdLinked(x.h, r, c); linked {
				peers = append(peers, pr)
			}
		}
		if len(peers) == 0 {
			return fail(11, "%s: State change failed: (-10) --clear-bitmap on a Secondary needs its peers connected (a brand new pair)", r.device())
		}
		all := append([]*drbdRes{r}, peers...)
		for _, q := range all {
			if qm := x.s.drbdMetaOf(q); qm == nil || qm.Gen != drbdJustCreated || q.Disk != "Inconsistent" {
				return fail(11, "%s: State change failed: (-2) --clear-bitmap is only for a brand new pair (both disks just created, never written) or a Primary", r.device())
			}
		}
		gen := x.s.newGeneration()
		for _, q := range all {
			qm := x.s.drbdMetaOf(q)
			qm.Gen, q.Disk = gen, "UpToDate"
			x.s.saveDRBDMeta(q)
		}
		x.s.event(x.now, "drbd.new-current-uuid", x.h.InstanceID, "drbd %s on %s and its peer UpToDate without an initial sync", t.name, x.h.Hostname)
		return ok("")
	}
	if r.Role != "Primary" {
		return fail(11, "%s: State change failed: a new current UUID needs a Primary", r.device())
	}
	x.s.drbdNewGeneration(r, clearBitmap)
	x.s.event(x.now, "drbd.new-current-uuid", x.h.InstanceID, "drbd %s on %s: new data generation %s (clear-bitmap=%v)", t.name, x.h.Hostname, m.Gen, clearBitmap)
	return ok("")
}

// drbdRunning runs the commands that act on an up resource.
func (x *execCtx) drbdRunning(sub string, t drbdTarget, force, discard bool) result {
	h, r := x.h, t.res
	if sub == "down" {
		if r == nil || !r.Up {
			return ok("") // nothing to take down
		}
		if x.heldOpen(r.device()) {
			return fail(11, "%s: State change failed: (-12) Device is held open by someone", r.device())
		}
		for _, c := range r.Peers {
			if c.Connected {
				_, pr := x.s.drbdPeerOf(c, r.Name)
				x.s.drbdLostPeer(h, r, c, pr, x.now)
			}
		}
		x.s.saveDRBDMeta(r)
		r.Up, r.Role, r.Syncing = false, "Secondary", false
		x.s.event(x.now, "drbd.down", h.InstanceID, "drbd %s down on %s", t.name, h.Hostname)
		return ok("")
	}
	if r == nil || !r.Up {
		return fail(10, "%s: No such resource", t.name)
	}
	switch sub {
	case "primary":
		for _, c := range r.Peers {
			if _, pr, _, linked := x.s.drbdLinked(h, r, c); linked && pr.Role == "Primary" && !r.AllowTwoPrimaries {
				return fail(11, "%s: State change failed: (-1) Multiple primaries not allowed by config", r.device())
			}
		}
		if r.Disk != "UpToDate" && !force {
			return fail(11, "%s: State change failed: (-2) Need access to UpToDate data", r.device())
		}
		if r.Role != "Primary" {
			x.s.drbdPromoted(r)
		}
		m := x.s.drbdMetaOf(r)
		if r.Disk == "Inconsistent" || r.Disk == "Outdated" {
			r.Disk, r.Syncing, r.ResyncTotal = "UpToDate", false, 0
			if m != nil {
				m.Disk = "UpToDate"
			}
		}
		if r.Role != "Primary" {
			r.Role, r.PrimarySince = "Primary", x.now
		}
		if m != nil && (m.Gen == drbdJustCreated || force) {
			x.s.drbdNewGeneration(r, false) // this side's data is now the data
		}
		if m != nil && slices.ContainsFunc(r.Peers, func(c *drbdConn) bool { return !c.Connected }) {
			m.RotatePending = true // a peer is away: the first write starts a new generation
		}
		x.s.event(x.now, "drbd.primary", h.InstanceID, "drbd %s is Primary on %s (force=%v)", t.name, h.Hostname, force)
		// A forced primary makes its peers the ones to resync.
		x.s.drbdRenegotiate(h, r, x.now)
	case "secondary":
		if x.heldOpen(r.device()) {
			return fail(11, "%s: State change failed: (-12) Device is held open by someone", r.device())
		}
		r.Role = "Secondary"
		x.s.event(x.now, "drbd.secondary", h.InstanceID, "drbd %s is Secondary on %s", t.name, h.Hostname)
	case "disconnect":
		r.AdminDown = true
	case "connect":
		if discard && r.Role == "Primary" {
			return fail(11, "%s: State change failed: (-1) --discard-my-data on a Primary", r.device())
		}
		r.AdminDown = false
		for _, c := range r.Peers {
			c.StandAlone, c.DiscardMyData = "", discard
			if _, _, pc, _ := x.s.drbdLinked(h, r, c); pc != nil {
				pc.StandAlone = ""
			}
		}
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
