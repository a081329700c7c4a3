package inventory

import (
	"context"
	"database/sql"
	"fmt"
	"regexp"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/anyops/anyops"
	"github.com/anyops/anyops/internal/testenv"
)

// TestPaginationWalksEveryRowOnce proves that walking a 120-row list page by page, with a
// filter and several page sizes, returns every matching row exactly once, in order, and ends
// with an empty cursor.
func TestPaginationWalksEveryRowOnce(t *testing.T) {
	forEachBackend(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		if _, err := s.SeedDemoFleet(ctx); err != nil {
			t.Fatal(err)
		}
		must[[]string](t)(s.UpsertCluster(ctx, Cluster{Name: "other", Zone: DemoZone, State: anyops.ClusterStandby}))
		// 120 rows, six of whose names sort differently under a natural-language collation
		// than byte by byte: both backends must list them in the same (byte) order.
		want := []string{"Web-b", "web-a", "web_a", "web.a", "web a", "webA"}
		for i := range 120 - len(want) {
			want = append(want, fmt.Sprintf("page-%03d", i))
		}
		for _, name := range want {
			must[[]string](t)(s.UpsertServer(ctx, Server{Name: name, Role: anyops.RoleWeb, Zone: DemoZone, Cluster: "other", State: anyops.ServerRunning}))
		}
		slices.Sort(want)
		for _, limit := range []int{1, 7, 50, 119, 120, 500} {
			t.Run(fmt.Sprintf("limit %d", limit), func(t *testing.T) {
				var got []string
				cursor, pages := "", 0
				for {
					page, next, err := s.ListServers(ctx, ServerFilter{Cluster: "other", Page: Page{Limit: limit, Cursor: cursor}})
					if err != nil {
						t.Fatal(err)
					}
					if len(page) > limit {
						t.Fatalf("page of %d rows for limit %d", len(page), limit)
					}
					for _, srv := range page {
						got = append(got, srv.Name)
					}
					pages++
					if next == "" {
						break
					}
					if pages > 200 {
						t.Fatal("pagination does not end")
					}
					cursor = next
				}
				if !slices.Equal(got, want) {
					t.Fatalf("walk returned %d rows %v\nwant the 120 rows in order %v", len(got), got, want)
				}
			})
		}
		// Limit 0 is the default page size.
		page, next, err := s.ListServers(ctx, ServerFilter{Cluster: "other"})
		if err != nil || len(page) != DefaultLimit || next == "" {
			t.Fatalf("default page: %d rows, next %q, %v; want %d rows and a next cursor", len(page), next, err, DefaultLimit)
		}
	})
}

// TestBadListInputIsInvalid proves every malformed list request is EINVALID and never an
// internal error: limits out of range, cursors that are not ours, unknown enum values.
func TestBadListInputIsInvalid(t *testing.T) {
	forEachBackend(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		tests := []struct {
			name string
			call func() error
		}{
			{"negative limit", func() error { _, _, err := s.ListZones(ctx, ZoneFilter{Page{Limit: -1}}); return err }},
			{"limit above max", func() error { _, _, err := s.ListZones(ctx, ZoneFilter{Page{Limit: MaxLimit + 1}}); return err }},
			{"cursor not base64", func() error { _, _, err := s.ListZones(ctx, ZoneFilter{Page{Cursor: "%%%"}}); return err }},
			{"cursor without our prefix", func() error {
				_, _, err := s.ListZones(ctx, ZoneFilter{Page{Cursor: "aGVsbG8"}}) // "hello"
				return err
			}},
			{"cursor with a NUL key", func() error {
				_, _, err := s.ListZones(ctx, ZoneFilter{Page{Cursor: EncodeCursor("a\x00b")}})
				return err
			}},
			{"audit cursor that is not an id", func() error { _, _, err := s.ListAudit(ctx, Page{Cursor: EncodeCursor("zone-1")}); return err }},
			{"unknown role", func() error { _, _, err := s.ListServers(ctx, ServerFilter{Role: "db"}); return err }},
			{"unknown server state", func() error { _, _, err := s.ListServers(ctx, ServerFilter{State: "melted"}); return err }},
			{"unknown cluster state", func() error { _, _, err := s.ListClusters(ctx, ClusterFilter{State: "x"}); return err }},
			{"unknown volume kind", func() error { _, _, err := s.ListVolumes(ctx, VolumeFilter{Kind: "swap"}); return err }},
			{"unknown volume state", func() error { _, _, err := s.ListVolumes(ctx, VolumeFilter{State: "x"}); return err }},
			{"unknown replica state", func() error { _, _, err := s.ListReplicas(ctx, ReplicaFilter{State: "x"}); return err }},
			{"unknown plan", func() error { _, _, err := s.ListUsers(ctx, UserFilter{Plan: "gold"}); return err }},
			{"unknown console state", func() error { _, err := s.CountConsoles(ctx, "x"); return err }},
			{"upsert server with unknown role", func() error {
				_, err := s.UpsertServer(ctx, Server{Name: "a", Role: "db", Zone: "z", Cluster: "c", State: anyops.ServerRunning})
				return err
			}},
			{"upsert server with malformed instance id", func() error {
				_, err := s.UpsertServer(ctx, Server{Name: "a", InstanceID: "x-1", Role: anyops.RoleWeb, Zone: "z", Cluster: "c", State: anyops.ServerRunning})
				return err
			}},
			{"upsert volume with malformed id", func() error {
				_, err := s.UpsertVolume(ctx, Volume{VolumeID: "disk1", Kind: anyops.VolumeLogs, Zone: "z", State: anyops.VolumeAvailable})
				return err
			}},
			{"upsert server in a missing zone", func() error {
				_, err := s.UpsertServer(ctx, Server{Name: "a", Role: anyops.RoleWeb, Zone: "nowhere", Cluster: "c", State: anyops.ServerRunning})
				return err
			}},
			{"set unknown server state", func() error { return s.SetServerState(ctx, "a", "melted", nil) }},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) { wantCode(t, tt.call(), anyops.EINVALID) })
		}
	})
}

// TestGetMissingIsNotFound proves lookups of absent rows are ENOTFOUND.
func TestGetMissingIsNotFound(t *testing.T) {
	forEachBackend(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		tests := []struct {
			name string
			call func() error
		}{
			{"server", func() error { _, err := s.GetServer(ctx, "ghost"); return err }},
			{"server by instance", func() error { _, err := s.GetServerByInstance(ctx, "i-00000000000000000"); return err }},
			{"volume", func() error { _, err := s.GetVolume(ctx, "vol-00000000000000000"); return err }},
			{"cluster", func() error { _, err := s.GetCluster(ctx, "ghost"); return err }},
			{"release", func() error { _, err := s.GetRelease(ctx, "ghost"); return err }},
			{"replica", func() error { _, err := s.GetReplica(ctx, "ghost"); return err }},
			{"sandbox", func() error { _, err := s.GetSandbox(ctx, "ghost"); return err }},
			{"user", func() error { _, err := s.GetUser(ctx, "ghost"); return err }},
			{"console", func() error { _, err := s.GetConsole(ctx, "ghost"); return err }},
			{"incident", func() error { _, err := s.GetIncident(ctx, 12345); return err }},
			{"default image", func() error { _, err := s.DefaultImage(ctx); return err }},
			{"make a missing image the default", func() error { _, err := s.SetDefaultImage(ctx, "ghost", "1"); return err }},
			{"set state of missing server", func() error { return s.SetServerState(ctx, "ghost", anyops.ServerRunning, nil) }},
			{"event of missing incident", func() error {
				_, err := s.AppendIncidentEvent(ctx, 12345, "note", "", time.Time{})
				return err
			}},
			{"delete missing user", func() error { return s.DeleteUser(ctx, "ghost") }},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) { wantCode(t, tt.call(), anyops.ENOTFOUND) })
		}
	})
}

var (
	instanceIDForm = regexp.MustCompile(`^i-[0-9a-f]{17}$`)
	volumeIDForm   = regexp.MustCompile(`^vol-[0-9a-f]{17}$`)
)

// TestDemoSeedIsIdempotentAndCounted proves the demo fleet is what the issue describes, is
// loaded only into an empty inventory, and that FleetSummary counts it.
func TestDemoSeedIsIdempotentAndCounted(t *testing.T) {
	forEachBackend(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		if seeded, err := s.SeedDemoFleet(ctx); err != nil || !seeded {
			t.Fatalf("first seed = %v, %v; want seeded", seeded, err)
		}
		if seeded, err := s.SeedDemoFleet(ctx); err != nil || seeded {
			t.Fatalf("second seed = %v, %v; want a no-op", seeded, err)
		}
		sum := must[FleetSummary](t)(s.FleetSummary(ctx))
		want := FleetSummary{
			ServersByRole:   map[string]int{"file": 1, "backup": 1, "web": 2, "console": 2, "task": 1},
			ServersByZone:   map[string]int{DemoZone: 7, DemoSpareZone: 0},
			VolumesByKind:   map[string]int{"home": 8, "logs": 1, "dropbox": 1, "boot": 7},
			ReplicasByState: map[string]int{"uptodate": 4, "syncing": 0, "disconnected": 0, "unknown": 0},
			Totals:          Totals{Zones: 2, Clusters: 1, Servers: 7, Volumes: 17, Replicas: 4},
		}
		if fmt.Sprint(sum) != fmt.Sprint(want) {
			t.Fatalf("summary = %+v\nwant      %+v", sum, want)
		}
		servers, _, err := s.ListServers(ctx, ServerFilter{})
		if err != nil {
			t.Fatal(err)
		}
		for _, srv := range servers {
			if !instanceIDForm.MatchString(srv.InstanceID) {
				t.Errorf("server %s has instance id %q, want i- and 17 hex digits", srv.Name, srv.InstanceID)
			}
			got := must[Server](t)(s.GetServerByInstance(ctx, srv.InstanceID))
			if got.Name != srv.Name {
				t.Errorf("GetServerByInstance(%s) = %s, want %s", srv.InstanceID, got.Name, srv.Name)
			}
			boot, _, err := s.ListVolumes(ctx, VolumeFilter{Server: srv.Name, Kind: anyops.VolumeBoot})
			if err != nil || len(boot) != 1 {
				t.Errorf("server %s has %d boot volumes (%v), want 1", srv.Name, len(boot), err)
			}
		}
		vols, _, err := s.ListVolumes(ctx, VolumeFilter{Page: Page{Limit: MaxLimit}})
		if err != nil {
			t.Fatal(err)
		}
		for _, v := range vols {
			if !volumeIDForm.MatchString(v.VolumeID) {
				t.Errorf("volume id %q, want vol- and 17 hex digits", v.VolumeID)
			}
		}
		dropbox, _, _ := s.ListVolumes(ctx, VolumeFilter{Kind: anyops.VolumeDropbox})
		if len(dropbox) != 1 || dropbox[0].Criticality != anyops.Deferrable {
			t.Errorf("dropbox volumes = %+v, want one deferrable", dropbox)
		}
		for _, server := range []string{DemoFileServer, DemoBackup} {
			home, _, _ := s.ListVolumes(ctx, VolumeFilter{Server: server, Kind: anyops.VolumeHome})
			if len(home) != DemoHomeVolumes {
				t.Errorf("%s has %d home volumes, want %d", server, len(home), DemoHomeVolumes)
			}
		}
		replicas, _, _ := s.ListReplicas(ctx, ReplicaFilter{Cluster: DemoCluster})
		for _, r := range replicas {
			p := must[Volume](t)(s.GetVolume(ctx, r.PrimaryVolume))
			sec := must[Volume](t)(s.GetVolume(ctx, r.SecondaryVolume))
			if p.Server != DemoFileServer || sec.Server != DemoBackup || p.Device != sec.Device {
				t.Errorf("replica %s pairs %s:%s with %s:%s", r.Name, p.Server, p.Device, sec.Server, sec.Device)
			}
		}
		if imgs := must[[]Image](t)(s.ListImages(ctx, "")); len(imgs) != 0 {
			t.Errorf("the demo fleet records images %+v; they come from the console hosts", imgs)
		}
		live := must[Cluster](t)(s.GetCluster(ctx, DemoCluster))
		rel := must[Release](t)(s.GetRelease(ctx, live.Release))
		if live.State != anyops.ClusterLive || rel.Name != DemoRelease {
			t.Errorf("cluster %s is %s on release %q, want live on %s", live.Name, live.State, rel.Name, DemoRelease)
		}
		spare, _, _ := s.ListClusters(ctx, ClusterFilter{Zone: DemoSpareZone})
		if len(spare) != 0 {
			t.Errorf("zone %s has clusters %v, want it empty", DemoSpareZone, spare)
		}
	})
}

// TestUpsertReportsChangedColumns proves the sync contract: a new row reports the columns it
// set, an identical write reports nothing and leaves updated_at alone, a changed write
// reports exactly the changed columns, and an optional reference cleared to "" is stored as
// NULL and read back as "".
func TestUpsertReportsChangedColumns(t *testing.T) {
	forEachBackend(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		if _, err := s.SeedDemoFleet(ctx); err != nil {
			t.Fatal(err)
		}
		srv := Server{Name: "web9", InstanceID: "i-0123456789abcdef0", Role: anyops.RoleWeb, Zone: DemoZone, Cluster: DemoCluster, State: anyops.ServerPending}
		changed := must[[]string](t)(s.UpsertServer(ctx, srv))
		if !slices.Equal(changed, []string{"name", "instance_id", "role", "zone", "cluster", "state"}) {
			t.Fatalf("create reported %v", changed)
		}
		before := must[Server](t)(s.GetServer(ctx, "web9"))
		if changed := must[[]string](t)(s.UpsertServer(ctx, srv)); len(changed) != 0 {
			t.Fatalf("identical write reported %v, want nothing", changed)
		}
		impaired := time.Date(2014, 7, 15, 9, 30, 0, 123456789, time.FixedZone("BST", 3600))
		srv.State, srv.ImpairedSince = anyops.ServerImpaired, &impaired
		if changed := must[[]string](t)(s.UpsertServer(ctx, srv)); !slices.Equal(changed, []string{"state", "impaired_since"}) {
			t.Fatalf("state change reported %v, want [state impaired_since]", changed)
		}
		after := must[Server](t)(s.GetServer(ctx, "web9"))
		if !after.CreatedAt.Equal(before.CreatedAt) || !after.UpdatedAt.After(before.UpdatedAt) {
			t.Fatalf("created_at %v→%v, updated_at %v→%v; want created kept and updated advanced", before.CreatedAt, after.CreatedAt, before.UpdatedAt, after.UpdatedAt)
		}
		if after.ImpairedSince == nil || !after.ImpairedSince.Equal(impaired.Truncate(time.Microsecond)) {
			t.Fatalf("impaired_since read back as %v, want %v", after.ImpairedSince, impaired)
		}
		// Writing the same instant again (as sync does from the cloud) is no change.
		if changed := must[[]string](t)(s.UpsertServer(ctx, srv)); len(changed) != 0 {
			t.Fatalf("same instant reported %v", changed)
		}
		if err := s.SetServerState(ctx, "web9", anyops.ServerRunning, nil); err != nil {
			t.Fatal(err)
		}
		if got := must[Server](t)(s.GetServer(ctx, "web9")); got.State != anyops.ServerRunning || got.ImpairedSince != nil {
			t.Fatalf("after SetServerState: %s, %v", got.State, got.ImpairedSince)
		}
		// A second server may not take web9's instance.
		_, err := s.UpsertServer(ctx, Server{Name: "web10", InstanceID: srv.InstanceID, Role: anyops.RoleWeb, Zone: DemoZone, Cluster: DemoCluster, State: anyops.ServerRunning})
		wantCode(t, err, anyops.ECONFLICT)

		// Detaching a volume clears its server to NULL.
		vol := DemoFleet().Volumes[0]
		vol.Server, vol.Device, vol.State = "", "", anyops.VolumeAvailable
		if changed := must[[]string](t)(s.UpsertVolume(ctx, vol)); !slices.Equal(changed, []string{"state", "server", "device"}) {
			t.Fatalf("detach reported %v", changed)
		}
		var nulls int64
		if err := s.DB().Table("volumes").Where("volume_id = ? AND server IS NULL", vol.VolumeID).Count(&nulls).Error; err != nil || nulls != 1 {
			t.Fatalf("detached volume's server is not NULL in the database (%d rows, %v)", nulls, err)
		}
		if got := must[Volume](t)(s.GetVolume(ctx, vol.VolumeID)); got.Server != "" || got.State != anyops.VolumeAvailable {
			t.Fatalf("detached volume reads back as %+v", got)
		}
		// Replica progress.
		r := DemoFleet().Replicas[0]
		r.State, r.SecondaryDiskState, r.SyncPercent, r.ConnectionState = anyops.ReplicaSyncing, "Inconsistent", 42.5, "SyncSource"
		if changed := must[[]string](t)(s.UpsertReplica(ctx, r)); len(changed) != 4 {
			t.Fatalf("replica change reported %v, want 4 columns", changed)
		}
		if got := must[Replica](t)(s.GetReplica(ctx, r.Name)); got.SyncPercent != 42.5 || got.State != anyops.ReplicaSyncing {
			t.Fatalf("replica reads back as %+v", got)
		}
	})
}

// TestListOrderIsByteOrderWhateverTheCollation proves lists come in the same byte order on
// both backends even where PostgreSQL's column collation is a natural-language one (under
// which "web-a" and "Web-b" sort differently): the store pages by the key with COLLATE "C".
func TestListOrderIsByteOrderWhateverTheCollation(t *testing.T) {
	forEachBackend(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		if s.Driver() == DriverPostgres {
			var icu int64
			s.DB().Raw(`SELECT COUNT(*) FROM pg_collation WHERE collname = 'und-x-icu'`).Scan(&icu)
			if icu == 0 {
				testenv.Missing(t, "an ICU collation (und-x-icu) in this PostgreSQL")
			}
			if err := s.DB().Exec(`ALTER TABLE consoles ALTER COLUMN id TYPE TEXT COLLATE "und-x-icu"`).Error; err != nil {
				t.Fatal(err)
			}
		}
		must[User](t)(s.CreateUser(ctx, "alice", anyops.PlanFree, false))
		ids := []string{"web-a", "Web-b", "web_a", "web.a", "web a", "webA", "WEB-c", "web-B"}
		for _, id := range ids {
			must[Console](t)(s.CreateConsole(ctx, Console{ID: id, User: "alice"}))
		}
		want := slices.Clone(ids)
		slices.Sort(want)
		var got []string
		cursor := ""
		for {
			page, next, err := s.ListConsoles(ctx, ConsoleFilter{Page: Page{Limit: 3, Cursor: cursor}})
			if err != nil {
				t.Fatal(err)
			}
			for _, c := range page {
				got = append(got, c.ID)
			}
			if next == "" {
				break
			}
			cursor = next
		}
		if !slices.Equal(got, want) {
			t.Fatalf("consoles listed as %q, want byte order %q", got, want)
		}
	})
}

// TestConcurrentUpsertOfOneNewRow proves that writers racing to record the same new server
// (two syncs at once) all succeed and exactly one of them reports creating it.
func TestConcurrentUpsertOfOneNewRow(t *testing.T) {
	forEachBackend(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		if _, err := s.SeedDemoFleet(ctx); err != nil {
			t.Fatal(err)
		}
		const n = 8
		warmPool(t, s, n)
		results := make([][]string, n)
		errs := make([]error, n)
		atOnce(n, func(i int) {
			results[i], errs[i] = s.UpsertServer(ctx, Server{Name: "racer", InstanceID: "i-0aaaaaaaaaaaaaaaa", Role: anyops.RoleWeb,
				Zone: DemoZone, Cluster: DemoCluster, State: anyops.ServerRunning})
		})
		creators := 0
		for i := range n {
			if errs[i] != nil {
				t.Fatalf("writer %d: %v", i, errs[i])
			}
			if len(results[i]) > 0 {
				creators++
			}
		}
		if creators != 1 {
			t.Fatalf("%d writers reported creating the row, want 1: %v", creators, results)
		}
	})
}

// warmPool opens n idle connections so that n goroutines start their transactions at the
// same moment instead of one after another while connections are dialled.
// atOnce runs f(0) … f(n-1) in n goroutines released at the same moment, and waits for them.
func atOnce(n int, f func(i int)) {
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			f(i)
		}()
	}
	close(start)
	wg.Wait()
}

func warmPool(t *testing.T, s *Store, n int) {
	t.Helper()
	sqlDB, err := s.DB().DB()
	if err != nil {
		t.Fatal(err)
	}
	sqlDB.SetMaxIdleConns(n)
	ctx := context.Background()
	var conns []*sql.Conn
	for range n {
		c, err := sqlDB.Conn(ctx)
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
	}
	for _, c := range conns {
		_ = c.Close()
	}
}

// TestMoveServerClaimsOnce proves a server is moved out of a cluster by one caller only: of
// eight failovers claiming one warm spare at the same moment, exactly one moves it into its
// cluster, and a retry of that one finds it there.
func TestMoveServerClaimsOnce(t *testing.T) {
	forEachBackend(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		if _, err := s.SeedDemoFleet(ctx); err != nil {
			t.Fatal(err)
		}
		const n = 8
		for i := range n {
			if _, err := s.UpsertCluster(ctx, Cluster{Name: fmt.Sprintf("drill-%d", i), Zone: DemoZone, State: anyops.ClusterLive}); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := s.UpsertCluster(ctx, Cluster{Name: "spares", Zone: DemoZone, State: anyops.ClusterStandby}); err != nil {
			t.Fatal(err)
		}
		if _, err := s.UpsertServer(ctx, Server{Name: "spare", InstanceID: "i-0bbbbbbbbbbbbbbbb", Role: anyops.RoleFile, Zone: DemoZone, Cluster: "spares", State: anyops.ServerRunning}); err != nil {
			t.Fatal(err)
		}
		warmPool(t, s, n)
		claimed := make([]bool, n)
		errs := make([]error, n)
		atOnce(n, func(i int) {
			claimed[i], errs[i] = s.MoveServer(ctx, "spare", "spares", fmt.Sprintf("drill-%d", i))
		})
		winner := -1
		for i := range n {
			if errs[i] != nil {
				t.Fatalf("claim %d: %v", i, errs[i])
			}
			if claimed[i] {
				if winner >= 0 {
					t.Fatalf("claims %d and %d both took the spare", winner, i)
				}
				winner = i
			}
		}
		if winner < 0 {
			t.Fatal("no claim took the spare")
		}
		if again, err := s.MoveServer(ctx, "spare", "spares", fmt.Sprintf("drill-%d", winner)); err != nil || !again {
			t.Errorf("the winner's retry: %v, %v; want it to find the spare its own", again, err)
		}
	})
}
