package activities

import (
	"context"
	"fmt"
	"math"
	"strconv"
	"strings"

	"go.temporal.io/sdk/temporal"
)

// DRBDStatusInput asks for the DRBD state of one resource, or all when Resource is empty.
type DRBDStatusInput struct {
	InstanceID string
	Resource   string
}

// DRBDStatusOutput is the parsed `drbdadm status`.
type DRBDStatusOutput struct {
	Resources []DRBDResource
}

// DRBDStatus runs `drbdadm status` and parses it; output it cannot parse is a non-retryable
// UnexpectedOutput error.
func (h *Hosts) DRBDStatus(ctx context.Context, in DRBDStatusInput) (DRBDStatusOutput, error) {
	cmd := "drbdadm status"
	if in.Resource != "" {
		if err := checkField("Resource", in.Resource, reName); err != nil {
			return DRBDStatusOutput{}, err
		}
		cmd += " " + shellQuote(in.Resource)
	}
	res, err := h.RunCommand(ctx, RunCommandInput{InstanceID: in.InstanceID, Commands: []string{cmd}, Comment: "anyops drbd status"})
	if err != nil {
		return DRBDStatusOutput{}, err
	}
	resources, err := ParseDRBDStatus(res.Stdout)
	if err != nil {
		return DRBDStatusOutput{}, temporal.NewNonRetryableApplicationError(
			fmt.Sprintf("drbdadm status on %s: %v", in.InstanceID, err), ErrUnexpectedOutput, nil, res)
	}
	return DRBDStatusOutput{Resources: resources}, nil
}

// DRBDResource is one resource in DRBD 9's `drbdadm status`.
type DRBDResource struct {
	Name string
	Role string // Primary, Secondary, Unknown
	// Disk is the local disk state of the first volume: UpToDate, Inconsistent, Diskless, ...
	Disk    string
	Volumes []DRBDVolume
	Peers   []DRBDPeer
}

// DRBDVolume is the local state of one volume of a resource.
type DRBDVolume struct {
	Number int
	Disk   string
}

// DRBDPeer is one connection of a resource. Role, Replication, PeerDisk and Done summarize
// the first volume; PeerVolumes has them all.
type DRBDPeer struct {
	Name string
	Role string
	// Connection is Connected unless drbdadm says otherwise (it prints it only then):
	// Connecting, StandAlone, Disconnecting, ...
	Connection string
	// Replication is Established unless drbdadm says otherwise (SyncSource, SyncTarget,
	// PausedSyncS, ...); Off while not connected.
	Replication string
	PeerDisk    string
	Done        float64 // resync percent, when syncing
	PeerVolumes []DRBDPeerVolume
}

// DRBDPeerVolume is one volume's replication with one peer.
type DRBDPeerVolume struct {
	Number      int
	Replication string
	PeerDisk    string
	Done        float64
	// OutOfSyncKiB is what this side holds that the peer lacks (status --statistics).
	OutOfSyncKiB int64
}

// drbdContinuation is whether a status line starting with this token continues the item above
// it (drbdsetup wraps --verbose --statistics output at 80 columns): a statistic or a flag of a
// resource, a volume or a peer device.
func drbdContinuation(first string) bool {
	k, _, _ := strings.Cut(first, ":")
	switch k {
	case "write-ordering", "size", "read", "written", "al-writes", "bm-writes", "upper-pending", "lower-pending",
		"al-suspended", "blocked", "received", "sent", "out-of-sync", "pending", "unacked", "resync-suspended":
		return true
	}
	return false
}

// InSync reports whether the resource has an up-to-date local disk and every peer is
// connected with an up-to-date disk: a hot copy exists.
func (r DRBDResource) InSync() bool {
	if len(r.Peers) == 0 || len(r.Volumes) == 0 {
		return false
	}
	for _, v := range r.Volumes {
		if v.Disk != "UpToDate" {
			return false
		}
	}
	for _, p := range r.Peers {
		if p.Connection != "Connected" || len(p.PeerVolumes) == 0 {
			return false
		}
		for _, v := range p.PeerVolumes {
			if v.PeerDisk != "UpToDate" {
				return false
			}
		}
	}
	return true
}

// ParseDRBDStatus parses the output of DRBD 9's `drbdadm status`: resources separated by
// blank lines, each a line "<name> role:<role>", then at two spaces its volumes
// ("[volume:N] disk:<state>") and connections ("<peer> role:<role>" or
// "<peer> connection:<state>"), and at four spaces a connection's peer devices
// ("[volume:N] replication:<state> peer-disk:<state> [done:<percent>]"). Keys it does not
// know (quorum, suspended, blocked, statistics) are skipped.
func ParseDRBDStatus(out string) ([]DRBDResource, error) {
	var resources []DRBDResource
	var res *DRBDResource
	var peer *DRBDPeer
	finishPeer := func() {
		if res != nil && peer != nil {
			res.Peers = append(res.Peers, summarizePeer(*peer))
		}
		peer = nil
	}
	finish := func() {
		finishPeer()
		if res != nil {
			if len(res.Volumes) > 0 {
				res.Disk = res.Volumes[0].Disk
			}
			resources = append(resources, *res)
		}
		res = nil
	}
	for n, line := range strings.Split(out, "\n") {
		fields := strings.Fields(line)
		if len(fields) == 0 {
			continue // blank, or only whitespace of any kind
		}
		lineNo := n + 1
		indent := len(line) - len(strings.TrimLeft(line, " "))
		switch {
		case indent == 0:
			finish()
			if strings.Contains(fields[0], ":") {
				return nil, fmt.Errorf("line %d: resource line starts with %q, not a name", lineNo, fields[0])
			}
			res = &DRBDResource{Name: fields[0]}
			kv, err := keyValues(fields[1:], lineNo)
			if err != nil {
				return nil, err
			}
			res.Role = kv["role"]
		case res == nil:
			return nil, fmt.Errorf("line %d: indented line before any resource", lineNo)
		case drbdContinuation(fields[0]):
			// A wrapped line of --verbose --statistics output: more of the item above. Only
			// a peer device's out-of-sync is kept.
			kv, err := keyValues(fields, lineNo)
			if err != nil {
				return nil, err
			}
			if s, ok := kv["out-of-sync"]; ok && peer != nil && len(peer.PeerVolumes) > 0 {
				kib, err := strconv.ParseInt(s, 10, 64)
				if err != nil || kib < 0 {
					return nil, fmt.Errorf("line %d: out-of-sync:%s is not a number of KiB", lineNo, s)
				}
				peer.PeerVolumes[len(peer.PeerVolumes)-1].OutOfSyncKiB = kib
			}
		case indent < 4 && strings.Contains(fields[0], ":"):
			// A local volume.
			finishPeer()
			kv, err := keyValues(fields, lineNo)
			if err != nil {
				return nil, err
			}
			num, err := volumeNumber(kv, lineNo)
			if err != nil {
				return nil, err
			}
			res.Volumes = append(res.Volumes, DRBDVolume{Number: num, Disk: kv["disk"]})
		case indent < 4:
			// A connection to a peer.
			finishPeer()
			kv, err := keyValues(fields[1:], lineNo)
			if err != nil {
				return nil, err
			}
			peer = &DRBDPeer{Name: fields[0], Role: kv["role"], Connection: kv["connection"]}
			if peer.Connection == "" {
				peer.Connection = "Connected"
			}
		case peer == nil:
			return nil, fmt.Errorf("line %d: peer device line outside a connection", lineNo)
		default:
			kv, err := keyValues(fields, lineNo)
			if err != nil {
				return nil, err
			}
			num, err := volumeNumber(kv, lineNo)
			if err != nil {
				return nil, err
			}
			pv := DRBDPeerVolume{Number: num, Replication: kv["replication"], PeerDisk: kv["peer-disk"]}
			if s, ok := kv["out-of-sync"]; ok {
				kib, err := strconv.ParseInt(s, 10, 64)
				if err != nil || kib < 0 {
					return nil, fmt.Errorf("line %d: out-of-sync:%s is not a number of KiB", lineNo, s)
				}
				pv.OutOfSyncKiB = kib
			}
			if pv.Replication == "" {
				pv.Replication = defaultReplication(peer.Connection)
			}
			if s, ok := kv["done"]; ok {
				d, err := strconv.ParseFloat(s, 64)
				if err != nil || math.IsNaN(d) || d < 0 || d > 100 {
					return nil, fmt.Errorf("line %d: done:%s is not a percentage", lineNo, s)
				}
				pv.Done = d
			}
			peer.PeerVolumes = append(peer.PeerVolumes, pv)
		}
	}
	finish()
	return resources, nil
}

func defaultReplication(connection string) string {
	if connection == "Connected" {
		return "Established"
	}
	return "Off"
}

func summarizePeer(p DRBDPeer) DRBDPeer {
	if len(p.PeerVolumes) > 0 {
		v := p.PeerVolumes[0]
		p.Replication, p.PeerDisk, p.Done = v.Replication, v.PeerDisk, v.Done
	} else {
		p.Replication = defaultReplication(p.Connection)
	}
	return p
}

// keyValues reads "key:value" tokens; the last of a repeated key wins.
func keyValues(tokens []string, lineNo int) (map[string]string, error) {
	kv := make(map[string]string, len(tokens))
	for _, t := range tokens {
		k, v, ok := strings.Cut(t, ":")
		if !ok || k == "" {
			return nil, fmt.Errorf("line %d: %q is not key:value", lineNo, t)
		}
		kv[k] = v
	}
	return kv, nil
}

func volumeNumber(kv map[string]string, lineNo int) (int, error) {
	s, ok := kv["volume"]
	if !ok {
		return 0, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 0 || n > 65535 {
		return 0, fmt.Errorf("line %d: volume:%s is not a volume number", lineNo, s)
	}
	return n, nil
}

// FormatDRBDStatus writes resources in the form ParseDRBDStatus reads, with every value
// explicit; parsing it gives the same resources back.
func FormatDRBDStatus(resources []DRBDResource) string {
	var b strings.Builder
	for i, r := range resources {
		if i > 0 {
			b.WriteString("\n")
		}
		b.WriteString(r.Name)
		writeKV(&b, "role", r.Role)
		b.WriteString("\n")
		for _, v := range r.Volumes {
			fmt.Fprintf(&b, "  volume:%d", v.Number)
			writeKV(&b, "disk", v.Disk)
			b.WriteString("\n")
		}
		for _, p := range r.Peers {
			b.WriteString("  " + p.Name)
			writeKV(&b, "role", p.Role)
			writeKV(&b, "connection", p.Connection)
			b.WriteString("\n")
			for _, v := range p.PeerVolumes {
				fmt.Fprintf(&b, "    volume:%d", v.Number)
				writeKV(&b, "replication", v.Replication)
				writeKV(&b, "peer-disk", v.PeerDisk)
				if v.Done != 0 {
					writeKV(&b, "done", strconv.FormatFloat(v.Done, 'f', -1, 64))
				}
				if v.OutOfSyncKiB != 0 {
					writeKV(&b, "out-of-sync", strconv.FormatInt(v.OutOfSyncKiB, 10))
				}
				b.WriteString("\n")
			}
		}
	}
	return b.String()
}

func writeKV(b *strings.Builder, k, v string) {
	if v != "" {
		b.WriteString(" " + k + ":" + v)
	}
}
