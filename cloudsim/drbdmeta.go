// drbdmeta: DRBD's metadata tool, and drbdadm dump-md, which prints a disk's metadata in
// drbdmeta's text form (v09) for drbdmeta restore-md to write back, edited. That is how the
// DRBD 9 user's guide changes a copied disk's node id in truck-based replication:
//
//	drbdadm -- --force dump-md r0/0 > md.txt
//	sed -e "s/node-id 1/node-id 2/" -e "s/^peer.1. /peer-NEW /" -e "s/^peer.2. /peer[1] /" \
//	    -e "s/^peer-NEW /peer[2] /" < md.txt > md-new.txt
//	drbdmeta --force 0 v09 /dev/... internal restore-md md-new.txt
//
// The bitmap is not kept bit by bit: each peer's out-of-sync bytes are dumped as that many
// set 64-bit words (one bit per 4 KiB block), the rest as clear ones.

package cloudsim

import (
	"fmt"
	"maps"
	"math"
	"math/bits"
	"slices"
	"strconv"
	"strings"
)

// DRBD's metadata flags (drbd_meta_data.h).
const (
	mdfConsistent  = 0x01
	mdfWasUpToDate = 0x10
	mdfALClean     = 0x80
	// A peer's flags: its bits count from a known point (seen), or it needs a full sync.
	mdfPeerFullSync   = 0x08
	mdfPeerDeviceSeen = 0x10
	bitmapWord        = 64 * 4096 // bytes a 64-bit bitmap word covers
)

// drbdDumpMD prints the metadata of a resource that is down, as drbdmeta dump-md does.
func (x *execCtx) drbdDumpMD(t drbdTarget, force bool) result {
	if t.res != nil && t.res.Up {
		return fail(20, "Device '%d' is configured!\nCommand 'drbdmeta %d v09 %s internal dump-md' terminated with exit code 20", t.res.Minor, t.res.Minor, t.local.Disk)
	}
	if t.conf == nil {
		return fail(20, "%s: dump-md of a resource configured by volume tags is not simulated", t.name)
	}
	bd, why := x.openDevice(t.local.Disk, false)
	if why != "" || bd.vol == nil {
		return fail(20, "open(%s) failed: %s", t.local.Disk, why)
	}
	m := bd.vol.Data.DRBD
	if m == nil {
		return fail(255, "No valid meta data found")
	}
	if !force && m.Disk != "Inconsistent" {
		return fail(20, "Found meta data is \"unclean\", please apply-al first (or use --force)")
	}
	return ok(renderDRBDMeta(m, bd.vol, x.h.Hostname, t.name))
}

// renderDRBDMeta is drbdmeta's v09 text form of a disk's metadata.
func renderDRBDMeta(m *drbdMeta, v *volume, hostname, res string) string {
	var b strings.Builder
	size := int64(v.SizeGiB) * gib
	words := (size + bitmapWord - 1) / bitmapWord
	fmt.Fprintf(&b, "# DRBD meta data dump\n# %s> drbdsetup v09 dump-md %s\n#\n\nversion \"v09\";\n\n", hostname, res)
	nodes := slices.Sorted(maps.Keys(m.Peers))
	fmt.Fprintf(&b, "max-peers %d;\n# md_offset %d\n\nnode-id %d;\ncurrent-uuid 0x%s;\nflags 0x%08X;\n",
		max(len(nodes), 1), size-4096, m.NodeID, m.Gen, mdFlags(m.Disk))
	for _, n := range nodes {
		sl := m.Peers[n]
		flags := mdfPeerFullSync
		if sl.known() {
			flags = mdfPeerDeviceSeen
		}
		fmt.Fprintf(&b, "peer[%d] {\n    bitmap-index %d;\n    bitmap-uuid 0x%s;\n    bitmap-dagtag 0x0000000000000000;\n    flags 0x%08X;\n}\n",
			n, sl.Index, uuidOrZero(sl.Bitmap), flags)
	}
	hist := slices.Clone(m.History)
	for len(hist) < 2 {
		hist = append(hist, "")
	}
	b.WriteString("history-uuids")
	for _, h := range hist {
		b.WriteString(" 0x" + uuidOrZero(h))
	}
	fmt.Fprintf(&b, ";\n# attention: the bitmap is kept as each peer's out-of-sync words\nla-size-sect %d;\nbm-byte-per-bit 4096;\nal-stripes 1;\nal-stripe-size-4k 8;\n", size/512)
	for _, n := range nodes {
		sl := m.Peers[n]
		set := min(int64(math.Ceil(sl.OutOfSync/bitmapWord)), words)
		fmt.Fprintf(&b, "bitmap[%d] {\n", sl.Index)
		if set > 0 {
			fmt.Fprintf(&b, "   %d times 0xFFFFFFFFFFFFFFFF;\n", set)
		}
		if words-set > 0 {
			fmt.Fprintf(&b, "   %d times 0x0000000000000000;\n", words-set)
		}
		b.WriteString("}\n")
	}
	return b.String()
}

func uuidOrZero(g string) string {
	if g == "" {
		return "0000000000000000"
	}
	return g
}

func mdFlags(disk string) int {
	switch disk {
	case "UpToDate":
		return mdfConsistent | mdfWasUpToDate | mdfALClean
	case "Outdated":
		return mdfConsistent | mdfALClean
	}
	return mdfALClean
}

// parseDRBDMeta reads drbdmeta's v09 text form back.
func parseDRBDMeta(src string) (*drbdMeta, error) {
	m := &drbdMeta{Peers: map[int]*drbdSlot{}}
	byIndex := map[int]*drbdSlot{}
	var peer *drbdSlot
	var bitmap *drbdSlot
	haveNode, haveGen, haveVersion := false, false, false
	for n, line := range strings.Split(src, "\n") {
		line = strings.TrimSpace(line)
		if i := strings.Index(line, "#"); i >= 0 {
			line = strings.TrimSpace(line[:i])
		}
		if line == "" {
			continue
		}
		bad := func(format string, a ...any) error {
			return fmt.Errorf("line %d: %s", n+1, fmt.Sprintf(format, a...))
		}
		if line == "}" {
			peer, bitmap = nil, nil
			continue
		}
		if !strings.HasSuffix(line, ";") && !strings.HasSuffix(line, "{") {
			return nil, bad("expected ';' or '{' at the end of %q", line)
		}
		f := strings.Fields(strings.TrimSuffix(strings.TrimSuffix(line, ";"), "{"))
		if len(f) == 0 {
			return nil, bad("empty statement")
		}
		hexUUID := func(s string) (string, error) {
			if !strings.HasPrefix(s, "0x") || len(s) != 18 {
				return "", bad("%q is not a 0x-prefixed 64-bit UUID", s)
			}
			if _, err := strconv.ParseUint(s[2:], 16, 64); err != nil {
				return "", bad("%q is not a 0x-prefixed 64-bit UUID", s)
			}
			u := strings.ToUpper(s[2:])
			if u == "0000000000000000" {
				return "", nil
			}
			return u, nil
		}
		switch {
		case bitmap != nil:
			if len(f) == 3 && f[1] == "times" {
				count, err := strconv.ParseInt(f[0], 10, 64)
				w, err2 := strconv.ParseUint(strings.TrimPrefix(f[2], "0x"), 16, 64)
				if err != nil || err2 != nil || count < 0 {
					return nil, bad("bad bitmap run %q", line)
				}
				bitmap.OutOfSync += float64(count) * float64(bits.OnesCount64(w)) * 4096
			} else {
				for _, word := range f {
					w, err := strconv.ParseUint(strings.TrimPrefix(word, "0x"), 16, 64)
					if err != nil {
						return nil, bad("bad bitmap word %q", word)
					}
					bitmap.OutOfSync += float64(bits.OnesCount64(w)) * 4096
				}
			}
		case peer != nil:
			switch {
			case f[0] == "bitmap-index" && len(f) == 2:
				i, err := strconv.Atoi(f[1])
				if err != nil {
					return nil, bad("bad bitmap-index")
				}
				peer.Index = i
				byIndex[i] = peer
			case f[0] == "bitmap-uuid" && len(f) == 2:
				u, err := hexUUID(f[1])
				if err != nil {
					return nil, err
				}
				peer.Bitmap = u
			case f[0] == "flags" && len(f) == 2:
				fl, err := strconv.ParseUint(strings.TrimPrefix(f[1], "0x"), 16, 32)
				if err != nil {
					return nil, bad("bad flags %q", f[1])
				}
				peer.Cleared = fl&mdfPeerDeviceSeen != 0 && peer.Bitmap == ""
			case f[0] == "bitmap-dagtag" && len(f) == 2:
			default:
				return nil, bad("unexpected %q in a peer section", f[0])
			}
		case strings.HasPrefix(f[0], "peer[") && strings.HasSuffix(f[0], "]") && strings.HasSuffix(line, "{"):
			id, err := strconv.Atoi(f[0][5 : len(f[0])-1])
			if err != nil || id < 0 || id >= drbdMaxNodes {
				return nil, bad("bad peer node id in %q", f[0])
			}
			if m.Peers[id] != nil {
				return nil, bad("peer[%d] appears twice", id)
			}
			peer = &drbdSlot{}
			m.Peers[id] = peer
		case strings.HasPrefix(f[0], "bitmap[") && strings.HasSuffix(f[0], "]") && strings.HasSuffix(line, "{"):
			i, err := strconv.Atoi(f[0][7 : len(f[0])-1])
			if err != nil || byIndex[i] == nil {
				return nil, bad("bitmap %q belongs to no peer", f[0])
			}
			bitmap = byIndex[i]
		case f[0] == "version" && len(f) == 2:
			if f[1] != `"v09"` {
				return nil, bad("only v09 metadata is simulated, not %s", f[1])
			}
			haveVersion = true
		case f[0] == "node-id" && len(f) == 2:
			id, err := strconv.Atoi(f[1])
			if err != nil || id < 0 || id >= drbdMaxNodes {
				return nil, bad("bad node-id %q", f[1])
			}
			m.NodeID, haveNode = id, true
		case f[0] == "current-uuid" && len(f) == 2:
			u, err := hexUUID(f[1])
			if err != nil {
				return nil, err
			}
			m.Gen, haveGen = u, true
		case f[0] == "flags" && len(f) == 2:
			fl, err := strconv.ParseUint(strings.TrimPrefix(f[1], "0x"), 16, 32)
			if err != nil {
				return nil, bad("bad flags %q", f[1])
			}
			switch {
			case fl&mdfConsistent != 0 && fl&mdfWasUpToDate != 0:
				m.Disk = "UpToDate"
			case fl&mdfConsistent != 0:
				m.Disk = "Outdated"
			default:
				m.Disk = "Inconsistent"
			}
		case f[0] == "history-uuids":
			for _, h := range f[1:] {
				u, err := hexUUID(h)
				if err != nil {
					return nil, err
				}
				if u != "" {
					m.History = append(m.History, u)
				}
			}
		case slices.Contains([]string{"max-peers", "la-size-sect", "bm-byte-per-bit", "al-stripes", "al-stripe-size-4k", "device-uuid", "la-peer-max-bio-size"}, f[0]):
		default:
			return nil, bad("unexpected %q", f[0])
		}
	}
	if !haveVersion || !haveNode || !haveGen {
		return nil, fmt.Errorf("incomplete metadata dump: version, node-id and current-uuid are required")
	}
	if m.Gen == "" {
		m.Gen = drbdJustCreated
	}
	return m, nil
}

// cmdDrbdmeta is drbdmeta: `drbdmeta [--force] MINOR v09 DISK internal restore-md FILE` writes
// edited metadata back to a disk no resource has up; dump-md prints it.
func cmdDrbdmeta(x *execCtx, args []string, _ string) result {
	force := false
	var pos []string
	for _, a := range args {
		switch {
		case a == "--force":
			force = true
		case strings.HasPrefix(a, "-"):
			return fail(20, "drbdmeta: option %s is not simulated", a)
		default:
			pos = append(pos, a)
		}
	}
	if len(pos) < 5 || pos[1] != "v09" || pos[3] != "internal" {
		return fail(20, "USAGE: drbdmeta [--force] MINOR v09 DEVICE internal {restore-md FILE|dump-md} (only internal v09 metadata is simulated)")
	}
	minor, err := strconv.Atoi(strings.TrimPrefix(pos[0], "/dev/drbd"))
	if err != nil {
		return fail(20, "drbdmeta: %q is not a minor number", pos[0])
	}
	for _, r := range x.h.DRBD {
		if r.Up && r.Minor == minor {
			return fail(20, "Device '%d' is configured!", minor)
		}
	}
	bd, why := x.openDevice(pos[2], true)
	if why != "" || bd.vol == nil || bd.drbd != nil {
		return fail(20, "open(%s) failed: %s", pos[2], why)
	}
	switch cmd := pos[4]; {
	case cmd == "dump-md" && len(pos) == 5:
		if bd.vol.Data.DRBD == nil {
			return fail(255, "No valid meta data found")
		}
		return ok(renderDRBDMeta(bd.vol.Data.DRBD, bd.vol, x.h.Hostname, fmt.Sprintf("minor-%d", minor)))
	case cmd == "restore-md" && len(pos) == 6:
		if !force && bd.vol.Data.DRBD != nil {
			return fail(20, "Valid meta-data in place, overwrite?\n[need to type 'yes' to confirm] \nOperation canceled.")
		}
		text, bad := x.readFile("drbdmeta", pos[5])
		if bad != nil {
			return *bad
		}
		m, err := parseDRBDMeta(text)
		if err != nil {
			return fail(10, "%s: %v", pos[5], err)
		}
		bd.vol.Data.DRBD = m
		x.s.markDirty()
		x.s.event(x.now, "drbd.restore-md", x.h.InstanceID, "drbd metadata restored on %s of %s: node-id %d, generation %s", pos[2], x.h.Hostname, m.NodeID, m.Gen)
		return ok("Writing meta data...\nNew drbd meta data block successfully created.\n")
	}
	return fail(20, "drbdmeta: %s is not simulated", strings.Join(pos[4:], " "))
}
