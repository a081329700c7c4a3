package activities

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/anyops/anyops"
	"github.com/anyops/anyops/inventory"
)

// failAuditOf makes the database refuse audit events about subject until the returned
// function is called: a real failure in the middle of a reconcile, after some of its rows were
// written. It is a trigger, so the store's code runs unchanged.
func failAuditOf(t *testing.T, store *inventory.Store, subject string) (clear func()) {
	t.Helper()
	stmts := []string{`CREATE TABLE test_audit_failure (subject TEXT NOT NULL)`}
	if store.Driver() == inventory.DriverPostgres {
		stmts = append(stmts,
			`CREATE FUNCTION test_audit_failure() RETURNS trigger LANGUAGE plpgsql AS $$
			BEGIN
				IF EXISTS (SELECT 1 FROM test_audit_failure WHERE subject = NEW.subject) THEN
					RAISE EXCEPTION 'injected failure';
				END IF;
				RETURN NEW;
			END $$`,
			`CREATE TRIGGER test_audit_failure BEFORE INSERT ON audit_events FOR EACH ROW EXECUTE FUNCTION test_audit_failure()`)
	} else {
		stmts = append(stmts, `CREATE TRIGGER test_audit_failure BEFORE INSERT ON audit_events
			WHEN EXISTS (SELECT 1 FROM test_audit_failure WHERE subject = NEW.subject)
			BEGIN SELECT RAISE(ABORT, 'injected failure'); END`)
	}
	for _, q := range stmts {
		if err := store.DB().Exec(q).Error; err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	if err := store.DB().Exec(`INSERT INTO test_audit_failure (subject) VALUES (?)`, subject).Error; err != nil {
		t.Fatal(err)
	}
	return func() {
		if err := store.DB().Exec(`DELETE FROM test_audit_failure`).Error; err != nil {
			t.Fatal(err)
		}
	}
}

// countDrift counts the drift events about subject with the change.
func countDrift(t *testing.T, store *inventory.Store, subject, change string) int {
	t.Helper()
	n := 0
	for _, e := range driftEvents(t, store) {
		if e.Subject == subject && e.Summary["change"] == change {
			n++
		}
	}
	return n
}

// instanceOf returns the id of the named server's instance in the fleet.
func instanceOf(f Fleet, name string) string {
	for _, i := range f.Instances {
		if i.Name == name {
			return i.ID
		}
	}
	return ""
}

// volumeOfKind returns the index in f.Volumes of the volume tagged with kind.
func volumeOfKind(f Fleet, kind anyops.VolumeKind) int {
	return slices.IndexFunc(f.Volumes, func(v Volume) bool { return v.Tags[anyops.TagKind] == string(kind) })
}

// reconciledDemo reconciles store once with the demo fleet's cloud and returns the activity
// with that cloud, for a test to change and reconcile again.
func reconciledDemo(t *testing.T, store *inventory.Store) (*Inventory, Fleet, []HostDRBD) {
	t.Helper()
	a := &Inventory{Store: store}
	fleet, drbd := cloudOf(DemoFleetPlan())
	if _, err := a.ReconcileFleet(context.Background(), ReconcileFleetInput{Fleet: fleet, DRBD: drbd}); err != nil {
		t.Fatal(err)
	}
	return a, fleet, drbd
}

// TestReconcileFleetIsAtomicAndAuditsOnce proves, on SQLite and PostgreSQL, that a reconcile
// failing half-way (the database refuses one audit event, after the rows before it were
// written) applies nothing, and that its retry then applies all of the drift and records each
// change exactly once. Before, each row was its own transaction: the retry found the rows
// already changed and the drift whose event had failed was never recorded.
func TestReconcileFleetIsAtomicAndAuditsOnce(t *testing.T) {
	forEachStore(t, func(t *testing.T, store *inventory.Store) {
		ctx := context.Background()
		a, fleet, drbd := reconciledDemo(t, store)
		// Drift: the file server's system check fails; the dropbox volume is detached.
		file := instanceOf(fleet, inventory.DemoFileServer)
		for i, h := range fleet.Health {
			if h.InstanceID == file {
				fleet.Health[i].SystemStatus = "impaired"
			}
		}
		dropbox := volumeOfKind(fleet, anyops.VolumeDropbox)
		fleet.Volumes[dropbox].State, fleet.Volumes[dropbox].Attachments = "available", nil
		fleet.DescribedAt = fleet.DescribedAt.Add(time.Minute)
		in := ReconcileFleetInput{Fleet: fleet, DRBD: drbd}
		volumeSubject := "volume/" + fleet.Volumes[dropbox].ID

		clear := failAuditOf(t, store, volumeSubject)
		if _, err := a.ReconcileFleet(ctx, in); err == nil {
			t.Fatal("reconcile succeeded although the database refused one of its events")
		}
		if s, err := store.GetServer(ctx, inventory.DemoFileServer); err != nil || s.State != anyops.ServerRunning {
			t.Errorf("file server after the failed reconcile: %+v, %v; want it untouched (running)", s, err)
		}
		clear()

		res, err := a.ReconcileFleet(ctx, in) // Temporal's retry: the same input
		if err != nil {
			t.Fatal(err)
		}
		if s, _ := store.GetServer(ctx, inventory.DemoFileServer); s.State != anyops.ServerImpaired {
			t.Errorf("file server after the retry: %s, want impaired", s.State)
		}
		for _, subject := range []string{"server/" + inventory.DemoFileServer, volumeSubject} {
			if n := countDrift(t, store, subject, DriftChanged); n != 1 {
				t.Errorf("%d changed-drift events for %s, want exactly 1", n, subject)
			}
		}
		if !hasDrift(res, "volume", fleet.Volumes[dropbox].ID, DriftChanged, "server") {
			t.Errorf("retry's result %+v lacks the volume's drift", res.Drift)
		}
	})
}

// TestReconcileFleetRefusesAnOlderPicture proves, on SQLite and PostgreSQL, that a picture of
// the cloud described before the newest one applied changes and records nothing (it reports
// itself superseded), and that of two reconciles running at once the newer picture is what
// the inventory says after both, whichever commits first.
func TestReconcileFleetRefusesAnOlderPicture(t *testing.T) {
	forEachStore(t, func(t *testing.T, store *inventory.Store) {
		ctx := context.Background()
		a, base, drbd := reconciledDemo(t, store)
		file := instanceOf(base, inventory.DemoFileServer)
		// picture returns a copy of the cloud described at base+minutes, the file server in state.
		picture := func(minutes int, state string) Fleet {
			f := base
			f.DescribedAt = base.DescribedAt.Add(time.Duration(minutes) * time.Minute)
			f.Instances = slices.Clone(base.Instances)
			for i := range f.Instances {
				if f.Instances[i].ID == file {
					f.Instances[i].State = state
				}
			}
			return f
		}
		if _, err := a.ReconcileFleet(ctx, ReconcileFleetInput{Fleet: picture(2, "stopped"), DRBD: drbd}); err != nil {
			t.Fatal(err)
		}
		events := len(driftEvents(t, store))
		old, err := a.ReconcileFleet(ctx, ReconcileFleetInput{Fleet: picture(1, "running"), DRBD: drbd})
		if err != nil {
			t.Fatal(err)
		}
		if !old.Superseded || len(old.Drift) != 0 {
			t.Errorf("older picture: superseded %v, drift %+v; want superseded and nothing", old.Superseded, old.Drift)
		}
		if s, _ := store.GetServer(ctx, inventory.DemoFileServer); s.State != anyops.ServerStopped {
			t.Errorf("file server %s after the older picture, want the newer picture's stopped", s.State)
		}
		if n := len(driftEvents(t, store)); n != events {
			t.Errorf("the older picture recorded %d events", n-events)
		}

		var wg sync.WaitGroup
		errs := make([]error, 2)
		for i, p := range []Fleet{picture(3, "running"), picture(4, "stopping")} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, errs[i] = a.ReconcileFleet(ctx, ReconcileFleetInput{Fleet: p, DRBD: drbd})
			}()
		}
		wg.Wait()
		for _, err := range errs {
			if err != nil {
				t.Fatal(err)
			}
		}
		if s, _ := store.GetServer(ctx, inventory.DemoFileServer); s.State != anyops.ServerStopping {
			t.Errorf("file server %s after two reconciles at once, want the newer picture's stopping", s.State)
		}
	})
}

// TestReconcileFleetNeverSweepsALiveResource proves that a volume and a server still in the
// cloud whose Anyops tags became unreadable (a kind, a role not in the closed set) are left as
// the inventory has them — not deleted, not terminated — and reported as unclassified drift in
// every sync's result, with one audit event, not one per sync.
func TestReconcileFleetNeverSweepsALiveResource(t *testing.T) {
	ctx := context.Background()
	store := openStore(t)
	a, fleet, drbd := reconciledDemo(t, store)
	dropbox := volumeOfKind(fleet, anyops.VolumeDropbox)
	fleet.Volumes[dropbox].Tags = map[string]string{anyops.TagKind: "floppy", anyops.TagCluster: inventory.DemoCluster}
	web := slices.IndexFunc(fleet.Instances, func(i Instance) bool { return i.Tags[anyops.TagRole] == string(anyops.RoleWeb) })
	webName, webID := fleet.Instances[web].Name, fleet.Instances[web].ID
	fleet.Instances[web].Tags = map[string]string{TagName: webName, anyops.TagCluster: inventory.DemoCluster, anyops.TagRole: "wizard"}

	for round := 1; round <= 2; round++ {
		fleet.DescribedAt = fleet.DescribedAt.Add(time.Minute)
		res, err := a.ReconcileFleet(ctx, ReconcileFleetInput{Fleet: fleet, DRBD: drbd})
		if err != nil {
			t.Fatal(err)
		}
		v, err := store.GetVolume(ctx, fleet.Volumes[dropbox].ID)
		if err != nil || v.State == anyops.VolumeDeleted {
			t.Errorf("round %d: volume with a bad kind tag %+v, %v; want it kept, not deleted", round, v, err)
		}
		s, err := store.GetServer(ctx, webName)
		if err != nil || s.State == anyops.ServerTerminated {
			t.Errorf("round %d: server with a bad role tag %+v, %v; want it kept, not terminated", round, s, err)
		}
		if res.Counts.Unclassified != 2 || res.Counts.Missing != 0 ||
			!hasDrift(res, "volume", fleet.Volumes[dropbox].ID, DriftUnclassified, anyops.TagKind) ||
			!hasDrift(res, "instance", webID, DriftUnclassified, anyops.TagRole) {
			t.Errorf("round %d: counts %+v drift %+v; want both unclassified and nothing missing", round, res.Counts, res.Drift)
		}
	}
	if n := countDrift(t, store, "volume/"+fleet.Volumes[dropbox].ID, DriftUnclassified) + countDrift(t, store, "instance/"+webID, DriftUnclassified); n != 2 {
		t.Errorf("%d unclassified events after two syncs, want one per resource", n)
	}
}

// TestReconcileFleetReadsReplicaRolesFromHosts proves a replica's primary is the server whose
// host says so: after a promotion (the backup now Primary, the tags unchanged) the reconcile
// records the backup as primary, and DRBDRoleTagChanges lists the tag writes that make the
// volumes' role tags say the same. With no host answering, the tags decide and no tag changes.
func TestReconcileFleetReadsReplicaRolesFromHosts(t *testing.T) {
	ctx := context.Background()
	store := openStore(t)
	a, fleet, drbd := reconciledDemo(t, store)
	if pairs, _ := DRBDPairs(fleet, drbd); len(DRBDRoleTagChanges(fleet, pairs)) != 0 {
		t.Fatalf("tag changes before any promotion: %+v", DRBDRoleTagChanges(fleet, pairs))
	}
	for i := range drbd { // the promotion: file and backup swap roles
		for j := range drbd[i].Resources {
			r := &drbd[i].Resources[j]
			r.Role, r.Peers[0].Role = r.Peers[0].Role, r.Role
		}
	}
	fleet.DescribedAt = fleet.DescribedAt.Add(time.Minute)
	res, err := a.ReconcileFleet(ctx, ReconcileFleetInput{Fleet: fleet, DRBD: drbd})
	if err != nil {
		t.Fatal(err)
	}
	plan := DemoFleetPlan()
	for _, name := range plan.DRBDResources() {
		r, err := store.GetReplica(ctx, name)
		if err != nil || r.PrimaryServer != inventory.DemoBackup || r.SecondaryServer != inventory.DemoFileServer {
			t.Errorf("replica %s after the promotion: %+v, %v; want the backup primary", name, r, err)
		}
		if !hasDrift(res, "replica", name, DriftChanged, "primary_server") {
			t.Errorf("no primary_server drift for %s in %+v", name, res.Drift)
		}
	}
	pairs, _ := DRBDPairs(fleet, drbd)
	changes := DRBDRoleTagChanges(fleet, pairs)
	if len(changes) != 2*len(plan.DRBDResources()) {
		t.Fatalf("%d tag changes, want both volumes of each of the %d pairs: %+v", len(changes), len(plan.DRBDResources()), changes)
	}
	backup := instanceOf(fleet, inventory.DemoBackup)
	for _, c := range changes {
		v := fleet.Volumes[slices.IndexFunc(fleet.Volumes, func(v Volume) bool { return v.ID == c.ResourceID })]
		a, _ := attachedTo(v)
		want := DRBDSecondary
		if a.InstanceID == backup {
			want = DRBDPrimary
		}
		if c.Tags[anyops.TagDRBDRole] != want {
			t.Errorf("volume %s on %s tagged %v, want %s", c.ResourceID, a.InstanceID, c.Tags, want)
		}
	}

	unread, _ := DRBDPairs(fleet, nil)
	if len(unread) == 0 || unread[0].RolesFromHosts || len(DRBDRoleTagChanges(fleet, unread)) != 0 {
		t.Errorf("no host answering: pairs %+v; want roles from the tags and no tag changes", unread)
	}
}
