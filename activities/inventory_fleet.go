package activities

import (
	"cmp"
	"context"
	"slices"
	"time"

	"github.com/anyops/anyops"
	"github.com/anyops/anyops/inventory"
)

// Inventory activities the builds and recoveries write the fleet through: what they made or
// changed in the cloud, recorded at once (FleetSync would find it too, minutes later), and
// what recoveries read to decide.

// ServerRecord is a server as a build or a recovery made or changed it.
type ServerRecord struct {
	PlannedServer
	InstanceID string
	PrivateIP  string
	State      anyops.ServerState
}

// VolumeRecord is a volume as a build or a recovery made or moved it.
type VolumeRecord struct {
	VolumeID    string
	Kind        anyops.VolumeKind
	Criticality anyops.Criticality
	SizeGiB     int32
	Zone        string
	Cluster     string
	// Server and Device: where it is attached; "" when detached.
	Server    string
	Device    string
	RAIDGroup string
	State     anyops.VolumeState
}

// ReplicaRecord is a DRBD pair as a build or a recovery set it up.
type ReplicaRecord struct {
	Name            string
	Cluster         string
	PrimaryServer   string
	SecondaryServer string
	PrimaryVolume   string
	SecondaryVolume string
	// Status is the resource as its primary's host reported it (nil: not read).
	Status *DRBDResource
}

// FleetRecord is a set of rows to write, in the order they can be written.
type FleetRecord struct {
	Zones    []inventory.Zone
	Clusters []PlannedCluster
	Servers  []ServerRecord
	Volumes  []VolumeRecord
	Replicas []ReplicaRecord
}

// RecordFleet writes the rows: zones and releases that are missing, then clusters, servers,
// volumes and replicas as given (upserts: writing the same rows again changes nothing).
func (a *Inventory) RecordFleet(ctx context.Context, r FleetRecord) error {
	if err := a.RecordZones(ctx, r.Zones); err != nil {
		return classify(err)
	}
	for _, c := range r.Clusters {
		if c.Release != "" {
			if _, err := a.Store.GetRelease(ctx, c.Release); anyops.ErrorCode(err) == anyops.ENOTFOUND {
				if _, err := a.Store.UpsertRelease(ctx, inventory.Release{Name: c.Release, Notes: "recorded by the build of " + c.Name}); err != nil {
					return classify(err)
				}
			} else if err != nil {
				return classify(err)
			}
		}
		if _, err := a.Store.UpsertCluster(ctx, inventory.Cluster{Name: c.Name, Zone: c.Zone, State: c.State, Release: c.Release}); err != nil {
			return classify(err)
		}
	}
	for _, s := range r.Servers {
		old, err := a.Store.GetServer(ctx, s.Name)
		if err != nil && anyops.ErrorCode(err) != anyops.ENOTFOUND {
			return classify(err)
		}
		row := old
		row.Name, row.InstanceID, row.Role, row.Zone, row.Cluster = s.Name, s.InstanceID, s.Role, s.Zone, s.Cluster
		row.State, row.InstanceType, row.PrivateIP = s.State, s.InstanceType, s.PrivateIP
		if row.State != anyops.ServerImpaired {
			row.ImpairedSince = nil
		}
		if _, err := a.Store.UpsertServer(ctx, row); err != nil {
			return classify(err)
		}
	}
	for _, v := range r.Volumes {
		if _, err := a.Store.UpsertVolume(ctx, inventory.Volume{
			VolumeID: v.VolumeID, Kind: v.Kind, Criticality: v.Criticality, SizeGiB: int(v.SizeGiB), Zone: v.Zone,
			Cluster: v.Cluster, State: v.State, Server: v.Server, Device: v.Device, RAIDGroup: v.RAIDGroup,
		}); err != nil {
			return classify(err)
		}
	}
	for _, rep := range r.Replicas {
		row := inventory.Replica{Name: rep.Name, Cluster: rep.Cluster, PrimaryServer: rep.PrimaryServer, SecondaryServer: rep.SecondaryServer,
			PrimaryVolume: rep.PrimaryVolume, SecondaryVolume: rep.SecondaryVolume, State: anyops.ReplicaUnknown}
		if rep.Status != nil {
			row.ConnectionState, row.PrimaryDiskState, row.SecondaryDiskState, row.SyncPercent, row.State = replicaStatus(*rep.Status, true)
		}
		if _, err := a.Store.UpsertReplica(ctx, row); err != nil {
			return classify(err)
		}
	}
	return nil
}

// SetServerStateInput marks a server's state in the inventory.
type SetServerStateInput struct {
	Server string
	State  anyops.ServerState
}

// SetServerState records a server's state now, ahead of the next fleet sync: a failed console
// host marked impaired is no longer offered to new consoles (only running hosts are).
func (a *Inventory) SetServerState(ctx context.Context, in SetServerStateInput) error {
	if _, err := anyops.Parse("state", string(in.State), anyops.ServerStates); err != nil {
		return classify(err)
	}
	srv, err := a.Store.GetServer(ctx, in.Server)
	if err != nil {
		return classify(err)
	}
	since := srv.ImpairedSince
	if in.State != anyops.ServerImpaired {
		since = nil
	} else if since == nil {
		now := time.Now().UTC()
		since = &now
	}
	return classify(a.Store.SetServerState(ctx, in.Server, in.State, since))
}

// ServerInfo is a server as a recovery sees it in the inventory.
type ServerInfo struct {
	Name         string
	Role         anyops.Role
	Zone         string
	Cluster      string
	InstanceID   string
	InstanceType string
	PrivateIP    string
	State        anyops.ServerState
}

// VolumeInfo is a data volume of a server, with the DRBD resource it backs ("" for none).
type VolumeInfo struct {
	VolumeID     string
	Kind         anyops.VolumeKind
	Criticality  anyops.Criticality
	SizeGiB      int32
	Zone         string
	Cluster      string
	Server       string
	Device       string
	RAIDGroup    string
	DRBDResource string
}

// ReplicaInfo is a DRBD pair of the cluster: its minor (its position among the cluster's
// resources by name, as builds number them) and both sides.
type ReplicaInfo struct {
	Name            string
	Minor           int
	PrimaryServer   string
	SecondaryServer string
	PrimaryVolume   string
	SecondaryVolume string
	State           anyops.ReplicaState
	SecondaryDisk   string
}

// RecoveryTarget is what a recovery needs to know of a failed server from the inventory.
type RecoveryTarget struct {
	Server       ServerInfo
	ClusterState anyops.ClusterState
	// Volumes are the data volumes attached to the server (boot volumes left out).
	Volumes []VolumeInfo
	// Replicas are the DRBD pairs the server is a side of, by name.
	Replicas []ReplicaInfo
	// Peers are the servers on the other side of Replicas, by name, with PeerVolumes their
	// backing volumes of those replicas.
	Peers       map[string]ServerInfo
	PeerVolumes []VolumeInfo
	// Clients are the cluster's web, console and task servers that are not stopped or gone:
	// the file service's NFS clients.
	Clients []ServerInfo
	// Spares are the warm spares of the server's zone: running file servers of standby
	// clusters, the cluster's own first.
	Spares []ServerInfo
}

// RecoveryTargetInput names the failed server.
type RecoveryTargetInput struct {
	Server string
}

// RecoveryTarget reads what a recovery of the server needs from the inventory: the server,
// its data volumes, its DRBD pairs and their other sides, the cluster's clients and the zone's
// warm spares. A server the inventory does not know is a non-retryable not_found.
func (a *Inventory) RecoveryTarget(ctx context.Context, in RecoveryTargetInput) (RecoveryTarget, error) {
	srv, err := a.Store.GetServer(ctx, in.Server)
	if err != nil {
		return RecoveryTarget{}, classify(err)
	}
	out := RecoveryTarget{Server: serverInfo(srv), Peers: map[string]ServerInfo{}}
	cluster, err := a.Store.GetCluster(ctx, srv.Cluster)
	if err != nil {
		return out, classify(err)
	}
	out.ClusterState = cluster.State
	replicas, err := listAll(func(p inventory.Page) ([]inventory.Replica, string, error) {
		return a.Store.ListReplicas(ctx, inventory.ReplicaFilter{Cluster: srv.Cluster, Page: p})
	})
	if err != nil {
		return out, classify(err)
	}
	resourceOf := map[string]string{} // volume id -> resource
	for i, r := range replicas {
		resourceOf[r.PrimaryVolume], resourceOf[r.SecondaryVolume] = r.Name, r.Name
		if r.PrimaryServer != srv.Name && r.SecondaryServer != srv.Name {
			continue
		}
		out.Replicas = append(out.Replicas, ReplicaInfo{Name: r.Name, Minor: i, PrimaryServer: r.PrimaryServer, SecondaryServer: r.SecondaryServer,
			PrimaryVolume: r.PrimaryVolume, SecondaryVolume: r.SecondaryVolume, State: r.State, SecondaryDisk: r.SecondaryDiskState})
		peer, peerVolume := r.SecondaryServer, r.SecondaryVolume
		if peer == srv.Name {
			peer, peerVolume = r.PrimaryServer, r.PrimaryVolume
		}
		if _, ok := out.Peers[peer]; !ok {
			p, err := a.Store.GetServer(ctx, peer)
			if err != nil {
				return out, classify(err)
			}
			out.Peers[peer] = serverInfo(p)
		}
		v, err := a.Store.GetVolume(ctx, peerVolume)
		if err != nil {
			return out, classify(err)
		}
		out.PeerVolumes = append(out.PeerVolumes, volumeInfo(v, r.Name))
	}
	volumes, err := listAll(func(p inventory.Page) ([]inventory.Volume, string, error) {
		return a.Store.ListVolumes(ctx, inventory.VolumeFilter{Server: srv.Name, Page: p})
	})
	if err != nil {
		return out, classify(err)
	}
	for _, v := range volumes {
		if v.Kind != anyops.VolumeBoot {
			out.Volumes = append(out.Volumes, volumeInfo(v, resourceOf[v.VolumeID]))
		}
	}
	servers, err := listAll(func(p inventory.Page) ([]inventory.Server, string, error) {
		return a.Store.ListServers(ctx, inventory.ServerFilter{Cluster: srv.Cluster, Page: p})
	})
	if err != nil {
		return out, classify(err)
	}
	for _, s := range servers {
		if (s.Role == anyops.RoleWeb || s.Role == anyops.RoleConsole || s.Role == anyops.RoleTask) && watchable(s) {
			out.Clients = append(out.Clients, serverInfo(s))
		}
	}
	standby, err := listAll(func(p inventory.Page) ([]inventory.Cluster, string, error) {
		return a.Store.ListClusters(ctx, inventory.ClusterFilter{Zone: srv.Zone, State: anyops.ClusterStandby, Page: p})
	})
	if err != nil {
		return out, classify(err)
	}
	slices.SortStableFunc(standby, func(x, y inventory.Cluster) int {
		return cmp.Compare(boolRank(x.Name != StandbyClusterOf(srv.Cluster)), boolRank(y.Name != StandbyClusterOf(srv.Cluster)))
	})
	for _, c := range standby {
		spares, err := listAll(func(p inventory.Page) ([]inventory.Server, string, error) {
			return a.Store.ListServers(ctx, inventory.ServerFilter{Cluster: c.Name, Role: anyops.RoleFile, State: anyops.ServerRunning, Page: p})
		})
		if err != nil {
			return out, classify(err)
		}
		for _, s := range spares {
			if s.InstanceID != "" {
				out.Spares = append(out.Spares, serverInfo(s))
			}
		}
	}
	return out, nil
}

func boolRank(b bool) int {
	if b {
		return 1
	}
	return 0
}

func serverInfo(s inventory.Server) ServerInfo {
	return ServerInfo{Name: s.Name, Role: s.Role, Zone: s.Zone, Cluster: s.Cluster, InstanceID: s.InstanceID,
		InstanceType: s.InstanceType, PrivateIP: s.PrivateIP, State: s.State}
}

func volumeInfo(v inventory.Volume, resource string) VolumeInfo {
	return VolumeInfo{VolumeID: v.VolumeID, Kind: v.Kind, Criticality: v.Criticality, SizeGiB: int32(v.SizeGiB), Zone: v.Zone,
		Cluster: v.Cluster, Server: v.Server, Device: v.Device, RAIDGroup: v.RAIDGroup, DRBDResource: resource}
}

// MoveServerInput moves a server between clusters, if it is in From.
type MoveServerInput struct {
	Server string
	From   string
	To     string
}

// MoveServer claims a server for a cluster (a failover taking a warm spare) or gives it back:
// only one caller moves a server out of From, and a retry of the one that did finds it in To.
func (a *Inventory) MoveServer(ctx context.Context, in MoveServerInput) (bool, error) {
	ok, err := a.Store.MoveServer(ctx, in.Server, in.From, in.To)
	return ok, classify(err)
}
