package activities

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"go.temporal.io/sdk/temporal"

	"github.com/anyops/anyops"
)

// Seeding a new DRBD node from a copy of a peer's disk, as the DRBD 9 user's guide does
// truck-based replication — with an EBS snapshot of the backup's disk as the copy, so a new
// backup joins a resource whose file server keeps writing and whose old backup stays UpToDate
// all along, and resyncs only what changed since the copy:
//
//  1. the new node in every node's resource file (ConfigureDRBD; the old ones adjust);
//  2. DRBDNewGeneration with ClearBitmap on the Primary: the away peers' bitmaps count from now;
//  3. the copy (CreateSnapshot of the backup's volume);
//  4. DRBDNewGeneration on the Primary: that generation goes into the new node's bitmaps;
//  5. a volume from the snapshot on the new node, DRBDAdoptCopy (the copy's node id made the
//     new node's), DRBDUp: it resyncs the blocks written since step 2.
//
// DRBDRemove takes a node out when a resource no longer needs it.

// DRBDDiskPending is the disk a resource file gives a node being seeded until its volume is
// attached: no host uses another's disk path, and the file is written again with the real one.
const DRBDDiskPending = "/dev/disk/by-id/anyops-seed-pending"

// ErrDRBDPeerLagging: clearing the bitmaps would lose what an away peer (other than the one
// being seeded) still lacks (non-retryable: that peer must resync first, or an override say so).
const ErrDRBDPeerLagging = "DRBDPeerLagging"

// DRBDNewGenerationInput starts a new data generation on the Primary of a resource.
type DRBDNewGenerationInput struct {
	InstanceID string
	Resource   string
	// ClearBitmap clears the bitmaps of every peer that is away, so they count from now: the
	// first step of seeding a copy. SeedPeer names the peer being seeded (its on-section
	// name); any other away peer that still lacks data refuses it (ErrDRBDPeerLagging).
	ClearBitmap bool
	SeedPeer    string
	// Override passes the no-uptodate-peer interlock: the lagging peer's bits are cleared.
	Override *Override
}

// DRBDNewGenerationOutput is the generation the Primary has now.
type DRBDNewGenerationOutput struct {
	Generation DRBDGeneration
	Result     CommandResult
}

// DRBDNewGeneration runs `drbdadm new-current-uuid [--clear-bitmap] RES/0` on the Primary.
// Before clearing it reads `drbdadm status --statistics` and refuses when an away peer other
// than SeedPeer holds out-of-sync data. A second run makes another generation, which is
// harmless in the seeding order (the workflow runs each step once).
func (h *Hosts) DRBDNewGeneration(ctx context.Context, in DRBDNewGenerationInput) (DRBDNewGenerationOutput, error) {
	res := DRBDResourceInput{InstanceID: in.InstanceID, Resource: in.Resource}
	if err := res.check(); err != nil {
		return DRBDNewGenerationOutput{}, err
	}
	st, err := h.RunCommand(ctx, RunCommandInput{InstanceID: in.InstanceID, Comment: "anyops drbd statistics " + in.Resource,
		Commands: []string{"drbdadm status --statistics " + shellQuote(in.Resource)}})
	if err != nil {
		return DRBDNewGenerationOutput{}, err
	}
	parsed, err := ParseDRBDStatus(st.Stdout)
	if err != nil || len(parsed) != 1 {
		return DRBDNewGenerationOutput{}, temporal.NewNonRetryableApplicationError(fmt.Sprintf("drbdadm status %s: %v", in.Resource, err), ErrUnexpectedOutput, nil, st)
	}
	r := parsed[0]
	if r.Role != "Primary" {
		return DRBDNewGenerationOutput{}, invalidInput("%s is %s on %s: a new generation is started on the Primary", in.Resource, r.Role, in.InstanceID)
	}
	if in.ClearBitmap && (in.Override == nil || in.Override.Interlock != anyops.InterlockNoUpToDatePeer) {
		for _, p := range r.Peers {
			if p.Connection == "Connected" || p.Name == in.SeedPeer {
				continue
			}
			for _, v := range p.PeerVolumes {
				if v.OutOfSyncKiB > 0 {
					return DRBDNewGenerationOutput{}, temporal.NewNonRetryableApplicationError(
						fmt.Sprintf("clearing the bitmaps of %s would lose the %d KiB %s still lacks", in.Resource, v.OutOfSyncKiB, p.Name), ErrDRBDPeerLagging, nil, r)
				}
			}
		}
	}
	cmd := "drbdadm new-current-uuid " + shellQuote(in.Resource+"/0")
	if in.ClearBitmap {
		cmd = "drbdadm new-current-uuid --clear-bitmap " + shellQuote(in.Resource+"/0")
	}
	out := DRBDNewGenerationOutput{}
	if out.Result, err = h.RunCommand(ctx, RunCommandInput{InstanceID: in.InstanceID, Comment: "anyops drbd new generation " + in.Resource, Commands: []string{cmd}}); err != nil {
		return out, err
	}
	out.Generation, err = h.DRBDGenerationOf(ctx, res)
	return out, err
}

// DRBDAdoptCopyInput makes a disk that is a copy of another node's (a volume from a snapshot of
// its disk) this node's, before the resource is first brought up here.
type DRBDAdoptCopyInput struct {
	InstanceID string
	Resource   string
	// Minor and Disk are the resource's device minor and backing disk on this host (the
	// stable by-id path), as its resource file says.
	Minor int
	Disk  string
	// FromNodeID is the node the copy was taken of; ToNodeID this node's id in the file.
	FromNodeID, ToNodeID int
}

// DRBDAdoptCopyOutput says whether the node id had to change.
type DRBDAdoptCopyOutput struct {
	Adopted bool // false: the disk's metadata had this node's id already (a retry)
	Result  CommandResult
}

// DRBDAdoptCopy changes the node id in a copied disk's metadata, as the DRBD 9 user's guide
// does: `drbdadm -- --force dump-md` to a file, sed swapping the node id and the two nodes'
// peer sections, `drbdmeta --force … restore-md` back (files under /etc/drbd.d, the resource
// down). It looks first: metadata with ToNodeID already is success, so a retry changes
// nothing.
func (h *Hosts) DRBDAdoptCopy(ctx context.Context, in DRBDAdoptCopyInput) (DRBDAdoptCopyOutput, error) {
	res := DRBDResourceInput{InstanceID: in.InstanceID, Resource: in.Resource}
	if err := res.check(); err != nil {
		return DRBDAdoptCopyOutput{}, err
	}
	if err := checkField("Disk", in.Disk, reDevice); err != nil {
		return DRBDAdoptCopyOutput{}, err
	}
	if in.FromNodeID < 0 || in.FromNodeID > 31 || in.ToNodeID < 0 || in.ToNodeID > 31 || in.Minor < 0 {
		return DRBDAdoptCopyOutput{}, invalidInput("node ids are 0 to 31 and the minor is not negative")
	}
	dump := DRBDConfigDir + "/" + in.Resource + ".md"
	from, to := strconv.Itoa(in.FromNodeID), strconv.Itoa(in.ToNodeID)
	out := DRBDAdoptCopyOutput{}
	var err error
	out.Result, err = h.RunCommand(ctx, RunCommandInput{InstanceID: in.InstanceID, Comment: "anyops drbd adopt copy " + in.Resource, Commands: []string{
		"set -e",
		"drbdadm -- --force dump-md " + shellQuote(in.Resource) + " > " + dump + ".orig",
		"grep -q -x -F " + shellQuote("node-id "+to+";") + " < " + dump + ".orig && echo anyops-adopted-already && exit 0",
		"sed -e " + shellQuote("s/^node-id "+from+";$/node-id "+to+";/") +
			" -e " + shellQuote("s/^peer."+from+". /peer-NEW /") +
			" -e " + shellQuote("s/^peer."+to+". /peer["+from+"] /") +
			" -e " + shellQuote("s/^peer-NEW /peer["+to+"] /") +
			" < " + dump + ".orig > " + dump,
		"drbdmeta --force " + strconv.Itoa(in.Minor) + " v09 " + shellQuote(in.Disk) + " internal restore-md " + dump,
	}})
	if err != nil {
		return out, err
	}
	out.Adopted = !strings.Contains(out.Result.Stdout, "anyops-adopted-already")
	return out, nil
}

// DRBDRemove takes a resource down on a host and removes its file: a node that leaves the
// resource (an old backup once its successor is UpToDate). Not up and no file is success.
func (h *Hosts) DRBDRemove(ctx context.Context, in DRBDResourceInput) (CommandResult, error) {
	if err := in.check(); err != nil {
		return CommandResult{}, err
	}
	return h.RunCommand(ctx, RunCommandInput{InstanceID: in.InstanceID, Comment: "anyops drbd remove " + in.Resource, Commands: []string{
		"set -e",
		"ls " + DRBDConfigDir + "/" + in.Resource + ".res > /dev/null 2>&1 || exit 0",
		"drbdadm down " + shellQuote(in.Resource),
		"rm -f " + DRBDConfigDir + "/" + in.Resource + ".res",
	}})
}

// ParseDRBDResourceConfig reads a resource file in the form DRBDResourceConfig.Render writes
// (this package's own files): the resource's name and device, and each on section's node
// id, address and disk. The port is the first node's.
func ParseDRBDResourceConfig(text string) (DRBDResourceConfig, error) {
	var c DRBDResourceConfig
	var node *DRBDNode
	for n, line := range strings.Split(text, "\n") {
		f := strings.Fields(strings.TrimSuffix(strings.TrimSpace(line), ";"))
		bad := func(what string) (DRBDResourceConfig, error) {
			return DRBDResourceConfig{}, fmt.Errorf("line %d: %s in %q", n+1, what, line)
		}
		switch {
		case len(f) == 0 || strings.HasPrefix(f[0], "#") || f[0] == "meta-disk" || f[0] == "connection-mesh" || f[0] == "hosts":
		case f[0] == "resource" && len(f) == 3 && f[2] == "{" && c.Name == "":
			c.Name = f[1]
		case f[0] == "device" && len(f) == 2 && strings.HasPrefix(f[1], "/dev/drbd"):
			m, err := strconv.Atoi(strings.TrimPrefix(f[1], "/dev/drbd"))
			if err != nil || m < 0 {
				return bad("a device that is not /dev/drbdN")
			}
			c.Minor = m
		case f[0] == "on" && len(f) == 3 && f[2] == "{" && node == nil:
			node = &DRBDNode{Hostname: f[1], NodeID: -1}
		case f[0] == "}" && node != nil:
			if node.NodeID < 0 || node.Address == "" || node.Disk == "" {
				return bad("an on section without node-id, address or disk")
			}
			c.Nodes = append(c.Nodes, *node)
			node = nil
		case f[0] == "}":
		case node != nil && f[0] == "node-id" && len(f) == 2:
			id, err := strconv.Atoi(f[1])
			if err != nil || id < 0 || id > 31 {
				return bad("a bad node-id")
			}
			node.NodeID = id
		case node != nil && f[0] == "address" && len(f) == 2:
			ip, port, ok := strings.Cut(f[1], ":")
			p, err := strconv.Atoi(port)
			if !ok || err != nil || p < 1 || p > 65535 {
				return bad("an address that is not IP:PORT")
			}
			node.Address = ip
			if c.Port == 0 {
				c.Port = p
			}
		case node != nil && f[0] == "disk" && len(f) == 2:
			node.Disk = f[1]
		default:
			return bad("an unexpected statement")
		}
	}
	if c.Name == "" || node != nil {
		return DRBDResourceConfig{}, fmt.Errorf("not a whole resource file")
	}
	if err := c.check(); err != nil {
		return DRBDResourceConfig{}, err
	}
	return c, nil
}

// DRBDConfigOf reads a resource's file on a host: its nodes (ids, addresses, disks) as this
// package wrote them. A host without the file is a non-retryable InvalidInput.
func (h *Hosts) DRBDConfigOf(ctx context.Context, in DRBDResourceInput) (DRBDResourceConfig, error) {
	if err := in.check(); err != nil {
		return DRBDResourceConfig{}, err
	}
	conf := DRBDConfigDir + "/" + in.Resource + ".res"
	res, err := h.run(ctx, RunCommandInput{InstanceID: in.InstanceID, Comment: "anyops drbd config " + in.Resource, Commands: []string{
		"ls " + conf + " > /dev/null 2>&1 || exit " + strconv.Itoa(exitWrongHost),
		"cat " + conf,
	}})
	if err != nil {
		return DRBDResourceConfig{}, err
	}
	if res.ExitCode == exitWrongHost {
		return DRBDResourceConfig{}, invalidInput("%s has no resource file for %s", in.InstanceID, in.Resource)
	}
	if err := commandError(res); err != nil {
		return DRBDResourceConfig{}, err
	}
	c, err := ParseDRBDResourceConfig(res.Stdout)
	if err != nil {
		return DRBDResourceConfig{}, temporal.NewNonRetryableApplicationError(fmt.Sprintf("%s on %s: %v", conf, in.InstanceID, err), ErrUnexpectedOutput, nil, res)
	}
	return c, nil
}
