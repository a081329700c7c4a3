package activities

import (
	"context"
	"fmt"
	"slices"
	"sort"

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

// PlannedCluster is a cluster a plan builds.
type PlannedCluster struct {
	Name    string
	Zone    string
	Release string
	State   anyops.ClusterState
}

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
	Zones    []inventory.Zone
	Clusters []PlannedCluster
	Servers  []PlannedServer
	Volumes  []PlannedVolume
	// WebApps are the apps the fleet's web servers serve (the demo's), recorded once the
	// servers are.
	WebApps []inventory.WebApp `json:",omitempty"`
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
func DemoFleetPlan() FleetPlan { return PlanOf(inventory.DemoFleet()) }

// ClusterPlan is the cloud plan of a cluster of the live shape (inventory.ClusterShape) in a
// zone: what a drill or a release builds beside the live cluster.
func ClusterPlan(cluster, zone, release string) FleetPlan {
	f := inventory.ClusterShape(cluster, zone, release)
	f.Zones = []inventory.Zone{{Name: zone, Region: regionOf(zone)}}
	return PlanOf(f)
}

// PlanOf turns an inventory fleet into a cloud plan: one instance per server, one volume per
// non-boot volume (boot volumes are RunInstances'), and the DRBD pairs of its replicas.
func PlanOf(f inventory.Fleet) FleetPlan {
	release := map[string]string{}
	for _, c := range f.Clusters {
		release[c.Name] = c.Release
	}
	p := FleetPlan{Zones: f.Zones, WebApps: f.WebApps}
	for _, c := range f.Clusters {
		p.Clusters = append(p.Clusters, PlannedCluster{Name: c.Name, Zone: c.Zone, Release: c.Release, State: c.State})
	}
	for _, s := range f.Servers {
		p.Servers = append(p.Servers, PlannedServer{
			Name: s.Name, Role: s.Role, Zone: s.Zone, Cluster: s.Cluster, Release: release[s.Cluster], InstanceType: s.InstanceType,
		})
	}
	// The shape's volumes carry fixed fake ids; their names are what the plan needs.
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

// SpareServerOf and StandbyClusterOf name a cluster's warm spare: a bootstrapped file server,
// not serving, in a cluster of its own (state standby) in the cluster's zone, which a
// failover's replace way takes instead of building a server.
func SpareServerOf(cluster string) string    { return cluster + "-spare" }
func StandbyClusterOf(cluster string) string { return cluster + "-standby" }

// SparePlan is the plan of a cluster's warm spare: a server of the file server's instance type.
func (p FleetPlan) SparePlan(cluster string) (PlannedCluster, PlannedServer, bool) {
	for _, s := range p.Servers {
		if s.Cluster == cluster && s.Role == anyops.RoleFile {
			standby := PlannedCluster{Name: StandbyClusterOf(cluster), Zone: s.Zone, Release: s.Release, State: anyops.ClusterStandby}
			spare := s
			spare.Name, spare.Cluster = SpareServerOf(cluster), standby.Name
			return standby, spare, true
		}
	}
	return PlannedCluster{}, PlannedServer{}, false
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
// peer server ("" when the volume is not replicated, or the peer is not launched yet).
func (v PlannedVolume) VolumeTags(peerInstance string) map[string]string {
	t := map[string]string{anyops.TagKind: string(v.Kind), anyops.TagCriticality: string(v.Criticality), anyops.TagCluster: v.Cluster}
	if v.RAIDGroup != "" {
		t[anyops.TagRAID] = v.RAIDGroup
	}
	if v.DRBDResource != "" {
		t[anyops.TagDRBDResource] = v.DRBDResource
		t[anyops.TagDRBDRole] = v.DRBDRole
		if peerInstance != "" {
			t[anyops.TagDRBDPeer] = peerInstance
		}
	}
	return t
}

// PlanDemoFleet returns DemoFleetPlan. It is an activity so that the plan is recorded in the
// workflow's history: a new release of the demo fleet cannot change a running workflow.
func (a *Inventory) PlanDemoFleet(ctx context.Context) (FleetPlan, error) {
	return DemoFleetPlan(), nil
}

// RecordWebApps writes the web apps (upserts: writing the same again changes nothing).
func (a *Inventory) RecordWebApps(ctx context.Context, apps []inventory.WebApp) error {
	for _, app := range apps {
		if _, err := a.Store.UpsertWebApp(ctx, app); err != nil {
			return classify(err)
		}
	}
	return nil
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
