package workflows

import (
	"context"
	"github.com/anyops/anyops/internal/testenv"
	"slices"
	"strings"
	"testing"

	"github.com/google/uuid"

	"github.com/anyops/anyops"
	"github.com/anyops/anyops/activities"
	"github.com/anyops/anyops/cloudsim"
	"github.com/anyops/anyops/drills"
	"github.com/anyops/anyops/inventory"
)

// demoWithData builds the demo fleet and writes gib GiB on each home volume pair, as months
// of use would have: snapshots and resyncs then have data to move.
func (e *fleetEnv) demoWithData(t *testing.T, gib float64) DemoFleetResult {
	t.Helper()
	var fleet DemoFleetResult
	e.run(t, "DemoFleet", DemoFleetWorkflowID+"-"+uuid.NewString(), DemoFleetInput{Timing: fastTiming}, &fleet)
	for name, id := range fleet.Volumes {
		if strings.Contains(name, "/home") {
			if _, err := e.sim.FillVolume(id, gib); err != nil {
				t.Fatal(err)
			}
		}
	}
	return fleet
}

// hotThroughout replays cloudsim's DRBD and instance events (drills.NoHotCopies: per
// resource and peer, as the drill report and the chaos harness read them) and fails the test
// where, from the event after seq on, a resource of the file server had no UpToDate Secondary
// connected to its Primary; and where the new backup never synced a resource.
func hotThroughout(t *testing.T, e *fleetEnv, since int64, newBackup string, resources []string) {
	t.Helper()
	events := e.sim.QueryEvents(cloudsim.EventQuery{Types: drills.EventTypes})
	from := e.sim.Now()
	if i := slices.IndexFunc(events, func(ev cloudsim.Event) bool { return ev.Seq > since }); i >= 0 {
		from = events[i].Time
	}
	members, err := activities.ClusterResources(context.Background(), e.aws, inventory.DemoCluster)
	if err != nil {
		t.Fatal(err)
	}
	for _, gap := range drills.NoHotCopies(events, members, inventory.DemoCluster, from, e.sim.Now(), nil) {
		t.Errorf("during the storage change: %s", gap)
	}
	synced := map[string]bool{}
	for _, ev := range events {
		if ev.Seq > since && ev.Type == "drbd.synced" && ev.Resource == newBackup {
			synced[ev.Data["resource"].(string)] = true
		}
	}
	for _, r := range resources {
		if !synced[r] {
			t.Errorf("%s: %s never synced", r, newBackup)
		}
	}
}

func lastSeq(sim *cloudsim.Sim) int64 {
	evs := sim.Events(0, 1)
	if len(evs) == 0 {
		return 0
	}
	return evs[len(evs)-1].Seq
}

// TestStorageChangeInPlaceOnCloudsim: a backup's gp3 volumes get more IOPS and throughput by
// Elastic Volumes, attached and UpToDate all along.
func TestStorageChangeInPlaceOnCloudsim(t *testing.T) {
	e := newFleetEnv(t)
	fleet := e.demoWithData(t, 20)
	since := lastSeq(e.sim)
	var res StorageChangeResult
	spec := anyops.VolumeSpec{Type: anyops.VolumeGP3, Iops: 6000, Throughput: 250}
	e.recordAs = map[string]string{StorageChangeWorkflowType: "storage-change-in-place"} // for worker/replay_test.go
	e.run(t, StorageChangeWorkflowType, anyops.StorageChangeWorkflowID(inventory.DemoBackup)+"-"+uuid.NewString(),
		StorageChangeInput{Server: inventory.DemoBackup, Spec: spec, Timing: simTiming(), RequestedBy: "test"}, &res)
	if res.Way != StorageInPlace || len(res.Volumes) != inventory.DemoHomeVolumes {
		t.Fatalf("result %+v, want %d volumes in place", res, inventory.DemoHomeVolumes)
	}
	var ids []string
	for _, id := range res.Volumes {
		ids = append(ids, id)
	}
	cloud := activities.NewCloud(e.aws)
	vols, err := cloud.DescribeVolumes(context.Background(), activities.DescribeVolumesInput{VolumeIDs: ids})
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range vols {
		if v.Iops != 6000 || v.Throughput != 250 || v.State != "in-use" {
			t.Errorf("%s: %+v, want 6000 IOPS, 250 MiB/s, in use", v.ID, v)
		}
	}
	for _, ev := range e.sim.QueryEvents(cloudsim.EventQuery{Since: since, Types: []string{"drbd.down", "drbd.disconnected", "drbd.resync-started"}}) {
		t.Errorf("in place, yet %s", ev.Message)
	}
	backup := getHost(t, e.endpoint, fleet.Instances[inventory.DemoBackup])
	for _, r := range activities.DemoFleetPlan().DRBDResources() {
		if d := backup.DRBD[r]; d.Disk != "UpToDate" || !d.Connected {
			t.Errorf("%s on the backup: %+v", r, d)
		}
	}
}

// TestStorageChangeSeedsANewBackupOnCloudsim is July 2014 done right: the backup's volumes
// move to bigger io2 volumes (and, here, to us-east-1c) through a new backup seeded from
// snapshots of the old one's disks; the file server keeps its hot copy all along, the new
// backup resyncs only what was written after the seed point, and only then does the old one
// leave its resources and stop.
func TestStorageChangeSeedsANewBackupOnCloudsim(t *testing.T) {
	e := newFleetEnv(t)
	fleet := e.demoWithData(t, 40)
	since := lastSeq(e.sim)
	var res StorageChangeResult
	spec := anyops.VolumeSpec{Type: anyops.VolumeIO2, SizeGiB: 600, Iops: 8000}
	id := anyops.StorageChangeWorkflowID(inventory.DemoBackup) + "-" + uuid.NewString()
	e.run(t, StorageChangeWorkflowType, id, StorageChangeInput{Server: inventory.DemoBackup, Spec: spec, Zone: inventory.DemoSpareZone,
		NewServer: "live-backup2", Timing: simTiming(), RequestedBy: "test"}, &res)
	testenv.RecordHistory(t, e.temporal, SeedReplicaWorkflowID("live-backup2"), "seed-replica") // for worker/replay_test.go
	t.Logf("result %+v", res)
	if res.Way != StorageSeed || res.NewServer != "live-backup2" || len(res.Volumes) != inventory.DemoHomeVolumes {
		t.Fatalf("result %+v, want live-backup2 seeded with %d volumes", res, inventory.DemoHomeVolumes)
	}
	resources := activities.DemoFleetPlan().DRBDResources()
	hotThroughout(t, e, since, res.InstanceID, resources)

	// The resyncs moved only the delta, not the volumes.
	for _, ev := range e.sim.QueryEvents(cloudsim.EventQuery{Since: since, Types: []string{"drbd.resync-started"}}) {
		if ev.Resource == res.InstanceID && strings.Contains(ev.Message, "full") {
			t.Errorf("a full resync: %s", ev.Message)
		}
	}
	file := getHost(t, e.endpoint, fleet.Instances[inventory.DemoFileServer])
	nb := getHost(t, e.endpoint, res.InstanceID)
	for _, r := range resources {
		if d := nb.DRBD[r]; d.Disk != "UpToDate" || !d.Connected || d.Role != "Secondary" {
			t.Errorf("%s on the new backup: %+v", r, d)
		}
		if d := file.DRBD[r]; d.Role != "Primary" || d.Disk != "UpToDate" {
			t.Errorf("%s on the file server: %+v", r, d)
		}
	}
	cloud := activities.NewCloud(e.aws)
	var ids []string
	for _, v := range res.Volumes {
		ids = append(ids, v)
	}
	vols, err := cloud.DescribeVolumes(context.Background(), activities.DescribeVolumesInput{VolumeIDs: ids})
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range vols {
		if v.Zone != inventory.DemoSpareZone || v.VolumeType != string(anyops.VolumeIO2) || v.SizeGiB != 600 || len(v.Attachments) != 1 || v.Attachments[0].InstanceID != res.InstanceID {
			t.Errorf("new volume %+v, want io2 600 GiB in %s on %s", v, inventory.DemoSpareZone, res.InstanceID)
		}
	}
	h, err := cloud.InstanceStatus(context.Background(), activities.InstanceRef{InstanceID: fleet.Instances[inventory.DemoBackup]})
	if err != nil || h.State != "stopped" {
		t.Errorf("old backup %+v %v, want stopped (its volumes kept)", h, err)
	}
	ctx := context.Background()
	srv, err := e.store.GetServer(ctx, "live-backup2")
	if err != nil || srv.Zone != inventory.DemoSpareZone || srv.Role != anyops.RoleBackup {
		t.Errorf("inventory: %+v %v", srv, err)
	}
	replicas, _, err := e.store.ListReplicas(ctx, inventory.ReplicaFilter{Cluster: inventory.DemoCluster})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range replicas {
		if r.SecondaryServer != "live-backup2" {
			t.Errorf("replica %s: secondary %s, want live-backup2", r.Name, r.SecondaryServer)
		}
	}
}
