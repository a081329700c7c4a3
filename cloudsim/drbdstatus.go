// drbdadm status, plain and --verbose --statistics: DRBD 9's drbdsetup status with its
// statistics, as drbd-utils prints them (wrapped at 80 columns, continuation lines indented).
// The data accounting of drbd_resync.go shows here as each peer device's out-of-sync (KiB).

package cloudsim

import (
	"fmt"
	"strings"
)

// wrapWriter is drbd-utils' wrap_printf: a piece that does not fit in the line starts a new
// one, indented; leading spaces are dropped at the start of a line.
type wrapWriter struct {
	b   strings.Builder
	col int
}

const wrapColumns = 80 // no terminal (SSM's): drbdsetup's default width

func (w *wrapWriter) printf(indent int, format string, args ...any) {
	s := fmt.Sprintf(format, args...)
	for strings.HasPrefix(s, "\n") {
		w.b.WriteByte('\n')
		w.col, s = 0, s[1:]
	}
	if s == "" {
		return
	}
	if w.col > 0 && w.col+len(s) > wrapColumns {
		w.b.WriteByte('\n')
		w.col = 0
	}
	if w.col == 0 {
		s = strings.TrimLeft(s, " ")
		w.b.WriteString(strings.Repeat(" ", indent))
		w.col = indent
	}
	w.b.WriteString(s)
	w.col += len(s)
	if strings.HasSuffix(s, "\n") {
		w.col = 0
	}
}

// drbdOutOfSync is what status shows as the out-of-sync of r's peer device for the peer pr,
// in bytes: while a resync between them runs, what is left of it; otherwise what this side's
// bitmap for that peer holds.
func (s *Sim) drbdOutOfSync(r, pr *drbdRes, node int) float64 {
	switch {
	case pr != nil && pr.Syncing && pr.SyncFrom == r.NodeID:
		if m := s.drbdMetaOf(r); m != nil && m.Peers[pr.NodeID] != nil {
			return m.Peers[pr.NodeID].OutOfSync
		}
	case pr != nil && r.Syncing && r.SyncFrom == pr.NodeID:
		if m := s.drbdMetaOf(pr); m != nil && m.Peers[r.NodeID] != nil {
			return m.Peers[r.NodeID].OutOfSync
		}
	}
	if m := s.drbdMetaOf(r); m != nil && m.Peers[node] != nil {
		return m.Peers[node].OutOfSync
	}
	return 0
}

// drbdStatusVerbose renders `drbdadm status [--verbose] [--statistics]`. Counters cloudsim
// does not keep (read, written, sent, received, al-writes, bm-writes) are 0.
func (s *Sim) drbdStatusVerbose(h *host, r *drbdRes, verbose, statistics bool) string {
	var w wrapWriter
	w.printf(0, "%s", r.Name)
	if verbose {
		w.printf(4, " node-id:%d", r.NodeID)
	}
	w.printf(4, " role:%s", r.Role)
	if verbose {
		w.printf(4, " suspended:no")
	}
	if statistics && verbose {
		w.printf(4, "\n")
		w.printf(4, " write-ordering:flush")
	}
	w.printf(0, "\n")

	indent := 2
	if verbose {
		w.printf(indent, "volume:0")
		indent = 6
		w.printf(indent, " minor:%d", r.Minor)
	}
	w.printf(indent, " disk:%s", r.Disk)
	if verbose {
		w.printf(indent, " quorum:yes")
	}
	indent = 6
	if statistics {
		w.printf(indent, "\n")
		if verbose {
			w.printf(indent, " size:%d", int64(s.resSize(r))/1024)
		}
		w.printf(indent, " read:0")
		w.printf(indent, " written:0")
		if verbose {
			for _, field := range []string{"al-writes:0", "bm-writes:0", "upper-pending:0", "lower-pending:0", "al-suspended:no"} {
				w.printf(indent, " %s", field)
			}
		}
	}
	if verbose {
		w.printf(indent, " blocked:no")
	}
	w.printf(indent, "\n")

	if len(r.Peers) == 0 {
		w.printf(0, "\n")
		return w.b.String()
	}
	for _, c := range r.Peers {
		peer, pr, _, linked := s.drbdLinked(h, r, c)
		linked = linked && c.Connected
		peerName := c.Name
		if !r.Configured {
			peerName = c.Instance
			if peer != nil {
				peerName = peer.Hostname
			}
		}
		cstate, role := "Connected", "Unknown"
		switch {
		case linked && pr != nil:
			role = pr.Role
		case r.AdminDown || c.StandAlone != "":
			cstate = "StandAlone"
		default:
			cstate = "Connecting"
		}
		w.printf(2, "%s", peerName)
		if verbose {
			w.printf(6, " node-id:%d", c.NodeID)
		}
		if verbose || cstate != "Connected" {
			w.printf(6, " connection:%s", cstate)
		}
		if verbose || cstate == "Connected" {
			w.printf(6, " role:%s", role)
		}
		if verbose {
			w.printf(6, " congested:no")
		}
		w.printf(0, "\n")
		if !verbose && !statistics && cstate != "Connected" {
			continue
		}
		repl, peerDisk, done := "Off", "DUnknown", ""
		if linked && pr != nil {
			repl, peerDisk = "Established", pr.Disk
			switch {
			case r.Syncing && r.SyncFrom == c.NodeID:
				repl, done = "SyncTarget", fmt.Sprintf(" done:%.2f", s.resyncDone(r, pr))
			case pr.Syncing && pr.SyncFrom == r.NodeID:
				repl, done = "SyncSource", fmt.Sprintf(" done:%.2f", s.resyncDone(pr, r))
			case pr.Syncing:
				repl = "PausedSyncS"
			case r.Syncing:
				repl = "PausedSyncT"
			}
		}
		indent = 4
		if verbose {
			w.printf(indent, "volume:0")
			indent = 8
		}
		if verbose || repl != "Established" && repl != "Off" { // above Established, as drbdsetup prints it
			w.printf(indent, " replication:%s", repl)
			indent = 8
		}
		w.printf(indent, " peer-disk:%s", peerDisk)
		indent = 8
		if done != "" {
			w.printf(indent, "%s", done)
		}
		if verbose {
			w.printf(indent, " resync-suspended:no")
		}
		if statistics {
			w.printf(indent, "\n")
			w.printf(indent, " received:0")
			w.printf(indent, " sent:0")
			if oos := int64(s.drbdOutOfSync(r, pr, c.NodeID)) / 1024; verbose || oos != 0 {
				w.printf(indent, " out-of-sync:%d", oos)
			}
			if verbose {
				w.printf(indent, " pending:0")
				w.printf(indent, " unacked:0")
			}
		}
		w.printf(0, "\n")
	}
	w.printf(0, "\n")
	return w.b.String()
}

// drbdStatus renders `drbdadm status` in DRBD 9's format; each connection is named after the
// peer's on section (for tag-configured resources, the peer's hostname), as DRBD names it.
func (s *Sim) drbdStatus(h *host, r *drbdRes) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s role:%s\n  disk:%s\n", r.Name, r.Role, r.Disk)
	for _, c := range r.Peers {
		peer, pr, _, linked := s.drbdLinked(h, r, c)
		name := c.Name
		if !r.Configured {
			name = c.Instance
			if peer != nil {
				name = peer.Hostname
			}
		}
		if name == "" {
			continue
		}
		if !linked || pr == nil || !c.Connected {
			state := "Connecting"
			if r.AdminDown || c.StandAlone != "" {
				state = "StandAlone"
			}
			fmt.Fprintf(&b, "  %s connection:%s\n", name, state)
			continue
		}
		fmt.Fprintf(&b, "  %s role:%s\n", name, pr.Role)
		switch {
		case r.Syncing && r.SyncFrom == c.NodeID:
			fmt.Fprintf(&b, "    replication:SyncTarget peer-disk:%s done:%.2f\n", pr.Disk, s.resyncDone(r, pr))
		case pr.Syncing && pr.SyncFrom == r.NodeID:
			fmt.Fprintf(&b, "    replication:SyncSource peer-disk:%s done:%.2f\n", pr.Disk, s.resyncDone(pr, r))
		case pr.Syncing:
			fmt.Fprintf(&b, "    replication:PausedSyncS peer-disk:%s\n", pr.Disk)
		case r.Syncing:
			fmt.Fprintf(&b, "    replication:PausedSyncT peer-disk:%s\n", pr.Disk)
		default:
			fmt.Fprintf(&b, "    replication:Established peer-disk:%s\n", pr.Disk)
		}
	}
	return b.String()
}

// resyncDone is the percent of dst's resync from src that is done.
func (s *Sim) resyncDone(dst, src *drbdRes) float64 {
	left := 0.0
	if sm := s.drbdMetaOf(src); sm != nil {
		left = sm.slot(dst.NodeID).OutOfSync
	}
	return pct(dst.ResyncTotal-left, dst.ResyncTotal)
}

func pct(done, total float64) float64 {
	if total <= 0 {
		return 100
	}
	return min(99.99, done/total*100)
}
