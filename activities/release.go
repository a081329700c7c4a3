package activities

import (
	"context"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/anyops/anyops"
	"github.com/anyops/anyops/inventory"
)

// What a release reads to plan: every volume attached to every server of the cluster, from
// the cloud (ClusterVolumes, with each volume's snapshots), and what the inventory knows of
// them (ClusterInventory: the servers, volumes and replicas, operators' classifications of
// volumes the fleet does not know, and the rates measured from their snapshots).

// ClusterVolumesInput names a cluster.
type ClusterVolumesInput struct {
	Cluster string
}

// ClusterVolumes is a cluster as the cloud has it: its instances (tagged with the cluster,
// terminated ones left out), every volume attached to them — tagged or not — and each
// volume's snapshots, newest first.
type ClusterVolumes struct {
	Instances []Instance
	Volumes   []Volume
	Snapshots map[string][]Snapshot
}

// ClusterVolumes reads the cluster's instances by their cluster tag and then the volumes by
// their attachment, not by tag: a volume someone attached by hand, with no tags, is there too.
// It only reads.
func (c *Cloud) ClusterVolumes(ctx context.Context, in ClusterVolumesInput) (ClusterVolumes, error) {
	if in.Cluster == "" {
		return ClusterVolumes{}, invalidInput("Cluster is required")
	}
	out := ClusterVolumes{Snapshots: map[string][]Snapshot{}}
	ip := ec2.NewDescribeInstancesPaginator(c.Clients.EC2, &ec2.DescribeInstancesInput{Filters: []types.Filter{
		{Name: aws.String("tag:" + anyops.TagCluster), Values: []string{in.Cluster}},
	}})
	for ip.HasMorePages() {
		page, err := ip.NextPage(ctx)
		if err != nil {
			return out, cloudError("DescribeInstances", err)
		}
		for _, r := range page.Reservations {
			for _, i := range r.Instances {
				if inst := toInstance(i); inst.State != "terminated" && inst.State != "shutting-down" {
					out.Instances = append(out.Instances, inst)
				}
			}
		}
	}
	if len(out.Instances) == 0 {
		return out, nil
	}
	ids := make([]string, len(out.Instances))
	for i, inst := range out.Instances {
		ids[i] = inst.ID
	}
	vp := ec2.NewDescribeVolumesPaginator(c.Clients.EC2, &ec2.DescribeVolumesInput{Filters: []types.Filter{
		{Name: aws.String("attachment.instance-id"), Values: ids},
	}})
	var vids []string
	for vp.HasMorePages() {
		page, err := vp.NextPage(ctx)
		if err != nil {
			return out, cloudError("DescribeVolumes", err)
		}
		for _, v := range page.Volumes {
			vol := toVolume(v)
			out.Volumes = append(out.Volumes, vol)
			vids = append(vids, vol.ID)
		}
	}
	slices.SortFunc(out.Volumes, func(a, b Volume) int { return strings.Compare(a.ID, b.ID) })
	if len(vids) == 0 {
		return out, nil
	}
	sp := ec2.NewDescribeSnapshotsPaginator(c.Clients.EC2, &ec2.DescribeSnapshotsInput{OwnerIds: []string{"self"}, Filters: []types.Filter{
		{Name: aws.String("volume-id"), Values: vids},
	}})
	for sp.HasMorePages() {
		page, err := sp.NextPage(ctx)
		if err != nil {
			return out, cloudError("DescribeSnapshots", err)
		}
		for _, s := range page.Snapshots {
			snap := toSnapshot(s, c.Clients.Region)
			out.Snapshots[snap.VolumeID] = append(out.Snapshots[snap.VolumeID], snap)
		}
	}
	for _, list := range out.Snapshots {
		slices.SortFunc(list, func(a, b Snapshot) int { return b.StartTime.Compare(a.StartTime) })
	}
	return out, nil
}

// Classification is an operator's kind and criticality for a volume.
type Classification struct {
	Kind        anyops.VolumeKind
	Criticality anyops.Criticality
	By          string
}

// VolumeRates is what a volume's snapshots measured (inventory.VolumeRate).
type VolumeRates struct {
	SnapshotBytesSec float64
	ChangeBytesSec   float64
	Snapshots        int
	LastSnapshotID   string
	LastSnapshotAt   *time.Time
	LastFullBytes    int64
}

// ClusterInventoryInput names a cluster and the volumes (ids) the cloud has on it, whose
// classifications and measured rates to read.
type ClusterInventoryInput struct {
	Cluster   string
	VolumeIDs []string
}

// ClusterInventory is what the inventory knows of a cluster.
type ClusterInventory struct {
	Cluster string
	Zone    string
	State   anyops.ClusterState
	Release string
	// TimeScale is the speed the cluster's simulated time runs at (a drill's cluster,
	// docs/drills.md); 0 for real time.
	TimeScale float64
	Servers   []ServerInfo
	Volumes   []VolumeInfo // every volume the inventory has on the cluster's servers, boot included
	Replicas  []ReplicaInfo
	// Classifications and Rates are by volume id, for the volumes asked about that have one.
	Classifications map[string]Classification
	Rates           map[string]VolumeRates
}

// ClusterInventory reads a cluster's rows. A cluster the inventory does not know is a
// non-retryable not_found.
func (a *Inventory) ClusterInventory(ctx context.Context, in ClusterInventoryInput) (ClusterInventory, error) {
	cl, err := a.Store.GetCluster(ctx, in.Cluster)
	if err != nil {
		return ClusterInventory{}, classify(err)
	}
	out := ClusterInventory{Cluster: cl.Name, Zone: cl.Zone, State: cl.State, Release: cl.Release,
		Classifications: map[string]Classification{}, Rates: map[string]VolumeRates{}}
	if out.TimeScale, err = a.Store.ClusterTimeScale(ctx, in.Cluster); err != nil {
		return out, classify(err)
	}
	servers, err := listAll(func(p inventory.Page) ([]inventory.Server, string, error) {
		return a.Store.ListServers(ctx, inventory.ServerFilter{Cluster: in.Cluster, Page: p})
	})
	if err != nil {
		return out, classify(err)
	}
	for _, s := range servers {
		out.Servers = append(out.Servers, serverInfo(s))
	}
	replicas, err := listAll(func(p inventory.Page) ([]inventory.Replica, string, error) {
		return a.Store.ListReplicas(ctx, inventory.ReplicaFilter{Cluster: in.Cluster, Page: p})
	})
	if err != nil {
		return out, classify(err)
	}
	resourceOf := map[string]string{}
	for i, r := range replicas {
		resourceOf[r.PrimaryVolume], resourceOf[r.SecondaryVolume] = r.Name, r.Name
		out.Replicas = append(out.Replicas, ReplicaInfo{Name: r.Name, Minor: i, PrimaryServer: r.PrimaryServer, SecondaryServer: r.SecondaryServer,
			PrimaryVolume: r.PrimaryVolume, SecondaryVolume: r.SecondaryVolume, State: r.State, SecondaryDisk: r.SecondaryDiskState})
	}
	volumes, err := listAll(func(p inventory.Page) ([]inventory.Volume, string, error) {
		return a.Store.ListVolumes(ctx, inventory.VolumeFilter{Cluster: in.Cluster, Page: p})
	})
	if err != nil {
		return out, classify(err)
	}
	for _, v := range volumes {
		if v.State != anyops.VolumeDeleted {
			out.Volumes = append(out.Volumes, volumeInfo(v, resourceOf[v.VolumeID]))
		}
	}
	classes, err := a.Store.Classifications(ctx, in.VolumeIDs)
	if err != nil {
		return out, classify(err)
	}
	for id, c := range classes {
		out.Classifications[id] = Classification{Kind: c.Kind, Criticality: c.Criticality, By: c.ClassifiedBy}
	}
	rates, err := a.Store.VolumeRates(ctx, in.VolumeIDs)
	if err != nil {
		return out, classify(err)
	}
	for id, r := range rates {
		out.Rates[id] = VolumeRates{SnapshotBytesSec: r.SnapshotBytesSec, ChangeBytesSec: r.ChangeBytesSec, Snapshots: r.Snapshots,
			LastSnapshotID: r.LastSnapshotID, LastSnapshotAt: r.LastSnapshotAt, LastFullBytes: r.LastFullBytes}
	}
	return out, nil
}

// SnapshotSampleInput is a completed snapshot to measure a volume's rates by.
type SnapshotSampleInput struct {
	VolumeID   string
	SnapshotID string
	Started    time.Time
	Completed  time.Time
	Full       bool
	FullBytes  int64
}

// RecordSnapshot folds a completed snapshot into the volume's measured rates (idempotent: the
// same snapshot again changes nothing).
func (a *Inventory) RecordSnapshot(ctx context.Context, in SnapshotSampleInput) (VolumeRates, error) {
	r, err := a.Store.RecordSnapshot(ctx, inventory.SnapshotSample{VolumeID: in.VolumeID, SnapshotID: in.SnapshotID,
		Started: in.Started, Completed: in.Completed, Full: in.Full, FullBytes: in.FullBytes})
	if err != nil {
		return VolumeRates{}, classify(err)
	}
	return VolumeRates{SnapshotBytesSec: r.SnapshotBytesSec, ChangeBytesSec: r.ChangeBytesSec, Snapshots: r.Snapshots,
		LastSnapshotID: r.LastSnapshotID, LastSnapshotAt: r.LastSnapshotAt, LastFullBytes: r.LastFullBytes}, nil
}

// ClusterTimeScale is the speed the cluster's simulated time runs at (0: real time), for an
// operation that scales its timing as the alarm intake does (docs/drills.md).
func (a *Inventory) ClusterTimeScale(ctx context.Context, cluster string) (float64, error) {
	s, err := a.Store.ClusterTimeScale(ctx, cluster)
	return s, classify(err)
}
