package inventory

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/anyops/anyops"
)

// TestUsersGetDistinctUIDsAndTheDefaultImage proves uid allocation and image pinning: uids
// start at FirstUID, are distinct and never reused after a delete; a new user is pinned to
// the default image of the time, and older users keep theirs when another becomes the
// default, until SetUserImage moves them; one image at most is the default.
func TestUsersGetDistinctUIDsAndTheDefaultImage(t *testing.T) {
	forEachBackend(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		noImage := must[User](t)(s.CreateUser(ctx, "early", anyops.PlanFree, false))
		if noImage.ImageID != 0 || noImage.Image != nil || noImage.UID != FirstUID {
			t.Fatalf("first user before any image = %+v, want uid %d and no image", noImage, FirstUID)
		}
		v1 := must[Image](t)(s.AddImage(ctx, "python", "1"))
		if u := must[User](t)(s.CreateUser(ctx, "undecided", anyops.PlanFree, false)); u.Image != nil {
			t.Fatalf("user created while no image is the default pinned to %+v", u.Image)
		}
		must[Image](t)(s.SetDefaultImage(ctx, "python", "1"))
		alice := must[User](t)(s.CreateUser(ctx, "alice", anyops.PlanPaid, false))
		if alice.Image == nil || alice.Image.ID != v1.ID || !alice.Image.Default {
			t.Fatalf("alice pinned to %+v, want the default python:1", alice.Image)
		}
		v2 := must[Image](t)(s.AddImage(ctx, "python", "2"))
		must[Image](t)(s.AddImage(ctx, "other", "9"))
		if u := must[User](t)(s.CreateUser(ctx, "still-one", anyops.PlanFree, false)); u.Image == nil || u.Image.ID != v1.ID {
			t.Fatalf("a newer image that is not the default took new users: %+v", u.Image)
		}
		if def := must[Image](t)(s.SetDefaultImage(ctx, "python", "2")); def.ID != v2.ID || !def.Default {
			t.Fatalf("SetDefaultImage = %+v", def)
		}
		bob := must[User](t)(s.CreateUser(ctx, "bob", anyops.PlanFree, false))
		if bob.Image == nil || bob.Image.ID != v2.ID || bob.UID == alice.UID {
			t.Fatalf("bob = %+v image %+v; want python:2 and a uid other than alice's %d", bob, bob.Image, alice.UID)
		}
		if got := must[User](t)(s.GetUser(ctx, "alice")); got.Image == nil || got.Image.Version != "1" || got.Image.Default {
			t.Fatalf("alice's image is %+v after python:2 became the default, want python:1, no longer the default", got.Image)
		}
		_, err := s.SetDefaultImage(ctx, "python", "7")
		wantCode(t, err, anyops.ENOTFOUND)
		if def := must[Image](t)(s.DefaultImage(ctx)); def.ID != v2.ID {
			t.Fatalf("a refused SetDefaultImage changed the default to %+v", def)
		}
		moved := must[User](t)(s.SetUserImage(ctx, "alice", "python", "2"))
		if moved.Image == nil || moved.Image.Version != "2" {
			t.Fatalf("SetUserImage left alice on %+v", moved.Image)
		}
		_, err = s.SetUserImage(ctx, "alice", "python", "7")
		wantCode(t, err, anyops.ENOTFOUND)

		if err := s.DeleteUser(ctx, "bob"); err != nil {
			t.Fatal(err)
		}
		carol := must[User](t)(s.CreateUser(ctx, "carol", anyops.PlanFree, false))
		if carol.UID <= bob.UID {
			t.Fatalf("carol got uid %d after bob's %d was deleted; uids must never be reused", carol.UID, bob.UID)
		}
		users, _, err := s.ListUsers(ctx, UserFilter{Plan: anyops.PlanFree})
		if err != nil || len(users) != 4 || users[0].Name != "carol" || users[1].Name != "early" || users[0].Image == nil {
			t.Fatalf("ListUsers(free) = %+v, %v", users, err)
		}
		imgs := must[[]Image](t)(s.ListImages(ctx, "python"))
		if len(imgs) != 2 || imgs[0].Version != "1" || imgs[1].Version != "2" || imgs[0].Default || !imgs[1].Default {
			t.Fatalf("ListImages(python) = %+v", imgs)
		}
		_, err = s.AddImage(ctx, "python", "2")
		wantCode(t, err, anyops.ECONFLICT)
		if all := must[[]Image](t)(s.ListImages(ctx, "")); len(all) != 3 {
			t.Fatalf("ListImages() = %+v", all)
		}
	})
}

// TestCreateUserRejectsBadInput proves names, plans and duplicates are checked.
func TestCreateUserRejectsBadInput(t *testing.T) {
	forEachBackend(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		must[User](t)(s.CreateUser(ctx, "taken", anyops.PlanFree, false))
		tests := []struct {
			name, user string
			plan       anyops.Plan
			wantCode   string
		}{
			{"empty name", "", anyops.PlanFree, anyops.EINVALID},
			{"upper case", "Alice", anyops.PlanFree, anyops.EINVALID},
			{"leading digit", "1alice", anyops.PlanFree, anyops.EINVALID},
			{"space", "al ice", anyops.PlanFree, anyops.EINVALID},
			{"33 characters", "a" + strings.Repeat("b", 32), anyops.PlanFree, anyops.EINVALID},
			{"path traversal", "../etc", anyops.PlanFree, anyops.EINVALID},
			{"unknown plan", "newbie", "gold", anyops.EINVALID},
			{"duplicate", "taken", anyops.PlanPaid, anyops.ECONFLICT},
			{"32 characters is fine", "a" + strings.Repeat("b", 31), anyops.PlanFree, ""},
			{"dash and underscore are fine", "a-b_c9", anyops.PlanTarpit, ""},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				_, err := s.CreateUser(ctx, tt.user, tt.plan, false)
				wantCode(t, err, tt.wantCode)
			})
		}
	})
}

// TestConcurrentCreateUserYieldsUniqueUIDs proves that users created at the same time from
// many connections each get their own uid, with none skipped.
func TestConcurrentCreateUserYieldsUniqueUIDs(t *testing.T) {
	forEachBackend(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		must[Image](t)(s.AddImage(ctx, "python", "1"))
		must[Image](t)(s.SetDefaultImage(ctx, "python", "1"))
		const n = 24
		warmPool(t, s, n)
		uids := make([]int, n)
		errs := make([]error, n)
		atOnce(n, func(i int) {
			u, err := s.CreateUser(ctx, fmt.Sprintf("anon-%d", i), anyops.PlanAnonymous, true)
			uids[i], errs[i] = u.UID, err
		})
		seen := map[int]bool{}
		for i, uid := range uids {
			if errs[i] != nil {
				t.Fatalf("CreateUser %d: %v", i, errs[i])
			}
			if seen[uid] {
				t.Fatalf("uid %d handed out twice", uid)
			}
			seen[uid] = true
		}
		for uid := FirstUID; uid < FirstUID+n; uid++ {
			if !seen[uid] {
				t.Fatalf("uid %d skipped; got %v", uid, uids)
			}
		}
	})
}

// TestConsolesLifecycle proves console rows: creation defaults, updates, filters and counts,
// and what deleting their user does (anonymous: removed with it; named with an open console:
// ECONFLICT and nothing changed).
func TestConsolesLifecycle(t *testing.T) {
	forEachBackend(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		if _, err := s.SeedDemoFleet(ctx); err != nil {
			t.Fatal(err)
		}
		anon := must[User](t)(s.CreateUser(ctx, "anon-1", anyops.PlanAnonymous, true))
		named := must[User](t)(s.CreateUser(ctx, "alice", anyops.PlanFree, false))
		yes := true
		if anons, _, err := s.ListUsers(ctx, UserFilter{Anonymous: &yes}); err != nil || len(anons) != 1 || anons[0].Name != anon.Name {
			t.Fatalf("anonymous users = %+v, %v; want only %s", anons, err, anon.Name)
		}
		expires := time.Now().Add(30 * time.Minute)
		c := must[Console](t)(s.CreateConsole(ctx, Console{User: anon.Name, Server: "live-console1", ExpiresAt: &expires}))
		if c.ID == "" || c.State != anyops.ConsoleOpen || c.WorkflowID != anyops.ConsoleWorkflowID(c.ID) {
			t.Fatalf("created console = %+v; want an id, state open and its workflow id", c)
		}
		sb := must[Sandbox](t)(s.CreateSandbox(ctx, Sandbox{User: anon.Name, Server: "live-console1", ImageID: anon.ImageID, ConsoleID: c.ID}))
		must[Sandbox](t)(s.SetSandboxState(ctx, sb.ID, anyops.SandboxRunning))
		sbID := sb.ID
		got := must[Console](t)(s.UpdateConsole(ctx, c.ID, ConsoleUpdate{SandboxID: &sbID}))
		if got.SandboxID != sb.ID || got.ExpiresAt == nil || !got.ExpiresAt.Equal(expires.Truncate(time.Microsecond)) {
			t.Fatalf("updated console = %+v", got)
		}
		aliceConsole := must[Console](t)(s.CreateConsole(ctx, Console{User: named.Name, Server: "live-console2"}))
		closed := anyops.ConsoleClosed
		must[Console](t)(s.CreateConsole(ctx, Console{ID: "old", User: named.Name, State: closed}))

		if n := must[int](t)(s.CountConsoles(ctx, anyops.ConsoleOpen)); n != 2 {
			t.Fatalf("open consoles = %d, want 2", n)
		}
		if n := must[int](t)(s.CountConsoles(ctx, "")); n != 3 {
			t.Fatalf("all consoles = %d, want 3", n)
		}
		list, _, err := s.ListConsoles(ctx, ConsoleFilter{User: named.Name, State: anyops.ConsoleOpen})
		if err != nil || len(list) != 1 || list[0].ID != aliceConsole.ID {
			t.Fatalf("alice's open consoles = %+v, %v", list, err)
		}
		_, err = s.CreateConsole(ctx, Console{User: "ghost"})
		wantCode(t, err, anyops.EINVALID)
		_, err = s.CreateConsole(ctx, Console{ID: "old", User: named.Name})
		wantCode(t, err, anyops.ECONFLICT)
		bad := anyops.ConsoleState("melted")
		_, err = s.UpdateConsole(ctx, c.ID, ConsoleUpdate{State: &bad})
		wantCode(t, err, anyops.EINVALID)
		_, err = s.UpdateConsole(ctx, "ghost", ConsoleUpdate{State: &closed})
		wantCode(t, err, anyops.ENOTFOUND)

		wantCode(t, s.DeleteUser(ctx, named.Name), anyops.ECONFLICT)
		if n := must[int](t)(s.CountConsoles(ctx, "")); n != 3 {
			t.Fatalf("refused delete changed consoles: %d", n)
		}
		if err := s.DeleteUser(ctx, anon.Name); err != nil {
			t.Fatalf("delete anonymous user with an open console: %v", err)
		}
		_, err = s.GetConsole(ctx, c.ID)
		wantCode(t, err, anyops.ENOTFOUND)
		_, err = s.GetSandbox(ctx, sb.ID)
		wantCode(t, err, anyops.ENOTFOUND)

		must[Console](t)(s.UpdateConsole(ctx, aliceConsole.ID, ConsoleUpdate{State: &closed}))
		if err := s.DeleteUser(ctx, named.Name); err != nil {
			t.Fatalf("delete named user with only closed consoles: %v", err)
		}
		if n := must[int](t)(s.CountConsoles(ctx, "")); n != 0 {
			t.Fatalf("%d consoles left after deleting their users", n)
		}
	})
}

// TestIncidentTimeline proves an incident keeps its events in time order and that a
// "resolved" event resolves it.
func TestIncidentTimeline(t *testing.T) {
	forEachBackend(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		if _, err := s.SeedDemoFleet(ctx); err != nil {
			t.Fatal(err)
		}
		opened := time.Date(2014, 7, 15, 9, 0, 0, 0, time.UTC)
		inc := must[Incident](t)(s.OpenIncident(ctx, Incident{Title: "file server impaired", Cluster: DemoCluster, Server: DemoFileServer, OpenedAt: opened}))
		// Appended out of order: the timeline sorts by when things happened.
		must[IncidentEvent](t)(s.AppendIncidentEvent(ctx, inc.ID, "replacement", "building cluster live-2", opened.Add(2*time.Minute)))
		must[IncidentEvent](t)(s.AppendIncidentEvent(ctx, inc.ID, "alarm", "status check failed", opened.Add(time.Minute)))
		must[IncidentEvent](t)(s.AppendIncidentEvent(ctx, inc.ID, "resolved", "cut over", opened.Add(20*time.Minute)))
		got := must[Incident](t)(s.GetIncident(ctx, inc.ID))
		var kinds []string
		for _, e := range got.Timeline {
			kinds = append(kinds, e.Kind)
		}
		if strings.Join(kinds, ",") != "opened,alarm,replacement,resolved" {
			t.Fatalf("timeline = %v", kinds)
		}
		if got.State != IncidentResolved || got.ResolvedAt == nil || !got.ResolvedAt.Equal(opened.Add(20*time.Minute)) {
			t.Fatalf("incident after resolved event = %+v", got)
		}
		_, err := s.OpenIncident(ctx, Incident{Title: "x", Server: "ghost"})
		wantCode(t, err, anyops.EINVALID)
		_, err = s.OpenIncident(ctx, Incident{})
		wantCode(t, err, anyops.EINVALID)
		open, _, err := s.ListIncidents(ctx, IncidentFilter{State: IncidentOpen})
		if err != nil || len(open) != 0 {
			t.Fatalf("open incidents = %+v, %v; want none", open, err)
		}
	})
}

// TestAuditNewestFirst proves audit events list newest first across pages, with their
// summaries intact.
func TestAuditNewestFirst(t *testing.T) {
	forEachBackend(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		for i := range 5 {
			must[AuditEvent](t)(s.RecordAudit(ctx, AuditEvent{Actor: "ops", Action: "override", Subject: fmt.Sprintf("failover/%d", i),
				Summary: map[string]any{"reason": "drill", "n": i}}))
		}
		var subjects []string
		cursor := ""
		for {
			page, next, err := s.ListAudit(ctx, Page{Limit: 2, Cursor: cursor})
			if err != nil {
				t.Fatal(err)
			}
			for _, e := range page {
				subjects = append(subjects, e.Subject)
				if e.Summary["reason"] != "drill" {
					t.Fatalf("summary read back as %v", e.Summary)
				}
			}
			if next == "" {
				break
			}
			cursor = next
		}
		if strings.Join(subjects, " ") != "failover/4 failover/3 failover/2 failover/1 failover/0" {
			t.Fatalf("audit order = %v", subjects)
		}
		_, err := s.RecordAudit(ctx, AuditEvent{Action: "x"})
		wantCode(t, err, anyops.EINVALID)
	})
}

// TestAuditIdempotencyKey proves a retried recording — in sequence or racing — leaves one
// event, and that events without a key are never merged.
func TestAuditIdempotencyKey(t *testing.T) {
	forEachBackend(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		key := "fleet-audit/run-1/activity-5"
		event := AuditEvent{Actor: "worker", Action: "fleet-audit", Subject: "fleet", IdempotencyKey: &key}
		// Racing first recordings, then a late retry: one event, one id for all.
		var wg sync.WaitGroup
		ids := make([]int64, 8)
		for i := range ids {
			wg.Add(1)
			go func() {
				defer wg.Done()
				e, err := s.RecordAudit(ctx, event)
				if err != nil {
					t.Error(err)
				}
				ids[i] = e.ID
			}()
		}
		wg.Wait()
		late := must[AuditEvent](t)(s.RecordAudit(ctx, event))
		for _, id := range ids {
			if id != late.ID {
				t.Fatalf("recordings returned ids %v and %d, want one id", ids, late.ID)
			}
		}
		for range 2 {
			must[AuditEvent](t)(s.RecordAudit(ctx, AuditEvent{Actor: "ops", Action: "note"}))
		}
		events, _, err := s.ListAudit(ctx, Page{Limit: 10})
		if err != nil || len(events) != 3 {
			t.Fatalf("%d events (%v), want the keyed one once and both unkeyed ones", len(events), err)
		}
	})
}
