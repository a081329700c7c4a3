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
	OutOfSync   float64 `json:"out_of_sync,omitempty"` // bytes the peer wrote while we were apart
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

// saveDRBDMeta writes the resource's disk state into its metadata, as DRBD does on every
// state change; the simulation does it when the resource leaves the kernel.
func (s *Sim) saveDRBDMeta(r *drbdRes) {
	if m := s.drbdMetaOf(r); m != nil && r.Disk != "Diskless" {
		m.Disk = r.Disk
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
// to (DRBD is evaluated at settle points), resync and out-of-sync accumulate over the interval.
func (s *Sim) advanceDRBD(from, to time.Time) {
	dt := to.Sub(from).Seconds()
	if dt < 0 {
		dt = 0
	}
	for _, hid := range sortedKeys(s.st.Hosts) {
		h := s.st.Hosts[hid]
		for _, name := range sortedKeys(h.DRBD) {
			r := h.DRBD[name]
			peer, pr, linked := s.drbdLinked(h, r)
			if linked != r.Connected {
				r.Connected = linked
				if linked {
					s.drbdConnected(h, r, peer, pr, to)
				} else if r.Up {
					s.event(to, "drbd.disconnected", h.InstanceID, "drbd %s on %s lost its peer %s", name, h.Hostname, r.Peer)
					// Fencing: a primary that is still alive marks the peer it lost Outdated.
					// When the primary itself died, the secondary's data stays UpToDate.
					if r.Role == "Secondary" && r.Disk == "UpToDate" && pr != nil && pr.Role == "Primary" && s.reachable(r.Peer) {
						r.Disk = "Outdated"
					}
					if r.Disk == "Inconsistent" && r.ResyncTotal > 0 {
						r.OutOfSync = r.ResyncTotal - r.ResyncDone
						r.ResyncTotal, r.ResyncDone = 0, 0
					}
				}
				s.markDirty()
				continue // the change happened at to: the interval before it had the old state
			}
			switch {
			case !linked && pr != nil && pr.Up && pr.Role == "Primary" && s.reachable(r.Peer) &&
				!(r.Role == "Primary" && s.reachable(h.InstanceID)):
				// A live primary keeps writing while we are away (down, cut off, or a failed
				// old primary): that is what the resync must move when we reconnect.
				r.OutOfSync = min(r.OutOfSync+drbdChangeRate*dt, s.resSize(r))
			case linked && r.Disk == "Inconsistent" && pr != nil && pr.Disk == "UpToDate" && r.ResyncTotal > 0:
				r.ResyncDone += drbdResyncRate * dt
				if r.ResyncDone >= r.ResyncTotal {
					at := to.Add(-time.Duration((r.ResyncDone - r.ResyncTotal) / drbdResyncRate * float64(time.Second))).Truncate(time.Millisecond)
					r.Disk, r.ResyncTotal, r.ResyncDone, r.OutOfSync = "UpToDate", 0, 0, 0
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
}

// drbdConnected starts a resync when one side lags: the changed blocks after a disconnect,
// the whole device for a fresh replica.
func (s *Sim) drbdConnected(h *host, r *drbdRes, peer *host, pr *drbdRes, at time.Time) {
	s.event(at, "drbd.connected", h.InstanceID, "drbd %s on %s connected to %s", r.Name, h.Hostname, peer.Hostname)
	if pr.Disk != "UpToDate" {
		return
	}
	switch {
	case r.Disk == "Inconsistent" || r.Disk == "Diskless":
		total := r.OutOfSync
		if total == 0 {
			total = s.resSize(r)
		}
		r.Disk, r.ResyncTotal, r.ResyncDone, r.OutOfSync = "Inconsistent", total, 0, 0
	case r.Disk == "Outdated" || (r.Role == "Secondary" && r.OutOfSync > 0):
		total := max(r.OutOfSync, mb)
		r.Disk, r.ResyncTotal, r.ResyncDone, r.OutOfSync = "Inconsistent", total, 0, 0
	default:
		return
	}
	s.event(at, "drbd.resync-started", h.InstanceID, "drbd %s on %s resyncing %.1f GiB from %s at %d MB/s", r.Name, h.Hostname, r.ResyncTotal/gib, peer.Hostname, drbdResyncRate/mb)
}

// drbdStatus renders `drbdadm status` in DRBD 9's format; the connection is named after the
// peer's hostname, as DRBD names it.
func (s *Sim) drbdStatus(h *host, r *drbdRes) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s role:%s\n  disk:%s\n", r.Name, r.Role, r.Disk)
	peerName := r.Peer
	peer, pr, linked := s.drbdLinked(h, r)
	switch {
	case r.Configured:
		peerName = r.PeerName
	case peer != nil:
		peerName = peer.Hostname
	}
	if peerName == "" {
		return b.String()
	}
	if !linked || pr == nil {
		state := "Connecting"
		if r.AdminDown {
			state = "StandAlone"
		}
		fmt.Fprintf(&b, "  %s connection:%s\n", peerName, state)
		return b.String()
	}
	fmt.Fprintf(&b, "  %s role:%s\n", peerName, pr.Role)
	switch {
	case r.Disk == "Inconsistent" && pr.Disk == "UpToDate" && r.ResyncTotal > 0:
		fmt.Fprintf(&b, "    replication:SyncTarget peer-disk:UpToDate done:%.2f\n", pct(r.ResyncDone, r.ResyncTotal))
	case pr.Disk == "Inconsistent" && r.Disk == "UpToDate" && pr.ResyncTotal > 0:
		fmt.Fprintf(&b, "    replication:SyncSource peer-disk:Inconsistent done:%.2f\n", pct(pr.ResyncDone, pr.ResyncTotal))
	default:
		fmt.Fprintf(&b, "    replication:Established peer-disk:%s\n", pr.Disk)
	}
	return b.String()
}

func pct(done, total float64) float64 {
	if total <= 0 {
		return 100
	}
	return min(99.99, done/total*100)
}
