package integration

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/smtp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/anyops/anyops"
	"github.com/anyops/anyops/activities"
	"github.com/anyops/anyops/internal/smtptest"
	"github.com/anyops/anyops/inventory"
	sbclient "github.com/anyops/anyops/sandboxd/client"
	"github.com/anyops/anyops/sandboxd/token"
	"github.com/anyops/anyops/sandboxd/wire"
)

// The chaos harness's invariants proven to catch what they guard against: each case builds the
// least world its check reads (chaos_invariants_world_test.go), requires the check to pass on
// it healthy — the control — then breaks it as a faulty operation would, through cloudsim's
// API, its hosts' tools or the inventory, and requires the check to name the offence.
//
// Not proven so: the double attach of interlocksKept and of the failover's one serving file
// server. cloudsim refuses to attach a volume that is in use (VolumeInUse), as EBS does, so
// no call can make one; those parts of the replays stand for a simulation that broke.

// invariantsOnlyARunBreaks are the invariants whose checks read the result of the operation's
// workflow, which only a run of it makes (as "the operation completes", which runOperation
// checks itself): no world without a workflow can break them.
var invariantsOnlyARunBreaks = []string{
	"every server patched once, none left drained",
	"the console ends in its documented state",
	"the drill's report is computed once and its figures are sane",
	"the release is live on the new cluster, every deferred volume attached",
	"every data volume of the old cluster still exists or has a verified copy, attached once",
}

// TestChaosInvariantsAllProven keeps the proofs complete: every invariant of the harness's
// table and of its operations has a case in invariantCases, or only a run of its workflow
// can break it.
func TestChaosInvariantsAllProven(t *testing.T) {
	proven := map[string]bool{}
	for _, c := range invariantCases {
		proven[c.inv.name] = true
	}
	all := slices.Clone(chaosInvariants)
	for _, op := range chaosOperations {
		all = append(all, op.invariants...)
	}
	for _, inv := range all {
		if !proven[inv.name] && !slices.Contains(invariantsOnlyARunBreaks, inv.name) {
			t.Errorf("invariant %q has no case in invariantCases that shows it catches its violation", inv.name)
		}
	}
}

// invariantCase is one invariant's proof.
type invariantCase struct {
	name string
	inv  chaosInvariant
	op   chaosOperation
	// controlPlane: the check runs a workflow on a worker, so the world is a whole chaos
	// world (newChaosWorld), not the read-only newInvariantWorld.
	controlPlane bool
	// healthy builds the world that must pass the check; violate then breaks it.
	healthy, violate func(t *testing.T, w *chaosWorld)
	// want is a piece of the message the broken world must get.
	want string
}

// TestChaosInvariantsCatchViolations runs each invariant's proof: the healthy world passes
// its check, the same world broken fails it with a message naming the offence.
func TestChaosInvariantsCatchViolations(t *testing.T) {
	bin := buildAnyops(t)
	for _, c := range invariantCases {
		t.Run(c.name, func(t *testing.T) {
			var w *chaosWorld
			if c.controlPlane {
				w = newChaosWorld(t, bin, nil, 0)
			} else {
				w = newInvariantWorld(t)
			}
			c.healthy(t, w)
			// The operation's window (hotCopiesKept's) opens once the world is built, after the
			// building's last moment (the pair's promotion passes through Secondary).
			w.opStarted = w.sim.Advance(time.Second)
			w.opEnded = w.opStarted
			if msg := c.inv.check(t, w, c.op); msg != "" {
				t.Fatalf("healthy world: %q broken: %s", c.inv.name, msg)
			}
			c.violate(t, w)
			w.opEnded = w.sim.Now()
			msg := c.inv.check(t, w, c.op)
			if !strings.Contains(msg, c.want) {
				t.Fatalf("broken world: %q says %q, want it to name %q", c.inv.name, msg, c.want)
			}
			t.Logf("caught: %s", msg)
		})
	}
}

// invariantByName finds an invariant of a table by its name's start.
func invariantByName(table []chaosInvariant, prefix string) chaosInvariant {
	for _, inv := range table {
		if strings.HasPrefix(inv.name, prefix) {
			return inv
		}
	}
	panic("no invariant named " + prefix)
}

var invariantCases = []invariantCase{
	{
		name: "a volume created twice", inv: invariantByName(chaosInvariants, "no duplicate resources"),
		healthy: func(t *testing.T, w *chaosWorld) {
			w.runInstance(t, inventory.DemoFileServer, "us-east-1a", nil)
			w.createVolume(t, inventory.DemoFileServer+"/home0", "us-east-1a", nil)
		},
		violate: func(t *testing.T, w *chaosWorld) {
			w.createVolume(t, inventory.DemoFileServer+"/home0", "us-east-1a", nil)
		},
		want: "volume " + inventory.DemoFileServer + "/home0 ×2",
	},
	{
		name: "a data volume deleted with no copy", inv: invariantByName(chaosInvariants, "no lost volume"),
		healthy: func(t *testing.T, w *chaosWorld) {
			for _, v := range activities.DemoFleetPlan().Volumes {
				w.createVolume(t, v.Name, v.Zone, nil)
			}
		},
		violate: func(t *testing.T, w *chaosWorld) { w.deleteVolume(t, describeVolumes(t, w.clouds.EC2)[demoHome0][0]) },
		want:    demoHome0,
	},
	{
		name: "a second Primary forced while the first serves", inv: invariantByName(chaosInvariants, "never two DRBD Primaries"),
		healthy: func(t *testing.T, w *chaosWorld) { w.drbdPair(t, true) },
		violate: forceBackupPrimary,
		want:    "Primary on 2 hosts",
	},
	{
		name: "two Primaries in the interlocks' replay", inv: interlocksKept,
		healthy: func(t *testing.T, w *chaosWorld) { w.drbdPair(t, true) },
		violate: forceBackupPrimary,
		want:    anyops.ViolationTwoPrimaries + ": " + drbdPairRes + " made Primary",
	},
	{
		name: "a resyncing disk forced Primary without an audited override", inv: interlocksKept,
		healthy: func(t *testing.T, w *chaosWorld) { w.drbdPair(t, false) },
		violate: func(t *testing.T, w *chaosWorld) {
			file, backup := instanceOf(t, w, inventory.DemoFileServer), instanceOf(t, w, inventory.DemoBackup)
			w.shell(t, "drbdadm secondary "+drbdPairRes, file)
			w.shell(t, "drbdadm primary --force "+drbdPairRes, backup)
		},
		want: anyops.ViolationUnsafePromotion + ": " + drbdPairRes + " forced Primary",
	},
	{
		name: "the hot backup taken down during a storage change", inv: hotCopiesKept,
		healthy: func(t *testing.T, w *chaosWorld) { w.drbdPair(t, true) },
		violate: func(t *testing.T, w *chaosWorld) {
			w.shell(t, "drbdadm down "+drbdPairRes, instanceOf(t, w, inventory.DemoBackup))
			w.sim.Advance(30 * time.Second) // the change goes on without it
		},
		want: drbdPairRes + " without a hot copy",
	},
	{
		name: "two file servers serving /srv/home", inv: invariantByName(failoverInvariants, "one serving file server"),
		healthy: func(t *testing.T, w *chaosWorld) {
			file := w.runInstance(t, inventory.DemoFileServer, "us-east-1a", inCluster(inventory.DemoCluster, nil))
			w.serveHome(t, file, "us-east-1a")
		},
		violate: func(t *testing.T, w *chaosWorld) {
			backup := w.runInstance(t, inventory.DemoBackup, "us-east-1b", inCluster(inventory.DemoCluster, nil))
			w.serveHome(t, backup, "us-east-1b")
		},
		want: "2 hosts serve /srv/home",
	},
	{
		name: "a second replacement of the file server", inv: invariantByName(failoverInvariants, "no second replacement"),
		healthy: func(t *testing.T, w *chaosWorld) {
			w.runInstance(t, inventory.DemoFileServer+"-a1b2", "us-east-1b", inCluster(inventory.DemoCluster, nil))
		},
		violate: func(t *testing.T, w *chaosWorld) {
			w.runInstance(t, inventory.DemoFileServer+"-c3d4", "us-east-1b", inCluster(inventory.DemoCluster, nil))
		},
		want: "replacements of " + inventory.DemoFileServer + " built",
	},
	{
		name: "both web servers restarting at once", inv: invariantByName(patchInvariants, "never more than the policy's share"),
		healthy: func(t *testing.T, w *chaosWorld) {
			web1, web2 := webServers(t, w)
			w.shell(t, restartWeb, web1)
			w.shell(t, restartWeb, web2)
		},
		violate: func(t *testing.T, w *chaosWorld) {
			web1, web2 := instanceOf(t, w, "live-web1"), instanceOf(t, w, "live-web2")
			w.shell(t, restartWeb, web1, web2)
		},
		want: "2 of 2 web servers restarting",
	},
	{
		name: "a notice delivered again", inv: invariantByName(patchInvariants, "no notice sent twice"),
		healthy: sendOneNotice,
		violate: func(t *testing.T, w *chaosWorld) {
			// What a kill between the SMTP server's 250 and sent_at does: the retry sends the
			// notice again under its Message-ID.
			notices, err := w.mustOpenStore(t).ListNotices(context.Background(), anyops.Heartbleed().ID)
			if err != nil || len(notices) != 1 {
				t.Fatalf("notices: %v %v", notices, err)
			}
			n := notices[0]
			msg := fmt.Sprintf("From: %s\r\nTo: %s\r\nSubject: %s\r\nMessage-ID: %s\r\n\r\n%s\r\n", noticeSender, n.Email, n.Subject, n.MessageID, n.Body)
			if err := smtp.SendMail(w.mail.Addr, nil, noticeSender, []string{n.Email}, []byte(msg)); err != nil {
				t.Fatal(err)
			}
		},
		want: "accepted 2 times",
	},
	{
		name: "a sandbox created twice", inv: invariantByName(consoleInvariants, "no sandbox created twice"),
		healthy: func(t *testing.T, w *chaosWorld) { stubSandboxd(t, w).create(t, "console-1") },
		violate: func(t *testing.T, w *chaosWorld) { w.sandboxd.next.(*sandboxdStub).create(t, "console-1") },
		want:    "sandbox console-1-1 created 2 times",
	},
	{
		name: "a console left open in the inventory", inv: invariantByName(consoleInvariants, "no orphaned sandbox"),
		healthy: func(t *testing.T, w *chaosWorld) {
			stubSandboxd(t, w)
			if _, err := w.mustOpenStore(t).CreateUser(context.Background(), consoleChaosUser, anyops.PlanFree, false); err != nil {
				t.Fatal(err)
			}
		},
		violate: func(t *testing.T, w *chaosWorld) {
			if _, err := w.mustOpenStore(t).CreateConsole(context.Background(), inventory.Console{User: consoleChaosUser}); err != nil {
				t.Fatal(err)
			}
		},
		want: "is " + string(anyops.ConsoleOpen) + " in the inventory",
	},
	{
		name: "a drill's volume left after its teardown", inv: invariantByName(drillInvariants, "the drill's cluster is torn down"),
		healthy: func(t *testing.T, w *chaosWorld) {
			if _, err := w.mustOpenStore(t).CreateDrill(context.Background(), inventory.Drill{Scenario: drillChaosScenario, Cluster: anyops.DrillCluster(1), Speed: 1}); err != nil {
				t.Fatal(err)
			}
			w.runInstance(t, inventory.DemoFileServer, "us-east-1a", inCluster(inventory.DemoCluster, nil))
		},
		violate: func(t *testing.T, w *chaosWorld) {
			w.createVolume(t, anyops.DrillCluster(1)+"-file/home0", "us-east-1a", inCluster(anyops.DrillCluster(1), nil))
		},
		want: "volume " + anyops.DrillCluster(1) + "-file/home0",
	},
	{
		name: "the old cluster terminated before the deferred copy was attached", inv: invariantByName(releaseInvariants, "no server of the old cluster terminated"),
		healthy: func(t *testing.T, w *chaosWorld) {
			old := w.runInstance(t, inventory.DemoFileServer, "us-east-1a", inCluster(inventory.DemoCluster, nil))
			moved := w.runInstance(t, releaseChaosNewCluster+"-file", "us-east-1c", inCluster(releaseChaosNewCluster, nil))
			w.attachVolume(t, w.createVolume(t, releaseChaosNewCluster+"-file/home0", "us-east-1c", nil), moved, "/dev/sdf")
			w.terminate(t, old)
		},
		violate: func(t *testing.T, w *chaosWorld) {
			moved := instanceOf(t, w, releaseChaosNewCluster+"-file")
			w.attachVolume(t, w.createVolume(t, releaseChaosNewCluster+"-file/dropbox", "us-east-1c", nil), moved, "/dev/sdg")
		},
		want: inventory.DemoFileServer + " (",
	},
	{
		// The check runs FleetSync first, which marks terminated a row whose instance is gone:
		// the drift it cannot fix is a row the cloud never had an instance for.
		name: "an inventory server the cloud lacks", inv: invariantByName(chaosInvariants, "the inventory agrees"),
		op: chaosOperation{changesFleet: true}, controlPlane: true,
		healthy: func(t *testing.T, w *chaosWorld) {
			// A server of the demo fleet's plan, launched as DemoFleet does: FleetSync records it.
			s := activities.DemoFleetPlan().Servers[0]
			w.runInstance(t, s.Name, s.Zone, s.InstanceTags())
		},
		violate: func(t *testing.T, w *chaosWorld) { w.recordServer(t, "live-web9", anyops.RoleWeb, "us-east-1a", "") },
		want:    "live-web9: inventory , cloud []",
	},
}

// demoHome0 is a data volume of the demo fleet's plan.
const demoHome0 = inventory.DemoFileServer + "/home0"

// forceBackupPrimary is the split brain a failover must never make: the hot backup cut off
// from the file server and forced Primary while the file server still is.
func forceBackupPrimary(t *testing.T, w *chaosWorld) {
	w.shell(t, "drbdadm disconnect "+drbdPairRes+" && drbdadm primary --force "+drbdPairRes, instanceOf(t, w, inventory.DemoBackup))
}

// instanceOf is the one instance named name.
func instanceOf(t *testing.T, w *chaosWorld, name string) string {
	t.Helper()
	ids := describeInstances(t, w.clouds.EC2)[name]
	if len(ids) != 1 {
		t.Fatalf("instances named %s: %v", name, ids)
	}
	return ids[0]
}

// restartWeb is a web server's service restart as the patch runs it; the sleep makes it last
// (cloudsim runs a command in no simulated time otherwise).
const restartWeb = "systemctl restart nginx || true; sleep 5"

// webServers launches the demo's two web servers and records them in the inventory with their
// role, which the role-share check counts by.
func webServers(t *testing.T, w *chaosWorld) (web1, web2 string) {
	t.Helper()
	var ids []string
	for _, name := range []string{"live-web1", "live-web2"} {
		id := w.runInstance(t, name, "us-east-1a", inCluster(inventory.DemoCluster, nil))
		w.recordServer(t, name, anyops.RoleWeb, "us-east-1a", id)
		ids = append(ids, id)
	}
	return ids[0], ids[1]
}

// noticeSender is the notices' From.
const noticeSender = "security@anyops.example"

// sendOneNotice puts one Heartbleed notice in the outbox (Bob's custom domain on live-web1) and
// sends it as the patch does, to an SMTP server of the world's.
func sendOneNotice(t *testing.T, w *chaosWorld) {
	t.Helper()
	ctx := context.Background()
	store := w.mustOpenStore(t)
	w.mail = smtptest.Start(t)
	w.recordServer(t, "live-web1", anyops.RoleWeb, "us-east-1a", "")
	if _, err := store.UpsertWebApp(ctx, inventory.WebApp{Name: "bob-bakery", Owner: "bob", OwnerEmail: "bob@mail.example",
		Domain: "www.bobsbakery.example", CustomDomain: true, Server: "live-web1"}); err != nil {
		t.Fatal(err)
	}
	text := func(owner string, _ []inventory.WebApp) (string, string) {
		return "Heartbleed", "Dear " + owner + ", patched."
	}
	if _, err := store.DecideNotices(ctx, anyops.Heartbleed().ID, []string{"live-web1"}, "chaos", inventory.DemoPlatformDomain, text); err != nil {
		t.Fatal(err)
	}
	n := &activities.Notices{Store: store, SMTP: activities.SMTPConfig{Addr: w.mail.Addr, From: noticeSender}}
	if out, err := n.SendNotices(ctx, activities.SendNoticesInput{Advisory: anyops.Heartbleed().ID}); err != nil || out.Sent != 1 {
		t.Fatalf("SendNotices: %+v %v", out, err)
	}
}

// sandboxdStub answers a console host's sandboxd calls the console checks make: a creation
// (the sandbox the request names, as sandboxd answers it) and the list (empty: nothing left).
// It stands behind the world's sandboxdCrashPoints, which count the creations it answered.
type sandboxdStub struct {
	url string
}

// stubSandboxd gives the world a console host's sandboxd: the stub behind crash points, and a
// client to it.
func stubSandboxd(t *testing.T, w *chaosWorld) *sandboxdStub {
	t.Helper()
	stub := &sandboxdStub{}
	w.sandboxd = &sandboxdCrashPoints{next: stub, armed: map[string]chan struct{}{}, created: map[string]int{}, release: make(chan struct{})}
	srv := httptest.NewServer(w.sandboxd)
	t.Cleanup(srv.Close)
	stub.url = srv.URL
	_, key, err := token.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	if w.sandboxdClient, err = sbclient.New(srv.URL, token.NewSigner(key)); err != nil {
		t.Fatal(err)
	}
	return stub
}

func (s *sandboxdStub) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	switch sandboxdRoute(r) {
	case "POST /v1/sandboxes":
		var sb wire.Sandbox
		if err := json.NewDecoder(r.Body).Decode(&sb); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		w.WriteHeader(http.StatusCreated)
		_ = json.NewEncoder(w).Encode(sb)
	case "GET /v1/sandboxes":
		_ = json.NewEncoder(w).Encode(wire.SandboxList{Sandboxes: []wire.Sandbox{}})
	default:
		http.NotFound(w, r)
	}
}

// create asks the host for the console's first sandbox (<console>-1), as CreateSandbox does.
func (s *sandboxdStub) create(t *testing.T, console string) {
	t.Helper()
	body, _ := json.Marshal(wire.Sandbox{ID: console + "-1", User: consoleChaosUser})
	resp, err := http.Post(s.url+"/v1/sandboxes", "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("create sandbox: %s", resp.Status)
	}
}
