package activities

import (
	"context"
	"maps"
	"slices"
	"sort"
	"strings"

	"github.com/anyops/anyops"
	"github.com/anyops/anyops/inventory"
)

// HostDRBD is the DRBD status of one host, or why it could not be read.
type HostDRBD struct {
	InstanceID string
	Resources  []DRBDResource
	Error      string
}

// DRBDHosts lists the instances whose `drbdadm status` tells the state and the roles of the
// fleet's replicas: every running, healthy file or backup server, and any other instance holding
// a volume that backs a DRBD resource — both sides of every pair, since a promotion changes no
// tag. Impaired or stopped hosts cannot answer SSM, so their replicas are read from the other
// side, or recorded as unknown.
func DRBDHosts(f Fleet) []string {
	healthy := map[string]bool{}
	for _, i := range f.Instances {
		healthy[i.ID] = i.State == "running"
	}
	for _, h := range f.Health {
		if h.Impaired() {
			healthy[h.InstanceID] = false
		}
	}
	var out []string
	add := func(id string) {
		if healthy[id] && !slices.Contains(out, id) {
			out = append(out, id)
		}
	}
	for _, i := range f.Instances {
		if r := anyops.Role(i.Tags[anyops.TagRole]); r == anyops.RoleFile || r == anyops.RoleBackup {
			add(i.ID)
		}
	}
	for _, v := range f.Volumes {
		if a, ok := attachedTo(v); ok && v.Tags[anyops.TagDRBDResource] != "" {
			add(a.InstanceID)
		}
	}
	sort.Strings(out)
	return out
}

// DRBDPair is one DRBD resource of the fleet: the two volumes that back it, which side is
// primary now, and the resource's status as a host reports it.
type DRBDPair struct {
	Resource string
	// Primary and Secondary are the backing volumes' ids; PrimaryInstance and
	// SecondaryInstance the instances they are attached to.
	Primary, Secondary                 string
	PrimaryInstance, SecondaryInstance string
	// RolesFromHosts: the roles are what `drbdadm status` says on the hosts; false when no host
	// told (none answered, or neither side is Primary) and the volumes' role tags decided.
	RolesFromHosts bool
	// Status is the resource as the primary's host reports it, or as the secondary's does
	// when the primary's did not (OnPrimary says which); nil when no host reported it.
	Status    *DRBDResource
	OnPrimary bool
	// Answered: a host of the pair answered, so a nil Status means the resource is not up.
	Answered bool
}

// DRBDPairs pairs the attached volumes tagged with a DRBD resource, two per resource on two
// instances, and decides each pair's roles from the hosts: the side whose host says it is
// Primary, or whose peer's host says its peer is. Roles are not read from the role tags, which a
// promotion does not change; only when no host tells do the tags decide. Resources without two
// such volumes are returned as incomplete.
func DRBDPairs(f Fleet, drbd []HostDRBD) (pairs []DRBDPair, incomplete []string) {
	type side struct {
		vol      Volume
		instance string
	}
	sides := map[string][]side{}
	for _, v := range f.Volumes {
		name := v.Tags[anyops.TagDRBDResource]
		if name == "" {
			continue
		}
		a, ok := attachedTo(v)
		if !ok {
			sides[name] = append(sides[name], side{})
			continue
		}
		sides[name] = append(sides[name], side{v, a.InstanceID})
	}
	status := map[string]HostDRBD{}
	for _, h := range drbd {
		if h.Error == "" {
			status[h.InstanceID] = h
		}
	}
	// on returns the resource as the host of s reports it, and whether that host answered.
	on := func(s side, name string) (*DRBDResource, bool) {
		h, answered := status[s.instance]
		if !answered {
			return nil, false
		}
		for i := range h.Resources {
			if h.Resources[i].Name == name {
				return &h.Resources[i], true
			}
		}
		return nil, true
	}
	for _, name := range slices.Sorted(maps.Keys(sides)) {
		ss := sides[name]
		if len(ss) != 2 || ss[0].instance == "" || ss[1].instance == "" || ss[0].instance == ss[1].instance {
			incomplete = append(incomplete, name)
			continue
		}
		a, b := ss[0], ss[1]
		ra, answeredA := on(a, name)
		rb, answeredB := on(b, name)
		p := DRBDPair{Resource: name, Answered: answeredA || answeredB, RolesFromHosts: true}
		primaryIsA := false
		switch {
		case isPrimary(ra) && !isPrimary(rb):
			primaryIsA = true
		case isPrimary(rb) && !isPrimary(ra):
		case !isPrimary(ra) && !isPrimary(rb) && peerIsPrimary(rb):
			primaryIsA = true
		case !isPrimary(ra) && !isPrimary(rb) && peerIsPrimary(ra):
		default:
			p.RolesFromHosts = false
			primaryIsA = a.vol.Tags[anyops.TagDRBDRole] == DRBDPrimary ||
				(b.vol.Tags[anyops.TagDRBDRole] != DRBDPrimary && a.vol.ID < b.vol.ID)
		}
		prim, sec, rp, rs := a, b, ra, rb
		if !primaryIsA {
			prim, sec, rp, rs = b, a, rb, ra
		}
		p.Primary, p.PrimaryInstance = prim.vol.ID, prim.instance
		p.Secondary, p.SecondaryInstance = sec.vol.ID, sec.instance
		switch {
		case rp != nil:
			p.Status, p.OnPrimary = rp, true
		case rs != nil:
			p.Status = rs
		}
		pairs = append(pairs, p)
	}
	return pairs, incomplete
}

func isPrimary(r *DRBDResource) bool { return r != nil && r.Role == "Primary" }

func peerIsPrimary(r *DRBDResource) bool {
	return r != nil && len(r.Peers) > 0 && r.Peers[0].Role == "Primary"
}

// DRBDRoleTagChanges lists the tag writes that make the volumes' anyops:drbd-role tags say
// what their hosts say, for the pairs whose roles the hosts told: after a promotion the tags
// still name the old primary.
func DRBDRoleTagChanges(f Fleet, pairs []DRBDPair) []TagResourceInput {
	roleOf := map[string]string{}
	for _, v := range f.Volumes {
		roleOf[v.ID] = v.Tags[anyops.TagDRBDRole]
	}
	var out []TagResourceInput
	for _, p := range pairs {
		if !p.RolesFromHosts {
			continue
		}
		for _, v := range []struct{ id, role string }{{p.Primary, DRBDPrimary}, {p.Secondary, DRBDSecondary}} {
			if roleOf[v.id] != v.role {
				out = append(out, TagResourceInput{ResourceID: v.id, Tags: map[string]string{anyops.TagDRBDRole: v.role}})
			}
		}
	}
	return out
}

// replicaStatus reads a pair's state from one side's `drbdadm status` of the resource: from
// the primary's when onPrimary, else from the secondary's (whose peer is the primary).
func replicaStatus(res DRBDResource, onPrimary bool) (connection, primaryDisk, secondaryDisk string, syncPercent float64, state anyops.ReplicaState) {
	if len(res.Peers) == 0 {
		if onPrimary {
			return "StandAlone", res.Disk, "", 0, anyops.ReplicaDisconnected
		}
		return "StandAlone", "", res.Disk, 0, anyops.ReplicaDisconnected
	}
	p := res.Peers[0]
	primaryDisk, secondaryDisk = res.Disk, p.PeerDisk
	if !onPrimary {
		primaryDisk, secondaryDisk = p.PeerDisk, res.Disk
	}
	switch {
	case res.InSync():
		return p.Connection, primaryDisk, secondaryDisk, 100, anyops.ReplicaUpToDate
	case p.Connection != "Connected":
		return p.Connection, primaryDisk, secondaryDisk, 0, anyops.ReplicaDisconnected
	case strings.HasPrefix(p.Replication, "Sync") || strings.HasPrefix(p.Replication, "PausedSync"):
		return p.Replication, primaryDisk, secondaryDisk, p.Done, anyops.ReplicaSyncing
	}
	return p.Connection, primaryDisk, secondaryDisk, 0, anyops.ReplicaUnknown
}

func (r *reconciler) replicas(ctx context.Context, drbd []HostDRBD) error {
	pairs, incomplete := DRBDPairs(r.fleet, drbd)
	r.res.Counts.Ignored += len(incomplete)
	seen := map[string]bool{}
	for _, p := range pairs {
		ps, ok1 := r.serverOf[p.PrimaryInstance]
		ss, ok2 := r.serverOf[p.SecondaryInstance]
		if !ok1 || !ok2 {
			r.res.Counts.Ignored++
			continue
		}
		old, err := r.store.GetReplica(ctx, p.Resource)
		isNew := anyops.ErrorCode(err) == anyops.ENOTFOUND
		if err != nil && !isNew {
			return err
		}
		want := old
		want.Name, want.Cluster = p.Resource, ps.Cluster
		want.PrimaryServer, want.SecondaryServer = ps.Name, ss.Name
		want.PrimaryVolume, want.SecondaryVolume = p.Primary, p.Secondary
		want.State = anyops.ReplicaUnknown
		switch {
		case p.Status != nil:
			want.ConnectionState, want.PrimaryDiskState, want.SecondaryDiskState, want.SyncPercent, want.State = replicaStatus(*p.Status, p.OnPrimary)
		case p.Answered:
			// The hosts that answered do not have the resource up.
			want.ConnectionState, want.State = "", anyops.ReplicaDisconnected
		}
		changed, err := r.store.UpsertReplica(ctx, want)
		if err != nil {
			return err
		}
		seen[p.Resource] = true
		values := map[string]any{}
		for _, f := range changed {
			switch f {
			case "state":
				values[f] = want.State
			case "primary_server":
				values[f] = want.PrimaryServer
			}
		}
		if err := r.record(ctx, "replica", p.Resource, isNew, changed, values); err != nil {
			return err
		}
	}
	return eachPage(func(p inventory.Page) ([]inventory.Replica, string, error) {
		return r.store.ListReplicas(ctx, inventory.ReplicaFilter{Page: p})
	}, func(rep inventory.Replica) error {
		if seen[rep.Name] || rep.State == anyops.ReplicaUnknown {
			return nil
		}
		rep.State = anyops.ReplicaUnknown
		changed, err := r.store.UpsertReplica(ctx, rep)
		if err != nil {
			return err
		}
		r.res.Counts.Missing++
		return r.drift(ctx, Drift{Entity: "replica", Key: rep.Name, Change: DriftMissing, Fields: changed}, nil)
	})
}
