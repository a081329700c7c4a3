package activities

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"sort"
	"strings"
	"time"

	"go.temporal.io/sdk/temporal"

	"github.com/anyops/anyops"
	"github.com/anyops/anyops/inventory"
)

// DRBD roles of a volume, as anyops.TagDRBDRole spells them.
const (
	DRBDPrimary   = "primary"
	DRBDSecondary = "secondary"
)

// bootDevices are where an instance's root volume is attached; a volume there without a kind
// tag is the server's boot volume.
var bootDevices = []string{"/dev/xvda", "/dev/sda1", "/dev/sda"}

// ---------------------------------------------------------------------------------------
// The demo fleet as a cloud plan.

// PlannedServer is one instance the demo fleet launches.
type PlannedServer struct {
	Name         string
	Role         anyops.Role
	Zone         string
	Cluster      string
	Release      string
	InstanceType string
}

// PlannedVolume is one data volume the demo fleet creates and attaches. Boot volumes are not
// planned: RunInstances creates them.
type PlannedVolume struct {
	Name        string // "<server>/<what>", the Name tag
	Kind        anyops.VolumeKind
	Criticality anyops.Criticality
	SizeGiB     int32
	Zone        string
	Cluster     string
	Server      string
	Device      string
	RAIDGroup   string
	// DRBDResource, DRBDRole and DRBDPeerServer configure the DRBD pair the volume backs;
	// empty for volumes that are not replicated.
	DRBDResource   string
	DRBDRole       string
	DRBDPeerServer string
}

// FleetPlan is what the DemoFleet workflow provisions.
type FleetPlan struct {
	// Zones of the fleet, also those it has nothing in yet (the demo's us-east-1c): the cloud
	// shows only zones with resources, so the inventory learns these from the plan.
	Zones   []inventory.Zone
	Servers []PlannedServer
	Volumes []PlannedVolume
}

// DRBDResources lists the DRBD resources of the plan, sorted.
func (p FleetPlan) DRBDResources() []string {
	var out []string
	for _, v := range p.Volumes {
		if v.DRBDResource != "" && !slices.Contains(out, v.DRBDResource) {
			out = append(out, v.DRBDResource)
		}
	}
	sort.Strings(out)
	return out
}

// DemoFleetPlan turns inventory.DemoFleet into a cloud plan: one instance per server, one
// volume per non-boot volume, and the DRBD pairs of its replicas.
func DemoFleetPlan() FleetPlan {
	f := inventory.DemoFleet()
	release := map[string]string{}
	for _, c := range f.Clusters {
		release[c.Name] = c.Release
	}
	p := FleetPlan{Zones: f.Zones}
	for _, s := range f.Servers {
		p.Servers = append(p.Servers, PlannedServer{
			Name: s.Name, Role: s.Role, Zone: s.Zone, Cluster: s.Cluster, Release: release[s.Cluster], InstanceType: s.InstanceType,
		})
	}
	// The demo fleet's volumes carry fixed fake ids; their names are what the plan needs.
	type drbd struct{ resource, role, peer string }
	byVolume := map[string]drbd{}
	for _, r := range f.Replicas {
		byVolume[r.PrimaryVolume] = drbd{r.Name, DRBDPrimary, r.SecondaryServer}
		byVolume[r.SecondaryVolume] = drbd{r.Name, DRBDSecondary, r.PrimaryServer}
	}
	perServer := map[string]map[anyops.VolumeKind]int{}
	for _, v := range f.Volumes {
		if v.Kind == anyops.VolumeBoot {
			continue
		}
		if perServer[v.Server] == nil {
			perServer[v.Server] = map[anyops.VolumeKind]int{}
		}
		name := v.Server + "/" + string(v.Kind)
		if v.Kind == anyops.VolumeHome {
			name = fmt.Sprintf("%s/home%d", v.Server, perServer[v.Server][v.Kind])
		}
		perServer[v.Server][v.Kind]++
		d := byVolume[v.VolumeID]
		p.Volumes = append(p.Volumes, PlannedVolume{
			Name: name, Kind: v.Kind, Criticality: v.Criticality, SizeGiB: int32(v.SizeGiB), Zone: v.Zone,
			Cluster: v.Cluster, Server: v.Server, Device: v.Device, RAIDGroup: v.RAIDGroup,
			DRBDResource: d.resource, DRBDRole: d.role, DRBDPeerServer: d.peer,
		})
	}
	return p
}

// InstanceTags are the tags a planned server's instance carries (Name is set by RunInstance).
func (s PlannedServer) InstanceTags() map[string]string {
	t := map[string]string{anyops.TagCluster: s.Cluster, anyops.TagRole: string(s.Role), anyops.TagZone: s.Zone}
	if s.Release != "" {
		t[anyops.TagRelease] = s.Release
	}
	return t
}

// VolumeTags are the tags of a planned volume; peerInstance is the instance id of its DRBD
// peer server ("" when the volume is not replicated).
func (v PlannedVolume) VolumeTags(peerInstance string) map[string]string {
	t := map[string]string{anyops.TagKind: string(v.Kind), anyops.TagCriticality: string(v.Criticality), anyops.TagCluster: v.Cluster}
	if v.RAIDGroup != "" {
		t[anyops.TagRAID] = v.RAIDGroup
	}
	if v.DRBDResource != "" {
		t[anyops.TagDRBDResource] = v.DRBDResource
		t[anyops.TagDRBDRole] = v.DRBDRole
		t[anyops.TagDRBDPeer] = peerInstance
	}
	return t
}

// PlanDemoFleet returns DemoFleetPlan. It is an activity so that the plan is recorded in the
// workflow's history: a new release of the demo fleet cannot change a running workflow.
func (a *Inventory) PlanDemoFleet(ctx context.Context) (FleetPlan, error) {
	return DemoFleetPlan(), nil
}

// RecordZones adds the plan's zones to the inventory; zones already there are left as they are.
func (a *Inventory) RecordZones(ctx context.Context, zones []inventory.Zone) error {
	for _, z := range zones {
		if _, err := a.Store.GetZone(ctx, z.Name); err == nil {
			continue
		} else if anyops.ErrorCode(err) != anyops.ENOTFOUND {
			return err
		}
		if _, err := a.Store.UpsertZone(ctx, z); err != nil {
			return err
		}
	}
	return nil
}

// ---------------------------------------------------------------------------------------
// Reconciling the inventory with the cloud.

// HostDRBD is the DRBD status of one host, or why it could not be read.
type HostDRBD struct {
	InstanceID string
	Resources  []DRBDResource
	Error      string
}

// DRBDHosts lists the instances whose `drbdadm status` tells the state of the fleet's replicas:
// the running, healthy holders of primary volumes. Impaired or stopped hosts cannot answer
// SSM, so their replicas are recorded as unknown instead.
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
	for _, v := range f.Volumes {
		if v.Tags[anyops.TagDRBDRole] != DRBDPrimary {
			continue
		}
		if a, ok := attachedTo(v); ok && healthy[a.InstanceID] && !slices.Contains(out, a.InstanceID) {
			out = append(out, a.InstanceID)
		}
	}
	sort.Strings(out)
	return out
}

// ReconcileFleetInput is the cloud as FleetSync saw it.
type ReconcileFleetInput struct {
	Fleet Fleet
	DRBD  []HostDRBD
	// Actor is recorded on the drift events.
	Actor string
}

// Drift changes the inventory.
const (
	DriftNew     = "new"
	DriftChanged = "changed"
	DriftMissing = "missing" // gone from the cloud: marked terminated or deleted, never removed
)

// Drift is one difference between the inventory and the cloud that ReconcileFleet fixed.
type Drift struct {
	Entity string   `json:"entity"` // zone, release, cluster, server, volume, replica
	Key    string   `json:"key"`
	Change string   `json:"change"`
	Fields []string `json:"fields,omitempty"`
}

// SyncCounts counts what a reconcile did to the rows it looked at.
type SyncCounts struct {
	Created   int `json:"created"`
	Updated   int `json:"updated"`
	Missing   int `json:"missing"`
	Unchanged int `json:"unchanged"`
	// Ignored counts cloud resources that carry no Anyops tags: not part of the fleet.
	Ignored int `json:"ignored"`
}

// ReconcileFleetResult is what ReconcileFleet did.
type ReconcileFleetResult struct {
	Counts SyncCounts `json:"counts"`
	Drift  []Drift    `json:"drift"`
}

// ErrSyncConflict is the retryable error type of a reconcile that lost a race with another.
const ErrSyncConflict = "SyncConflict"

// DriftAction is the audit action of a drift event.
const DriftAction = "drift"

// ReconcileFleet makes the inventory say what the cloud says: zones and clusters from tags,
// servers by instance id (else by Name tag) with their state from the status checks, volumes
// with their attachments, replicas from the DRBD tags and the hosts' DRBD status. Rows whose
// resource is gone from the cloud are marked terminated (servers), deleted (volumes) or
// unknown (replicas), never removed. Every change is recorded as an audit event with action
// "drift". Run again on the same cloud it changes and records nothing, so a retry after a
// lost reply is harmless.
func (a *Inventory) ReconcileFleet(ctx context.Context, in ReconcileFleetInput) (ReconcileFleetResult, error) {
	actor := in.Actor
	if actor == "" {
		actor = "fleet-sync"
	}
	r := &reconciler{store: a.Store, actor: actor, fleet: in.Fleet}
	err := r.run(ctx, in.DRBD)
	if anyops.ErrorCode(err) == anyops.ECONFLICT {
		// Another sync (the schedule's and an operator's can overlap) created the row first;
		// a retry reads it and carries on.
		return r.res, temporal.NewApplicationError(anyops.ErrorMessage(err), ErrSyncConflict)
	}
	return r.res, classify(err)
}

type reconciler struct {
	store *inventory.Store
	actor string
	fleet Fleet
	res   ReconcileFleetResult

	serverOf map[string]inventory.Server // instance id -> the server row it now is
}

// record counts one upsert's outcome and audits it when something changed.
func (r *reconciler) record(ctx context.Context, entity, key string, isNew bool, changed []string, values map[string]any) error {
	switch {
	case len(changed) == 0:
		r.res.Counts.Unchanged++
		return nil
	case isNew:
		r.res.Counts.Created++
		return r.drift(ctx, Drift{Entity: entity, Key: key, Change: DriftNew, Fields: changed}, values)
	default:
		r.res.Counts.Updated++
		return r.drift(ctx, Drift{Entity: entity, Key: key, Change: DriftChanged, Fields: changed}, values)
	}
}

func (r *reconciler) drift(ctx context.Context, d Drift, values map[string]any) error {
	r.res.Drift = append(r.res.Drift, d)
	summary := map[string]any{"entity": d.Entity, "key": d.Key, "change": d.Change, "fields": d.Fields, "source": "cloud"}
	if len(values) > 0 {
		summary["values"] = values
	}
	_, err := r.store.RecordAudit(ctx, inventory.AuditEvent{Actor: r.actor, Action: DriftAction, Subject: d.Entity + "/" + d.Key, Summary: summary})
	return err
}

func (r *reconciler) run(ctx context.Context, drbd []HostDRBD) error {
	instances := managedInstances(r.fleet.Instances)
	r.res.Counts.Ignored = len(r.fleet.Instances) - len(instances)
	health := map[string]InstanceHealth{}
	for _, h := range r.fleet.Health {
		health[h.InstanceID] = h
	}
	steps := []func(context.Context) error{
		func(ctx context.Context) error { return r.zones(ctx, instances) },
		func(ctx context.Context) error { return r.releases(ctx, instances) },
		func(ctx context.Context) error { return r.clusters(ctx, instances) },
		func(ctx context.Context) error { return r.servers(ctx, instances, health) },
		r.volumes,
		func(ctx context.Context) error { return r.replicas(ctx, drbd) },
	}
	for _, step := range steps {
		if err := step(ctx); err != nil {
			return err
		}
	}
	return nil
}

// managedInstances keeps the instances Anyops launched (tagged with a cluster, a known role and
// a name). Of several instances with one name, a live one wins over terminated ones: a
// replacement server keeps its name.
func managedInstances(all []Instance) []Instance {
	byName := map[string]Instance{}
	for _, i := range all {
		if i.Name == "" || i.Tags[anyops.TagCluster] == "" {
			continue
		}
		if _, err := anyops.Parse("role", i.Tags[anyops.TagRole], anyops.Roles); err != nil {
			continue
		}
		prev, seen := byName[i.Name]
		if !seen || (prev.State == "terminated" && i.State != "terminated") ||
			(prev.State == i.State && i.LaunchTime.After(prev.LaunchTime)) {
			byName[i.Name] = i
		}
	}
	out := make([]Instance, 0, len(byName))
	for _, i := range byName {
		out = append(out, i)
	}
	sort.Slice(out, func(a, b int) bool { return out[a].Name < out[b].Name })
	return out
}

// regionOf is the region of an availability zone: its name without the zone letter.
func regionOf(zone string) string {
	if n := len(zone); n > 1 && zone[n-1] >= 'a' && zone[n-1] <= 'z' {
		return zone[:n-1]
	}
	return zone
}

func (r *reconciler) zones(ctx context.Context, instances []Instance) error {
	var names []string
	for _, i := range instances {
		names = append(names, i.Zone)
	}
	for _, v := range r.fleet.Volumes {
		if v.Tags[anyops.TagKind] != "" {
			names = append(names, v.Zone)
		}
	}
	return r.ensureNamed(ctx, "zone", names, func(z string) error {
		_, err := r.store.GetZone(ctx, z)
		return err
	}, func(z string) ([]string, error) {
		return r.store.UpsertZone(ctx, inventory.Zone{Name: z, Region: regionOf(z)})
	})
}

// releases creates the releases instances are tagged with; an existing release is the
// inventory's to describe.
func (r *reconciler) releases(ctx context.Context, instances []Instance) error {
	var names []string
	for _, i := range instances {
		names = append(names, i.Tags[anyops.TagRelease])
	}
	return r.ensureNamed(ctx, "release", names, func(name string) error {
		_, err := r.store.GetRelease(ctx, name)
		return err
	}, func(name string) ([]string, error) {
		return r.store.UpsertRelease(ctx, inventory.Release{Name: name, Notes: "found in the cloud by fleet-sync"})
	})
}

// ensureNamed creates each distinct non-empty name that get does not find, with create, and
// records it; a row that exists is left as the inventory has it.
func (r *reconciler) ensureNamed(ctx context.Context, entity string, names []string,
	get func(name string) error, create func(name string) ([]string, error)) error {
	sort.Strings(names)
	for _, name := range slices.Compact(names) {
		if name == "" {
			continue
		}
		err := get(name)
		if err == nil {
			r.res.Counts.Unchanged++
			continue
		} else if anyops.ErrorCode(err) != anyops.ENOTFOUND {
			return err
		}
		changed, err := create(name)
		if err != nil {
			return err
		}
		if err := r.record(ctx, entity, name, true, changed, nil); err != nil {
			return err
		}
	}
	return nil
}

// clusters creates the clusters instances are tagged with, live in the zone of their first
// server. A cluster the inventory knows keeps its zone, state and release: moving or retiring
// a cluster is a workflow's decision, not drift; only a missing release is filled in.
func (r *reconciler) clusters(ctx context.Context, instances []Instance) error {
	first := map[string]Instance{}
	var names []string
	for _, i := range instances {
		c := i.Tags[anyops.TagCluster]
		if _, ok := first[c]; !ok {
			first[c] = i
			names = append(names, c)
		}
	}
	sort.Strings(names)
	for _, name := range names {
		i := first[name]
		old, err := r.store.GetCluster(ctx, name)
		isNew := anyops.ErrorCode(err) == anyops.ENOTFOUND
		if err != nil && !isNew {
			return err
		}
		want := old
		if isNew {
			want = inventory.Cluster{Name: name, Zone: i.Zone, State: anyops.ClusterLive}
		}
		if want.Release == "" {
			want.Release = i.Tags[anyops.TagRelease]
		}
		changed, err := r.store.UpsertCluster(ctx, want)
		if err != nil {
			return err
		}
		if err := r.record(ctx, "cluster", name, isNew, changed, nil); err != nil {
			return err
		}
	}
	return nil
}

// serverState is the inventory state of an instance: EC2's state, or impaired when a status
// check of a running instance fails.
func serverState(i Instance, h InstanceHealth, found bool) anyops.ServerState {
	switch i.State {
	case "pending":
		return anyops.ServerPending
	case "running":
		if found && h.Impaired() {
			return anyops.ServerImpaired
		}
		return anyops.ServerRunning
	case "stopping", "shutting-down":
		return anyops.ServerStopping
	case "stopped":
		return anyops.ServerStopped
	case "terminated":
		return anyops.ServerTerminated
	}
	return anyops.ServerPending
}

func (r *reconciler) servers(ctx context.Context, instances []Instance, health map[string]InstanceHealth) error {
	r.serverOf = map[string]inventory.Server{}
	seen := map[string]bool{}
	for _, i := range instances {
		old, err := r.store.GetServerByInstance(ctx, i.ID)
		if anyops.ErrorCode(err) == anyops.ENOTFOUND {
			old, err = r.store.GetServer(ctx, i.Name)
		}
		isNew := anyops.ErrorCode(err) == anyops.ENOTFOUND
		if err != nil && !isNew {
			return err
		}
		want := old
		if isNew {
			want = inventory.Server{Name: i.Name}
		}
		h, ok := health[i.ID]
		want.InstanceID = i.ID
		want.Role = anyops.Role(i.Tags[anyops.TagRole])
		want.Zone = i.Zone
		want.Cluster = i.Tags[anyops.TagCluster]
		want.State = serverState(i, h, ok)
		want.InstanceType = i.InstanceType
		want.PrivateIP = i.PrivateIP
		want.ImpairedSince = nil
		if want.State == anyops.ServerImpaired {
			switch {
			case h.ImpairedSince != nil:
				want.ImpairedSince = h.ImpairedSince
			case old.ImpairedSince != nil:
				want.ImpairedSince = old.ImpairedSince
			default:
				now := time.Now()
				want.ImpairedSince = &now
			}
		}
		changed, err := r.store.UpsertServer(ctx, want)
		if err != nil {
			return err
		}
		seen[want.Name] = true
		r.serverOf[i.ID] = want
		values := map[string]any{}
		for _, f := range changed {
			switch f {
			case "state":
				values[f] = want.State
			case "instance_id":
				values[f] = want.InstanceID
			case "impaired_since":
				values[f] = want.ImpairedSince
			}
		}
		if err := r.record(ctx, "server", want.Name, isNew, changed, values); err != nil {
			return err
		}
	}
	// Servers whose instance is gone.
	return eachPage(func(p inventory.Page) ([]inventory.Server, string, error) {
		return r.store.ListServers(ctx, inventory.ServerFilter{Page: p})
	}, func(s inventory.Server) error {
		if seen[s.Name] || s.InstanceID == "" || s.State == anyops.ServerTerminated {
			return nil
		}
		s.State, s.ImpairedSince = anyops.ServerTerminated, nil
		changed, err := r.store.UpsertServer(ctx, s)
		if err != nil {
			return err
		}
		r.res.Counts.Missing++
		return r.drift(ctx, Drift{Entity: "server", Key: s.Name, Change: DriftMissing, Fields: changed},
			map[string]any{"instance_id": s.InstanceID, "state": s.State})
	})
}

// listAll reads every page of a paged list.
func listAll[T any](list func(inventory.Page) ([]T, string, error)) ([]T, error) {
	var all []T
	p := inventory.Page{Limit: inventory.MaxLimit}
	for {
		rows, next, err := list(p)
		if err != nil {
			return nil, err
		}
		all = append(all, rows...)
		if next == "" {
			return all, nil
		}
		p.Cursor = next
	}
}

// eachPage calls fn for every row of a paged list. It reads all pages first, so fn may
// write to the rows being listed.
func eachPage[T any](list func(inventory.Page) ([]T, string, error), fn func(T) error) error {
	all, err := listAll(list)
	if err != nil {
		return err
	}
	for _, row := range all {
		if err := fn(row); err != nil {
			return err
		}
	}
	return nil
}

// attachedTo returns a volume's current attachment, if any.
func attachedTo(v Volume) (Attachment, bool) {
	for _, a := range v.Attachments {
		if a.State != "detached" && a.State != "" {
			return a, true
		}
	}
	return Attachment{}, false
}

func (r *reconciler) volumes(ctx context.Context) error {
	seen := map[string]bool{}
	for _, v := range r.fleet.Volumes {
		a, attached := attachedTo(v)
		server, managedServer := r.serverOf[a.InstanceID]
		kind := anyops.VolumeKind(v.Tags[anyops.TagKind])
		switch {
		case kind != "":
			if _, err := anyops.Parse("kind", string(kind), anyops.VolumeKinds); err != nil {
				r.res.Counts.Ignored++
				continue
			}
		case attached && managedServer && slices.Contains(bootDevices, a.Device):
			kind = anyops.VolumeBoot
		default:
			r.res.Counts.Ignored++
			continue
		}
		state, err := anyops.Parse("volume state", v.State, anyops.VolumeStates)
		if err != nil {
			state = anyops.VolumeError
		}
		old, err := r.store.GetVolume(ctx, v.ID)
		isNew := anyops.ErrorCode(err) == anyops.ENOTFOUND
		if err != nil && !isNew {
			return err
		}
		want := old
		want.VolumeID, want.Kind, want.State, want.Zone = v.ID, kind, state, v.Zone
		want.SizeGiB = int(v.SizeGiB)
		want.Criticality = anyops.Criticality(v.Tags[anyops.TagCriticality])
		if _, err := anyops.Parse("criticality", string(want.Criticality), anyops.Criticalities); err != nil {
			want.Criticality = anyops.DefaultCriticality(kind)
		}
		want.RAIDGroup = v.Tags[anyops.TagRAID]
		want.Cluster = v.Tags[anyops.TagCluster]
		want.Server, want.Device = "", ""
		if attached && managedServer {
			want.Server, want.Device = server.Name, a.Device
			if want.Cluster == "" {
				want.Cluster = server.Cluster
			}
		}
		if want.Cluster != "" {
			if _, err := r.store.GetCluster(ctx, want.Cluster); anyops.ErrorCode(err) == anyops.ENOTFOUND {
				want.Cluster = "" // tagged with a cluster the fleet does not have
			} else if err != nil {
				return err
			}
		}
		changed, err := r.store.UpsertVolume(ctx, want)
		if err != nil {
			return err
		}
		seen[v.ID] = true
		if err := r.record(ctx, "volume", v.ID, isNew, changed, nil); err != nil {
			return err
		}
	}
	return eachPage(func(p inventory.Page) ([]inventory.Volume, string, error) {
		return r.store.ListVolumes(ctx, inventory.VolumeFilter{Page: p})
	}, func(v inventory.Volume) error {
		if seen[v.VolumeID] || v.State == anyops.VolumeDeleted {
			return nil
		}
		v.State, v.Server, v.Device = anyops.VolumeDeleted, "", ""
		changed, err := r.store.UpsertVolume(ctx, v)
		if err != nil {
			return err
		}
		r.res.Counts.Missing++
		return r.drift(ctx, Drift{Entity: "volume", Key: v.VolumeID, Change: DriftMissing, Fields: changed}, nil)
	})
}

// replicaStatus reads one resource's state from its primary's `drbdadm status`.
func replicaStatus(res DRBDResource) (connection, secondaryDisk string, syncPercent float64, state anyops.ReplicaState) {
	if len(res.Peers) == 0 {
		return "StandAlone", "", 0, anyops.ReplicaDisconnected
	}
	p := res.Peers[0]
	switch {
	case res.InSync():
		return p.Connection, p.PeerDisk, 100, anyops.ReplicaUpToDate
	case p.Connection != "Connected":
		return p.Connection, p.PeerDisk, 0, anyops.ReplicaDisconnected
	case strings.HasPrefix(p.Replication, "Sync") || strings.HasPrefix(p.Replication, "PausedSync"):
		return p.Replication, p.PeerDisk, p.Done, anyops.ReplicaSyncing
	}
	return p.Connection, p.PeerDisk, 0, anyops.ReplicaUnknown
}

func (r *reconciler) replicas(ctx context.Context, drbd []HostDRBD) error {
	type pair struct{ primary, secondary *Volume }
	pairs := map[string]*pair{}
	for i := range r.fleet.Volumes {
		v := &r.fleet.Volumes[i]
		name := v.Tags[anyops.TagDRBDResource]
		if name == "" {
			continue
		}
		if pairs[name] == nil {
			pairs[name] = &pair{}
		}
		switch v.Tags[anyops.TagDRBDRole] {
		case DRBDPrimary:
			pairs[name].primary = v
		case DRBDSecondary:
			pairs[name].secondary = v
		}
	}
	status := map[string]HostDRBD{}
	for _, h := range drbd {
		status[h.InstanceID] = h
	}
	seen := map[string]bool{}
	for _, name := range slices.Sorted(maps.Keys(pairs)) {
		p := pairs[name]
		if p.primary == nil || p.secondary == nil {
			r.res.Counts.Ignored++
			continue
		}
		pa, ok1 := attachedTo(*p.primary)
		sa, ok2 := attachedTo(*p.secondary)
		ps, ok3 := r.serverOf[pa.InstanceID]
		ss, ok4 := r.serverOf[sa.InstanceID]
		if !ok1 || !ok2 || !ok3 || !ok4 || ps.Name == ss.Name {
			r.res.Counts.Ignored++
			continue
		}
		old, err := r.store.GetReplica(ctx, name)
		isNew := anyops.ErrorCode(err) == anyops.ENOTFOUND
		if err != nil && !isNew {
			return err
		}
		want := old
		want.Name, want.Cluster = name, ps.Cluster
		want.PrimaryServer, want.SecondaryServer = ps.Name, ss.Name
		want.PrimaryVolume, want.SecondaryVolume = p.primary.ID, p.secondary.ID
		want.State = anyops.ReplicaUnknown
		if h, ok := status[pa.InstanceID]; ok && h.Error == "" {
			i := slices.IndexFunc(h.Resources, func(res DRBDResource) bool { return res.Name == name })
			if i >= 0 {
				res := h.Resources[i]
				want.PrimaryDiskState = res.Disk
				want.ConnectionState, want.SecondaryDiskState, want.SyncPercent, want.State = replicaStatus(res)
			} else {
				want.ConnectionState, want.State = "", anyops.ReplicaDisconnected
			}
		}
		changed, err := r.store.UpsertReplica(ctx, want)
		if err != nil {
			return err
		}
		seen[name] = true
		values := map[string]any{}
		if slices.Contains(changed, "state") {
			values["state"] = want.State
		}
		if err := r.record(ctx, "replica", name, isNew, changed, values); err != nil {
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
