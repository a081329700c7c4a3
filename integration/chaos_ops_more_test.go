package integration

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"

	"github.com/anyops/anyops"
	"github.com/anyops/anyops/drills"
	"github.com/anyops/anyops/internal/smtptest"
	"github.com/anyops/anyops/inventory"
	sbclient "github.com/anyops/anyops/sandboxd/client"
	"github.com/anyops/anyops/sandboxd/sandboxdtest"
	"github.com/anyops/anyops/sandboxd/token"
	"github.com/anyops/anyops/sandboxd/wire"
	"github.com/anyops/anyops/workflows"
)

// The patch, the console lifecycle and the drill as chaos operations: their set-ups, starts
// and invariants. Their entries in chaosOperations (chaos_ops_test.go) name these.

// chaosParts is what the operations of this file add to a run's world.
type chaosParts struct {
	mail           *smtptest.Server     // the notices' SMTP server, for the patch
	sandboxd       *sandboxdCrashPoints // the console host's sandboxd API, for the console lifecycle
	sandboxdClient *sbclient.Client     // to that sandboxd, with the fleet's key
}

// Patch: FleetPatch of Heartbleed over the demo fleet built by DemoFleet, notices to the
// custom-domain owners through a real SMTP server, under kills right after cloudsim ran a
// piece of a server's patch (its check, its upgrade, its restart, its health probe) and in the
// middle of a notice's SMTP conversation (the sender held at RCPT, nothing accepted yet).

// patchChaosInput is the chaos run's rollout: two at once, no error allowed, the default
// role-down share (half a role at most).
func patchChaosInput() workflows.FleetPatchInput {
	return workflows.FleetPatchInput{Advisory: anyops.Heartbleed(), MaxConcurrency: "2", MaxErrors: "0",
		Timing: workflows.PatchTiming{FleetTiming: crashTiming}, RequestedBy: "chaos"}
}

var patchChaosCrashPoints = []crashPoint{{script: "dpkg-query"}, {script: "apt-get install"}, {script: "systemctl restart"}, {script: "curl -fsS"}, {smtp: "RCPT"}}

// setUpPatch builds the demo fleet and gives the operation's workers a real SMTP server and
// the platform's domain (the certificate rotation records its CSR: no ACME CA here).
func setUpPatch(t *testing.T, w *chaosWorld) {
	buildDemoFleet(t, w)
	w.mail = smtptest.Start(t)
	w.extraEnv = append(w.extraEnv, "ANYOPS_SMTP_ADDR="+w.mail.Addr, "ANYOPS_SMTP_FROM=security@anyops.example",
		"ANYOPS_PLATFORM_DOMAIN=www.anyops.example")
}

func startPatch(t *testing.T, w *chaosWorld) client.WorkflowRun {
	return w.execute(t, anyops.PatchWorkflowID(anyops.Heartbleed().ID), "FleetPatch", patchChaosInput())
}

// patchInvariants are the patch's: no notice sent twice (by its Message-ID, from what the SMTP
// server accepted, against the inventory's outbox), never more than the policy's share of a
// role restarting at once (from cloudsim's command log), every server upgraded exactly once
// and patched at the end, none left drained.
var patchInvariants = []chaosInvariant{
	{name: "no notice sent twice", check: noNoticeSentTwice},
	{name: "never more than the policy's share of a role down", check: patchRoleShareKept},
	{name: "every server patched once, none left drained", check: everyServerPatched},
}

// noNoticeSentTwice: each notice of the outbox was accepted by the SMTP server exactly once
// under its own Message-ID and to its owner, and nothing else was sent.
func noNoticeSentTwice(t *testing.T, w *chaosWorld, _ chaosOperation) string {
	store := w.mustOpenStore(t)
	notices, err := store.ListNotices(context.Background(), anyops.Heartbleed().ID)
	if err != nil {
		return err.Error()
	}
	received := map[string][]smtptest.Message{}
	for _, m := range w.mail.Messages() {
		received[m.MessageID] = append(received[m.MessageID], m)
	}
	var broken []string
	if len(notices) == 0 {
		broken = append(broken, "the outbox has no notice: the run proves nothing about them")
	}
	for _, n := range notices {
		got := received[n.MessageID]
		delete(received, n.MessageID)
		switch {
		case n.SentAt == nil:
			broken = append(broken, fmt.Sprintf("notice %d to %s never marked sent", n.ID, n.Email))
		case len(got) != 1:
			broken = append(broken, fmt.Sprintf("notice %d (%s) to %s accepted %d times", n.ID, n.MessageID, n.Email, len(got)))
		case !slices.Equal(got[0].To, []string{n.Email}):
			broken = append(broken, fmt.Sprintf("notice %d (%s) went to %v, not %s", n.ID, n.MessageID, got[0].To, n.Email))
		}
	}
	for id, ms := range received {
		broken = append(broken, fmt.Sprintf("message %q ×%d to %v is no notice of the outbox", id, len(ms), ms[0].To))
	}
	return strings.Join(broken, "; ")
}

// patchRoleShareKept replays cloudsim's command log: at no moment did more servers of a role
// run their service restart than the policy lets out of rotation (the role's share, at least
// one, never the whole role: the workflow's roleLimit, worked out again here).
func patchRoleShareKept(t *testing.T, w *chaosWorld, _ chaosOperation) string {
	roleOf, size := map[string]anyops.Role{}, map[anyops.Role]int{}
	for _, s := range w.listServers(t) {
		roleOf[s.InstanceID] = s.Role
		size[s.Role]++
	}
	type edge struct {
		at    time.Time
		role  anyops.Role
		delta int
	}
	var edges []edge
	for inst, cmds := range commandIntervals(w.sim) {
		for _, c := range cmds {
			if strings.Contains(c.script, "systemctl restart") {
				edges = append(edges, edge{c.start, roleOf[inst], 1}, edge{c.end, roleOf[inst], -1})
			}
		}
	}
	// Ends before starts at the same instant: one server back as the next goes out is not two down.
	slices.SortFunc(edges, func(a, b edge) int {
		if c := a.at.Compare(b.at); c != 0 {
			return c
		}
		return a.delta - b.delta
	})
	pct := patchChaosInput().MaxRoleDownPercent
	if pct == 0 {
		pct = workflows.DefaultMaxRoleDownPercent
	}
	down := map[anyops.Role]int{}
	var broken []string
	for _, e := range edges {
		down[e.role] += e.delta
		limit := max(1, min(size[e.role]-1, size[e.role]*pct/100))
		if e.delta > 0 && down[e.role] > limit {
			broken = append(broken, fmt.Sprintf("%d of %d %s servers restarting at %s (limit %d)", down[e.role], size[e.role], e.role, e.at.Format(time.TimeOnly), limit))
		}
	}
	return strings.Join(broken, "; ")
}

// everyServerPatched: the rollout completed with every server patched and none vulnerable,
// cloudsim ran each server's upgrade exactly once (a retry found the lost command), and no
// server is left out of rotation.
func everyServerPatched(t *testing.T, w *chaosWorld, _ chaosOperation) string {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var res workflows.FleetPatchResult
	if err := w.tc.GetWorkflow(ctx, anyops.PatchWorkflowID(anyops.Heartbleed().ID), "").Get(ctx, &res); err != nil {
		return err.Error()
	}
	servers := w.listServers(t)
	var broken []string
	if res.State != anyops.RolloutCompleted || res.VulnerableAfter != 0 || res.Outcomes["patched"] != len(servers) {
		broken = append(broken, fmt.Sprintf("rollout %s, %d vulnerable after, %d of %d patched", res.State, res.VulnerableAfter, res.Outcomes["patched"], len(servers)))
	}
	intervals := commandIntervals(w.sim)
	for _, s := range servers {
		upgrades := 0
		for _, c := range intervals[s.InstanceID] {
			if strings.Contains(c.script, "apt-get install") {
				upgrades++
			}
		}
		if upgrades != 1 {
			broken = append(broken, fmt.Sprintf("%s upgraded %d times", s.Name, upgrades))
		}
	}
	store := w.mustOpenStore(t)
	if d, err := store.Drains(ctx); err != nil || len(d) != 0 {
		broken = append(broken, fmt.Sprintf("left drained: %v %v", d, err))
	}
	return strings.Join(broken, "; ")
}

// mustOpenStore opens the run's inventory, closed when the test ends.
func (w *chaosWorld) mustOpenStore(t *testing.T) *inventory.Store {
	t.Helper()
	store, err := w.openStore()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = store.Close() })
	return store
}

// listServers lists the inventory's servers.
func (w *chaosWorld) listServers(t *testing.T) []inventory.Server {
	t.Helper()
	servers, _, err := w.mustOpenStore(t).ListServers(context.Background(), inventory.ServerFilter{Page: inventory.Page{Limit: inventory.MaxLimit}})
	if err != nil {
		t.Fatal(err)
	}
	return servers
}

// Console lifecycle: a registered user's console on a console host of the demo fleet served by
// a real sandboxd (root: its real jail), opened without a client and ended by its idle timeout,
// under kills right after sandboxd carried out a call of the workflow's steps (the placement's
// capacity read, the sandbox's creation, a host check, its destruction).

// consoleChaosTiming checks the host every second and leases the sandbox for a minute: long
// beside a kill's recovery, since every worker down for longer than the lease ends the
// sandboxes (docs/consoles.md). The idle timeout leaves time for host checks to be hit.
var consoleChaosTiming = workflows.ConsoleTiming{IdleTimeout: 20 * time.Second, MaxLifetime: 10 * time.Minute, KeepaliveInterval: 10 * time.Second,
	HostCheckInterval: time.Second, HostLostAfter: 3, SandboxLease: time.Minute, CheckTokenTTL: 5 * time.Second, ClockMargin: time.Second}

var consoleChaosCrashPoints = []crashPoint{{sandboxd: "GET /v1/capacity"}, {sandboxd: "POST /v1/sandboxes"},
	{sandboxd: "GET /v1/sandboxes/{id}"}, {sandboxd: "DELETE /v1/sandboxes/{id}"}}

// consoleChaosUser is the console's user.
const consoleChaosUser = "chaosuser"

// setUpConsole builds the demo fleet, starts a sandboxd behind crash points for its first
// console server (recorded in the inventory with its URL, as `anyops console-host register`
// does) and gives the operation's workers the fleet's signing key.
func setUpConsole(t *testing.T, w *chaosWorld) {
	buildDemoFleet(t, w)
	_, key, err := token.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	keyFile := filepath.Join(dir, "sandboxd.key")
	if err := token.WriteKeyPair(keyFile, keyFile+".pub", key); err != nil {
		t.Fatal(err)
	}
	w.extraEnv = append(w.extraEnv, "ANYOPS_SANDBOXD_KEY="+keyFile)
	w.sandboxd = &sandboxdCrashPoints{armed: map[string]chan struct{}{}, created: map[string]int{}, release: make(chan struct{})}
	d := sandboxdtest.Start(t, sandboxdtest.Options{Name: "chaos", Key: key, Wrap: func(h http.Handler) http.Handler {
		w.sandboxd.next = h
		return w.sandboxd
	}})
	t.Cleanup(w.sandboxd.releaseAll) // before the daemon closes: cleanups run last first
	w.sandboxdClient = d.Client
	ctx := context.Background()
	store := w.mustOpenStore(t)
	var host inventory.Server
	for _, s := range w.listServers(t) {
		if s.Role == anyops.RoleConsole && (host.Name == "" || s.Name < host.Name) {
			host = s
		}
	}
	if host.Name == "" {
		t.Fatal("set-up: the demo fleet has no console server")
	}
	host.SandboxdURL = d.URL
	if _, err := store.UpsertServer(ctx, host); err != nil {
		t.Fatal(err)
	}
	if _, err := store.CreateUser(ctx, consoleChaosUser, anyops.PlanFree, false); err != nil {
		t.Fatal(err)
	}
}

// startConsole starts the console as POST /v1/consoles does, without waiting for its Open
// update: the harness must be free to kill the worker while the sandbox is being created.
func startConsole(t *testing.T, w *chaosWorld) client.WorkflowRun {
	ctx := context.Background()
	store := w.mustOpenStore(t)
	user, err := store.GetUser(ctx, consoleChaosUser)
	if err != nil {
		t.Fatal(err)
	}
	con, err := store.CreateConsole(ctx, inventory.Console{User: user.Name})
	if err != nil {
		t.Fatal(err)
	}
	run, err := w.tc.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: anyops.ConsoleWorkflowID(con.ID), TaskQueue: workflows.TaskQueueConsoles},
		workflows.ConsoleWorkflowType, workflows.ConsoleInput{ConsoleID: con.ID, User: user.Name, UID: user.UID, Plan: user.Plan, Timing: consoleChaosTiming})
	if err != nil {
		t.Fatalf("start the console: %v", err)
	}
	return run
}

// consoleInvariants: the console ended as documented for an idle console (idle_timeout, the
// inventory's console closed with its sandbox ended), its one sandbox was created once
// (sandboxd answered one creation, of generation 1), and nothing is left: no sandbox on the
// host, no console or sandbox row still open in the inventory.
var consoleInvariants = []chaosInvariant{
	{name: "the console ends in its documented state", check: consoleEndedIdle},
	{name: "no sandbox created twice", check: func(t *testing.T, w *chaosWorld, _ chaosOperation) string {
		var broken []string
		for id, n := range w.sandboxd.createdCounts() {
			if n != 1 || !strings.HasSuffix(id, "-1") {
				broken = append(broken, fmt.Sprintf("sandbox %s created %d times", id, n))
			}
		}
		if len(broken) == 0 && len(w.sandboxd.createdCounts()) != 1 {
			broken = append(broken, fmt.Sprintf("sandboxes created: %v, want the console's one", w.sandboxd.createdCounts()))
		}
		return strings.Join(broken, "; ")
	}},
	{name: "no orphaned sandbox or inventory row", check: func(t *testing.T, w *chaosWorld, _ chaosOperation) string {
		ctx := context.Background()
		var broken []string
		left, err := w.sandboxdClient.List(ctx)
		if err != nil {
			return err.Error()
		}
		for _, sb := range left {
			broken = append(broken, fmt.Sprintf("sandbox %s left on the host (%s)", sb.ID, sb.State))
		}
		store := w.mustOpenStore(t)
		consoles, _, err := store.ListConsoles(ctx, inventory.ConsoleFilter{Page: inventory.Page{Limit: inventory.MaxLimit}})
		if err != nil {
			return err.Error()
		}
		for _, c := range consoles {
			if c.State != anyops.ConsoleClosed {
				broken = append(broken, fmt.Sprintf("console %s is %s in the inventory", c.ID, c.State))
			}
		}
		sandboxes, _, err := store.ListSandboxes(ctx, inventory.SandboxFilter{Page: inventory.Page{Limit: inventory.MaxLimit}})
		if err != nil {
			return err.Error()
		}
		for _, sb := range sandboxes {
			if sb.State != anyops.SandboxEnded {
				broken = append(broken, fmt.Sprintf("sandbox row %s is %s", sb.ID, sb.State))
			}
		}
		return strings.Join(broken, "; ")
	}},
}

// consoleEndedIdle: the workflow returned idle_timeout for its first sandbox, and the inventory
// has the console closed.
func consoleEndedIdle(t *testing.T, w *chaosWorld, _ chaosOperation) string {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	store := w.mustOpenStore(t)
	consoles, _, err := store.ListConsoles(ctx, inventory.ConsoleFilter{User: consoleChaosUser, Page: inventory.Page{Limit: inventory.MaxLimit}})
	if err != nil || len(consoles) != 1 {
		return fmt.Sprintf("consoles of %s: %v %v", consoleChaosUser, consoles, err)
	}
	con := consoles[0]
	var res workflows.ConsoleResult
	if err := w.tc.GetWorkflow(ctx, anyops.ConsoleWorkflowID(con.ID), "").Get(ctx, &res); err != nil {
		return err.Error()
	}
	var broken []string
	if res.EndReason != workflows.ConsoleEndIdle || res.SandboxID != workflows.SandboxIDFor(con.ID, 1) {
		broken = append(broken, fmt.Sprintf("ended %q with sandbox %q, want %q with %s", res.EndReason, res.SandboxID, workflows.ConsoleEndIdle, workflows.SandboxIDFor(con.ID, 1)))
	}
	if con.State != anyops.ConsoleClosed || con.SandboxID != res.SandboxID {
		broken = append(broken, fmt.Sprintf("inventory console %s is %s with sandbox %q", con.ID, con.State, con.SandboxID))
	}
	return strings.Join(broken, "; ")
}

// sandboxdCrashPoints stands in a console host's sandboxd, on its own URL, between the
// listener and the API, as crashPoints stands in front of cloudsim: an armed call is carried
// out by sandboxd, its answer held and the worker killed before its activity learns of it.
// It also counts the creations sandboxd answered, by sandbox id.
type sandboxdCrashPoints struct {
	next    http.Handler
	mu      sync.Mutex
	armed   map[string]chan struct{} // route ("POST /v1/sandboxes") -> hit
	created map[string]int
	release chan struct{}
	once    sync.Once
}

// sandboxdRoute names a call by its method and its path's pattern in sandboxd's API.
func sandboxdRoute(r *http.Request) string {
	path := r.URL.Path
	if rest, ok := strings.CutPrefix(path, "/v1/sandboxes/"); ok && rest != "" {
		path = "/v1/sandboxes/{id}"
		if _, sub, found := strings.Cut(rest, "/"); found {
			path += "/" + sub
		}
	}
	return r.Method + " " + path
}

func (c *sandboxdCrashPoints) arm(route string) <-chan struct{} {
	c.mu.Lock()
	defer c.mu.Unlock()
	hit := make(chan struct{})
	c.armed[route] = hit
	return hit
}

func (c *sandboxdCrashPoints) releaseAll() { c.once.Do(func() { close(c.release) }) }

func (c *sandboxdCrashPoints) createdCounts() map[string]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return maps.Clone(c.created)
}

func (c *sandboxdCrashPoints) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	route := sandboxdRoute(r)
	c.mu.Lock()
	hit, armed := c.armed[route]
	delete(c.armed, route)
	c.mu.Unlock()
	const create = "POST /v1/sandboxes"
	if !armed && route != create {
		c.next.ServeHTTP(w, r) // attach's websocket and the rest pass straight through
		return
	}
	rec := httptest.NewRecorder()
	c.next.ServeHTTP(rec, r)
	if route == create && rec.Code/100 == 2 {
		var sb wire.Sandbox
		if err := json.Unmarshal(rec.Body.Bytes(), &sb); err == nil {
			c.mu.Lock()
			c.created[sb.ID]++
			c.mu.Unlock()
		}
	}
	if !armed {
		reply(w, rec)
		return
	}
	close(hit)
	holdThenReply(w, r, rec, c.release)
}

// Drill: the Drill workflow itself as the operation, on the hot-backup scenario (its own
// cluster built beside the demo fleet, the file server's hardware failed by cloudsim, the real
// alarm path from the NFS watch to the failover, the report, the teardown). Every shipped
// scenario runs through the same workflow path (build, arm, steps, outcome, report, teardown:
// workflows/drill.go), so one scenario stands for them all here; the kills land in the
// drill's own build, in the failover it provokes and in its teardown.

const drillChaosScenario = "hot-backup"

var drillChaosCrashPoints = []crashPoint{{action: "RunInstances"}, {script: "drbdadm create-md"}, {script: "exportfs"},
	{script: "drbdadm primary"}, {action: "TerminateInstances"}, {action: "DeleteVolume"}}

// setUpDrill builds the demo fleet and points the operation's workers at cloudsim's control
// API, which drills drive (through the crash points' endpoint, as the workers reach EC2).
func setUpDrill(t *testing.T, w *chaosWorld) {
	buildDemoFleet(t, w)
	w.extraEnv = append(w.extraEnv, "ANYOPS_DRILL_CLOUDSIM="+w.cloud.url)
}

// startDrill numbers the drill in the inventory and starts drill/<n> with the scenario parsed
// for its cluster, as POST /v1/drills does.
func startDrill(t *testing.T, w *chaosWorld) client.WorkflowRun {
	ctx := context.Background()
	src, ok := drills.Shipped(drillChaosScenario)
	if !ok {
		t.Fatalf("no scenario %s ships", drillChaosScenario)
	}
	probe, err := drills.ParseScenario(drillChaosScenario, src, anyops.DrillCluster(0), workflows.CheckDrillOperation)
	if err != nil {
		t.Fatal(err)
	}
	d, err := w.mustOpenStore(t).CreateDrill(ctx, inventory.Drill{Scenario: drillChaosScenario, Source: string(src), Cluster: probe.Cluster, Speed: probe.Speed, RequestedBy: "chaos"})
	if err != nil {
		t.Fatal(err)
	}
	sc, err := drills.ParseScenario(drillChaosScenario, src, d.Cluster, workflows.CheckDrillOperation)
	if err != nil {
		t.Fatal(err)
	}
	return w.execute(t, d.WorkflowID, workflows.DrillWorkflowType, workflows.DrillInput{DrillID: d.ID, Cluster: d.Cluster, Scenario: sc})
}

// drillInvariants: the report's figures are sane (recovered in time by the hot backup's
// promotion, nothing lost, no interlock broken, nothing duplicated), it was computed once (one
// completed Report activity in the history, and the inventory's record is that report), and
// the drill's cluster is gone.
var drillInvariants = []chaosInvariant{
	{name: "the drill's report is computed once and its figures are sane", check: drillReportSane},
	{name: "the drill's cluster is torn down", check: func(t *testing.T, w *chaosWorld, _ chaosOperation) string {
		d := w.theDrill(t)
		var broken []string
		for name, ids := range describeInstances(t, w.clouds.EC2) {
			if strings.HasPrefix(name, d.Cluster+"-") {
				broken = append(broken, fmt.Sprintf("instance %s %v left", name, ids))
			}
		}
		for name, ids := range describeVolumes(t, w.clouds.EC2) {
			if strings.HasPrefix(name, d.Cluster+"-") {
				broken = append(broken, fmt.Sprintf("volume %s %v left", name, ids))
			}
		}
		return strings.Join(broken, "; ")
	}},
}

// theDrill is the run's one drill in the inventory.
func (w *chaosWorld) theDrill(t *testing.T) inventory.Drill {
	t.Helper()
	d, err := w.mustOpenStore(t).GetDrill(context.Background(), 1)
	if err != nil {
		t.Fatalf("the drill: %v", err)
	}
	return d
}

func drillReportSane(t *testing.T, w *chaosWorld, _ chaosOperation) string {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	d := w.theDrill(t)
	var r anyops.DrillReport
	if err := w.tc.GetWorkflow(ctx, d.WorkflowID, "").Get(ctx, &r); err != nil {
		return err.Error()
	}
	var broken []string
	if !r.Recovered || r.TimedOut || r.LostBytes != 0 || r.InterlockViolations != 0 || r.DuplicateResources != 0 || r.Winner != string(anyops.WayPromote) {
		broken = append(broken, fmt.Sprintf("recovered %v, timed out %v, lost %d, violations %+v, duplicates %+v, winner %q (want %s)",
			r.Recovered, r.TimedOut, r.LostBytes, r.Violations, r.Duplicates, r.Winner, anyops.WayPromote))
	}
	var recorded anyops.DrillReport
	if d.State != anyops.DrillCompleted || json.Unmarshal([]byte(d.Report), &recorded) != nil {
		broken = append(broken, fmt.Sprintf("the inventory has the drill %s with report %q", d.State, lastBytes([]byte(d.Report), 200)))
	} else if a, b := mustJSON(t, recorded), mustJSON(t, r); a != b {
		broken = append(broken, fmt.Sprintf("the inventory's report differs from the workflow's:\n%s\n%s", a, b))
	}
	if n := completedActivities(t, w, d.WorkflowID)["Report"]; n != 1 {
		broken = append(broken, fmt.Sprintf("the Report activity completed %d times", n))
	}
	return strings.Join(broken, "; ")
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// completedActivities counts the completed activities of a workflow's history by type.
func completedActivities(t *testing.T, w *chaosWorld, id string) map[string]int {
	t.Helper()
	scheduled, out := map[int64]string{}, map[string]int{}
	it := w.tc.GetWorkflowHistory(context.Background(), id, "", false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	for it.HasNext() {
		e, err := it.Next()
		if err != nil {
			t.Fatal(err)
		}
		if a := e.GetActivityTaskScheduledEventAttributes(); a != nil {
			scheduled[e.GetEventId()] = a.GetActivityType().GetName()
		}
		if a := e.GetActivityTaskCompletedEventAttributes(); a != nil {
			out[scheduled[a.GetScheduledEventId()]]++
		}
	}
	return out
}
