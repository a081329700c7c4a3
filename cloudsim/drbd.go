// DRBD: the resources of a host, their replication links and resyncs, and what `drbdadm
// status` shows of them. drbdadm itself is in drbdadm.go, the configuration in drbdconf.go.

package cloudsim

import (
	"fmt"
	"hash/fnv"
	"strings"
	"time"

	"github.com/anyops/anyops"
)

// drbdRes is a DRBD resource as the kernel of one host holds it. A resource comes from the
// configuration files (drbdconf.go) through drbdadm up — or, for fixtures, from the tags of
// its volume (hostAttached). What persists across a down lives in the volume's metadata
// (blockData.DRBD); the disk state is written back there when the resource goes down.
type drbdRes struct {
	Name     string `json:"name"`
	Minor    int    `json:"minor"`
	VolumeID string `json:"volume_id"`
	// Peer is the peer's instance id: from the anyops:drbd-peer tag, or for a configured
	// resource the instance its peer address belongs to (looked up at every link check).
	Peer string `json:"peer"`
	// Configured resources come from the files: the peer's on-section name (which names the
	// connection), both addresses (ip:port) and node ids.
	Configured  bool    `json:"configured,omitempty"`
	PeerName    string  `json:"peer_name,omitempty"`
	LocalAddr   string  `json:"local_addr,omitempty"`
	PeerAddr    string  `json:"peer_addr,omitempty"`
	NodeID      int     `json:"node_id,omitempty"`
	Up          bool    `json:"up"`
	AdminDown   bool    `json:"admin_down,omitempty"` // drbdadm disconnect
	Role        string  `json:"role"`                 // Primary, Secondary
	Disk        string  `json:"disk"`                 // UpToDate, Inconsistent, Outdated, Diskless
	Connected   bool    `json:"connected"`
	ResyncTotal float64 `json:"resync_total,omitempty"` // bytes, while SyncTarget
	ResyncDone  float64 `json:"resync_done,omitempty"`
	// The data accounting, in bytes (DRBD's bitmaps): Ahead is what this side acknowledged as
	// Primary that its peer does not have — its writes while apart, and the rest of an
	// interrupted resync it was the source of; Behind is what this side knows it lacks, the
	// rest of an interrupted resync it was the target of; Lacks is what a promotion of this
	// side left behind (the acknowledged data it did not have), logged as data.lost once it
	// serves. They live in the metadata on the volume too (drbdMeta).
	Ahead  float64 `json:"ahead_bytes,omitempty"`
	Behind float64 `json:"behind_bytes,omitempty"`
	Lacks  float64 `json:"lacks_bytes,omitempty"`
	// AllowTwoPrimaries is the resource's net { allow-two-primaries yes; }.
	AllowTwoPrimaries bool `json:"allow_two_primaries,omitempty"`
	// DiscardMyData: drbdadm connect --discard-my-data; the next connect drops this side's
	// changes and resyncs it from the peer (how a split brain is resolved).
	DiscardMyData bool `json:"discard_my_data,omitempty"`
	// SplitBrainSince is when a split brain of the pair was logged; zero once resolved.
	SplitBrainSince time.Time `json:"split_brain_since,omitzero"`
}

func (r *drbdRes) device() string { return fmt.Sprintf("/dev/drbd%d", r.Minor) }

// newDRBDRes makes the resource a volume's tags configure (fixtures).
func (s *Sim) newDRBDRes(h *host, name string, v *volume) *drbdRes {
	peer, _ := v.Tags.get(anyops.TagDRBDPeer)
	r := &drbdRes{Name: name, Minor: len(h.DRBD), VolumeID: v.ID, Peer: peer, Role: "Secondary", Disk: "Diskless"}
	h.DRBD[name] = r
	return r
}

// drbdMetaOf is the metadata on a resource's backing volume, nil when it has none.
func (s *Sim) drbdMetaOf(r *drbdRes) *drbdMeta {
	if v := s.st.Volumes[r.VolumeID]; v != nil {
		return v.Data.DRBD
	}
	return nil
}

// saveDRBDMeta writes the resource's disk state and bitmaps into its metadata, as DRBD does
// on every state change; the simulation does it when the resource leaves the kernel.
func (s *Sim) saveDRBDMeta(r *drbdRes) {
	if m := s.drbdMetaOf(r); m != nil && r.Disk != "Diskless" {
		m.Disk, m.Ahead, m.Behind, m.Lacks = r.Disk, r.Ahead, r.Behind, r.Lacks
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

// drbdLinked is whether resource name replicates between a and its peer right now.
// A configured resource connects to the address of its peer's on section: whichever instance
// has that address now is the peer, and the link forms only when both sides' files agree on
// both addresses and each side's own address is its host's.
func (s *Sim) drbdLinked(a *host, r *drbdRes) (*host, *drbdRes, bool) {
	if r.Configured {
		r.Peer = "" // a cache of the lookup by address
		if in := s.instanceByIP(addrIP(r.PeerAddr)); in != nil {
			r.Peer = in.ID
		}
	}
	b := s.st.Hosts[r.Peer]
	if b == nil {
		return nil, nil, false
	}
	pr := b.DRBD[r.Name]
	if pr == nil {
		return b, nil, false
	}
	agree := pr.Peer == a.InstanceID
	if r.Configured {
		self := s.st.Instances[a.InstanceID]
		agree = pr.Configured && pr.PeerAddr == r.LocalAddr && pr.LocalAddr == r.PeerAddr &&
			self != nil && addrIP(r.LocalAddr) == self.PrivateIP
	}
	ok := r.Up && pr.Up && !r.AdminDown && !pr.AdminDown && agree &&
		s.reachable(a.InstanceID) && s.reachable(b.InstanceID) &&
		!s.drbdDisconnected(a.InstanceID, r.Name) && !s.drbdDisconnected(b.InstanceID, r.Name)
	return b, pr, ok
}

func (s *Sim) resSize(r *drbdRes) float64 {
	if v := s.st.Volumes[r.VolumeID]; v != nil {
		return float64(v.SizeGiB) * gib
	}
	return 0
}

// advanceDRBD moves every replication link from from to to: connection changes take effect at
// to (DRBD is evaluated at settle points), resync and the data a Primary writes while apart
// accumulate over the interval.
func (s *Sim) advanceDRBD(from, to time.Time) {
	dt := to.Sub(from).Seconds()
	if dt < 0 {
		dt = 0
	}
	s.drbdTwoPrimaries(to) // before links form: two live primaries are what the split brain is
	for _, hid := range sortedKeys(s.st.Hosts) {
		h := s.st.Hosts[hid]
		for _, name := range sortedKeys(h.DRBD) {
			r := h.DRBD[name]
			peer, pr, linked := s.drbdLinked(h, r)
			if linked && !r.Connected && s.drbdRefuseConnect(h, r, peer, pr, to) {
				continue // StandAlone: the change happened at to
			}
			if linked != r.Connected {
				r.Connected = linked
				if linked {
					s.drbdConnected(h, r, peer, pr, to)
				} else if r.Up {
					s.drbdLinkLost(h, r, pr, to)
				}
				s.markDirty()
				continue // the change happened at to: the interval before it had the old state
			}
			switch {
			case !linked && r.Up && r.Role == "Primary" && s.reachable(h.InstanceID):
				// A live Primary keeps writing while its peer is away (down, cut off, or a
				// failed old primary): acknowledged here, missing there.
				r.Ahead = min(r.Ahead+drbdChangeRate*dt, s.resSize(r))
				s.markDirty()
			case linked && r.Disk == "Inconsistent" && pr != nil && pr.Disk == "UpToDate" && r.ResyncTotal > 0:
				r.ResyncDone += drbdResyncRate * dt
				if r.ResyncDone >= r.ResyncTotal {
					at := to.Add(-time.Duration((r.ResyncDone - r.ResyncTotal) / drbdResyncRate * float64(time.Second))).Truncate(time.Millisecond)
					r.Disk, r.ResyncTotal, r.ResyncDone, r.Behind = "UpToDate", 0, 0, 0
					r.SplitBrainSince, pr.SplitBrainSince = time.Time{}, time.Time{}
					// What the source wrote while we lagged is here now, and so is its
					// data generation.
					if dst, src := s.st.Volumes[r.VolumeID], s.st.Volumes[pr.VolumeID]; dst != nil && src != nil {
						dst.Data.copyContent(src.Data)
						if dst.Data.DRBD != nil && src.Data.DRBD != nil {
							dst.Data.DRBD.Gen, dst.Data.DRBD.Disk = src.Data.DRBD.Gen, "UpToDate"
						}
					}
					s.event(at, "drbd.synced", h.InstanceID, "drbd %s on %s is UpToDate with %s", name, h.Hostname, peer.Hostname)
				}
				s.markDirty()
			}
		}
	}
	s.drbdTwoPrimaries(to)
}

// drbdLinkLost is a link that went down: a primary that is still alive fences the peer it
// lost (Outdated), and an interrupted resync leaves its rest in both sides' bitmaps.
func (s *Sim) drbdLinkLost(h *host, r, pr *drbdRes, at time.Time) {
	s.event(at, "drbd.disconnected", h.InstanceID, "drbd %s on %s lost its peer %s", r.Name, h.Hostname, r.Peer)
	// When the primary itself died, the secondary's data stays UpToDate.
	if r.Role == "Secondary" && r.Disk == "UpToDate" && pr != nil && pr.Role == "Primary" && s.reachable(r.Peer) {
		r.Disk = "Outdated"
	}
	if r.Disk == "Inconsistent" && r.ResyncTotal > 0 {
		rest := r.ResyncTotal - r.ResyncDone
		r.Behind = max(r.Behind, rest)
		if pr != nil {
			pr.Ahead = max(pr.Ahead, rest)
		}
		r.ResyncTotal, r.ResyncDone = 0, 0
	}
}

// drbdRefuseConnect is DRBD's handshake refusing a connection, which leaves both sides
// StandAlone: a split brain (both sides hold acknowledged data the other lacks, and neither
// discards its own), or a current Primary that would have to become the sync target.
func (s *Sim) drbdRefuseConnect(h *host, r *drbdRes, peer *host, pr *drbdRes, at time.Time) bool {
	if r.DiscardMyData || pr.DiscardMyData {
		return false
	}
	switch {
	case r.Ahead > 0 && pr.Ahead > 0:
		r.AdminDown, pr.AdminDown = true, true
		s.splitBrain(at, h, r, peer, pr, "diverged", fmt.Sprintf("both sides hold data the other lacks (%.0f and %.0f bytes): Split-Brain detected but unresolved, dropping connection", r.Ahead, pr.Ahead))
	case r.Role == "Primary" && pr.Ahead > 0 && r.Ahead == 0:
		r.AdminDown, pr.AdminDown = true, true
		s.event(at, "drbd.connect-refused", h.InstanceID, "drbd %s on %s: the current Primary would become sync target of %s; aborting to prevent data corruption", r.Name, h.Hostname, peer.Hostname)
	default:
		return false
	}
	s.markDirty()
	return true
}

// splitBrain logs a split brain of the pair once per episode: drills count it as an
// interlock broken.
func (s *Sim) splitBrain(at time.Time, h *host, r *drbdRes, peer *host, pr *drbdRes, kind, why string) {
	if !r.SplitBrainSince.IsZero() || !pr.SplitBrainSince.IsZero() {
		return
	}
	r.SplitBrainSince, pr.SplitBrainSince = at, at
	s.eventData(at, "drbd.split-brain", h.InstanceID, map[string]any{"resource": r.Name, "kind": kind,
		"hosts": []string{h.InstanceID, peer.InstanceID}}, "drbd %s: split brain between %s and %s: %s", r.Name, h.Hostname, peer.Hostname, why)
}

// drbdTwoPrimaries logs a split brain when both sides of a pair are Primary and alive without
// allow-two-primaries: each acknowledges writes the other never sees.
func (s *Sim) drbdTwoPrimaries(at time.Time) {
	for _, hid := range sortedKeys(s.st.Hosts) {
		h := s.st.Hosts[hid]
		for _, name := range sortedKeys(h.DRBD) {
			r := h.DRBD[name]
			peer, pr, linked := s.drbdLinked(h, r)
			if peer == nil || pr == nil || h.InstanceID > peer.InstanceID || linked && r.AllowTwoPrimaries {
				continue
			}
			if r.Up && pr.Up && r.Role == "Primary" && pr.Role == "Primary" && s.reachable(h.InstanceID) && s.reachable(peer.InstanceID) {
				s.splitBrain(at, h, r, peer, pr, "two-primaries", "both sides are Primary and serve writes the other does not see")
			}
		}
	}
}

// drbdConnected starts a resync when this side lags: what the peer holds that it lacks (the
// peer's writes while apart, the rest of an interrupted resync), the whole device for a
// fresh replica. A side connecting with --discard-my-data drops its own changes first.
func (s *Sim) drbdConnected(h *host, r *drbdRes, peer *host, pr *drbdRes, at time.Time) {
	s.event(at, "drbd.connected", h.InstanceID, "drbd %s on %s connected to %s", r.Name, h.Hostname, peer.Hostname)
	if r.DiscardMyData {
		r.DiscardMyData, r.Ahead = false, 0
		if r.Disk == "UpToDate" {
			r.Disk = "Outdated"
		}
		s.event(at, "drbd.discard-my-data", h.InstanceID, "drbd %s on %s discards its changes and resyncs from %s", r.Name, h.Hostname, peer.Hostname)
	}
	if pr.Disk != "UpToDate" {
		return
	}
	total := max(pr.Ahead, r.Behind)
	switch {
	case r.Disk == "Inconsistent" || r.Disk == "Diskless":
		if r.Behind == 0 {
			total = s.resSize(r) // never in sync: the whole device; else the rest of a resync, and what came since
		}
	case r.Disk == "Outdated":
		total = max(total, mb)
	case r.Role == "Secondary" && total > 0:
	default:
		return
	}
	r.Disk, r.ResyncTotal, r.ResyncDone, r.Behind, pr.Ahead = "Inconsistent", total, 0, 0, 0
	s.event(at, "drbd.resync-started", h.InstanceID, "drbd %s on %s resyncing %.1f GiB from %s at %d MB/s", r.Name, h.Hostname, r.ResyncTotal/gib, peer.Hostname, drbdResyncRate/mb)
}

// drbdPromoted accounts a promotion: what the new Primary lacks of the data its peer
// acknowledged is left behind, to be logged as data.lost when the resource serves.
func (s *Sim) drbdPromoted(r, pr *drbdRes, linked bool) {
	lacks := r.Behind
	if r.ResyncTotal > 0 {
		lacks += r.ResyncTotal - r.ResyncDone
	}
	if pr != nil && !linked {
		lacks = max(lacks, pr.Ahead)
	}
	r.Lacks += lacks
	r.Behind = 0
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
			s.markDirty()
		}
	}
}

func pct(done, total float64) float64 {
	if total <= 0 {
		return 100
	}
	return min(99.99, done/total*100)
}
