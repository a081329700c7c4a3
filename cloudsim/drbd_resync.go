// DRBD's data movement: the handshake that compares two nodes' generations and bitmaps when
// they connect (drbdCompare, as DRBD's uuid_compare), the resync it starts and its progress, and
// the writes and generation rotations that fill the bitmaps. The resources, their links and
// the metadata's types are in drbd.go.

package cloudsim

import (
	"slices"
	"time"
)

// drbdAhead is the most this side holds that one of its peers lacks; drbdBehind the most a
// peer holds that this side lacks (host JSON, status --statistics).
func (s *Sim) drbdAhead(r *drbdRes) float64 {
	m, most := s.drbdMetaOf(r), 0.0
	if m != nil {
		for _, sl := range m.Peers {
			most = max(most, sl.OutOfSync)
		}
	}
	return most
}

func (s *Sim) drbdBehind(r *drbdRes) float64 {
	most := 0.0
	for _, c := range r.Peers {
		if _, pr := s.drbdPeerOf(c, r.Name); pr != nil {
			if pm := s.drbdMetaOf(pr); pm != nil && pm.Peers[r.NodeID] != nil {
				most = max(most, pm.Peers[r.NodeID].OutOfSync)
			}
		}
	}
	return most
}

// advanceResync moves a resync into r over dt seconds ending at to: as fast as the network,
// the source disk's reads (slower on blocks it still has to load from a snapshot) and the
// target disk's writes allow.
func (s *Sim) advanceResync(h *host, r *drbdRes, to time.Time, dt float64) {
	c := r.conn(r.SyncFrom)
	if c == nil || !c.Connected {
		r.Syncing = false
		return
	}
	peer, src := s.drbdPeerOf(c, r.Name)
	sm, dm := s.drbdMetaOf(src), s.drbdMetaOf(r)
	sv, dv := s.st.Volumes[src.VolumeID], s.st.Volumes[r.VolumeID]
	if src == nil || sm == nil || dm == nil || sv == nil || dv == nil || src.Disk != "UpToDate" {
		return
	}
	rate := min(drbdResyncRate, s.readRate(sv), s.throughput(dv))
	sl := sm.slot(r.NodeID)
	moved := min(rate*dt, sl.OutOfSync)
	sv.readAll(moved)
	dv.written(moved)
	sl.OutOfSync -= moved
	if sl.OutOfSync > 0 {
		s.markDirty()
		return
	}
	at := to.Add(-time.Duration((rate*dt - moved) / rate * float64(time.Second))).Truncate(time.Millisecond)
	s.drbdSynced(h, r, peer, src, at)
}

// drbdSynced ends a resync: the target has the source's data and its generation, and every
// bitmap between them is clear.
func (s *Sim) drbdSynced(h *host, r *drbdRes, peer *host, src *drbdRes, at time.Time) {
	sm, dm := s.drbdMetaOf(src), s.drbdMetaOf(r)
	r.Disk, r.Syncing, r.ResyncTotal = "UpToDate", false, 0
	r.SplitBrainSince, src.SplitBrainSince = time.Time{}, time.Time{}
	if dst, sv := s.st.Volumes[r.VolumeID], s.st.Volumes[src.VolumeID]; dst != nil && sv != nil {
		dst.Data.copyContent(sv.Data)
	}
	dm.Gen, dm.History, dm.Disk = sm.Gen, slices.Clone(sm.History), "UpToDate"
	sm.slot(r.NodeID).reset()
	dm.slot(src.NodeID).reset()
	s.eventData(at, "drbd.synced", h.InstanceID, drbdPeerData(r.Name, peer.InstanceID), "drbd %s on %s is UpToDate with %s", r.Name, h.Hostname, peer.Hostname)
	s.markDirty()
	// Other peers connected to us that have this generation are in sync with us now too.
	for _, c := range r.Peers {
		if c.Connected && c.NodeID != src.NodeID {
			if _, q := s.drbdPeerOf(c, r.Name); q != nil {
				if qm := s.drbdMetaOf(q); qm != nil && qm.Gen == dm.Gen && q.Disk == "UpToDate" {
					qm.slot(r.NodeID).reset()
					dm.slot(q.NodeID).reset()
				}
			}
		}
	}
}

// drbdSync is the outcome of a handshake: who resyncs to whom, how much, or why not at all.
type drbdSync struct {
	fromSelf bool    // this side is the sync source
	bytes    float64 // what moves
	full     bool
	refuse   string // split brain, unrelated data, a primary as target
	none     bool
}

// drbdCompare decides a handshake between a (this side) and b as DRBD's uuid_compare does.
func (s *Sim) drbdCompare(r, pr *drbdRes, am, bm *drbdMeta, c, pc *drbdConn) drbdSync {
	aSlot, bSlot := am.slot(pr.NodeID), bm.slot(r.NodeID)
	size := s.resSize(r)
	// Only UpToDate data is a sync source; Outdated data is consistent but known to be old.
	usable := func(x *drbdRes) bool { return x.Disk == "UpToDate" }
	switch {
	case c.DiscardMyData || pc.DiscardMyData:
		// The victim takes the other side's data: what either side changed since they
		// parted, or everything when they never shared a generation.
		fromSelf := pc.DiscardMyData
		victim := r
		if fromSelf {
			victim = pr
		}
		s.event(s.st.Clock, "drbd.discard-my-data", "", "drbd %s: node %d discards its changes and resyncs from its peer", r.Name, victim.NodeID)
		bytes := size
		if aSlot.known() && bSlot.known() && aSlot.Bitmap == bSlot.Bitmap {
			bytes = min(aSlot.OutOfSync+bSlot.OutOfSync, size)
		}
		c.DiscardMyData, pc.DiscardMyData = false, false
		return drbdSync{fromSelf: fromSelf, bytes: bytes, full: bytes == size}
	case am.Gen == drbdJustCreated && bm.Gen == drbdJustCreated:
		return drbdSync{none: true}
	case am.Gen == bm.Gen:
		// The same generation: in sync, unless one side wrote while the other was away
		// without starting a new one (its bitmap counts from a --clear-bitmap: resync those
		// bits), or the other was never in sync with it (day 0: everything).
		same := func(src, dst *drbdRes, sl *drbdSlot, self bool) (drbdSync, bool) {
			switch {
			case !usable(src) || sl.OutOfSync <= 0 && dst.Disk != "Inconsistent":
				return drbdSync{}, false
			case !sl.known() || dst.Disk == "Inconsistent" && sl.OutOfSync <= 0:
				return drbdSync{fromSelf: self, bytes: size, full: true}, true
			}
			// Bits counted from a --clear-bitmap, or from an older generation (a copy of a
			// Primary taken without the truck procedure): real DRBD would take the two for in
			// sync here; cloudsim resyncs those bits, a superset of what the copy lacks.
			return drbdSync{fromSelf: self, bytes: sl.OutOfSync}, true
		}
		if d, ok := same(r, pr, aSlot, true); ok && (r.Role == "Primary" || pr.Role != "Primary") {
			return d
		}
		if d, ok := same(pr, r, bSlot, false); ok {
			return d
		}
		return drbdSync{none: true}
	case aSlot.Bitmap != "" && aSlot.Bitmap == bm.Gen && usable(r):
		return drbdSync{fromSelf: true, bytes: aSlot.OutOfSync}
	case bSlot.Bitmap != "" && bSlot.Bitmap == am.Gen && usable(pr):
		return drbdSync{fromSelf: false, bytes: bSlot.OutOfSync}
	case bm.Gen == drbdJustCreated && usable(r):
		return drbdSync{fromSelf: true, bytes: size, full: true}
	case am.Gen == drbdJustCreated && usable(pr):
		return drbdSync{fromSelf: false, bytes: size, full: true}
	case slices.Contains(am.History, bm.Gen) && usable(r):
		return drbdSync{fromSelf: true, bytes: size, full: true}
	case slices.Contains(bm.History, am.Gen) && usable(pr):
		return drbdSync{fromSelf: false, bytes: size, full: true}
	case aSlot.Bitmap != "" && aSlot.Bitmap == bSlot.Bitmap,
		slices.ContainsFunc(am.History, func(g string) bool { return slices.Contains(bm.History, g) }):
		return drbdSync{refuse: "split brain"}
	}
	return drbdSync{refuse: "unrelated data"}
}

// drbdHandshake brings a connection up: the two sides compare their generations and bitmaps
// and either are in sync, or one becomes the other's sync source for what it misses, or
// they refuse and go StandAlone.
func (s *Sim) drbdHandshake(h *host, r *drbdRes, c *drbdConn, peer *host, pr *drbdRes, pc *drbdConn, at time.Time) {
	am, bm := s.drbdMetaOf(r), s.drbdMetaOf(pr)
	c.Connected, pc.Connected = true, true
	s.eventData(at, "drbd.connected", h.InstanceID, drbdPeerData(r.Name, peer.InstanceID), "drbd %s on %s connected to %s", r.Name, h.Hostname, peer.Hostname)
	if am == nil || bm == nil {
		return
	}
	d := s.drbdCompare(r, pr, am, bm, c, pc)
	src, dst, srcHost, dstHost := r, pr, h, peer
	if !d.fromSelf {
		src, dst, srcHost, dstHost = pr, r, peer, h
	}
	if d.refuse == "" && !d.none && dst.Role == "Primary" {
		d.refuse = "the primary would become a sync target"
	}
	switch {
	case d.refuse != "":
		c.Connected, pc.Connected = false, false
		c.StandAlone, pc.StandAlone = d.refuse, d.refuse
		switch d.refuse {
		case "split brain":
			s.splitBrain(at, h, r, peer, pr, "diverged", "both sides hold data the other lacks: Split-Brain detected but unresolved, dropping connection")
		case "unrelated data":
			s.eventData(at, "drbd.unrelated-data", h.InstanceID, drbdPeerData(r.Name, peer.InstanceID), "drbd %s on %s and %s: unrelated data, aborting! (StandAlone)", r.Name, h.Hostname, peer.Hostname)
		default:
			s.eventData(at, "drbd.connect-refused", h.InstanceID, drbdPeerData(r.Name, peer.InstanceID), "drbd %s on %s and %s: %s; aborting to prevent data corruption (StandAlone)", r.Name, h.Hostname, peer.Hostname, d.refuse)
		}
	case d.none:
		if r.Disk != "Inconsistent" && pr.Disk != "Inconsistent" && am.Gen != drbdJustCreated {
			am.slot(pr.NodeID).reset()
			bm.slot(r.NodeID).reset()
			// The same generation and nothing written apart: an Outdated side has the
			// UpToDate side's data.
			for _, pair := range [][2]*drbdRes{{r, pr}, {pr, r}} {
				if pair[0].Disk == "Outdated" && pair[1].Disk == "UpToDate" {
					pair[0].Disk = "UpToDate"
					s.saveDRBDMeta(pair[0])
				}
			}
		}
	case dst.Syncing && dst.SyncFrom != src.NodeID:
		// DRBD resyncs a disk from one peer at a time; this one waits (PausedSyncT) and the
		// first resync, once done, leaves the two in sync.
	default:
		s.drbdStartResync(srcHost, src, dstHost, dst, d.bytes, d.full, at)
	}
}

// drbdStartResync makes dst the sync target of src for bytes.
func (s *Sim) drbdStartResync(srcHost *host, src *drbdRes, dstHost *host, dst *drbdRes, bytes float64, full bool, at time.Time) {
	sm, dm := s.drbdMetaOf(src), s.drbdMetaOf(dst)
	sl := sm.slot(dst.NodeID)
	sl.Bitmap, sl.OutOfSync, sl.Cleared = dm.Gen, bytes, false
	dst.Disk, dst.Syncing, dst.SyncFrom, dst.ResyncTotal, dst.SyncSince = "Inconsistent", true, src.NodeID, bytes, at
	dm.Disk = "Inconsistent"
	kind := "the blocks changed since they last shared a generation"
	if full {
		kind = "the whole device"
	}
	s.eventData(at, "drbd.resync-started", dstHost.InstanceID, drbdPeerData(dst.Name, srcHost.InstanceID), "drbd %s on %s resyncing %.2f GiB (%s) from %s at up to %d MB/s", dst.Name, dstHost.Hostname, bytes/gib, kind, srcHost.Hostname, drbdResyncRate/mb)
	if bytes <= 0 {
		s.drbdSynced(dstHost, dst, srcHost, src, at)
	}
}

// drbdRenegotiate runs the handshake again on r's connected links where the two sides no
// longer agree (a forced primary, a new generation): what DRBD does when it exchanges UUIDs
// after a state change.
func (s *Sim) drbdRenegotiate(h *host, r *drbdRes, at time.Time) {
	am := s.drbdMetaOf(r)
	for _, c := range r.Peers {
		if !c.Connected {
			continue
		}
		peer, pr, pc, linked := s.drbdLinked(h, r, c)
		bm := s.drbdMetaOf(pr)
		if !linked || am == nil || bm == nil || (r.Syncing && r.SyncFrom == c.NodeID) || (pr.Syncing && pr.SyncFrom == r.NodeID) {
			continue
		}
		if am.Gen != bm.Gen || r.Disk == "Inconsistent" || pr.Disk == "Inconsistent" {
			s.drbdHandshake(h, r, c, peer, pr, pc, at)
		}
	}
}

// drbdConnectedPeers are the resources r replicates to now, with a disk.
func (s *Sim) drbdConnectedPeers(r *drbdRes) []*drbdRes {
	var out []*drbdRes
	for _, c := range r.Peers {
		if !c.Connected {
			continue
		}
		if _, q := s.drbdPeerOf(c, r.Name); q != nil && q.Up && q.Disk != "Diskless" {
			out = append(out, q)
		}
	}
	return out
}

// drbdNewGeneration starts a new data generation on a Primary and the peers it replicates to
// (DRBD 9's rotation of the current UUID into the bitmaps): every slot of a peer that is away
// and has no generation yet gets the old one, so its bitmap counts from here — or, with
// clearBitmap, every such slot is cleared instead and counts from here with no generation,
// for the copy a truck-based replication ships.
func (s *Sim) drbdNewGeneration(r *drbdRes, clearBitmap bool) {
	gen := s.newGeneration()
	for _, q := range append([]*drbdRes{r}, s.drbdConnectedPeers(r)...) {
		m := s.drbdMetaOf(q)
		if m == nil {
			continue
		}
		old := m.Gen
		m.newGen(gen)
		m.RotatePending = false
		for _, c := range q.Peers {
			if c.Connected {
				continue
			}
			sl := m.slot(c.NodeID)
			switch {
			case clearBitmap:
				sl.Bitmap, sl.OutOfSync, sl.Cleared = "", 0, true
			case sl.Bitmap == "":
				sl.Bitmap, sl.Cleared = old, false
			}
		}
	}
}

// drbdWrite is a write of bytes through the Primary r: on its disk and on every peer's it
// replicates to, and in every bitmap slot of a peer that does not get it.
func (s *Sim) drbdWrite(r *drbdRes, bytes float64) {
	if bytes <= 0 {
		return
	}
	m := s.drbdMetaOf(r)
	if m == nil || r.Disk != "UpToDate" {
		return
	}
	if m.RotatePending {
		s.drbdNewGeneration(r, false)
	}
	for _, q := range append([]*drbdRes{r}, s.drbdConnectedPeers(r)...) {
		qm, v := s.drbdMetaOf(q), s.st.Volumes[q.VolumeID]
		if qm == nil || v == nil {
			continue
		}
		v.written(bytes)
		size := float64(v.SizeGiB) * gib
		for _, c := range q.Peers {
			if !c.Connected {
				sl := qm.slot(c.NodeID)
				sl.OutOfSync = min(sl.OutOfSync+bytes, size)
			}
		}
	}
}
