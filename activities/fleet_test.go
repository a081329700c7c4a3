package activities

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/anyops/anyops"
	"github.com/anyops/anyops/inventory"
)

// TestDemoFleetPlanMatchesDemoFleet proves the cloud plan is the inventory's demo fleet: one
// instance per server, one planned volume per non-boot volume on the same server and device,
// and each replica a primary/secondary volume pair on the replica's servers.
func TestDemoFleetPlanMatchesDemoFleet(t *testing.T) {
	f := inventory.DemoFleet()
	p := DemoFleetPlan()
	if len(p.Servers) != len(f.Servers) {
		t.Fatalf("plan has %d servers, demo fleet %d", len(p.Servers), len(f.Servers))
	}
	dataVolumes := 0
	for _, v := range f.Volumes {
		if v.Kind != anyops.VolumeBoot {
			dataVolumes++
		}
	}
	if len(p.Volumes) != dataVolumes {
		t.Fatalf("plan has %d volumes, demo fleet %d data volumes", len(p.Volumes), dataVolumes)
	}
	names := map[string]bool{}
	for _, v := range p.Volumes {
		if names[v.Name] {
			t.Errorf("volume name %s planned twice", v.Name)
		}
		names[v.Name] = true
		if v.Device == "" || v.Server == "" || v.SizeGiB <= 0 {
			t.Errorf("volume %+v lacks a server, device or size", v)
		}
	}
	if got := p.DRBDResources(); len(got) != len(f.Replicas) {
		t.Fatalf("plan has DRBD resources %v, demo fleet %d replicas", got, len(f.Replicas))
	}
	for _, r := range f.Replicas {
		var primary, secondary *PlannedVolume
		for i, v := range p.Volumes {
			if v.DRBDResource != r.Name {
				continue
			}
			switch v.DRBDRole {
			case DRBDPrimary:
				primary = &p.Volumes[i]
			case DRBDSecondary:
				secondary = &p.Volumes[i]
			}
		}
		if primary == nil || secondary == nil {
			t.Fatalf("replica %s lacks a planned primary or secondary volume", r.Name)
		}
		if primary.Server != r.PrimaryServer || secondary.Server != r.SecondaryServer ||
			primary.DRBDPeerServer != r.SecondaryServer || secondary.DRBDPeerServer != r.PrimaryServer {
			t.Errorf("replica %s planned as %s→%s (peers %s, %s)", r.Name, primary.Server, secondary.Server, primary.DRBDPeerServer, secondary.DRBDPeerServer)
		}
		tags := primary.VolumeTags("i-0123456789abcdef0")
		if tags[anyops.TagDRBDResource] != r.Name || tags[anyops.TagDRBDRole] != DRBDPrimary || tags[anyops.TagDRBDPeer] != "i-0123456789abcdef0" {
			t.Errorf("primary volume tags %v do not configure the pair", tags)
		}
	}
}

// TestReplicaStatus proves how one side's `drbdadm status` maps to a replica state and the
// disks of its primary and secondary, read on the primary or, when it does not answer, on the
// secondary.
func TestReplicaStatus(t *testing.T) {
	tests := []struct {
		name             string
		status           string
		onPrimary        bool
		want             anyops.ReplicaState
		pct              float64
		primary, secDisk string
	}{
		{"connected and both up to date is a hot copy", "r0 role:Primary\n  disk:UpToDate\n  peer role:Secondary\n    replication:Established peer-disk:UpToDate\n", true, anyops.ReplicaUpToDate, 100, "UpToDate", "UpToDate"},
		{"resync in progress", "r0 role:Primary\n  disk:UpToDate\n  peer role:Secondary\n    replication:SyncSource peer-disk:Inconsistent done:42.50\n", true, anyops.ReplicaSyncing, 42.5, "UpToDate", "Inconsistent"},
		{"resync seen from the secondary", "r0 role:Secondary\n  disk:Inconsistent\n  peer role:Primary\n    replication:SyncTarget peer-disk:UpToDate done:42.50\n", false, anyops.ReplicaSyncing, 42.5, "UpToDate", "Inconsistent"},
		{"peer away", "r0 role:Primary\n  disk:UpToDate\n  peer connection:Connecting\n", true, anyops.ReplicaDisconnected, 0, "UpToDate", ""},
		{"the primary away, seen from the secondary", "r0 role:Secondary\n  disk:UpToDate\n  peer connection:Connecting\n", false, anyops.ReplicaDisconnected, 0, "", "UpToDate"},
		{"no peer configured", "r0 role:Primary\n  disk:UpToDate\n", true, anyops.ReplicaDisconnected, 0, "UpToDate", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, err := ParseDRBDStatus(tt.status)
			if err != nil || len(res) != 1 {
				t.Fatalf("ParseDRBDStatus = %v, %v", res, err)
			}
			_, primary, secondary, pct, state := replicaStatus(res[0], tt.onPrimary)
			if state != tt.want || pct != tt.pct || primary != tt.primary || secondary != tt.secDisk {
				t.Errorf("replicaStatus = %s %v%% disks %q/%q, want %s %v%% %q/%q", state, pct, primary, secondary, tt.want, tt.pct, tt.primary, tt.secDisk)
			}
		})
	}
}

// TestManagedInstances proves which instances are the fleet's: tagged with a cluster, a known
// role and a name; of two with one name the live one wins.
func TestManagedInstances(t *testing.T) {
	tagged := func(id, name, role, state string, launched int) Instance {
		return Instance{ID: id, Name: name, State: state, LaunchTime: time.Unix(int64(launched), 0),
			Tags: map[string]string{TagName: name, anyops.TagCluster: "live", anyops.TagRole: role}}
	}
	tests := []struct {
		name         string
		in           []Instance
		want         []string // instance ids kept
		unclassified []string // instance ids with Anyops tags that do not make a server
	}{
		{"untagged instances are not the fleet's", []Instance{{ID: "i-1", Name: "x", State: "running"}}, nil, nil},
		{"an unknown role is unclassified", []Instance{tagged("i-1", "a", "wizard", "running", 1)}, nil, []string{"i-1"}},
		{"a terminated one with an unknown role is gone", []Instance{tagged("i-1", "a", "wizard", "terminated", 1)}, nil, nil},
		{"tagged instances are kept", []Instance{tagged("i-1", "a", "web", "running", 1), tagged("i-2", "b", "file", "stopped", 1)}, []string{"i-1", "i-2"}, nil},
		{"a replacement wins over the terminated original", []Instance{tagged("i-1", "a", "file", "running", 2), tagged("i-0", "a", "file", "terminated", 1)}, []string{"i-1"}, nil},
		{"the terminated original loses in either order", []Instance{tagged("i-0", "a", "file", "terminated", 1), tagged("i-1", "a", "file", "running", 2)}, []string{"i-1"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			kept, unclassified := managedInstances(tt.in)
			var got, bad []string
			for _, i := range kept {
				got = append(got, i.ID)
			}
			for _, u := range unclassified {
				bad = append(bad, u.instance.ID)
			}
			slices.Sort(got)
			if !slices.Equal(got, tt.want) || !slices.Equal(bad, tt.unclassified) {
				t.Errorf("kept %v, unclassified %v; want %v, %v", got, bad, tt.want, tt.unclassified)
			}
		})
	}
}

// cloudOf returns the fleet DescribeFleet would report for the demo plan built in the cloud:
// every instance running and healthy, a root volume on each, every data volume attached, the
// DRBD status of the file server all in sync.
func cloudOf(p FleetPlan) (Fleet, []HostDRBD) {
	f := Fleet{DescribedAt: time.Date(2014, 7, 15, 9, 0, 0, 0, time.UTC)}
	ids := map[string]string{}
	for n, s := range p.Servers {
		id := fmt.Sprintf("i-0%016x", n+1)
		ids[s.Name] = id
		tags := s.InstanceTags()
		tags[TagName] = s.Name
		f.Instances = append(f.Instances, Instance{ID: id, Name: s.Name, State: "running", Zone: s.Zone,
			InstanceType: s.InstanceType, PrivateIP: fmt.Sprintf("10.0.0.%d", n+1), Tags: tags})
		f.Health = append(f.Health, InstanceHealth{InstanceID: id, Zone: s.Zone, State: "running", SystemStatus: "ok", InstanceStatus: "ok"})
		root := fmt.Sprintf("vol-0%016x", 100+n)
		f.Volumes = append(f.Volumes, Volume{ID: root, State: "in-use", Zone: s.Zone, SizeGiB: 8,
			Attachments: []Attachment{{VolumeID: root, InstanceID: id, Device: "/dev/xvda", State: "attached"}}})
	}
	var status, secondaries []DRBDResource
	for n, v := range p.Volumes {
		id := fmt.Sprintf("vol-0%016x", 200+n)
		tags := v.VolumeTags(ids[v.DRBDPeerServer])
		tags[TagName] = v.Name
		f.Volumes = append(f.Volumes, Volume{ID: id, Name: v.Name, State: "in-use", Zone: v.Zone, SizeGiB: v.SizeGiB, Tags: tags,
			Attachments: []Attachment{{VolumeID: id, InstanceID: ids[v.Server], Device: v.Device, State: "attached"}}})
		if v.DRBDResource != "" {
			role, peerRole, into := "Primary", "Secondary", &status
			if v.DRBDRole == DRBDSecondary {
				role, peerRole, into = "Secondary", "Primary", &secondaries
			}
			*into = append(*into, DRBDResource{Name: v.DRBDResource, Role: role, Disk: "UpToDate",
				Volumes: []DRBDVolume{{Disk: "UpToDate"}},
				Peers: []DRBDPeer{{Name: "peer", Role: peerRole, Connection: "Connected", Replication: "Established", PeerDisk: "UpToDate",
					PeerVolumes: []DRBDPeerVolume{{Replication: "Established", PeerDisk: "UpToDate"}}}}})
		}
	}
	return f, []HostDRBD{
		{InstanceID: ids[inventory.DemoFileServer], Resources: status},
		{InstanceID: ids[inventory.DemoBackup], Resources: secondaries},
	}
}

func driftEvents(t *testing.T, store *inventory.Store) []inventory.AuditEvent {
	t.Helper()
	var out []inventory.AuditEvent
	events, _, err := store.ListAudit(context.Background(), inventory.Page{Limit: inventory.MaxLimit})
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range events {
		if e.Action == DriftAction {
			out = append(out, e)
		}
	}
	return out
}

// TestReconcileFleetFillsEmptyInventory proves a first reconcile creates the fleet from the
// cloud alone — zone, release and cluster from tags, servers with the cloud's instance ids,
// boot and data volumes with their attachments, replicas in sync — with one drift event per
// created row, and that a second reconcile of the same cloud changes and records nothing.
func TestReconcileFleetFillsEmptyInventory(t *testing.T) {
	ctx := context.Background()
	store := openStore(t)
	a := &Inventory{Store: store}
	plan := DemoFleetPlan()
	fleet, drbd := cloudOf(plan)

	res, err := a.ReconcileFleet(ctx, ReconcileFleetInput{Fleet: fleet, DRBD: drbd})
	if err != nil {
		t.Fatal(err)
	}
	wantCreated := 1 + 1 + 1 + len(plan.Servers) + len(fleet.Volumes) + len(plan.DRBDResources()) // zone, release, cluster, ...
	if res.Counts.Created != wantCreated || res.Counts.Updated != 0 || res.Counts.Missing != 0 || res.Counts.Ignored != 0 {
		t.Errorf("first reconcile counts %+v, want %d created and nothing else", res.Counts, wantCreated)
	}
	if n := len(driftEvents(t, store)); n != wantCreated {
		t.Errorf("%d drift events recorded, want %d", n, wantCreated)
	}
	for _, i := range fleet.Instances {
		s, err := store.GetServerByInstance(ctx, i.ID)
		if err != nil || s.Name != i.Name || s.State != anyops.ServerRunning || string(s.Role) != i.Tags[anyops.TagRole] {
			t.Errorf("server of %s = %+v, %v", i.ID, s, err)
		}
	}
	c, err := store.GetCluster(ctx, inventory.DemoCluster)
	if err != nil || c.State != anyops.ClusterLive || c.Release != inventory.DemoRelease || c.Zone != inventory.DemoZone {
		t.Errorf("cluster = %+v, %v", c, err)
	}
	boots, _, err := store.ListVolumes(ctx, inventory.VolumeFilter{Kind: anyops.VolumeBoot})
	if err != nil || len(boots) != len(plan.Servers) {
		t.Errorf("%d boot volumes (%v), want one per server", len(boots), err)
	}
	reps, _, err := store.ListReplicas(ctx, inventory.ReplicaFilter{State: anyops.ReplicaUpToDate})
	if err != nil || len(reps) != len(plan.DRBDResources()) {
		t.Errorf("%d replicas up to date (%v), want %d", len(reps), err, len(plan.DRBDResources()))
	}
	for _, r := range reps {
		if r.PrimaryServer != inventory.DemoFileServer || r.SecondaryServer != inventory.DemoBackup || r.SyncPercent != 100 {
			t.Errorf("replica %+v", r)
		}
	}

	// A retry of the same picture (its first reply lost) gets the first result back and
	// records nothing again.
	retried, err := a.ReconcileFleet(ctx, ReconcileFleetInput{Fleet: fleet, DRBD: drbd})
	if err != nil {
		t.Fatal(err)
	}
	if retried.Counts != res.Counts || len(retried.Drift) != len(res.Drift) {
		t.Errorf("retried reconcile %+v with %d drifts, want the first result %+v with %d", retried.Counts, len(retried.Drift), res.Counts, len(res.Drift))
	}
	// A newer picture of the same cloud changes and records nothing.
	fleet.DescribedAt = fleet.DescribedAt.Add(time.Minute)
	again, err := a.ReconcileFleet(ctx, ReconcileFleetInput{Fleet: fleet, DRBD: drbd})
	if err != nil {
		t.Fatal(err)
	}
	if again.Counts.Created+again.Counts.Updated+again.Counts.Missing != 0 || len(again.Drift) != 0 || again.Counts.Unchanged != wantCreated {
		t.Errorf("second reconcile of the same cloud: %+v, drift %v; want all %d unchanged", again.Counts, again.Drift, wantCreated)
	}
	if n := len(driftEvents(t, store)); n != wantCreated {
		t.Errorf("second reconcile recorded events: %d in all, want %d", n, wantCreated)
	}
}

// TestReconcileFleetRecordsDrift proves each kind of drift after a first reconcile, on a
// table of changes made to the cloud: what the inventory then says, and the drift recorded.
func TestReconcileFleetRecordsDrift(t *testing.T) {
	since := time.Date(2014, 7, 15, 9, 30, 0, 0, time.UTC)
	tests := []struct {
		name   string
		change func(f *Fleet, drbd *[]HostDRBD)
		check  func(t *testing.T, store *inventory.Store, res ReconcileFleetResult)
	}{
		{
			name: "a failed system check makes the server impaired since the cloud says, and its replicas unknown",
			change: func(f *Fleet, drbd *[]HostDRBD) {
				f.Health[0].SystemStatus, f.Health[0].InstanceStatus, f.Health[0].ImpairedSince = "impaired", "impaired", &since
				*drbd = nil // SSM cannot reach an impaired host
			},
			check: func(t *testing.T, store *inventory.Store, res ReconcileFleetResult) {
				s, err := store.GetServer(context.Background(), inventory.DemoFileServer)
				if err != nil || s.State != anyops.ServerImpaired || s.ImpairedSince == nil || !s.ImpairedSince.Equal(since) {
					t.Errorf("file server %+v, %v; want impaired since %v", s, err, since)
				}
				if !hasDrift(res, "server", inventory.DemoFileServer, DriftChanged, "state") {
					t.Errorf("no changed-state drift for the file server in %+v", res.Drift)
				}
				reps, _, _ := store.ListReplicas(context.Background(), inventory.ReplicaFilter{State: anyops.ReplicaUnknown})
				if len(reps) != inventory.DemoHomeVolumes {
					t.Errorf("%d replicas unknown, want %d", len(reps), inventory.DemoHomeVolumes)
				}
			},
		},
		{
			name: "an instance gone from the cloud leaves its server terminated and its volumes deleted, not removed",
			change: func(f *Fleet, _ *[]HostDRBD) {
				gone := f.Instances[len(f.Instances)-1].ID
				f.Instances = f.Instances[:len(f.Instances)-1]
				f.Volumes = slices.DeleteFunc(f.Volumes, func(v Volume) bool {
					a, ok := attachedTo(v)
					return ok && a.InstanceID == gone
				})
			},
			check: func(t *testing.T, store *inventory.Store, res ReconcileFleetResult) {
				name := DemoFleetPlan().Servers[len(DemoFleetPlan().Servers)-1].Name
				s, err := store.GetServer(context.Background(), name)
				if err != nil || s.State != anyops.ServerTerminated {
					t.Errorf("server %s = %+v, %v; want terminated", name, s, err)
				}
				deleted, _, _ := store.ListVolumes(context.Background(), inventory.VolumeFilter{State: anyops.VolumeDeleted})
				if len(deleted) != 1 || deleted[0].Server != "" {
					t.Errorf("deleted volumes %+v, want the one boot volume, detached", deleted)
				}
				if res.Counts.Missing != 2 || !hasDrift(res, "server", name, DriftMissing, "state") {
					t.Errorf("counts %+v drift %+v; want 2 missing with the server's", res.Counts, res.Drift)
				}
			},
		},
		{
			name: "a detached volume loses its server and device",
			change: func(f *Fleet, _ *[]HostDRBD) {
				for i, v := range f.Volumes {
					if v.Tags[anyops.TagKind] == string(anyops.VolumeDropbox) {
						f.Volumes[i].State, f.Volumes[i].Attachments = "available", nil
					}
				}
			},
			check: func(t *testing.T, store *inventory.Store, res ReconcileFleetResult) {
				vols, _, _ := store.ListVolumes(context.Background(), inventory.VolumeFilter{Kind: anyops.VolumeDropbox})
				if len(vols) != 1 || vols[0].Server != "" || vols[0].Device != "" || vols[0].State != anyops.VolumeAvailable {
					t.Fatalf("dropbox volume %+v, want available and detached", vols)
				}
				if res.Counts.Updated != 1 || !hasDrift(res, "volume", vols[0].VolumeID, DriftChanged, "server") {
					t.Errorf("counts %+v drift %+v", res.Counts, res.Drift)
				}
			},
		},
		{
			name: "resources without Anyops tags are ignored",
			change: func(f *Fleet, _ *[]HostDRBD) {
				f.Instances = append(f.Instances, Instance{ID: "i-0ffffffffffffffff", State: "running", Zone: "us-east-1a"})
				f.Volumes = append(f.Volumes, Volume{ID: "vol-0ffffffffffffffff", State: "available", Zone: "us-east-1a", SizeGiB: 1})
			},
			check: func(t *testing.T, store *inventory.Store, res ReconcileFleetResult) {
				if res.Counts.Ignored != 2 || res.Counts.Created != 0 || len(res.Drift) != 0 {
					t.Errorf("counts %+v drift %+v; want 2 ignored and nothing else", res.Counts, res.Drift)
				}
				if _, err := store.GetVolume(context.Background(), "vol-0ffffffffffffffff"); anyops.ErrorCode(err) != anyops.ENOTFOUND {
					t.Errorf("untagged volume in the inventory: %v", err)
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			store := openStore(t)
			a, fleet, drbd := reconciledDemo(t, store)
			tt.change(&fleet, &drbd)
			fleet.DescribedAt = fleet.DescribedAt.Add(time.Minute)
			res, err := a.ReconcileFleet(ctx, ReconcileFleetInput{Fleet: fleet, DRBD: drbd})
			if err != nil {
				t.Fatal(err)
			}
			tt.check(t, store, res)
		})
	}
}

// TestReconcileFleetOverSeededInventory proves a reconcile over the seeded demo inventory
// (fake instance and volume ids) takes the cloud's word: servers keep their names and get the
// cloud's instance ids, replicas point at the cloud's volumes, and the seeded volumes the
// cloud does not have are marked deleted.
func TestReconcileFleetOverSeededInventory(t *testing.T) {
	ctx := context.Background()
	store := openDemoStore(t)
	fleet, drbd := cloudOf(DemoFleetPlan())
	res, err := (&Inventory{Store: store}).ReconcileFleet(ctx, ReconcileFleetInput{Fleet: fleet, DRBD: drbd})
	if err != nil {
		t.Fatal(err)
	}
	for _, i := range fleet.Instances {
		if s, err := store.GetServer(ctx, i.Name); err != nil || s.InstanceID != i.ID {
			t.Errorf("server %s has instance %q (%v), cloud says %s", i.Name, s.InstanceID, err, i.ID)
		}
	}
	seeded := len(inventory.DemoFleet().Volumes)
	if res.Counts.Missing != seeded {
		t.Errorf("%d missing, want the %d seeded volumes", res.Counts.Missing, seeded)
	}
	r, err := store.GetReplica(ctx, inventory.DemoCluster+"-r0")
	if err != nil || !slices.ContainsFunc(fleet.Volumes, func(v Volume) bool { return v.ID == r.PrimaryVolume }) {
		t.Errorf("replica r0 = %+v, %v; want its primary volume from the cloud", r, err)
	}
}

func hasDrift(res ReconcileFleetResult, entity, key, change, field string) bool {
	return slices.ContainsFunc(res.Drift, func(d Drift) bool {
		return d.Entity == entity && d.Key == key && d.Change == change && slices.Contains(d.Fields, field)
	})
}

// TestDRBDHosts proves both sides of the DRBD pairs are asked, file and backup server, while
// they run healthy: a promotion changes no tag, so the hosts say who is primary.
func TestDRBDHosts(t *testing.T) {
	fleet, _ := cloudOf(DemoFleetPlan())
	ids := map[string]string{}
	for _, i := range fleet.Instances {
		ids[i.Name] = i.ID
	}
	file, backup := ids[inventory.DemoFileServer], ids[inventory.DemoBackup]
	want := []string{file, backup}
	slices.Sort(want)
	if got := DRBDHosts(fleet); !slices.Equal(got, want) {
		t.Fatalf("DRBDHosts = %v, want the file and backup servers %v", got, want)
	}
	for i, h := range fleet.Health {
		if h.InstanceID == file {
			fleet.Health[i].SystemStatus = "impaired"
		}
	}
	if got := DRBDHosts(fleet); !slices.Equal(got, []string{backup}) {
		t.Errorf("DRBDHosts with the file server impaired = %v, want the backup %s", got, backup)
	}
}
