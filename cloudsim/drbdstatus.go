// drbdadm status: DRBD 9's drbdsetup status, plain and with --verbose --statistics as
// drbd-utils prints them (wrapped at 80 columns, continuation lines indented). The data
// accounting of drbd.go shows here as each peer device's out-of-sync (KiB).

package cloudsim

import (
	"fmt"
	"strings"
)

// drbdStatus renders `drbdadm status` in DRBD 9's format; the connection is named after the
// peer's hostname, as DRBD names it.
func (s *Sim) drbdStatus(h *host, r *drbdRes) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s role:%s\n  disk:%s\n", r.Name, r.Role, r.Disk)
	peer, pr, linked := s.drbdLinked(h, r)
	peerName := connectionName(r, peer)
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

// connectionName is what status names the connection: the peer's on section (a configured
// resource), else the peer's hostname; "" for a resource without a peer.
func connectionName(r *drbdRes, peer *host) string {
	switch {
	case r.Configured:
		return r.PeerName
	case peer != nil:
		return peer.Hostname
	}
	return r.Peer
}

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

// drbdOutOfSync is what status shows as a peer device's out-of-sync, in bytes: while a resync
// runs, what is left of it; otherwise what this side's bitmap holds (ahead of the peer, and
// behind it after an interrupted resync).
func drbdOutOfSync(r, pr *drbdRes, linked bool) float64 {
	switch {
	case linked && pr != nil && pr.ResyncTotal > 0:
		return pr.ResyncTotal - pr.ResyncDone
	case linked && r.ResyncTotal > 0:
		return r.ResyncTotal - r.ResyncDone
	case linked:
		return 0
	}
	return r.Ahead + r.Behind
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

	peer, pr, linked := s.drbdLinked(h, r)
	peerName := connectionName(r, peer)
	if peerName == "" {
		w.printf(0, "\n")
		return w.b.String()
	}
	cstate, role := "Connected", "Unknown"
	switch {
	case linked && pr != nil:
		role = pr.Role
	case r.AdminDown:
		cstate = "StandAlone"
	default:
		cstate = "Connecting"
	}
	w.printf(2, "%s", peerName)
	if verbose {
		peerID := 1 - r.NodeID // a pair's other node
		if pr != nil && pr.NodeID != r.NodeID {
			peerID = pr.NodeID
		}
		w.printf(6, " node-id:%d", peerID)
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
		w.printf(0, "\n")
		return w.b.String()
	}

	repl, peerDisk, done := "Off", "DUnknown", ""
	if linked && pr != nil {
		repl, peerDisk = "Established", pr.Disk
		switch {
		case r.Disk == "Inconsistent" && pr.Disk == "UpToDate" && r.ResyncTotal > 0:
			repl, done = "SyncTarget", fmt.Sprintf(" done:%.2f", pct(r.ResyncDone, r.ResyncTotal))
		case pr.Disk == "Inconsistent" && r.Disk == "UpToDate" && pr.ResyncTotal > 0:
			repl, done = "SyncSource", fmt.Sprintf(" done:%.2f", pct(pr.ResyncDone, pr.ResyncTotal))
		}
	}
	indent = 4
	if verbose {
		w.printf(indent, "volume:0")
		indent = 8
	}
	if verbose || strings.HasPrefix(repl, "Sync") { // above Established, as drbdsetup prints it
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
		if oos := int64(drbdOutOfSync(r, pr, linked)) / 1024; verbose || oos != 0 {
			w.printf(indent, " out-of-sync:%d", oos)
		}
		if verbose {
			w.printf(indent, " pending:0")
			w.printf(indent, " unacked:0")
		}
	}
	w.printf(0, "\n")
	w.printf(0, "\n")
	return w.b.String()
}
