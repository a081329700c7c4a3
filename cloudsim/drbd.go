// DRBD: the resources of a host, their replication links and resyncs, and drbdadm.

package cloudsim

import (
	"fmt"
	"strings"
	"time"

	"github.com/anyops/anyops"
)

type drbdRes struct {
	Name        string  `json:"name"`
	Minor       int     `json:"minor"`
	VolumeID    string  `json:"volume_id"`
	Peer        string  `json:"peer"` // instance id
	MetaData    bool    `json:"meta_data"`
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

func (s *Sim) newDRBDRes(h *host, name string, v *volume) *drbdRes {
	peer, _ := v.Tags.get(anyops.TagDRBDPeer)
	r := &drbdRes{Name: name, Minor: len(h.DRBD), VolumeID: v.ID, Peer: peer, Role: "Secondary", Disk: "Diskless"}
	h.DRBD[name] = r
	return r
}

// drbdLinked is whether resource name replicates between a and its peer right now.
func (s *Sim) drbdLinked(a *host, r *drbdRes) (*host, *drbdRes, bool) {
	b := s.st.Hosts[r.Peer]
	if b == nil {
		return nil, nil, false
	}
	pr := b.DRBD[r.Name]
	if pr == nil {
		return b, nil, false
	}
	ok := r.Up && pr.Up && !r.AdminDown && !pr.AdminDown && pr.Peer == a.InstanceID &&
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
					// What the source wrote while we lagged is here now.
					if dst, src := s.st.Volumes[r.VolumeID], s.st.Volumes[pr.VolumeID]; dst != nil && src != nil {
						dst.Data.copyContent(src.Data)
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
	if peer != nil {
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

func cmdDrbdadm(x *execCtx, args []string, _ string) result {
	var force bool
	var rest []string
	for _, a := range args {
		switch a {
		case "--force":
			force = true
		case "-v", "--verbose":
		default:
			rest = append(rest, a)
		}
	}
	if len(rest) == 0 {
		return fail(20, "USAGE: drbdadm COMMAND [OPTION...] {all|RESOURCE...}")
	}
	sub, names := rest[0], rest[1:]
	h := x.h
	if len(names) == 0 || (len(names) == 1 && names[0] == "all") {
		if sub != "status" && len(names) == 0 {
			return fail(20, "drbdadm %s: missing resource name", sub)
		}
		names = nil
		for _, n := range sortedKeys(h.DRBD) {
			if h.DRBD[n].Up || sub != "status" {
				names = append(names, n)
			}
		}
		if sub == "status" && len(names) == 0 {
			return fail(10, "# No currently configured DRBD found.")
		}
	}
	var out strings.Builder
	for _, name := range names {
		r := h.DRBD[name]
		switch sub {
		case "status":
			if r == nil || !r.Up {
				return fail(10, "%s: No such resource\nCommand 'drbdsetup status %s' terminated with exit code 10", name, name)
			}
			out.WriteString(x.s.drbdStatus(h, r))
			if len(names) > 1 {
				out.WriteString("\n")
			}
		case "create-md":
			if r == nil {
				v := x.configuredVolume(name)
				if v == nil {
					return notDefined(name)
				}
				r = x.s.newDRBDRes(h, name, v)
			}
			if r.Up {
				return fail(20, "Device '%d' is configured!\nCommand 'drbdmeta %d v09 %s internal create-md 1' terminated with exit code 20", r.Minor, r.Minor, r.Name)
			}
			if r.MetaData && !force {
				return fail(40, "md_offset already has valid meta data; use --force to overwrite")
			}
			r.MetaData, r.Disk, r.OutOfSync, r.ResyncTotal, r.ResyncDone = true, "Inconsistent", 0, 0, 0
			out.WriteString("initializing activity log\ninitializing bitmap (32 KB) to all zero\nWriting meta data...\nNew drbd meta data block successfully created.\n")
			x.s.event(x.now, "drbd.create-md", h.InstanceID, "drbd %s meta data created on %s", name, h.Hostname)
		case "up", "adjust":
			if r == nil {
				if x.configuredVolume(name) == nil {
					return notDefined(name)
				}
				return fail(10, "No valid meta data found\nCommand 'drbdmeta %s v09 internal apply-al' terminated with exit code 255", name)
			}
			if !r.MetaData {
				return fail(10, "No valid meta data found")
			}
			if r.Up && sub == "up" {
				return fail(10, "%s: Failure: (161) Minor or volume exists already (delete it first)", r.device())
			}
			if !r.Up {
				r.Up, r.Role, r.AdminDown = true, "Secondary", false
				if r.Disk == "Diskless" {
					r.Disk = "Inconsistent"
				}
				x.s.event(x.now, "drbd.up", h.InstanceID, "drbd %s up on %s (disk %s)", name, h.Hostname, r.Disk)
			}
		case "down":
			if r == nil {
				return notDefined(name)
			}
			if x.heldOpen(r.device()) {
				return fail(11, "%s: State change failed: (-12) Device is held open by someone", r.device())
			}
			r.Up, r.Role, r.Connected = false, "Secondary", false
			x.s.event(x.now, "drbd.down", h.InstanceID, "drbd %s down on %s", name, h.Hostname)
		case "primary":
			if r == nil || !r.Up {
				return fail(10, "%s: No such resource", name)
			}
			if _, pr, linked := x.s.drbdLinked(h, r); linked && pr.Role == "Primary" {
				return fail(11, "%s: State change failed: (-1) Multiple primaries not allowed by config", r.device())
			}
			if r.Disk != "UpToDate" && !force {
				return fail(11, "%s: State change failed: (-2) Need access to UpToDate data", r.device())
			}
			if r.Disk == "Inconsistent" || r.Disk == "Outdated" {
				r.Disk, r.ResyncTotal, r.ResyncDone, r.OutOfSync = "UpToDate", 0, 0, 0
			}
			r.Role = "Primary"
			x.s.event(x.now, "drbd.primary", h.InstanceID, "drbd %s is Primary on %s (force=%v)", name, h.Hostname, force)
			// A forced primary makes the peer the one to resync, from scratch if it was
			// inconsistent too.
			if peer, pr, linked := x.s.drbdLinked(h, r); linked && pr.Disk != "UpToDate" && pr.ResyncTotal == 0 {
				x.s.drbdConnected(peer, pr, h, r, x.now)
			}
		case "secondary":
			if r == nil || !r.Up {
				return fail(10, "%s: No such resource", name)
			}
			if x.heldOpen(r.device()) {
				return fail(11, "%s: State change failed: (-12) Device is held open by someone", r.device())
			}
			r.Role = "Secondary"
			x.s.event(x.now, "drbd.secondary", h.InstanceID, "drbd %s is Secondary on %s", name, h.Hostname)
		case "disconnect":
			if r == nil || !r.Up {
				return fail(10, "%s: No such resource", name)
			}
			r.AdminDown = true
		case "connect":
			if r == nil || !r.Up {
				return fail(10, "%s: No such resource", name)
			}
			r.AdminDown = false
		default:
			return fail(20, "drbdadm: Unknown command '%s'", sub)
		}
	}
	x.s.advanceDRBD(x.now, x.now) // connection changes show at once
	return ok(out.String())
}

func notDefined(name string) result {
	return fail(10, "'%s' not defined in your config (for this host).", name)
}

// configuredVolume is the attached volume whose tags define DRBD resource name on this host.
func (x *execCtx) configuredVolume(name string) *volume {
	for _, v := range x.s.devices(x.h) {
		if n, _ := v.Tags.get(anyops.TagDRBDResource); n == name {
			return v
		}
	}
	return nil
}
