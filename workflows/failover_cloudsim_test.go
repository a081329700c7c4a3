package workflows

import (
	"context"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/anyops/anyops"
	"github.com/anyops/anyops/activities"
	"github.com/anyops/anyops/cloudsim"
	"github.com/anyops/anyops/inventory"
)

// simTiming is the production recovery timing scaled to cloudsim's test speed.
func simTiming() RecoveryTiming {
	t := RecoveryTiming{FleetTiming: FleetTiming{HeartbeatTimeout: 5 * time.Second, CallTimeout: 30 * time.Second}}.Scaled(cloudsim.TestSpeed)
	return t
}

// runFailover starts FileServerFailover for the server as the alarm intake does and waits.
func (e *fleetEnv) runFailover(t *testing.T, server string, policy FailoverPolicy) FailoverResult {
	t.Helper()
	var res FailoverResult
	in := FailoverInput{RecoveryRequest: RecoveryRequest{Server: server, RequestedBy: "test"}, Timing: simTiming(), Policy: policy}
	e.run(t, FailoverWorkflowType, anyops.FailoverWorkflowID(server)+"-"+uuid.NewString(), in, &res)
	return res
}

// TestFailoverHotBackupOnCloudsim is the hardware failure with a hot backup, on the real dev
// server and cloudsim: the demo fleet is built, the file server's hardware fails, and the
// failover promotes the backup (every resource UpToDate there), fences the failed server,
// moves the file service's name and remounts every client, which then reads and writes; the
// repaired old primary comes back on new hardware and, Secondary, is the new hot backup.
func TestFailoverHotBackupOnCloudsim(t *testing.T) {
	e := newFleetEnv(t)
	var fleet DemoFleetResult
	e.run(t, "DemoFleet", DemoFleetWorkflowID+"-"+uuid.NewString(), DemoFleetInput{Timing: fastTiming}, &fleet)
	e.injectFault(t, map[string]any{"type": cloudsim.FaultHardwareFailure, "instance_id": fleet.Instances[inventory.DemoFileServer]})

	res := e.runFailover(t, inventory.DemoFileServer, FailoverPolicy{})
	t.Logf("result %+v", res)
	if res.Winner != anyops.WayPromote || res.Serving != inventory.DemoBackup {
		t.Fatalf("winner %s serving %s, want promote serving %s", res.Winner, res.Serving, inventory.DemoBackup)
	}
	for name, server := range res.Clients {
		if server != fleet.Instances[inventory.DemoBackup] && server != res.ServingIP {
			t.Errorf("client %s reaches %s, want %s", name, server, res.ServingIP)
		}
	}
	if res.Backup != inventory.DemoFileServer {
		t.Errorf("backup %q, want the repaired %s", res.Backup, inventory.DemoFileServer)
	}
	backup := getHost(t, e.endpoint, fleet.Instances[inventory.DemoBackup])
	file := getHost(t, e.endpoint, fleet.Instances[inventory.DemoFileServer])
	for _, r := range activities.DemoFleetPlan().DRBDResources() {
		if b, f := backup.DRBD[r], file.DRBD[r]; b.Role != "Primary" || f.Role != "Secondary" || b.Disk != "UpToDate" || f.Disk != "UpToDate" {
			t.Errorf("%s: backup %+v, old primary %+v; want Primary and Secondary, both UpToDate", r, b, f)
		}
	}
}

// july2014 sets the 15 July 2014 outage up on the demo fleet: the backup lagged (its link
// was down for two simulated hours while the file server wrote) and is resyncing when the file
// server's hardware fails and its boot disk turns out corrupt.
func (e *fleetEnv) july2014(t *testing.T, fleet BuildClusterResult, cluster string) {
	t.Helper()
	backup, file := fleet.Instances[inventory.BackupServerOf(cluster)], fleet.Instances[inventory.FileServerOf(cluster)]
	f, err := e.sim.InjectFault(cloudsim.Fault{Type: cloudsim.FaultDRBDDisconnect, InstanceID: backup})
	if err != nil {
		t.Fatal(err)
	}
	e.sim.Advance(2 * time.Hour)
	if !e.sim.ClearFault(f.ID) {
		t.Fatal("the disconnect fault is gone")
	}
	for _, fault := range []string{cloudsim.FaultHardwareFailure, cloudsim.FaultCorruptBootDisk} {
		e.injectFault(t, map[string]any{"type": fault, "instance_id": file})
	}
	h := getHost(t, e.endpoint, backup)
	for name, r := range h.DRBD {
		if r.Disk == "UpToDate" {
			t.Fatalf("the backup's %s is UpToDate: not the July 2014 case", name)
		}
	}
}

// TestFailoverJuly2014OnCloudsim replays the 15 July 2014 outage on the real dev server and
// cloudsim: the backup is mid-resync (promote refused: not UpToDate), the repaired file server
// boots from a corrupt disk (repair fails), and a new file server, built at once, takes the
// fenced server's data volumes over: DRBD in its place, md0 assembled, checked, mounted and
// exported; the clients are remounted on it, and the backup's resync goes on from it until
// every resource is UpToDate.
func TestFailoverJuly2014OnCloudsim(t *testing.T) {
	e := newFleetEnv(t)
	var fleet DemoFleetResult
	e.run(t, "DemoFleet", DemoFleetWorkflowID+"-"+uuid.NewString(), DemoFleetInput{Timing: fastTiming}, &fleet)
	e.july2014(t, fleet, inventory.DemoCluster)

	res := e.runFailover(t, inventory.DemoFileServer, FailoverPolicy{})
	t.Logf("result %+v", res)
	if res.Winner != anyops.WayReplace || res.Serving == inventory.DemoFileServer || res.Serving == inventory.DemoBackup {
		t.Fatalf("winner %s serving %s, want replace on a new server", res.Winner, res.Serving)
	}
	if res.Backup != inventory.DemoBackup {
		t.Errorf("backup %q, want %s resynced from the new file server", res.Backup, inventory.DemoBackup)
	}
	if len(res.Clients) != 5 {
		t.Errorf("clients %v, want all 5 remounted", res.Clients)
	}
}

// buildCluster builds a cluster of the live shape beside the demo's, as a drill does.
func (e *fleetEnv) buildCluster(t *testing.T, cluster string, spare bool) BuildClusterResult {
	t.Helper()
	var res BuildClusterResult
	e.run(t, BuildClusterWorkflowType, BuildClusterWorkflowID(cluster)+"-"+uuid.NewString(), BuildClusterInput{
		Scope: "test-" + cluster, Cluster: cluster, Plan: activities.ClusterPlan(cluster, inventory.DemoZone, ""), Spare: spare,
		Timing: RecoveryTiming{FleetTiming: fastTiming},
	}, &res)
	return res
}

// TestFailoverWarmSpareOnCloudsim is the July 2014 outage with a warm spare in the zone, on a
// cluster built as drills build theirs: the replace way takes the spare (bootstrapped
// already) instead of building a server, and wins; the spare is now the cluster's file server.
func TestFailoverWarmSpareOnCloudsim(t *testing.T) {
	e := newFleetEnv(t)
	const cluster = "drill-1"
	fleet := e.buildCluster(t, cluster, true)
	if fleet.Spare != activities.SpareServerOf(cluster) || fleet.Instances[fleet.Spare] == "" {
		t.Fatalf("the build made no spare: %+v", fleet)
	}
	e.july2014(t, fleet, cluster)

	res := e.runFailover(t, inventory.FileServerOf(cluster), FailoverPolicy{})
	t.Logf("result %+v", res)
	if res.Winner != anyops.WayReplace || res.Serving != fleet.Spare {
		t.Fatalf("winner %s serving %s, want replace on the spare %s", res.Winner, res.Serving, fleet.Spare)
	}
	srv, err := e.store.GetServer(context.Background(), fleet.Spare)
	if err != nil || srv.Role != anyops.RoleFile || srv.Cluster != cluster {
		t.Errorf("the spare in the inventory: %+v, %v; want the file server of %s", srv, err, cluster)
	}
	if len(res.Clients) != 5 || res.Backup != inventory.BackupServerOf(cluster) {
		t.Errorf("clients %v, backup %q", res.Clients, res.Backup)
	}
}

// TestBackupRebuildOnCloudsim: the backup's hardware fails; BackupRebuild fences it, builds a
// new backup server, gives it empty volumes (no earlier snapshot: a full resync beats a first
// snapshot), sets DRBD up in the failed side's place and waits until every resource is
// UpToDate; the inventory then names the new backup in every replica.
func TestBackupRebuildOnCloudsim(t *testing.T) {
	e := newFleetEnv(t)
	var fleet DemoFleetResult
	e.run(t, "DemoFleet", DemoFleetWorkflowID+"-"+uuid.NewString(), DemoFleetInput{Timing: fastTiming}, &fleet)
	e.injectFault(t, map[string]any{"type": cloudsim.FaultHardwareFailure, "instance_id": fleet.Instances[inventory.DemoBackup]})

	var res BackupRebuildResult
	e.run(t, BackupRebuildWorkflowType, anyops.BackupRebuildWorkflowID(inventory.DemoBackup)+"-"+uuid.NewString(),
		BackupRebuildInput{RecoveryRequest: RecoveryRequest{Server: inventory.DemoBackup, RequestedBy: "test"}, Timing: simTiming()}, &res)
	t.Logf("result %+v", res)
	if res.Backup.Name == "" || res.Backup.Name == inventory.DemoBackup || res.Seed != anyops.SeedResync {
		t.Fatalf("backup %+v seeded by %s, want a new server resynced", res.Backup, res.Seed)
	}
	file := getHost(t, e.endpoint, fleet.Instances[inventory.DemoFileServer])
	nb := getHost(t, e.endpoint, res.Backup.InstanceID)
	for _, r := range activities.DemoFleetPlan().DRBDResources() {
		if f, b := file.DRBD[r], nb.DRBD[r]; f.Role != "Primary" || !f.Connected || b.Disk != "UpToDate" || b.Role != "Secondary" {
			t.Errorf("%s: file server %+v, new backup %+v", r, f, b)
		}
		rep, err := e.store.GetReplica(context.Background(), r)
		if err != nil || rep.SecondaryServer != res.Backup.Name || rep.SecondaryVolume != res.Volumes[r] {
			t.Errorf("replica %s: %+v, %v", r, rep, err)
		}
	}
}

// TestServerReplaceOnCloudsim: a web server's hardware fails; ServerReplace marks it impaired,
// fences it, builds a web server in its place that mounts the file service by name and reads
// and writes it, and terminates the failed one.
func TestServerReplaceOnCloudsim(t *testing.T) {
	e := newFleetEnv(t)
	var fleet DemoFleetResult
	e.run(t, "DemoFleet", DemoFleetWorkflowID+"-"+uuid.NewString(), DemoFleetInput{Timing: fastTiming}, &fleet)
	const web = inventory.DemoCluster + "-web1"
	e.injectFault(t, map[string]any{"type": cloudsim.FaultHardwareFailure, "instance_id": fleet.Instances[web]})

	var res ServerReplaceResult
	e.run(t, ServerReplaceWorkflowType, anyops.ServerReplaceWorkflowID(web)+"-"+uuid.NewString(),
		ServerReplaceInput{RecoveryRequest: RecoveryRequest{Server: web, RequestedBy: "test"}, Timing: simTiming()}, &res)
	t.Logf("result %+v", res)
	if res.Replacement == "" || res.Mount != fleet.FileServerIP {
		t.Fatalf("replacement %q mounting %q, want one mounting the file server %s", res.Replacement, res.Mount, fleet.FileServerIP)
	}
	ctx := context.Background()
	old, err := e.store.GetServer(ctx, web)
	if err != nil || old.State != anyops.ServerTerminated {
		t.Errorf("the failed server: %+v, %v; want terminated", old, err)
	}
	srv, err := e.store.GetServer(ctx, res.Replacement)
	if err != nil || srv.Role != anyops.RoleWeb || srv.State != anyops.ServerRunning || srv.InstanceID != res.ReplacementID {
		t.Errorf("the replacement: %+v, %v", srv, err)
	}
}
