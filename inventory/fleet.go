package inventory

import (
	"context"
	"regexp"
	"time"

	"github.com/anyops/anyops"
)

// Filters of the fleet lists. Empty fields match everything; an enum field that is not a
// member of its closed set is EINVALID.
type (
	ZoneFilter struct {
		Page
	}
	ClusterFilter struct {
		Zone  string
		State anyops.ClusterState
		Page
	}
	ServerFilter struct {
		Zone    string
		Cluster string
		Role    anyops.Role
		State   anyops.ServerState
		Page
	}
	VolumeFilter struct {
		Zone    string
		Cluster string
		Kind    anyops.VolumeKind
		State   anyops.VolumeState
		Server  string // attached to this server
		Page
	}
	ReplicaFilter struct {
		Cluster string
		State   anyops.ReplicaState
		Page
	}
)

// ListZones lists zones by name.
func (s *Store) ListZones(ctx context.Context, f ZoneFilter) ([]Zone, string, error) {
	return listPage(s.db.WithContext(ctx).Model(&Zone{}), f.Page, s.key("name"), func(z Zone) string { return z.Name }, "zones")
}

// ListClusters lists clusters by name.
func (s *Store) ListClusters(ctx context.Context, f ClusterFilter) ([]Cluster, string, error) {
	if err := parseFilter("state", string(f.State), anyops.ClusterStates); err != nil {
		return nil, "", err
	}
	q := s.db.WithContext(ctx).Model(&Cluster{})
	q = whereSet(q, "zone", f.Zone)
	q = whereSet(q, "state", string(f.State))
	return listPage(q, f.Page, s.key("name"), func(c Cluster) string { return c.Name }, "clusters")
}

// ListServers lists servers by name.
func (s *Store) ListServers(ctx context.Context, f ServerFilter) ([]Server, string, error) {
	if err := parseFilter("role", string(f.Role), anyops.Roles); err != nil {
		return nil, "", err
	}
	if err := parseFilter("state", string(f.State), anyops.ServerStates); err != nil {
		return nil, "", err
	}
	q := s.db.WithContext(ctx).Model(&Server{})
	q = whereSet(q, "zone", f.Zone)
	q = whereSet(q, "cluster", f.Cluster)
	q = whereSet(q, "role", string(f.Role))
	q = whereSet(q, "state", string(f.State))
	return listPage(q, f.Page, s.key("name"), func(v Server) string { return v.Name }, "servers")
}

// ListVolumes lists volumes by volume id.
func (s *Store) ListVolumes(ctx context.Context, f VolumeFilter) ([]Volume, string, error) {
	if err := parseFilter("kind", string(f.Kind), anyops.VolumeKinds); err != nil {
		return nil, "", err
	}
	if err := parseFilter("state", string(f.State), anyops.VolumeStates); err != nil {
		return nil, "", err
	}
	q := s.db.WithContext(ctx).Model(&Volume{})
	q = whereSet(q, "zone", f.Zone)
	q = whereSet(q, "cluster", f.Cluster)
	q = whereSet(q, "kind", string(f.Kind))
	q = whereSet(q, "state", string(f.State))
	q = whereSet(q, "server", f.Server)
	return listPage(q, f.Page, s.key("volume_id"), func(v Volume) string { return v.VolumeID }, "volumes")
}

// ListReplicas lists DRBD replicas by resource name.
func (s *Store) ListReplicas(ctx context.Context, f ReplicaFilter) ([]Replica, string, error) {
	if err := parseFilter("state", string(f.State), anyops.ReplicaStates); err != nil {
		return nil, "", err
	}
	q := s.db.WithContext(ctx).Model(&Replica{})
	q = whereSet(q, "cluster", f.Cluster)
	q = whereSet(q, "state", string(f.State))
	return listPage(q, f.Page, s.key("name"), func(r Replica) string { return r.Name }, "replicas")
}

// GetZone returns a zone, ENOTFOUND when absent.
func (s *Store) GetZone(ctx context.Context, name string) (Zone, error) {
	var z Zone
	err := s.db.WithContext(ctx).Where("name = ?", name).Take(&z).Error
	return z, dbError(err, "zone "+quote(name))
}

// GetCluster returns a cluster, ENOTFOUND when absent.
func (s *Store) GetCluster(ctx context.Context, name string) (Cluster, error) {
	var c Cluster
	err := s.db.WithContext(ctx).Where("name = ?", name).Take(&c).Error
	return c, dbError(err, "cluster "+quote(name))
}

// GetServer returns a server by name, ENOTFOUND when absent.
func (s *Store) GetServer(ctx context.Context, name string) (Server, error) {
	var v Server
	err := s.db.WithContext(ctx).Where("name = ?", name).Take(&v).Error
	return v, dbError(err, "server "+quote(name))
}

// GetServerByInstance returns the server running an instance, ENOTFOUND when none does.
func (s *Store) GetServerByInstance(ctx context.Context, instanceID string) (Server, error) {
	var v Server
	if instanceID == "" {
		return v, anyops.Errorf(anyops.EINVALID, "instance id is empty")
	}
	err := s.db.WithContext(ctx).Where("instance_id = ?", instanceID).Take(&v).Error
	return v, dbError(err, "server with instance "+quote(instanceID))
}

// GetVolume returns a volume, ENOTFOUND when absent.
func (s *Store) GetVolume(ctx context.Context, volumeID string) (Volume, error) {
	var v Volume
	err := s.db.WithContext(ctx).Where("volume_id = ?", volumeID).Take(&v).Error
	return v, dbError(err, "volume "+quote(volumeID))
}

// GetReplica returns a DRBD replica by resource name, ENOTFOUND when absent.
func (s *Store) GetReplica(ctx context.Context, name string) (Replica, error) {
	var r Replica
	err := s.db.WithContext(ctx).Where("name = ?", name).Take(&r).Error
	return r, dbError(err, "replica "+quote(name))
}

var (
	instanceIDPattern = regexp.MustCompile(`^i-[0-9a-f]{8,17}$`)
	volumeIDPattern   = regexp.MustCompile(`^vol-[0-9a-f]{8,17}$`)
)

func required(field, v string) error {
	if v == "" {
		return anyops.Errorf(anyops.EINVALID, "%s is required", field)
	}
	return nil
}

// UpsertZone creates or updates a zone by name and returns the columns that changed.
func (s *Store) UpsertZone(ctx context.Context, z Zone) ([]string, error) {
	if err := required("zone name", z.Name); err != nil {
		return nil, err
	}
	return upsert(ctx, s.db, &z, "name", z.Name, "zone "+quote(z.Name))
}

// UpsertRelease creates or updates a release by name.
func (s *Store) UpsertRelease(ctx context.Context, r Release) ([]string, error) {
	if err := required("release name", r.Name); err != nil {
		return nil, err
	}
	return upsert(ctx, s.db, &r, "name", r.Name, "release "+quote(r.Name))
}

// UpsertCluster creates or updates a cluster by name.
func (s *Store) UpsertCluster(ctx context.Context, c Cluster) ([]string, error) {
	if err := firstError(
		required("cluster name", c.Name),
		required("cluster zone", c.Zone),
		parseErr("cluster state", string(c.State), anyops.ClusterStates),
	); err != nil {
		return nil, err
	}
	return upsert(ctx, s.db, &c, "name", c.Name, "cluster "+quote(c.Name))
}

// UpsertServer creates or updates a server by name and returns the columns that changed.
// Instance ids are unique: giving a second server the instance of another is ECONFLICT.
func (s *Store) UpsertServer(ctx context.Context, v Server) ([]string, error) {
	v.ImpairedSince = normTimePtr(v.ImpairedSince)
	if err := firstError(
		required("server name", v.Name),
		required("server zone", v.Zone),
		required("server cluster", v.Cluster),
		parseErr("server role", string(v.Role), anyops.Roles),
		parseErr("server state", string(v.State), anyops.ServerStates),
		matches("instance id", v.InstanceID, instanceIDPattern),
	); err != nil {
		return nil, err
	}
	return upsert(ctx, s.db, &v, "name", v.Name, "server "+quote(v.Name))
}

// UpsertVolume creates or updates a volume by volume id. An empty Criticality takes the
// kind's default (anyops.DefaultCriticality).
func (s *Store) UpsertVolume(ctx context.Context, v Volume) ([]string, error) {
	if v.Criticality == "" && v.Kind != "" {
		v.Criticality = anyops.DefaultCriticality(v.Kind)
	}
	if err := firstError(
		required("volume id", v.VolumeID),
		matches("volume id", v.VolumeID, volumeIDPattern),
		required("volume zone", v.Zone),
		parseErr("volume kind", string(v.Kind), anyops.VolumeKinds),
		parseErr("volume criticality", string(v.Criticality), anyops.Criticalities),
		parseErr("volume state", string(v.State), anyops.VolumeStates),
	); err != nil {
		return nil, err
	}
	if v.SizeGiB < 0 {
		return nil, anyops.Errorf(anyops.EINVALID, "volume size %d GiB is negative", v.SizeGiB)
	}
	if v.Server != "" && v.Device == "" {
		return nil, anyops.Errorf(anyops.EINVALID, "volume %s is attached to %s without a device", v.VolumeID, v.Server)
	}
	return upsert(ctx, s.db, &v, "volume_id", v.VolumeID, "volume "+quote(v.VolumeID))
}

// UpsertReplica creates or updates a DRBD replica by resource name.
func (s *Store) UpsertReplica(ctx context.Context, r Replica) ([]string, error) {
	if err := firstError(
		required("replica name", r.Name),
		required("replica cluster", r.Cluster),
		required("replica primary server", r.PrimaryServer),
		required("replica secondary server", r.SecondaryServer),
		required("replica primary volume", r.PrimaryVolume),
		required("replica secondary volume", r.SecondaryVolume),
		parseErr("replica state", string(r.State), anyops.ReplicaStates),
	); err != nil {
		return nil, err
	}
	if r.SyncPercent < 0 || r.SyncPercent > 100 {
		return nil, anyops.Errorf(anyops.EINVALID, "replica sync percent %g is not between 0 and 100", r.SyncPercent)
	}
	return upsert(ctx, s.db, &r, "name", r.Name, "replica "+quote(r.Name))
}

// SetServerState records a server's state and when it became impaired (nil clears it).
func (s *Store) SetServerState(ctx context.Context, name string, state anyops.ServerState, impairedSince *time.Time) error {
	if _, err := anyops.Parse("server state", string(state), anyops.ServerStates); err != nil {
		return err
	}
	res := s.db.WithContext(ctx).Model(&Server{}).Where("name = ?", name).Updates(map[string]any{
		"state":          state,
		"impaired_since": normTimePtr(impairedSince),
		"updated_at":     now(),
	})
	if res.Error != nil {
		return dbError(res.Error, "set state of server "+quote(name))
	}
	if res.RowsAffected == 0 {
		return anyops.Errorf(anyops.ENOTFOUND, "server %q: not found", name)
	}
	return nil
}

// MoveServer moves a server from cluster from to cluster to, only if it is in from now: two
// callers moving the same server (two failovers taking one warm spare) cannot both succeed. It
// reports whether the server is in to afterwards — moved now, or by an earlier call.
func (s *Store) MoveServer(ctx context.Context, name, from, to string) (bool, error) {
	if err := firstError(required("server name", name), required("cluster", to)); err != nil {
		return false, err
	}
	res := s.db.WithContext(ctx).Model(&Server{}).Where("name = ? AND cluster = ?", name, from).Updates(map[string]any{
		"cluster": to, "updated_at": now(),
	})
	if res.Error != nil {
		return false, dbError(res.Error, "move server "+quote(name))
	}
	if res.RowsAffected == 1 {
		return true, nil
	}
	srv, err := s.GetServer(ctx, name)
	if err != nil {
		return false, err
	}
	return srv.Cluster == to, nil
}

// Totals counts the rows of the fleet tables.
type Totals struct {
	Zones    int `json:"zones"`
	Clusters int `json:"clusters"`
	Servers  int `json:"servers"`
	Volumes  int `json:"volumes"`
	Replicas int `json:"replicas"`
}

// FleetSummary is what the dashboard's header shows. Every role, kind, replica state and zone
// appears in its map, with 0 when there is none.
type FleetSummary struct {
	ServersByRole   map[string]int `json:"servers_by_role"`
	ServersByZone   map[string]int `json:"servers_by_zone"`
	VolumesByKind   map[string]int `json:"volumes_by_kind"`
	ReplicasByState map[string]int `json:"replicas_by_state"`
	Totals          Totals         `json:"totals"`
}

// FleetSummary counts the fleet.
func (s *Store) FleetSummary(ctx context.Context) (FleetSummary, error) {
	sum := FleetSummary{
		ServersByRole:   zeroCounts(anyops.Roles),
		ServersByZone:   map[string]int{},
		VolumesByKind:   zeroCounts(anyops.VolumeKinds),
		ReplicasByState: zeroCounts(anyops.ReplicaStates),
	}
	db := s.db.WithContext(ctx)
	var zones []string
	if err := db.Model(&Zone{}).Order("name").Pluck("name", &zones).Error; err != nil {
		return sum, dbError(err, "count zones")
	}
	for _, z := range zones {
		sum.ServersByZone[z] = 0
	}
	groups := []struct {
		table, column string
		into          map[string]int
		total         *int
	}{
		{"servers", "role", sum.ServersByRole, &sum.Totals.Servers},
		{"servers", "zone", sum.ServersByZone, nil},
		{"volumes", "kind", sum.VolumesByKind, &sum.Totals.Volumes},
		{"replicas", "state", sum.ReplicasByState, &sum.Totals.Replicas},
	}
	for _, g := range groups {
		var rows []struct {
			Grp string
			N   int
		}
		err := db.Table(g.table).Select(g.column + " AS grp, COUNT(*) AS n").Group(g.column).Scan(&rows).Error
		if err != nil {
			return sum, dbError(err, "count "+g.table+" by "+g.column)
		}
		for _, r := range rows {
			g.into[r.Grp] += r.N
			if g.total != nil {
				*g.total += r.N
			}
		}
	}
	var clusters int64
	if err := db.Model(&Cluster{}).Count(&clusters).Error; err != nil {
		return sum, dbError(err, "count clusters")
	}
	sum.Totals.Clusters = int(clusters)
	sum.Totals.Zones = len(zones)
	return sum, nil
}

func zeroCounts[T ~string](values []T) map[string]int {
	m := make(map[string]int, len(values))
	for _, v := range values {
		m[string(v)] = 0
	}
	return m
}

// ListReleases lists releases by name.
func (s *Store) ListReleases(ctx context.Context, p Page) ([]Release, string, error) {
	return listPage(s.db.WithContext(ctx).Model(&Release{}), p, s.key("name"), func(r Release) string { return r.Name }, "releases")
}

// GetRelease returns a release, ENOTFOUND when absent.
func (s *Store) GetRelease(ctx context.Context, name string) (Release, error) {
	var r Release
	err := s.db.WithContext(ctx).Where("name = ?", name).Take(&r).Error
	return r, dbError(err, "release "+quote(name))
}
