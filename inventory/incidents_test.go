package inventory

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/anyops/anyops"
)

// TestOpenOrJoinIncidentConcurrently proves that ten callers opening the incident of one
// fault at once get one incident between them, that exactly one of them opened it, and that
// once it is resolved the next alarm opens a new one.
func TestOpenOrJoinIncidentConcurrently(t *testing.T) {
	forEachBackend(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		if _, err := s.SeedDemoFleet(ctx); err != nil {
			t.Fatal(err)
		}
		want := Incident{Title: "file server failed", Cluster: DemoCluster, Server: DemoFileServer, WorkflowID: anyops.FailoverWorkflowID(DemoFileServer)}
		const callers = 10
		var (
			wg     sync.WaitGroup
			ids    [callers]int64
			opened [callers]bool
			errs   [callers]error
		)
		for i := range callers {
			wg.Go(func() {
				inc, o, err := s.OpenOrJoinIncident(ctx, want)
				ids[i], opened[i], errs[i] = inc.ID, o, err
			})
		}
		wg.Wait()
		openers := 0
		for i := range callers {
			if errs[i] != nil {
				t.Fatalf("caller %d: %v", i, errs[i])
			}
			if ids[i] != ids[0] {
				t.Fatalf("caller %d got incident %d, caller 0 got %d: two incidents for one fault", i, ids[i], ids[0])
			}
			if opened[i] {
				openers++
			}
		}
		if openers != 1 {
			t.Fatalf("%d callers say they opened the incident, want 1", openers)
		}
		all, _, err := s.ListIncidents(ctx, IncidentFilter{Server: DemoFileServer})
		if err != nil || len(all) != 1 {
			t.Fatalf("incidents of %s = %d (%v), want 1", DemoFileServer, len(all), err)
		}

		if _, err := s.AppendIncidentEvent(ctx, ids[0], IncidentEventResolved, "recovered", time.Time{}); err != nil {
			t.Fatal(err)
		}
		next, o, err := s.OpenOrJoinIncident(ctx, want)
		if err != nil || !o || next.ID == ids[0] {
			t.Fatalf("after the first was resolved: incident %d, opened %v, %v; want a new one", next.ID, o, err)
		}
		_, _, err = s.OpenOrJoinIncident(ctx, Incident{Title: "no key"})
		wantCode(t, err, anyops.EINVALID)
	})
}

// TestIncidentAlarmDeliveryRecordedOnce proves that an alarm delivery (source and delivery id)
// is recorded once per incident: the second is ECONFLICT and adds nothing, while other
// deliveries, other sources and non-alarm events with the same id are recorded.
func TestIncidentAlarmDeliveryRecordedOnce(t *testing.T) {
	forEachBackend(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		inc := must[Incident](t)(s.OpenIncident(ctx, Incident{Title: "t", WorkflowID: "failover/x"}))
		alarm := IncidentEvent{IncidentID: inc.ID, Kind: IncidentEventAlarm, Source: "sns", DeliveryID: "m-1", Message: "ALARM"}
		must[IncidentEvent](t)(s.AddIncidentEvent(ctx, alarm))
		_, err := s.AddIncidentEvent(ctx, alarm)
		wantCode(t, err, anyops.ECONFLICT)
		for _, ev := range []IncidentEvent{
			{IncidentID: inc.ID, Kind: IncidentEventAlarm, Source: "sns", DeliveryID: "m-2"},
			{IncidentID: inc.ID, Kind: IncidentEventAlarm, Source: "alertmanager", DeliveryID: "m-1"},
			{IncidentID: inc.ID, Kind: IncidentEventAlarmResolved, Source: "sns", DeliveryID: "m-3"},
			{IncidentID: inc.ID, Kind: IncidentEventRedelivered, Source: "sns", DeliveryID: "m-1"},
			{IncidentID: inc.ID, Kind: IncidentEventRedelivered, Source: "sns", DeliveryID: "m-1"},
		} {
			must[IncidentEvent](t)(s.AddIncidentEvent(ctx, ev))
		}
		got := must[Incident](t)(s.GetIncident(ctx, inc.ID))
		if len(got.Timeline) != 7 { // opened + 6
			t.Fatalf("timeline has %d events, want 7: %+v", len(got.Timeline), got.Timeline)
		}
		if e := got.Timeline[1]; e.Source != "sns" || e.DeliveryID != "m-1" {
			t.Fatalf("alarm event read back as %+v", e)
		}
		_, err = s.AddIncidentEvent(ctx, IncidentEvent{IncidentID: 999999, Kind: IncidentEventAlarm})
		wantCode(t, err, anyops.ENOTFOUND)
	})
}

// TestLinkIncidentRunKeepsTheFirst proves the first run linked to an incident stays linked.
func TestLinkIncidentRunKeepsTheFirst(t *testing.T) {
	forEachBackend(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		inc := must[Incident](t)(s.OpenIncident(ctx, Incident{Title: "t", WorkflowID: "failover/x"}))
		if got, linked, err := s.LinkIncidentRun(ctx, inc.ID, "run-1"); err != nil || !linked || got.RunID != "run-1" {
			t.Fatalf("first link: run %q, linked %v, %v", got.RunID, linked, err)
		}
		if got, linked, err := s.LinkIncidentRun(ctx, inc.ID, "run-2"); err != nil || linked || got.RunID != "run-1" {
			t.Fatalf("second link: run %q, linked %v, %v; want the first kept", got.RunID, linked, err)
		}
		_, _, err := s.LinkIncidentRun(ctx, 999999, "run-1")
		wantCode(t, err, anyops.ENOTFOUND)
		_, _, err = s.LinkIncidentRun(ctx, inc.ID, "")
		wantCode(t, err, anyops.EINVALID)
		_, err = s.OpenIncidentOf(ctx, "failover/nobody")
		wantCode(t, err, anyops.ENOTFOUND)
	})
}
