package inventory

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/anyops/anyops"
)

// TestMigrationsApplyOnceAndReapplyAsNoop proves that opening a fresh database applies every
// embedded migration and records it, and that migrating again (in the same process or after
// reopening) applies nothing and keeps the data.
func TestMigrationsApplyOnceAndReapplyAsNoop(t *testing.T) {
	ctx := context.Background()
	var want []int
	for _, m := range Migrations() {
		want = append(want, m.Version)
	}
	for _, backend := range backends {
		t.Run(backend, func(t *testing.T) {
			dsn := dsnFor(t, backend)
			s, err := Open(ctx, backend, dsn)
			if err != nil {
				t.Fatal(err)
			}
			got, err := s.SchemaVersions(ctx)
			if err != nil || !slices.Equal(got, want) {
				t.Fatalf("schema versions after open = %v, %v; want %v", got, err, want)
			}
			if _, err := s.UpsertZone(ctx, Zone{Name: "z1"}); err != nil {
				t.Fatal(err)
			}
			again, err := s.Migrate(ctx)
			if err != nil || len(again) != 0 {
				t.Fatalf("second Migrate applied %v, %v; want nothing", again, err)
			}
			_ = s.Close()

			s2, err := Open(ctx, backend, dsn)
			if err != nil {
				t.Fatalf("reopen: %v", err)
			}
			defer s2.Close()
			if again, err := s2.Migrate(ctx); err != nil || len(again) != 0 {
				t.Fatalf("Migrate after reopen applied %v, %v; want nothing", again, err)
			}
			if _, err := s2.GetZone(ctx, "z1"); err != nil {
				t.Fatalf("data lost across reopen: %v", err)
			}
		})
	}
}

// TestMigrationRefusesNewerSchema proves a binary does not run on a database migrated by a
// newer one: it would not know the columns.
func TestMigrationRefusesNewerSchema(t *testing.T) {
	forEachBackend(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		if err := s.DB().Exec("INSERT INTO schema_migrations (version, name, applied_at) VALUES (9999, 'future', ?)", now()).Error; err != nil {
			t.Fatal(err)
		}
		if _, err := s.Migrate(ctx); err == nil || !strings.Contains(err.Error(), "newer") {
			t.Fatalf("Migrate on a newer schema = %v, want an error saying it is newer", err)
		}
	})
}

// TestStatementsSplitsOnLineEndSemicolons proves the migration splitter keeps multi-line
// statements whole and drops comment lines.
func TestStatementsSplitsOnLineEndSemicolons(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want []string
	}{
		{"two statements", "CREATE TABLE a (\n  x INT\n);\nCREATE INDEX i ON a (x);\n", []string{"CREATE TABLE a (\n  x INT\n);", "CREATE INDEX i ON a (x);"}},
		{"comments and blank lines dropped", "-- header\n\nSELECT 1;\n  -- trailing\n", []string{"SELECT 1;"}},
		{"unterminated tail kept", "SELECT 1;\nSELECT 2", []string{"SELECT 1;", "SELECT 2"}},
		{"semicolon inside a line does not split", "INSERT INTO t VALUES ('a;b');\n", []string{"INSERT INTO t VALUES ('a;b');"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := statements(tt.in); !slices.Equal(got, tt.want) {
				t.Fatalf("statements = %q, want %q", got, tt.want)
			}
		})
	}
}

// rawInsert is a row written with plain SQL, past the store's own validation, so that the
// schema's constraints alone decide.
type rawInsert struct {
	name     string
	sql      string
	args     []any
	wantCode string
}

// TestSchemaRejectsBadRows proves the constraints live in the schema itself, on both
// backends: a bad enum value, a duplicate instance or volume id and a dangling foreign key
// are refused by the database even when the store's validation is bypassed, and the store
// maps each refusal to the right error code.
func TestSchemaRejectsBadRows(t *testing.T) {
	forEachBackend(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		if _, err := s.SeedDemoFleet(ctx); err != nil {
			t.Fatal(err)
		}
		fileSrv := must[Server](t)(s.GetServer(ctx, DemoFileServer))
		anyVol := DemoFleet().Volumes[0].VolumeID
		ts := now()
		insertServer := "INSERT INTO servers (name, instance_id, role, zone, cluster, state, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
		insertVolume := "INSERT INTO volumes (volume_id, kind, criticality, size_gib, zone, cluster, state, server, device, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
		tests := []rawInsert{
			{"bad role", insertServer, []any{"x1", nil, "db", DemoZone, DemoCluster, "running", ts, ts}, anyops.EINVALID},
			{"bad server state", insertServer, []any{"x2", nil, "web", DemoZone, DemoCluster, "melted", ts, ts}, anyops.EINVALID},
			{"duplicate instance id", insertServer, []any{"x3", fileSrv.InstanceID, "web", DemoZone, DemoCluster, "running", ts, ts}, anyops.ECONFLICT},
			{"duplicate server name", insertServer, []any{DemoFileServer, nil, "web", DemoZone, DemoCluster, "running", ts, ts}, anyops.ECONFLICT},
			{"server in a missing zone", insertServer, []any{"x4", nil, "web", "mars-1a", DemoCluster, "running", ts, ts}, anyops.EINVALID},
			{"server in a missing cluster", insertServer, []any{"x5", nil, "web", DemoZone, "ghost", "running", ts, ts}, anyops.EINVALID},
			{"bad volume kind", insertVolume, []any{"vol-00000000000000001", "swap", "critical", 1, DemoZone, DemoCluster, "available", nil, "", ts, ts}, anyops.EINVALID},
			{"bad criticality", insertVolume, []any{"vol-00000000000000002", "logs", "meh", 1, DemoZone, DemoCluster, "available", nil, "", ts, ts}, anyops.EINVALID},
			{"duplicate volume id", insertVolume, []any{anyVol, "logs", "critical", 1, DemoZone, DemoCluster, "available", nil, "", ts, ts}, anyops.ECONFLICT},
			{"volume attached to a missing server", insertVolume, []any{"vol-00000000000000003", "logs", "critical", 1, DemoZone, DemoCluster, "in-use", "ghost", "/dev/xvdz", ts, ts}, anyops.EINVALID},
			{"attached volume without a device", insertVolume, []any{"vol-00000000000000004", "logs", "critical", 1, DemoZone, DemoCluster, "in-use", DemoFileServer, "", ts, ts}, anyops.EINVALID},
			{"negative size", insertVolume, []any{"vol-00000000000000005", "logs", "critical", -1, DemoZone, DemoCluster, "available", nil, "", ts, ts}, anyops.EINVALID},
			{"replica of a missing volume", "INSERT INTO replicas (name, cluster, primary_server, secondary_server, primary_volume, secondary_volume, state, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
				[]any{"r9", DemoCluster, DemoFileServer, DemoBackup, anyVol, "vol-0000000000000dead", "uptodate", ts, ts}, anyops.EINVALID},
			{"user with a uid below the range", "INSERT INTO users (name, uid, plan, anonymous, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?)",
				[]any{"low", 1000, "free", false, ts, ts}, anyops.EINVALID},
			{"bad plan", "INSERT INTO users (name, uid, plan, anonymous, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?)",
				[]any{"bad", 200000, "gold", false, ts, ts}, anyops.EINVALID},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				err := s.DB().WithContext(ctx).Exec(tt.sql, tt.args...).Error
				if err == nil {
					t.Fatalf("the schema accepted %s", tt.name)
				}
				wantCode(t, dbError(err, tt.name), tt.wantCode)
			})
		}
		// Nothing of the refused rows is left behind.
		sum := must[FleetSummary](t)(s.FleetSummary(ctx))
		if sum.Totals.Servers != 7 || sum.Totals.Volumes != 17 || sum.Totals.Replicas != 4 {
			t.Fatalf("refused rows changed the fleet: %+v", sum.Totals)
		}
	})
}

// TestSchemaAcceptsEveryEnumValue fails when a closed set of the root package (or of this
// package) gains a value that the schema's CHECK rejects: every value of every set is written
// through the store, so the database alone can refuse it.
func TestSchemaAcceptsEveryEnumValue(t *testing.T) {
	forEachBackend(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		if _, err := s.SeedDemoFleet(ctx); err != nil {
			t.Fatal(err)
		}
		fleet := DemoFleet()
		n := 0
		next := func() int { n++; return n }
		write := map[string]func(string) error{}
		for _, v := range anyops.Roles {
			write["role "+string(v)] = func(string) error {
				_, err := s.UpsertServer(ctx, Server{Name: fmt.Sprintf("e%d", next()), Role: v, Zone: DemoZone, Cluster: DemoCluster, State: anyops.ServerRunning})
				return err
			}
		}
		for _, v := range anyops.ServerStates {
			write["server state "+string(v)] = func(string) error {
				_, err := s.UpsertServer(ctx, Server{Name: fmt.Sprintf("e%d", next()), Role: anyops.RoleWeb, Zone: DemoZone, Cluster: DemoCluster, State: v})
				return err
			}
		}
		for _, v := range anyops.ClusterStates {
			write["cluster state "+string(v)] = func(string) error {
				_, err := s.UpsertCluster(ctx, Cluster{Name: fmt.Sprintf("c%d", next()), Zone: DemoZone, State: v})
				return err
			}
		}
		for _, k := range anyops.VolumeKinds {
			for _, c := range anyops.Criticalities {
				write["volume "+string(k)+" "+string(c)] = func(string) error {
					_, err := s.UpsertVolume(ctx, Volume{VolumeID: fmt.Sprintf("vol-%017x", next()), Kind: k, Criticality: c, Zone: DemoZone, State: anyops.VolumeAvailable})
					return err
				}
			}
		}
		for _, v := range anyops.VolumeStates {
			write["volume state "+string(v)] = func(string) error {
				_, err := s.UpsertVolume(ctx, Volume{VolumeID: fmt.Sprintf("vol-%017x", next()), Kind: anyops.VolumeLogs, Zone: DemoZone, State: v})
				return err
			}
		}
		for _, v := range anyops.ReplicaStates {
			write["replica state "+string(v)] = func(string) error {
				r := fleet.Replicas[0]
				r.State = v
				_, err := s.UpsertReplica(ctx, r)
				return err
			}
		}
		for _, v := range anyops.Plans {
			write["plan "+string(v)] = func(string) error {
				_, err := s.CreateUser(ctx, fmt.Sprintf("u%d", next()), v, v == anyops.PlanAnonymous)
				return err
			}
		}
		for _, v := range anyops.ConsoleStates {
			write["console state "+string(v)] = func(string) error {
				u := must[User](t)(s.CreateUser(ctx, fmt.Sprintf("u%d", next()), anyops.PlanFree, false))
				_, err := s.CreateConsole(ctx, Console{User: u.Name, State: v})
				return err
			}
		}
		for _, v := range anyops.SandboxStates {
			write["sandbox state "+string(v)] = func(string) error {
				u := must[User](t)(s.CreateUser(ctx, fmt.Sprintf("u%d", next()), anyops.PlanFree, false))
				_, err := s.CreateSandbox(ctx, Sandbox{User: u.Name, Server: "live-console1", State: v})
				return err
			}
		}
		for range IncidentStates {
			write["incident open and resolved"] = func(string) error {
				inc, err := s.OpenIncident(ctx, Incident{Title: "check"})
				if err != nil {
					return err
				}
				_, err = s.AppendIncidentEvent(ctx, inc.ID, "resolved", "", time.Time{})
				return err
			}
		}
		for _, v := range anyops.RolloutStates {
			write["rollout state "+string(v)] = func(string) error {
				adv := fmt.Sprintf("CVE-%d", next())
				if _, err := s.StartPatchRollout(ctx, PatchRollout{Advisory: adv, WorkflowID: "patch/" + adv}, nil); err != nil {
					return err
				}
				return s.SetPatchRolloutState(ctx, adv, v, 0, "")
			}
		}
		for _, v := range anyops.PatchOutcomes {
			write["patch outcome "+string(v)] = func(string) error {
				adv := fmt.Sprintf("CVE-%d", next())
				if _, err := s.StartPatchRollout(ctx, PatchRollout{Advisory: adv, WorkflowID: "patch/" + adv},
					[]PatchServer{{Server: "live-web1", Role: anyops.RoleWeb}}); err != nil {
					return err
				}
				return s.RecordPatchServer(ctx, PatchServer{Advisory: adv, Server: "live-web1", Outcome: v})
			}
		}
		for _, v := range CertStates {
			write["certificate state "+string(v)] = func(string) error {
				c := Certificate{Name: fmt.Sprintf("c%d", next()), Domain: "www.anyops.example", State: v, KeyPEM: "k", CSRPEM: "c"}
				return s.db.Create(&c).Error
			}
		}
		for _, v := range anyops.DrillStates {
			write["drill state "+string(v)] = func(string) error {
				d, err := s.CreateDrill(ctx, Drill{Scenario: "hot-backup", Speed: 5})
				if err != nil || v == anyops.DrillRunning {
					return err
				}
				return s.FinishDrill(ctx, d.ID, v, nil, "")
			}
		}
		for name, fn := range write {
			t.Run(name, func(t *testing.T) {
				if err := fn(name); err != nil {
					t.Fatalf("the schema rejects a value the code allows: %v", err)
				}
			})
		}
	})
}

// TestConcurrentOpenMigratesOnce proves that processes starting together on a fresh database
// (api and worker in production) all come up, and that each migration is applied once.
func TestConcurrentOpenMigratesOnce(t *testing.T) {
	ctx := context.Background()
	for _, backend := range backends {
		t.Run(backend, func(t *testing.T) {
			dsn := dsnFor(t, backend)
			const n = 4
			var wg sync.WaitGroup
			applied := make([][]int, n)
			errs := make([]error, n)
			for i := range n {
				wg.Add(1)
				go func() {
					defer wg.Done()
					s, err := Connect(ctx, backend, dsn)
					if err != nil {
						errs[i] = err
						return
					}
					defer s.Close()
					applied[i], errs[i] = s.Migrate(ctx)
				}()
			}
			wg.Wait()
			total := 0
			for i := range n {
				if errs[i] != nil {
					t.Fatalf("process %d: %v", i, errs[i])
				}
				total += len(applied[i])
			}
			if total != len(Migrations()) {
				t.Fatalf("migrations applied %d times in all (%v), want %d", total, applied, len(Migrations()))
			}
		})
	}
}

// TestResolveDSN proves the default SQLite file lives under the data dir, which is created,
// and that a given DSN or a PostgreSQL driver is left alone.
func TestResolveDSN(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "nested", "data")
	tests := []struct {
		name, driver, dsn, dataDir, want string
		wantErr                          bool
	}{
		{"sqlite default", DriverSQLite, "", dir, filepath.Join(dir, DefaultSQLiteFile), false},
		{"sqlite given", DriverSQLite, "/x/y.db", dir, "/x/y.db", false},
		{"postgres given", DriverPostgres, "postgres://h/db", "", "postgres://h/db", false},
		{"sqlite without anything", DriverSQLite, "", "", "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ResolveDSN(tt.driver, tt.dsn, tt.dataDir)
			if (err != nil) != tt.wantErr || got != tt.want {
				t.Fatalf("ResolveDSN = %q, %v; want %q (error %v)", got, err, tt.want, tt.wantErr)
			}
		})
	}
	if st, err := os.Stat(dir); err != nil || !st.IsDir() {
		t.Fatalf("data dir not created: %v", err)
	}
}
