package activities

import (
	"context"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/testsuite"

	"github.com/anyops/anyops"
	"github.com/anyops/anyops/inventory"
	"github.com/anyops/anyops/sandboxd/sandboxdtest"
	"github.com/anyops/anyops/sandboxd/wire"
)

// TestLeastLoaded proves placement: the smallest share of slots in use wins among hosts with
// a free slot; ties go to more free slots, then the name; excluded and full hosts never win.
func TestLeastLoaded(t *testing.T) {
	h := func(name string, slots, inUse int) Host {
		return Host{Server: name, Slots: slots, InUse: inUse, Free: slots - inUse}
	}
	tests := []struct {
		name    string
		hosts   []Host
		exclude []string
		want    string // "" for none
	}{
		{"no hosts", nil, nil, ""},
		{"all full", []Host{h("a", 2, 2), h("b", 1, 1)}, nil, ""},
		{"lower share wins over more free slots", []Host{h("a", 100, 50), h("b", 4, 1)}, nil, "b"},
		{"equal share: more free slots", []Host{h("a", 4, 2), h("b", 8, 4)}, nil, "b"},
		{"equal everything: name", []Host{h("b", 4, 0), h("a", 4, 0)}, nil, "a"},
		{"full host skipped", []Host{h("a", 1, 1), h("b", 10, 9)}, nil, "b"},
		{"excluded host skipped", []Host{h("a", 10, 0), h("b", 10, 5)}, []string{"a"}, "b"},
		{"zero slots is not room", []Host{{Server: "a", Free: 1}}, nil, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := LeastLoaded(tt.hosts, tt.exclude)
			if (tt.want == "") == ok || (ok && got.Server != tt.want) {
				t.Fatalf("LeastLoaded = %q (found %v), want %q", got.Server, ok, tt.want)
			}
		})
	}
}

// sandboxHost is a real sandboxd (root) recorded as a running console server, and the
// activities with a signer it accepts.
func sandboxHost(t *testing.T, store *inventory.Store, name string) (*Sandboxes, string) {
	t.Helper()
	d := sandboxdtest.Start(t, sandboxdtest.Options{Name: "act", Slots: 2})
	if _, err := store.UpsertServer(context.Background(), inventory.Server{Name: name, Role: anyops.RoleConsole, Zone: inventory.DemoZone,
		Cluster: inventory.DemoCluster, State: anyops.ServerRunning, SandboxdURL: d.URL}); err != nil {
		t.Fatal(err)
	}
	return &Sandboxes{Store: store, Signer: d.Signer}, d.URL
}

// TestSandboxActivitiesAreIdempotent proves what the console workflow relies on when an
// activity is retried after a lost reply: CreateSandbox finds the sandbox an earlier attempt
// made instead of making a second, DestroySandbox of a sandbox already gone succeeds, and
// SandboxStatus tells running, gone and unreachable apart. A drained host is not picked.
func TestSandboxActivitiesAreIdempotent(t *testing.T) {
	ctx := context.Background()
	store := openDemoStore(t)
	a, url := sandboxHost(t, store, "console-x")

	host, err := a.PickHost(ctx, PickHostInput{})
	if err != nil || host.Server != "console-x" || host.Free != 2 {
		t.Fatalf("PickHost = %+v %v, want console-x with 2 free slots (the demo hosts have no sandboxd)", host, err)
	}
	if _, err := a.PickHost(ctx, PickHostInput{Exclude: []string{"console-x"}}); err == nil || !strings.Contains(err.Error(), "no console host") {
		t.Fatalf("PickHost excluding the only host = %v, want no host", err)
	}
	// A drained host (its service restarting for a patch) admits no new console.
	inv := &Inventory{Store: store}
	if err := inv.DrainServer(ctx, DrainInput{Server: "console-x", Drain: true, Reason: "patch: restarting tornado"}); err != nil {
		t.Fatal(err)
	}
	if _, err := a.PickHost(ctx, PickHostInput{}); err == nil || !strings.Contains(err.Error(), "no console host") {
		t.Fatalf("PickHost with the only host drained = %v, want no host", err)
	}
	if err := inv.DrainServer(ctx, DrainInput{Server: "console-x"}); err != nil {
		t.Fatal(err)
	}
	if host, err := a.PickHost(ctx, PickHostInput{}); err != nil || host.Server != "console-x" {
		t.Fatalf("PickHost after the undrain = %+v %v", host, err)
	}

	in := CreateSandboxInput{SandboxdURL: url, Request: wire.CreateRequest{ID: "console-1-1", User: "alice", UID: 120001, Plan: anyops.PlanFree}}
	first, err := a.CreateSandbox(ctx, in)
	if err != nil {
		t.Fatal(err)
	}
	again, err := a.CreateSandbox(ctx, in)
	if err != nil || again.ID != first.ID || again.CreatedAt != first.CreatedAt {
		t.Fatalf("retried CreateSandbox = %+v %v, want the same sandbox", again, err)
	}
	if list, _ := a.client(url); list != nil {
		if sbs, _ := list.List(ctx); len(sbs) != 1 {
			t.Fatalf("%d sandboxes after a retried create, want 1", len(sbs))
		}
	}
	ref := SandboxRef{SandboxdURL: url, SandboxID: first.ID}
	if h, err := a.SandboxStatus(ctx, ref); err != nil || h.Health != SandboxHealthRunning {
		t.Fatalf("SandboxStatus = %+v %v, want running", h, err)
	}
	for i := range 2 {
		if err := a.DestroySandbox(ctx, ref); err != nil {
			t.Fatalf("DestroySandbox #%d: %v", i+1, err)
		}
	}
	if h, err := a.SandboxStatus(ctx, ref); err != nil || h.Health != SandboxHealthGone {
		t.Fatalf("SandboxStatus after destroy = %+v %v, want gone", h, err)
	}
	if h, err := a.SandboxStatus(ctx, SandboxRef{SandboxdURL: "http://127.0.0.1:1", SandboxID: first.ID}); err != nil || h.Health != SandboxHealthUnreachable {
		t.Fatalf("SandboxStatus of a dead host = %+v %v, want unreachable", h, err)
	}
	bad := in
	bad.Request.UID = 0 // root: sandboxd refuses, and no retry can change that
	bad.Request.ID = "console-2-1"
	if _, err := a.CreateSandbox(ctx, bad); err == nil || !strings.Contains(err.Error(), "uid") {
		t.Fatalf("CreateSandbox with uid 0 = %v, want a refusal", err)
	}
}

// TestMarkConsoleAndAnonymousUser proves MarkConsole records the sandbox once and moves the
// console's state, and DeleteAnonymousUser removes only throw-away users, twice without error.
func TestMarkConsoleAndAnonymousUser(t *testing.T) {
	ctx := context.Background()
	store := openDemoStore(t)
	a := &Sandboxes{Store: store}
	anon, err := store.CreateUser(ctx, "anon-1", anyops.PlanAnonymous, true)
	if err != nil {
		t.Fatal(err)
	}
	con, err := store.CreateConsole(ctx, inventory.Console{User: anon.Name})
	if err != nil {
		t.Fatal(err)
	}
	servers, _, _ := store.ListServers(ctx, inventory.ServerFilter{Role: anyops.RoleConsole})
	open := MarkConsoleInput{ConsoleID: con.ID, State: anyops.ConsoleOpen, Server: servers[0].Name, SandboxID: con.ID + "-1", User: anon.Name}
	for range 2 {
		if err := a.MarkConsole(ctx, open); err != nil {
			t.Fatalf("MarkConsole open: %v", err)
		}
	}
	if got, _ := store.GetConsole(ctx, con.ID); got.SandboxID != open.SandboxID || got.Server != open.Server {
		t.Fatalf("console = %+v, want it on %s", got, open.SandboxID)
	}
	if err := a.MarkConsole(ctx, MarkConsoleInput{ConsoleID: con.ID, State: anyops.ConsoleClosed, SandboxID: open.SandboxID, SandboxState: anyops.SandboxEnded}); err != nil {
		t.Fatal(err)
	}
	if sb, _ := store.GetSandbox(ctx, open.SandboxID); sb.State != anyops.SandboxEnded {
		t.Fatalf("sandbox row = %+v, want ended", sb)
	}
	named, err := store.CreateUser(ctx, "bob", anyops.PlanFree, false)
	if err != nil {
		t.Fatal(err)
	}
	if err := a.DeleteAnonymousUser(ctx, named.Name); err == nil {
		t.Fatal("DeleteAnonymousUser removed a registered user")
	}
	for range 2 {
		if err := a.DeleteAnonymousUser(ctx, anon.Name); err != nil {
			t.Fatalf("DeleteAnonymousUser: %v", err)
		}
	}
	if _, err := store.GetUser(ctx, anon.Name); anyops.ErrorCode(err) != anyops.ENOTFOUND {
		t.Fatalf("anonymous user still there: %v", err)
	}
	// The console went with its user; marking it again is no error.
	if err := a.MarkConsole(ctx, MarkConsoleInput{ConsoleID: con.ID, State: anyops.ConsoleClosed}); err != nil {
		t.Fatal(err)
	}
}

// TestRegisterConsoleHost proves a console host is recorded with its sandboxd, and its
// default image in the inventory, once however often it is called; that image becomes the
// default (what new users are pinned to) when there is none, and does not displace one an
// operator chose.
func TestRegisterConsoleHost(t *testing.T) {
	ctx := context.Background()
	store := openDemoStore(t)
	a, url := sandboxHost(t, store, "console-y")
	srv := inventory.Server{Name: "console-z", Zone: inventory.DemoZone, Cluster: inventory.DemoCluster, SandboxdURL: url}
	first, err := RegisterConsoleHost(ctx, store, srv, a.Signer)
	if err != nil {
		t.Fatal(err)
	}
	again, err := RegisterConsoleHost(ctx, store, srv, a.Signer)
	if err != nil || again.ID != first.ID {
		t.Fatalf("second RegisterConsoleHost = %+v %v, want the same image %+v", again, err, first)
	}
	if def, err := store.DefaultImage(ctx); err != nil || def.ID != first.ID || !first.Default {
		t.Fatalf("default image %+v (%v), want sandboxd's %+v", def, err, first)
	}
	got, err := store.GetServer(ctx, "console-z")
	if err != nil || got.Role != anyops.RoleConsole || got.State != anyops.ServerRunning || got.SandboxdURL != url {
		t.Fatalf("server = %+v %v, want a running console server at %s", got, err, url)
	}
	u, err := store.CreateUser(ctx, "newbie", anyops.PlanFree, false)
	if err != nil || u.Image == nil || u.Image.ID != first.ID {
		t.Fatalf("new user pinned to %+v (%v), want %+v", u.Image, err, first)
	}

	chosen, err := store.AddImage(ctx, "python", "2")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := store.SetDefaultImage(ctx, "python", "2"); err != nil {
		t.Fatal(err)
	}
	if _, err := RegisterConsoleHost(ctx, store, srv, a.Signer); err != nil {
		t.Fatal(err)
	}
	if def, err := store.DefaultImage(ctx); err != nil || def.ID != chosen.ID {
		t.Fatalf("default after a host registered again = %+v (%v), want the operator's %+v", def, err, chosen)
	}
}

// TestSandboxdCallsHeartbeatWhileSandboxdWorks proves CreateSandbox and DestroySandbox show
// their worker alive while sandboxd is still at work (assembling an image, ending a sandbox's
// processes): the host here answers the call only once the activity has heartbeated. Without
// the heartbeats a worker killed mid-call had its attempt retried only after the whole
// StartToClose (the chaos harness's console runs: seed 7, a kill at the creation's lookup, 2
// minutes in which Open waited; seed 2026, a kill at the DELETE, 31 s).
func TestSandboxdCallsHeartbeatWhileSandboxdWorks(t *testing.T) {
	for _, tc := range []struct {
		name, method string
		call         func(env *testsuite.TestActivityEnvironment, a *Sandboxes, d *sandboxdtest.Daemon) error
	}{
		{"CreateSandbox", http.MethodPost, func(env *testsuite.TestActivityEnvironment, a *Sandboxes, d *sandboxdtest.Daemon) error {
			t.Cleanup(func() { _ = d.Client.Delete(context.Background(), "console-hb-1") })
			_, err := env.ExecuteActivity(a.CreateSandbox, CreateSandboxInput{SandboxdURL: d.URL,
				Request: wire.CreateRequest{ID: "console-hb-1", User: "alice", UID: 120001, Plan: anyops.PlanFree}})
			return err
		}},
		{"DestroySandbox", http.MethodDelete, func(env *testsuite.TestActivityEnvironment, a *Sandboxes, d *sandboxdtest.Daemon) error {
			if _, err := d.Client.Create(context.Background(), wire.CreateRequest{ID: "console-hb-2", User: "bob", UID: 120002, Plan: anyops.PlanFree}); err != nil {
				return err
			}
			_, err := env.ExecuteActivity(a.DestroySandbox, SandboxRef{SandboxdURL: d.URL, SandboxID: "console-hb-2"})
			return err
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			store := openDemoStore(t)
			beat := make(chan struct{})
			var once sync.Once
			d := sandboxdtest.Start(t, sandboxdtest.Options{Name: "act", Slots: 1, Wrap: func(h http.Handler) http.Handler {
				return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					if r.Method == tc.method {
						select {
						case <-beat:
						case <-time.After(30 * time.Second): // no heartbeat came: answer, and the test fails
						}
					}
					h.ServeHTTP(w, r)
				})
			}})
			a := &Sandboxes{Store: store, Signer: d.Signer}
			var suite testsuite.WorkflowTestSuite
			env := suite.NewTestActivityEnvironment()
			env.RegisterActivity(a)
			heartbeats := 0
			env.SetOnActivityHeartbeatListener(func(*activity.Info, converter.EncodedValues) {
				heartbeats++
				once.Do(func() { close(beat) })
			})
			if err := tc.call(env, a, d); err != nil {
				t.Fatal(err)
			}
			if heartbeats == 0 {
				t.Fatalf("%s did not heartbeat while sandboxd was at work", tc.name)
			}
		})
	}
}
