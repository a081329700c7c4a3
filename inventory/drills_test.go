package inventory

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"

	"github.com/anyops/anyops"
)

// TestDrills proves a drill is numbered by its row (workflow drill/<n>, cluster drill-<n>),
// listed newest first in pages, finished with its report, and refused bad states and reports.
func TestDrills(t *testing.T) {
	forEachBackend(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		a := must[Drill](t)(s.CreateDrill(ctx, Drill{Scenario: "hot-backup", Source: "...", Speed: 5, RequestedBy: "api:admin"}))
		b := must[Drill](t)(s.CreateDrill(ctx, Drill{Scenario: "heartbleed", Cluster: DemoCluster, Speed: 20}))
		if a.WorkflowID != anyops.DrillWorkflowID(a.ID) || a.Cluster != anyops.DrillCluster(a.ID) || a.State != anyops.DrillRunning {
			t.Errorf("drill a %+v", a)
		}
		if b.Cluster != DemoCluster || b.WorkflowID != fmt.Sprintf("drill/%d", b.ID) {
			t.Errorf("drill b keeps the cluster it names: %+v", b)
		}
		page, next := must2(t)(s.ListDrills(ctx, DrillFilter{Page: Page{Limit: 1}}))
		if len(page) != 1 || page[0].ID != b.ID || next == "" {
			t.Fatalf("first page %+v next %q", page, next)
		}
		page, next = must2(t)(s.ListDrills(ctx, DrillFilter{Page: Page{Limit: 1, Cursor: next}}))
		if len(page) != 1 || page[0].ID != a.ID || next != "" {
			t.Fatalf("second page %+v next %q", page, next)
		}
		if err := s.FinishDrill(ctx, a.ID, anyops.DrillCompleted, []byte(`{"rto_seconds": 42}`), ""); err != nil {
			t.Fatal(err)
		}
		got := must[Drill](t)(s.GetDrill(ctx, a.ID))
		if got.State != anyops.DrillCompleted || got.Report != `{"rto_seconds": 42}` || got.FinishedAt == nil {
			t.Errorf("finished %+v", got)
		}
		for _, bad := range []error{
			s.FinishDrill(ctx, a.ID, anyops.DrillRunning, nil, ""),
			s.FinishDrill(ctx, a.ID, "exploded", nil, ""),
			s.FinishDrill(ctx, a.ID, anyops.DrillFailed, []byte("{not json"), ""),
		} {
			if anyops.ErrorCode(bad) != anyops.EINVALID {
				t.Errorf("accepted: %v", bad)
			}
		}
		if err := s.FinishDrill(ctx, 999999, anyops.DrillFailed, nil, "x"); anyops.ErrorCode(err) != anyops.ENOTFOUND {
			t.Errorf("finish of a missing drill: %v", err)
		}
		if _, err := s.GetDrill(ctx, 999999); anyops.ErrorCode(err) != anyops.ENOTFOUND {
			t.Errorf("get of a missing drill: %v", err)
		}
		only, _ := must2(t)(s.ListDrills(ctx, DrillFilter{State: anyops.DrillRunning}))
		if len(only) != 1 || only[0].ID != b.ID {
			t.Errorf("running drills %+v", only)
		}
		if _, _, err := s.ListDrills(ctx, DrillFilter{State: "bored"}); anyops.ErrorCode(err) != anyops.EINVALID {
			t.Errorf("bad state filter: %v", err)
		}
	})
}

func must2(t *testing.T) func([]Drill, string, error) ([]Drill, string) {
	return func(d []Drill, next string, err error) ([]Drill, string) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return d, next
	}
}

// TestDrillSpeedClaims proves one drill at a time holds the clock (its claim is the speed,
// however high the others' build claims), another's request for it is refused until it lets
// go, and without a holder the speed is the highest claim of the running drills.
func TestDrillSpeedClaims(t *testing.T) {
	forEachBackend(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		a := must[Drill](t)(s.CreateDrill(ctx, Drill{Scenario: "hot-backup", Speed: 5}))
		b := must[Drill](t)(s.CreateDrill(ctx, Drill{Scenario: "july-2014", Speed: 10}))
		claim := func(d Drill, v float64, clock bool) SpeedClaim {
			t.Helper()
			var c SpeedClaim
			if err := s.InTx(ctx, func(tx *Store) error {
				var err error
				c, err = tx.ClaimDrillSpeed(ctx, d.ID, v, clock)
				return err
			}); err != nil {
				t.Fatal(err)
			}
			return c
		}
		if c := claim(a, 120, false); c.Speed != 120 || c.Holder != 0 {
			t.Errorf("one build claim: %+v", c)
		}
		if c := claim(b, 10, true); !c.Granted || c.Speed != 10 || c.Holder != b.ID {
			t.Errorf("b takes the clock beside a's build at 120: %+v, want the speed 10", c)
		}
		if c := claim(a, 5, true); c.Granted || c.Speed != 10 || c.Holder != b.ID {
			t.Errorf("a asks for the clock b holds: %+v, want refused", c)
		}
		if c := claim(b, 600, true); !c.Granted || c.Speed != 600 {
			t.Errorf("b raises its own claim: %+v", c)
		}
		if err := s.FinishDrill(ctx, b.ID, anyops.DrillCompleted, nil, ""); err != nil {
			t.Fatal(err)
		}
		if c := claim(a, 5, true); !c.Granted || c.Speed != 5 || c.Holder != a.ID {
			t.Errorf("b finished, a takes the clock: %+v", c)
		}
		if c := claim(b, 1000, false); c.Speed != 5 {
			t.Errorf("a finished drill's claim counted: %+v", c)
		}
		if c := claim(a, 0, false); c.Speed != 0 || c.Holder != 0 {
			t.Errorf("no claim: %+v", c)
		}
	})
}

// TestDrillEventsOnce proves collected events are stored once per sequence number, in order,
// whatever a retried collection sends again.
func TestDrillEventsOnce(t *testing.T) {
	forEachBackend(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		d := must[Drill](t)(s.CreateDrill(ctx, Drill{Scenario: "hot-backup", Speed: 5}))
		ev := func(seq int64) json.RawMessage { return json.RawMessage(fmt.Sprintf(`{"seq":%d}`, seq)) }
		if err := s.AddDrillEvents(ctx, d.ID, []int64{3, 1}, []json.RawMessage{ev(3), ev(1)}); err != nil {
			t.Fatal(err)
		}
		if err := s.AddDrillEvents(ctx, d.ID, []int64{1, 2, 3}, []json.RawMessage{ev(1), ev(2), json.RawMessage(`{"seq":3,"changed":true}`)}); err != nil {
			t.Fatal(err)
		}
		got := must[[]json.RawMessage](t)(s.DrillEvents(ctx, d.ID))
		if len(got) != 3 || string(got[0]) != `{"seq":1}` || string(got[2]) != `{"seq":3}` {
			t.Errorf("events %s", got)
		}
		if last := must[int64](t)(s.LastDrillEventSeq(ctx, d.ID)); last != 3 {
			t.Errorf("last seq %d", last)
		}
	})
}

// TestRetireClusterRows proves a torn-down cluster's rows are marked (servers terminated,
// volumes deleted, replicas gone) only once it is retired, that live can never be retired, and
// that the cluster's time scale is recorded and then removed.
func TestRetireClusterRows(t *testing.T) {
	forEachBackend(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		f := ClusterShape("drill-5", DemoZone, DemoRelease)
		f.Zones = []Zone{{Name: DemoZone, Region: "us-east-1"}}
		f.Releases = []Release{{Name: DemoRelease}}
		if err := s.LoadFleet(ctx, f); err != nil {
			t.Fatal(err)
		}
		if err := s.SetClusterTimeScale(ctx, "drill-5", 10); err != nil {
			t.Fatal(err)
		}
		if v := must[float64](t)(s.ClusterTimeScale(ctx, "drill-5")); v != 10 {
			t.Errorf("time scale %v", v)
		}
		if v := must[float64](t)(s.ClusterTimeScale(ctx, "nope")); v != 0 {
			t.Errorf("time scale of a cluster without one %v", v)
		}
		if err := s.SetClusterTimeScale(ctx, "nope", 10); anyops.ErrorCode(err) != anyops.ENOTFOUND {
			t.Errorf("time scale of a missing cluster: %v", err)
		}
		if err := s.RetireClusterRows(ctx, "drill-5"); anyops.ErrorCode(err) != anyops.ECONFLICT {
			t.Fatalf("rows of a live cluster marked gone: %v", err)
		}
		if err := s.RetireCluster(ctx, DemoCluster); anyops.ErrorCode(err) != anyops.EFORBIDDEN {
			t.Errorf("live retired: %v", err)
		}
		if err := s.RetireCluster(ctx, "drill-5"); err != nil {
			t.Fatal(err)
		}
		if err := s.RetireClusterRows(ctx, "drill-5"); err != nil {
			t.Fatal(err)
		}
		servers, _ := must2s(t)(s.ListServers(ctx, ServerFilter{Cluster: "drill-5"}))
		for _, srv := range servers {
			if srv.State != anyops.ServerTerminated {
				t.Errorf("server %s %s", srv.Name, srv.State)
			}
		}
		vols, _, err := s.ListVolumes(ctx, VolumeFilter{Cluster: "drill-5"})
		if err != nil {
			t.Fatal(err)
		}
		for _, v := range vols {
			if v.State != anyops.VolumeDeleted || v.Server != "" {
				t.Errorf("volume %s %s on %q", v.VolumeID, v.State, v.Server)
			}
		}
		reps, _, err := s.ListReplicas(ctx, ReplicaFilter{Cluster: "drill-5"})
		if err != nil || len(reps) != 0 {
			t.Errorf("replicas left: %v %v", reps, err)
		}
		if v := must[float64](t)(s.ClusterTimeScale(ctx, "drill-5")); v != 0 {
			t.Errorf("time scale left: %v", v)
		}
	})
}

func must2s(t *testing.T) func([]Server, string, error) ([]Server, string) {
	return func(v []Server, next string, err error) ([]Server, string) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return v, next
	}
}
