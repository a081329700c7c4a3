package activities

import (
	"context"
	"encoding/json"
	"maps"
	"slices"
	"sort"
	"strings"
	"time"

	"go.temporal.io/sdk/temporal"

	"github.com/anyops/anyops"
	"github.com/anyops/anyops/inventory"
)

// Reconciling the inventory with the cloud: ReconcileFleet and its steps. The DRBD pairs and
// the replicas step are in fleet_drbd.go.

// ReconcileFleetInput is the cloud as FleetSync saw it. Fleet.DescribedAt is required: it
// orders pictures of the cloud, so that an older one never overwrites a newer one.
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
	// DriftUnclassified: in the cloud with Anyops tags that do not say what it is (a kind or
	// role not in the closed set). Its row, if any, is left as it is — never swept as gone.
	DriftUnclassified = "unclassified"
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
	// Unclassified counts resources whose Anyops tags do not say what they are.
	Unclassified int `json:"unclassified"`
}

// ReconcileFleetResult is what ReconcileFleet did.
type ReconcileFleetResult struct {
	Counts SyncCounts `json:"counts"`
	Drift  []Drift    `json:"drift"`
	// DescribedAt is when the picture applied was taken.
	DescribedAt time.Time `json:"described_at"`
	// Superseded: a newer picture of the cloud had been applied already, so this older one
	// changed and recorded nothing.
	Superseded bool `json:"superseded,omitempty"`
}

// ErrSyncConflict is the retryable error type of a reconcile that lost a race with another.
const ErrSyncConflict = "SyncConflict"

// DriftAction is the audit action of a drift event.
const DriftAction = "drift"

// reconcileName names the fleet's row in the inventory's reconciles table.
const reconcileName = "fleet"

// ReconcileFleet makes the inventory say what the cloud says: zones and clusters from tags,
// servers by instance id (else by Name tag) with their state from the status checks, volumes
// with their attachments, replicas from the hosts' DRBD status. Rows whose resource is gone
// from the cloud are marked terminated (servers), deleted (volumes) or unknown (replicas),
// never removed; a resource still in the cloud whose tags cannot be read is never marked gone.
// Every change is recorded as an audit event with action "drift".
//
// One reconcile is one transaction: it applies all of the picture and its audit events, or
// none (a retry after a partial failure then finds all the drift again and records it once).
// The picture's DescribedAt is its generation: an older picture than the newest applied is
// refused (Superseded), and the same picture again — a retry after a lost reply — returns the
// first result and records nothing twice.
func (a *Inventory) ReconcileFleet(ctx context.Context, in ReconcileFleetInput) (ReconcileFleetResult, error) {
	if in.Fleet.DescribedAt.IsZero() {
		return ReconcileFleetResult{}, invalidInput("Fleet.DescribedAt is required: it orders pictures of the cloud")
	}
	actor := in.Actor
	if actor == "" {
		actor = "fleet-sync"
	}
	var res ReconcileFleetResult
	err := a.Store.InTx(ctx, func(tx *inventory.Store) error {
		claimed, newest, err := tx.ClaimReconcile(ctx, reconcileName, in.Fleet.DescribedAt)
		if err != nil {
			return err
		}
		if !claimed {
			if newest.DescribedAt.Equal(in.Fleet.DescribedAt) {
				return json.Unmarshal(newest.Result, &res) // applied already: its first result
			}
			res = ReconcileFleetResult{DescribedAt: in.Fleet.DescribedAt, Superseded: true}
			return nil
		}
		r := &reconciler{store: tx, actor: actor, fleet: in.Fleet}
		r.res.DescribedAt = in.Fleet.DescribedAt
		if err := r.run(ctx, in.DRBD); err != nil {
			return err
		}
		res = r.res
		stored, err := json.Marshal(res)
		if err != nil {
			return err
		}
		return tx.RecordReconcile(ctx, reconcileName, stored)
	})
	if anyops.ErrorCode(err) == anyops.ECONFLICT {
		// A write raced with one outside reconciles (an operator's): a retry reads it.
		return ReconcileFleetResult{}, temporal.NewApplicationError(anyops.ErrorMessage(err), ErrSyncConflict)
	}
	if err != nil {
		return ReconcileFleetResult{}, classify(err)
	}
	return res, nil
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
	return r.audit(ctx, d, values, nil)
}

func (r *reconciler) audit(ctx context.Context, d Drift, values map[string]any, key *string) error {
	r.res.Drift = append(r.res.Drift, d)
	summary := map[string]any{"entity": d.Entity, "key": d.Key, "change": d.Change, "fields": d.Fields, "source": "cloud"}
	if len(values) > 0 {
		summary["values"] = values
	}
	_, err := r.store.RecordAudit(ctx, inventory.AuditEvent{Actor: r.actor, Action: DriftAction, Subject: d.Entity + "/" + d.Key,
		Summary: summary, IdempotencyKey: key})
	return err
}

// unclassified records a resource whose Anyops tags do not say what it is. Every sync reports
// it; the audit log gets one event per distinct set of bad values, not one every few minutes.
func (r *reconciler) unclassified(ctx context.Context, entity, key string, bad map[string]string) error {
	r.res.Counts.Unclassified++
	fields := slices.Sorted(maps.Keys(bad))
	values := map[string]any{}
	idem := "unclassified/" + entity + "/" + key
	for _, f := range fields {
		values[f] = bad[f]
		idem += "/" + f + "=" + bad[f]
	}
	return r.audit(ctx, Drift{Entity: entity, Key: key, Change: DriftUnclassified, Fields: fields}, values, &idem)
}

func (r *reconciler) run(ctx context.Context, drbd []HostDRBD) error {
	instances, unclassified := managedInstances(r.fleet.Instances)
	r.res.Counts.Ignored = len(r.fleet.Instances) - len(instances) - len(unclassified)
	for _, u := range unclassified {
		if err := r.unclassified(ctx, "instance", u.instance.ID, u.bad); err != nil {
			return err
		}
	}
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

// unclassifiedInstance is an instance with Anyops tags that do not say what it is.
type unclassifiedInstance struct {
	instance Instance
	bad      map[string]string // tag -> the value that is not valid ("" when missing)
}

// managedInstances keeps the instances Anyops launched (tagged with a cluster, a known role and
// a name). Of several instances with one name, a live one wins over terminated ones: a
// replacement server keeps its name. Instances with Anyops tags that do not make a server
// (a role out of the set, no cluster or name) are returned as unclassified; instances without
// Anyops tags are not the fleet's.
func managedInstances(all []Instance) ([]Instance, []unclassifiedInstance) {
	byName := map[string]Instance{}
	var unclassified []unclassifiedInstance
	for _, i := range all {
		bad := map[string]string{}
		if _, err := anyops.Parse("role", i.Tags[anyops.TagRole], anyops.Roles); err != nil {
			bad[anyops.TagRole] = i.Tags[anyops.TagRole]
		}
		if i.Tags[anyops.TagCluster] == "" {
			bad[anyops.TagCluster] = ""
		}
		if i.Name == "" {
			bad[TagName] = ""
		}
		if len(bad) > 0 {
			if hasAnyopsTags(i.Tags) && i.State != "terminated" {
				unclassified = append(unclassified, unclassifiedInstance{i, bad})
			}
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
	sort.Slice(unclassified, func(a, b int) bool { return unclassified[a].instance.ID < unclassified[b].instance.ID })
	return out, unclassified
}

// hasAnyopsTags reports whether a resource carries a fleet tag (anyops:cluster, anyops:kind, ...)
// other than the provenance ones every resource an activity creates gets.
func hasAnyopsTags(tags map[string]string) bool {
	for k := range tags {
		if strings.HasPrefix(k, "anyops:") && k != TagWorkflow && k != TagScope && k != TagStep {
			return true
		}
	}
	return false
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
	// Servers whose instance is gone. One whose instance is still there, unclassified, is not.
	live := map[string]bool{}
	for _, i := range r.fleet.Instances {
		live[i.ID] = i.State != "terminated"
	}
	return eachPage(func(p inventory.Page) ([]inventory.Server, string, error) {
		return r.store.ListServers(ctx, inventory.ServerFilter{Page: p})
	}, func(s inventory.Server) error {
		if seen[s.Name] || s.InstanceID == "" || s.State == anyops.ServerTerminated || live[s.InstanceID] {
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

func (r *reconciler) volumes(ctx context.Context) error {
	seen := map[string]bool{}
	for _, v := range r.fleet.Volumes {
		// Seen whatever its tags say: a volume in the cloud is never swept as deleted.
		seen[v.ID] = v.State != string(anyops.VolumeDeleted)
		a, attached := attachedTo(v)
		server, managedServer := r.serverOf[a.InstanceID]
		kind := anyops.VolumeKind(v.Tags[anyops.TagKind])
		switch {
		case kind != "":
			if _, err := anyops.Parse("kind", string(kind), anyops.VolumeKinds); err != nil {
				if err := r.unclassified(ctx, "volume", v.ID, map[string]string{anyops.TagKind: string(kind)}); err != nil {
					return err
				}
				continue
			}
		case attached && managedServer && slices.Contains(bootDevices, a.Device):
			kind = anyops.VolumeBoot
		case hasAnyopsTags(v.Tags):
			if err := r.unclassified(ctx, "volume", v.ID, map[string]string{anyops.TagKind: ""}); err != nil {
				return err
			}
			continue
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
