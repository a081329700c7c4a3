// DRBD: the resources of a host, their replication links to any number of peers (DRBD 9), the
// data generations and per-peer bitmaps on each disk that decide, when two nodes connect,
// whether and what to resync. The handshake, resync and writes are in drbd_resync.go, what
// `drbdadm status` shows of it all in drbdstatus.go; drbdadm itself is in drbdadm.go, its
// metadata dump and drbdmeta in drbdmeta.go, the configuration in drbdconf.go.
//
// The generation identifiers follow DRBD's (the DRBD 9 user's guide, "DRBD internals"): each
// disk's metadata holds its current data generation (a UUID), older ones (history) and, for
// every peer node, the generation it last shared with that peer (the bitmap UUID) with the
// bytes written here since that the peer lacks (the bitmap). A node that is away is tracked in
// the bitmap of every node that keeps writing (the primary, and the peers it replicates to),
// so when it comes back only those blocks move; a disk seeded from a copy of a peer's disk at a
// known point (truck-based replication: `new-current-uuid --clear-bitmap`, copy, then
// `new-current-uuid`) resyncs only what changed since. Unrelated data, and two nodes that both
// wrote while apart (split brain), refuse to connect (StandAlone), as DRBD does by default.

package cloudsim

import (
	"fmt"
	"hash/fnv"
	"slices"
	"strings"
	"time"

	"github.com/anyops/anyops"
)

// drbdRes is a DRBD resource as the kernel of one host holds it. A resource comes from the
// configuration files (drbdconf.go) through drbdadm up — or, for fixtures, from the tags of
// its volume (hostAttached). What persists across a down lives in the volume's metadata
// (blockData.DRBD).
type drbdRes struct {
	Name     string `json:"name"`
	Minor    int    `json:"minor"`
	VolumeID string `json:"volume_id"`
	// Configured resources come from the files: this node's id and address, and a
	// connection per peer of the file.
	Configured bool   `json:"configured,omitempty"`
	NodeID     int    `json:"node_id"`
	LocalAddr  string `json:"local_addr,omitempty"`
	Up         bool   `json:"up"`
	AdminDown  bool   `json:"admin_down,omitempty"` // drbdadm disconnect
	Role       string `json:"role"`                 // Primary, Secondary
	// PrimarySince is when it last became Primary: its writes count from then.
	PrimarySince time.Time `json:"primary_since,omitzero"`
	// AllowTwoPrimaries is the resource's net { allow-two-primaries yes; }.
	AllowTwoPrimaries bool `json:"allow_two_primaries,omitempty"`
	// Lacks is what a promotion of this side left behind (acknowledged data it did not
	// have), logged as data.lost once it serves; it lives in the metadata too.
	Lacks float64 `json:"lacks_bytes,omitempty"`
	// SplitBrainSince is when a split brain of this resource was logged; zero once resolved.
	SplitBrainSince time.Time `json:"split_brain_since,omitzero"`
	Disk            string    `json:"disk"` // UpToDate, Inconsistent, Outdated, Diskless
	// Peers are the connections, by node id.
	Peers []*drbdConn `json:"peers"`
	// A resync into this disk runs from one peer (SyncFrom) at a time; ResyncTotal is what it
	// had to move when it started (the source's bitmap for us holds what is left).
	Syncing     bool      `json:"syncing,omitempty"`
	SyncFrom    int       `json:"sync_from,omitempty"`
	ResyncTotal float64   `json:"resync_total,omitempty"`
	SyncSince   time.Time `json:"sync_since,omitzero"` // when it started: it moves data from then

}

// drbdConn is one connection of a resource to a peer node.
type drbdConn struct {
	NodeID int    `json:"node_id"`
	Name   string `json:"name"` // the peer's on-section name, which names the connection
	Addr   string `json:"addr,omitempty"`
	// Instance is the peer's instance id: from the anyops:drbd-peer tag, or for a configured
	// resource the instance its address belongs to (looked up at every link check).
	Instance  string `json:"instance,omitempty"`
	Connected bool   `json:"connected"`
	// StandAlone says why the last handshake refused to connect (split brain, unrelated
	// data); the connection stays down until drbdadm connect or adjust tries again.
	StandAlone    string `json:"standalone,omitempty"`
	DiscardMyData bool   `json:"discard_my_data,omitempty"` // connect --discard-my-data
}

// drbdMeta is DRBD's internal metadata on a backing volume: what drbdadm create-md writes,
// get-gi and dump-md read, and what travels with the volume when it is snapshotted.
type drbdMeta struct {
	NodeID  int      `json:"node_id"`
	Gen     string   `json:"gen"`               // current data generation; drbdJustCreated until data exists
	History []string `json:"history,omitempty"` // older generations, newest first
	Disk    string   `json:"disk"`              // the disk state last recorded: Inconsistent, UpToDate, Outdated
	// Peers is a bitmap slot per peer node id.
	Peers map[int]*drbdSlot `json:"peers,omitempty"`
	// RotatePending: a Primary lost a peer; its next write starts a new data generation.
	RotatePending bool `json:"rotate_pending,omitempty"`
	// Lacks: what a promotion left behind, not yet logged as lost (drbdRes.Lacks).
	Lacks float64 `json:"lacks_bytes,omitempty"`
}

// drbdSlot is one peer's bitmap on a disk.
type drbdSlot struct {
	Index int `json:"index"` // the bitmap index dump-md shows
	// Bitmap is the data generation this peer last shared with us; "" when it never did (a
	// new node: "day 0", a full sync) or after --clear-bitmap.
	Bitmap string `json:"bitmap,omitempty"`
	// OutOfSync is what was written here since, that the peer lacks, in bytes.
	OutOfSync float64 `json:"out_of_sync,omitempty"`
	// Cleared: the bitmap was cleared (new-current-uuid --clear-bitmap) while the peer was
	// away, so its bits count from that known point even without a generation. A slot with
	// neither is "day 0": the peer never shared data with us, and only a full sync is safe.
	Cleared bool `json:"cleared,omitempty"`
}

// known is whether the slot's bits tell what the peer lacks (else only a full sync does).
func (sl *drbdSlot) known() bool { return sl.Bitmap != "" || sl.Cleared }

// reset empties the slot: the peer has all we have.
func (sl *drbdSlot) reset() { *sl = drbdSlot{Index: sl.Index} }

// drbdJustCreated is the current UUID create-md writes (DRBD's UUID_JUST_CREATED): nothing has
// been written on either side of a brand new pair yet.
const drbdJustCreated = "0000000000000004"

// drbdHistoryLen is how many older generations the metadata keeps.
const drbdHistoryLen = 4

func (m *drbdMeta) slot(node int) *drbdSlot {
	if m.Peers == nil {
		m.Peers = map[int]*drbdSlot{}
	}
	sl := m.Peers[node]
	if sl == nil {
		sl = &drbdSlot{Index: len(m.Peers)}
		m.Peers[node] = sl
	}
	return sl
}

// newGen makes gen the current generation, the old one history.
func (m *drbdMeta) newGen(gen string) {
	if m.Gen != "" && m.Gen != drbdJustCreated {
		m.History = append([]string{m.Gen}, m.History...)
		if len(m.History) > drbdHistoryLen {
			m.History = m.History[:drbdHistoryLen]
		}
	}
	m.Gen = gen
}

func (m *drbdMeta) clone() *drbdMeta {
	c := *m
	c.History = slices.Clone(m.History)
	c.Peers = map[int]*drbdSlot{}
	for n, sl := range m.Peers {
		cp := *sl
		c.Peers[n] = &cp
	}
	return &c
}

func (r *drbdRes) device() string { return fmt.Sprintf("/dev/drbd%d", r.Minor) }

func (r *drbdRes) conn(node int) *drbdConn {
	for _, c := range r.Peers {
		if c.NodeID == node {
			return c
		}
	}
	return nil
}

// newDRBDRes makes the resource a volume's tags configure (fixtures): the primary is node 0,
// the secondary node 1.
func (s *Sim) newDRBDRes(h *host, name string, v *volume, primary bool) *drbdRes {
	peer, _ := v.Tags.get(anyops.TagDRBDPeer)
	self, other := 1, 0
	if primary {
		self, other = 0, 1
	}
	r := &drbdRes{Name: name, Minor: len(h.DRBD), VolumeID: v.ID, NodeID: self, Role: "Secondary", Disk: "Diskless",
		Peers: []*drbdConn{{NodeID: other, Instance: peer}}}
	h.DRBD[name] = r
	return r
}

// drbdMetaOf is the metadata on a resource's backing volume, nil when it has none.
func (s *Sim) drbdMetaOf(r *drbdRes) *drbdMeta {
	if r == nil {
		return nil
	}
	if v := s.st.Volumes[r.VolumeID]; v != nil {
		return v.Data.DRBD
	}
	return nil
}

// saveDRBDMeta writes the resource's disk state into its metadata, as DRBD does on every
// state change; the simulation does it when the resource leaves the kernel.
func (s *Sim) saveDRBDMeta(r *drbdRes) {
	if m := s.drbdMetaOf(r); m != nil && r.Disk != "Diskless" {
		m.Disk, m.Lacks = r.Disk, r.Lacks
	}
}

// newGeneration is a fresh data generation UUID, as DRBD makes one when data starts to
// differ from what the peers have.
func (s *Sim) newGeneration() string {
	s.st.Counter++
	h := fnv.New64a()
	fmt.Fprintf(h, "%d/%d/drbd-generation", s.st.Seed, s.st.Counter)
	return fmt.Sprintf("%016X", h.Sum64()|1)
}

// fixtureGeneration is the data generation both sides of a fixture pair that starts in sync
// share: derived from the resource's name, so each side finds the same one.
func fixtureGeneration(resource string) string {
	h := fnv.New64a()
	fmt.Fprintf(h, "fixture/%s", resource)
	return fmt.Sprintf("%016X", h.Sum64()|1)
}

// instanceByIP is the live instance with a private address, or nil.
func (s *Sim) instanceByIP(ip string) *instance {
	for _, id := range sortedKeys(s.st.Instances) {
		if in := s.st.Instances[id]; in.PrivateIP == ip && in.State != stateTerminated {
			return in
		}
	}
	return nil
}

func addrIP(addr string) string {
	ip, _, _ := strings.Cut(addr, ":")
	return ip
}

// drbdLinked is whether the connection c of resource r on host a replicates right now, with
// the peer's host, resource and its connection back to us. A configured connection goes to
// the address of the peer's on section: whichever instance has that address now is the peer,
// and the link forms only when both sides' files agree on both addresses and node ids and
// each side's own address is its host's.
func (s *Sim) drbdLinked(a *host, r *drbdRes, c *drbdConn) (*host, *drbdRes, *drbdConn, bool) {
	if r.Configured {
		c.Instance = "" // a cache of the lookup by address
		if in := s.instanceByIP(addrIP(c.Addr)); in != nil {
			c.Instance = in.ID
		}
	}
	b := s.st.Hosts[c.Instance]
	if b == nil {
		return nil, nil, nil, false
	}
	pr := b.DRBD[r.Name]
	if pr == nil {
		return b, nil, nil, false
	}
	pc := pr.conn(r.NodeID)
	agree := pc != nil && pr.NodeID == c.NodeID
	if r.Configured {
		self := s.st.Instances[a.InstanceID]
		agree = agree && pr.Configured && pc.Addr == r.LocalAddr && pr.LocalAddr == c.Addr &&
			self != nil && addrIP(r.LocalAddr) == self.PrivateIP
	} else {
		agree = agree && pc.Instance == a.InstanceID
	}
	ok := agree && r.Up && pr.Up && !r.AdminDown && !pr.AdminDown && c.StandAlone == "" && pc.StandAlone == "" &&
		s.reachable(a.InstanceID) && s.reachable(b.InstanceID) &&
		!s.drbdDisconnected(a.InstanceID, r.Name) && !s.drbdDisconnected(b.InstanceID, r.Name)
	return b, pr, pc, ok
}

func (s *Sim) resSize(r *drbdRes) float64 {
	if v := s.st.Volumes[r.VolumeID]; v != nil {
		return float64(v.SizeGiB) * gib
	}
	return 0
}

// drbdPeerOf is the resource and host at the other end of a connection, linked or not.
func (s *Sim) drbdPeerOf(c *drbdConn, name string) (*host, *drbdRes) {
	b := s.st.Hosts[c.Instance]
	if b == nil {
		return nil, nil
	}
	return b, b.DRBD[name]
}

// advanceDRBD moves every replication link from from to to: resyncs progress over the
// interval with the links as they were, then connection changes take effect at to (DRBD is
// evaluated at settle points).
func (s *Sim) advanceDRBD(from, to time.Time) {
	dt := to.Sub(from).Seconds()
	s.drbdTwoPrimaries(to) // before links form: two live primaries are what the split brain is
	for _, hid := range sortedKeys(s.st.Hosts) {
		h := s.st.Hosts[hid]
		for _, name := range sortedKeys(h.DRBD) {
			if r := h.DRBD[name]; r.Syncing {
				if d := min(dt, to.Sub(r.SyncSince).Seconds()); d > 0 {
					s.advanceResync(h, r, to, d)
				}
			}
		}
	}
	for _, hid := range sortedKeys(s.st.Hosts) {
		h := s.st.Hosts[hid]
		for _, name := range sortedKeys(h.DRBD) {
			r := h.DRBD[name]
			for _, c := range r.Peers {
				peer, pr, pc, linked := s.drbdLinked(h, r, c)
				if linked == c.Connected {
					continue
				}
				if linked {
					s.drbdHandshake(h, r, c, peer, pr, pc, to)
				} else {
					s.drbdLostPeer(h, r, c, pr, to)
				}
				s.markDirty()
			}
		}
	}
	s.drbdTwoPrimaries(to)
}

// drbdTwoPrimaries logs a split brain when two nodes of a resource are Primary and alive
// without allow-two-primaries between them: each acknowledges writes the other never sees.
func (s *Sim) drbdTwoPrimaries(at time.Time) {
	for _, hid := range sortedKeys(s.st.Hosts) {
		h := s.st.Hosts[hid]
		for _, name := range sortedKeys(h.DRBD) {
			r := h.DRBD[name]
			for _, c := range r.Peers {
				peer, pr, _, linked := s.drbdLinked(h, r, c)
				if peer == nil || pr == nil || h.InstanceID > peer.InstanceID || linked && r.AllowTwoPrimaries {
					continue
				}
				if r.Up && pr.Up && r.Role == "Primary" && pr.Role == "Primary" && s.reachable(h.InstanceID) && s.reachable(peer.InstanceID) {
					s.splitBrain(at, h, r, peer, pr, "two-primaries", "both sides are Primary and serve writes the other does not see")
				}
			}
		}
	}
}

// splitBrain logs a split brain of a pair of nodes once per episode: drills count it as an
// interlock broken.
func (s *Sim) splitBrain(at time.Time, h *host, r *drbdRes, peer *host, pr *drbdRes, kind, why string) {
	if !r.SplitBrainSince.IsZero() || !pr.SplitBrainSince.IsZero() {
		return
	}
	r.SplitBrainSince, pr.SplitBrainSince = at, at
	s.eventData(at, "drbd.split-brain", h.InstanceID, map[string]any{"resource": r.Name, "peer": peer.InstanceID, "kind": kind,
		"hosts": []string{h.InstanceID, peer.InstanceID}}, "drbd %s: split brain between %s and %s: %s", r.Name, h.Hostname, peer.Hostname, why)
}

// drbdPromoted accounts a promotion: what the new Primary lacks of the data a peer holds —
// the rest of a resync into it, a peer's writes while apart — is left behind, to be logged as
// data.lost when the resource serves.
func (s *Sim) drbdPromoted(r *drbdRes) {
	lacks := 0.0
	for _, c := range r.Peers {
		if c.Connected && !(r.Syncing && r.SyncFrom == c.NodeID) {
			continue // a connected peer in sync gives it what it lacks
		}
		if _, pr := s.drbdPeerOf(c, r.Name); pr != nil {
			if pm := s.drbdMetaOf(pr); pm != nil && pm.Peers[r.NodeID] != nil {
				lacks = max(lacks, pm.Peers[r.NodeID].OutOfSync)
			}
		}
	}
	r.Lacks += lacks
}

// drbdServes logs data.lost for each DRBD resource under a device that now serves with data
// its promotion left behind.
func (s *Sim) drbdServes(h *host, bd blockDev, at time.Time) {
	devs := []blockDev{bd}
	if bd.array != nil {
		devs = bd.members
	}
	for _, d := range devs {
		if r := d.drbd; r != nil && r.Lacks > 0 {
			s.eventData(at, "data.lost", h.InstanceID, map[string]any{"resource": r.Name, "server": h.InstanceID, "bytes": int64(r.Lacks)},
				"drbd %s on %s serves without %.0f bytes its peer had acknowledged", r.Name, h.Hostname, r.Lacks)
			r.Lacks = 0
			s.saveDRBDMeta(r)
			s.markDirty()
		}
	}
}

// drbdPeerData is the structured part of an event about one connection of a resource: the
// resource and the peer's instance, for the drills' replay (drills/drbd.go), which must not
// depend on the wording of the message. The event's resource is this side's instance.
func drbdPeerData(resource, peerInstance string) map[string]any {
	return map[string]any{"resource": resource, "peer": peerInstance}
}

// drbdLostPeer takes a connection down. This side remembers the generation it last shared
// with the peer, so that its bitmap tells what the peer misses; a Primary starts a new
// generation at its next write; a resync from that peer pauses (the source's bitmap keeps
// what is left). Fencing: a primary that is still alive marks the peer it lost Outdated —
// when the primary itself died, the secondary's data stays UpToDate and can take over at once.
func (s *Sim) drbdLostPeer(h *host, r *drbdRes, c *drbdConn, pr *drbdRes, at time.Time) {
	c.Connected = false
	if !r.Up {
		return
	}
	s.eventData(at, "drbd.disconnected", h.InstanceID, drbdPeerData(r.Name, c.Instance), "drbd %s on %s lost its peer %s", r.Name, h.Hostname, c.Instance)
	if r.Syncing && r.SyncFrom == c.NodeID {
		r.Syncing = false
	}
	m := s.drbdMetaOf(r)
	if m == nil {
		return
	}
	if sl := m.slot(c.NodeID); sl.Bitmap == "" && r.Disk != "Inconsistent" {
		sl.Bitmap = m.Gen
	}
	if r.Role == "Primary" {
		m.RotatePending = true
	}
	if r.Role == "Secondary" && r.Disk == "UpToDate" && pr != nil && pr.Role == "Primary" && s.reachable(c.Instance) {
		r.Disk = "Outdated"
		m.Disk = "Outdated"
	}
}
