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
	_ = context.Background()
}

// july2014 sets the 15 July 2014 outage up on the demo fleet: the backup lagged (its link
// was down for two simulated hours while the file server wrote) and is resyncing when the file
// server's hardware fails and its boot disk turns out corrupt.
func (e *fleetEnv) july2014(t *testing.T, fleet DemoFleetResult) {
	t.Helper()
	backup, file := fleet.Instances[inventory.DemoBackup], fleet.Instances[inventory.DemoFileServer]
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
	e.july2014(t, fleet)

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
