package activities

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"testing"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"

	"github.com/anyops/anyops"
	"github.com/anyops/anyops/internal/testenv"
	"github.com/anyops/anyops/inventory"
)

func openStore(t *testing.T) *inventory.Store {
	t.Helper()
	return openStoreOn(t, inventory.DriverSQLite)
}

// openStoreOn opens a fresh inventory on a backend: a SQLite file in t.TempDir, or a new
// database on the test PostgreSQL server.
func openStoreOn(t *testing.T, backend string) *inventory.Store {
	t.Helper()
	dsn := filepath.Join(t.TempDir(), "inv.db")
	if backend == inventory.DriverPostgres {
		dsn = testenv.Postgres(t)
	}
	store, err := inventory.Open(context.Background(), backend, dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = store.Close() })
	return store
}

// forEachStore runs fn on a fresh inventory on each backend the product runs on.
func forEachStore(t *testing.T, fn func(t *testing.T, store *inventory.Store)) {
	t.Helper()
	for _, backend := range []string{inventory.DriverSQLite, inventory.DriverPostgres} {
		t.Run(backend, func(t *testing.T) { fn(t, openStoreOn(t, backend)) })
	}
}

// openDemoStore is openStore with the demo fleet seeded.
func openDemoStore(t *testing.T) *inventory.Store {
	t.Helper()
	store := openStore(t)
	if _, err := store.SeedDemoFleet(context.Background()); err != nil {
		t.Fatal(err)
	}
	return store
}

// TestInventoryActivities runs the inventory activities in Temporal's activity test
// environment on a real SQLite store: CountFleet returns the store's summary of the demo
// fleet, RecordAudit appends an event, and an event the store rejects fails non-retryably
// with the anyops code as its type.
func TestInventoryActivities(t *testing.T) {
	ctx := context.Background()
	store := openDemoStore(t)
	var suite testsuite.WorkflowTestSuite
	env := suite.NewTestActivityEnvironment()
	inv := &Inventory{Store: store}
	env.RegisterActivity(inv)

	v, err := env.ExecuteActivity(inv.CountFleet)
	if err != nil {
		t.Fatal(err)
	}
	var counts FleetCounts
	if err := v.Get(&counts); err != nil {
		t.Fatal(err)
	}
	fleet := inventory.DemoFleet()
	if counts.Totals.Servers != len(fleet.Servers) || counts.Totals.Volumes != len(fleet.Volumes) || counts.Totals.Replicas != len(fleet.Replicas) {
		t.Errorf("CountFleet totals %+v, demo fleet has %d servers, %d volumes, %d replicas", counts.Totals, len(fleet.Servers), len(fleet.Volumes), len(fleet.Replicas))
	}

	if _, err := env.ExecuteActivity(inv.RecordAudit, AuditRecord{Actor: "test", Action: "fleet-audit", Subject: "fleet", Summary: map[string]any{"n": 1}}); err != nil {
		t.Fatal(err)
	}
	events, _, err := store.ListAudit(ctx, inventory.Page{})
	if err != nil || len(events) != 1 || events[0].Actor != "test" || events[0].Summary["n"] != float64(1) {
		t.Fatalf("after RecordAudit the audit log holds %+v (err %v), want the one event", events, err)
	}

	_, err = env.ExecuteActivity(inv.RecordAudit, AuditRecord{Action: "fleet-audit"}) // no actor: the store rejects it
	var appErr *temporal.ApplicationError
	if !errors.As(err, &appErr) || !appErr.NonRetryable() || appErr.Type() != anyops.EINVALID {
		t.Fatalf("RecordAudit without actor = %v, want a non-retryable application error of type %q", err, anyops.EINVALID)
	}
	if events, _, _ := store.ListAudit(ctx, inventory.Page{}); len(events) != 1 {
		t.Fatalf("a rejected audit event changed the log: %d events", len(events))
	}
}

// TestClassify proves which errors become non-retryable: the client's mistakes do, a
// dependency being down or an unexpected failure does not (the retry policy handles those).
func TestClassify(t *testing.T) {
	tests := []struct {
		name         string
		err          error
		nonRetryable bool
	}{
		{"nil stays nil", nil, false},
		{"invalid", anyops.Errorf(anyops.EINVALID, "bad"), true},
		{"not found", anyops.Errorf(anyops.ENOTFOUND, "gone"), true},
		{"conflict", anyops.Errorf(anyops.ECONFLICT, "busy"), true},
		{"unavailable is retried", anyops.Errorf(anyops.EUNAVAILABLE, "db down"), false},
		{"internal is retried", anyops.Errorf(anyops.EINTERNAL, "oops"), false},
		{"plain error is retried", errors.New("connection reset"), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := classify(tt.err)
			if tt.err == nil {
				if got != nil {
					t.Fatalf("classify(nil) = %v", got)
				}
				return
			}
			var appErr *temporal.ApplicationError
			isNR := errors.As(got, &appErr) && appErr.NonRetryable()
			if isNR != tt.nonRetryable {
				t.Fatalf("classify(%v) non-retryable = %v, want %v", tt.err, isNR, tt.nonRetryable)
			}
			if isNR && appErr.Type() != anyops.ErrorCode(tt.err) {
				t.Fatalf("classify(%v) type %q, want %q", tt.err, appErr.Type(), anyops.ErrorCode(tt.err))
			}
		})
	}
}

// TestFileServersWatchesOnlyServingFileServers proves the NFS watches' list is the file servers
// that serve data (the primary of a DRBD resource) and can serve: not a new cluster's file
// server still building, not a failover's replacement bootstrapping in a live cluster, not a
// stopped one. A fleet sync during a build must not start a watch that would find no export,
// raise the probe alarm and fail over a server that was never up (a july-2014 drill did: the
// replacement's own failover stopped it mid-bootstrap and built a second one).
func TestFileServersWatchesOnlyServingFileServers(t *testing.T) {
	ctx := context.Background()
	store := openDemoStore(t)
	for _, c := range []inventory.Cluster{
		{Name: "drill-1", Zone: inventory.DemoZone, State: anyops.ClusterBuilding},
		{Name: "drill-2", Zone: inventory.DemoZone, State: anyops.ClusterLive},
	} {
		if _, err := store.UpsertCluster(ctx, c); err != nil {
			t.Fatal(err)
		}
	}
	for _, s := range []inventory.Server{
		{Name: "drill-1-file", Role: anyops.RoleFile, Zone: inventory.DemoZone, Cluster: "drill-1", State: anyops.ServerRunning},
		{Name: "drill-2-file", Role: anyops.RoleFile, Zone: inventory.DemoZone, Cluster: "drill-2", State: anyops.ServerRunning},
		{Name: "drill-2-file-a30f", Role: anyops.RoleFile, Zone: inventory.DemoZone, Cluster: "drill-2", State: anyops.ServerRunning},
		{Name: "drill-2-backup", Role: anyops.RoleBackup, Zone: inventory.DemoZone, Cluster: "drill-2", State: anyops.ServerRunning},
		{Name: "drill-3-file", Role: anyops.RoleFile, Zone: inventory.DemoZone, Cluster: "drill-2", State: anyops.ServerStopped},
	} {
		if _, err := store.UpsertServer(ctx, s); err != nil {
			t.Fatal(err)
		}
	}
	for i, server := range []string{"drill-2-file", "drill-2-backup", "drill-3-file", "drill-2-backup"} {
		v := inventory.Volume{VolumeID: fmt.Sprintf("vol-%017d", i+1), Kind: anyops.VolumeHome, Criticality: anyops.DefaultCriticality(anyops.VolumeHome),
			SizeGiB: 500, Zone: inventory.DemoZone, Cluster: "drill-2", State: anyops.VolumeInUse, Server: server, Device: fmt.Sprintf("/dev/xvd%c", 'f'+i)}
		if _, err := store.UpsertVolume(ctx, v); err != nil {
			t.Fatal(err)
		}
	}
	for _, r := range []inventory.Replica{
		{Name: "drill-2-r0", Cluster: "drill-2", PrimaryServer: "drill-2-file", SecondaryServer: "drill-2-backup", PrimaryVolume: "vol-00000000000000001", SecondaryVolume: "vol-00000000000000002", State: anyops.ReplicaUpToDate},
		{Name: "drill-3-r0", Cluster: "drill-2", PrimaryServer: "drill-3-file", SecondaryServer: "drill-2-backup", PrimaryVolume: "vol-00000000000000003", SecondaryVolume: "vol-00000000000000004", State: anyops.ReplicaUpToDate},
	} {
		if _, err := store.UpsertReplica(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	var env testsuite.WorkflowTestSuite
	aenv := env.NewTestActivityEnvironment()
	aenv.RegisterActivity(&Inventory{Store: store})
	val, err := aenv.ExecuteActivity((&Inventory{}).FileServers)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	if err := val.Get(&got); err != nil {
		t.Fatal(err)
	}
	want := map[string]bool{inventory.DemoFileServer: true, "drill-2-file": true}
	if len(got) != len(want) {
		t.Fatalf("FileServers = %v, want %v", got, want)
	}
	for _, name := range got {
		if !want[name] {
			t.Errorf("FileServers = %v: %s should not be watched", got, name)
		}
	}
}
