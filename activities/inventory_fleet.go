package activities

import (
	"context"
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
