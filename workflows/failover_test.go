package workflows

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/mock"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/workflow"

	"github.com/anyops/anyops"
	"github.com/anyops/anyops/activities"
)

// TestFailoverRace proves which way wins when, with the testsuite and the fake fleet: the hot
// backup is promoted at once when every resource is UpToDate there; with the backup mid-resync
// and the boot disk corrupt (15 July 2014) the repair fails and a new server, built from the
// first second, wins and takes the volumes; with a good boot disk the repair wins before the
// build ends; with a warm spare the replace way wins without building. In every case the old
// primary is fenced before anything takes its data over, exactly one way takes it over, the
// file service's name moves to the winner and every client is remounted on it.
func TestFailoverRace(t *testing.T) {
	cases := []struct {
		name        string
		backupDisk  string
		corruptBoot bool
		spare       bool
		winner      anyops.RecoveryWay
		serving     string
		outcomes    map[anyops.RecoveryWay]string // prefixes
	}{
		{"hot backup", "UpToDate", false, false, anyops.WayPromote, "live-backup",
			map[anyops.RecoveryWay]string{anyops.WayRepair: "lost: kept live-file as the backup", anyops.WayReplace: "lost: promote won before it began"}},
		{"july 2014", "Inconsistent", true, false, anyops.WayReplace, "live-file-",
			map[anyops.RecoveryWay]string{anyops.WayPromote: "lost", anyops.WayRepair: "failed"}},
		{"repair before the build", "Inconsistent", false, false, anyops.WayRepair, "live-file",
			map[anyops.RecoveryWay]string{anyops.WayPromote: "lost", anyops.WayReplace: "lost: kept live-file-"}},
		{"warm spare", "Inconsistent", true, true, anyops.WayReplace, "live-spare",
			map[anyops.RecoveryWay]string{anyops.WayPromote: "lost", anyops.WayRepair: ""}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := newFakeFleet()
			f.backupDisk, f.corruptBoot, f.stopHangs = tc.backupDisk, tc.corruptBoot, true
			if tc.spare {
				f.spares = []activities.ServerInfo{{Name: "live-spare", Role: anyops.RoleFile, Zone: "us-east-1a", Cluster: "live-standby", InstanceID: "i-05pa0e00000000003", PrivateIP: "10.0.1.40", State: anyops.ServerRunning}}
			}
			env := f.env(t)
			res := f.runFailover(t, env, FailoverPolicy{})
			if res.Winner != tc.winner || !strings.HasPrefix(res.Serving, tc.serving) {
				t.Fatalf("winner %s serving %s, want %s serving %s*; outcomes %v", res.Winner, res.Serving, tc.winner, tc.serving, res.Outcomes)
			}
			for way, want := range tc.outcomes {
				if !strings.HasPrefix(res.Outcomes[way], want) {
					t.Errorf("%s: %q, want %q…", way, res.Outcomes[way], want)
				}
			}
			takeOver := f.index("DRBDPromote")
			if tc.winner != anyops.WayRepair {
				if fence := f.index("FenceInstance " + f.primary.InstanceID); fence < 0 || fence > takeOver || fence > f.index("ExportNFS") {
					t.Errorf("fenced at call %d, took over at %d: the old primary must be fenced first\n%v", fence, takeOver, f.calls)
				}
			}
			if n := f.count("DRBDPromote"); n != 1 {
				t.Errorf("%d takeovers, want exactly one: %v", n, f.calls)
			}
			if got := f.count("SwitchRecord files.live.internal [" + res.ServingIP + "]"); got != 1 {
				t.Errorf("the name moved %d times to %s, want once: %v", got, res.ServingIP, f.calls)
			}
			if len(res.Clients) != len(f.clients) {
				t.Errorf("clients %v, want all %d remounted", res.Clients, len(f.clients))
			}
			for c, server := range res.Clients {
				if server != res.ServingIP {
					t.Errorf("client %s reaches %s, want %s", c, server, res.ServingIP)
				}
			}
			if res.Backup == "" || res.WithoutHotBackup {
				t.Errorf("backup %q (without: %v): a failover ends with a hot backup", res.Backup, res.WithoutHotBackup)
			}
			if rec, remount := f.index("RecordFleet"), f.index("RemountNFS"); rec < 0 || rec > remount {
				t.Errorf("recorded at call %d, remounted at %d: the inventory must show the new file server from the cutover on\n%v", rec, remount, f.calls)
			}
			if tc.name == "july 2014" {
				// No other way can serve once the repair failed: the volumes move while the new
				// server bootstraps, and it exports only once it is bootstrapped.
				runs, detach, done, export := f.indexOf("BuildServer live-file-", " runs"), f.index("DetachFromFenced"), f.indexOf("BuildServer live-file-", " bootstrapped"), f.index("ExportNFS")
				if runs < 0 || detach < runs || detach > done || export < done {
					t.Errorf("runs at call %d, detached at %d, bootstrapped at %d, exported at %d: want the move during the bootstrap, the export after\n%v", runs, detach, done, export, f.calls)
				}
			}
			if tc.spare && f.count("BuildServer") != 0 {
				t.Errorf("a spare was there, yet a server was built: %v", f.calls)
			}
		})
	}
}

// commitWorkflow asks for the cutover from n ways at the same moment: the commit point under
// concurrent requests.
func commitWorkflow(ctx workflow.Context, n int) ([]bool, error) {
	w := &failover{root: ctx, policy: FailoverPolicy{}.withDefaults(), timing: RecoveryTiming{}.withDefaults(), kept: map[anyops.RecoveryWay]wayOutcome{}}
	var err error
	if w.tracker, err = NewTracker(ctx, FailoverSteps...); err != nil {
		return nil, err
	}
	w.primary = activities.ServerInfo{Name: "live-file", Cluster: "live"}
	granted := make([]bool, n)
	wg := workflow.NewWaitGroup(ctx)
	for i := range n {
		wg.Add(1)
		workflow.Go(ctx, func(ctx workflow.Context) {
			defer wg.Done()
			way := anyops.RecoveryWays[i%len(anyops.RecoveryWays)]
			granted[i], _ = w.cutover(ctx, way, activities.ServerInfo{Name: "s", PrivateIP: "10.0.1.1"})
		})
	}
	wg.Wait(ctx)
	return granted, nil
}

// TestFailoverOneCommitPoint proves that of ways asking for the cutover at the same moment,
// exactly one is granted it.
func TestFailoverOneCommitPoint(t *testing.T) {
	var suite testsuite.WorkflowTestSuite
	env := suite.NewTestWorkflowEnvironment()
	env.RegisterWorkflow(commitWorkflow)
	env.RegisterActivity(newFakeFleet())
	env.ExecuteWorkflow(commitWorkflow, 9)
	var granted []bool
	if err := env.GetWorkflowResult(&granted); err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, g := range granted {
		if g {
			n++
		}
	}
	if n != 1 {
		t.Fatalf("%d of %d concurrent requests granted the cutover, want exactly 1: %v", n, len(granted), granted)
	}
}

// TestFailoverPromoteRefusedWithoutOverride proves the not-uptodate interlock in the workflow:
// with only the promote way and an Outdated backup, nothing is promoted — for as long as no
// one overrides it (a virtual day) — and Status shows what the interlock holds up. An override
// needs who and why and names an interlock that holds something up; the override given is
// audited (who, why, which interlock) before the backup is promoted with it.
func TestFailoverPromoteRefusedWithoutOverride(t *testing.T) {
	f := newFakeFleet()
	f.backupDisk = "Outdated"
	env := f.env(t)
	dec := newDecisions(env)
	env.RegisterDelayedCallback(func() {
		st := status(t, env)
		if len(st.Blocked) != 1 || st.Blocked[0].Interlock != string(anyops.InterlockNotUpToDate) || !strings.Contains(st.Blocked[0].What, "Outdated") {
			t.Errorf("blocked %+v, want the not-uptodate interlock naming the Outdated copy", st.Blocked)
		}
		if f.count("DRBDPromote") != 0 || f.count("FenceInstance") != 0 {
			t.Errorf("a day without an override, yet: %v", f.calls)
		}
		for _, bad := range []struct {
			name string
			d    DecisionInput
		}{
			{"no reason", DecisionInput{By: "api:operator", Interlock: string(anyops.InterlockNotUpToDate)}},
			{"an interlock that holds nothing up", DecisionInput{By: "api:operator", Reason: "why not", Interlock: string(anyops.InterlockUnfenced)}},
			{"no such interlock", DecisionInput{By: "api:operator", Reason: "why not", Interlock: "speed-limit"}},
		} {
			dec.send("override with "+bad.name, UpdateOverride, bad.d)
		}
		dec.send("approve without an approval policy", UpdateApprove, DecisionInput{By: "api:operator"})
		dec.send("override", UpdateOverride, DecisionInput{By: "api:operator", Reason: "the file server's disks are lost; take what the backup has",
			Interlock: string(anyops.InterlockNotUpToDate)})
	}, 24*time.Hour)
	res := f.runFailover(t, env, FailoverPolicy{Ways: []anyops.RecoveryWay{anyops.WayPromote}})
	for _, refused := range []string{"override with no reason", "override with an interlock that holds nothing up", "override with no such interlock", "approve without an approval policy"} {
		dec.check(t, refused, false)
	}
	dec.check(t, "override", true)
	if res.Winner != anyops.WayPromote || len(res.Overrides) != 1 {
		t.Fatalf("winner %s, overrides %v", res.Winner, res.Overrides)
	}
	if len(f.audits) != 1 || f.audits[0].Actor != "api:operator" || f.audits[0].Summary["interlock"] != string(anyops.InterlockNotUpToDate) ||
		!strings.Contains(f.audits[0].Summary["reason"].(string), "disks are lost") {
		t.Errorf("audit %+v, want who, why and which interlock", f.audits)
	}
	if audit, promote := f.index("RecordAudit"), f.index("DRBDPromote"); audit < 0 || audit > promote {
		t.Errorf("audited at %d, promoted at %d: the audit comes first", audit, promote)
	}
	if ov := f.promoted[0].Override; ov == nil || ov.Interlock != anyops.InterlockNotUpToDate || ov.By != "api:operator" {
		t.Errorf("promoted with %+v, want the override", ov)
	}
}

// TestFailoverApproveAndAbort proves the approve and abort updates: with a policy asking for
// approval the ready way waits, and Status says so; abort needs a reason; an abort before the
// cutover cancels every way (the build is cancelled, nothing is fenced or promoted) and the
// failover ends aborted. After the cutover an abort is refused.
func TestFailoverApproveAndAbort(t *testing.T) {
	t.Run("abort before the cutover", func(t *testing.T) {
		f := newFakeFleet()
		env := f.env(t)
		dec := newDecisions(env)
		env.RegisterDelayedCallback(func() {
			st := status(t, env)
			if b := branchOf(st, anyops.WayPromote); !strings.Contains(b.Message, "waiting for approval") {
				t.Errorf("promote: %+v, want it waiting for approval", b)
			}
			dec.send("abort without a reason", UpdateAbort, DecisionInput{By: "api:operator"})
			dec.send("abort", UpdateAbort, DecisionInput{By: "api:operator", Reason: "a drill"})
		}, time.Minute)
		env.ExecuteWorkflow(FailoverWorkflowType, failoverInput(FailoverPolicy{ApproveCutover: true}))
		var res FailoverResult
		if err := env.GetWorkflowResult(&res); err != nil || !res.Aborted {
			t.Fatalf("result %+v, %v; want aborted", res, err)
		}
		dec.check(t, "abort without a reason", false)
		dec.check(t, "abort", true)
		if f.count("FenceInstance") != 0 || f.count("DRBDPromote") != 0 || f.count("SwitchRecord") != 0 {
			t.Errorf("an aborted failover touched the data: %v", f.calls)
		}
		if !f.logged("BuildServer live-file-", " cancelled") {
			t.Errorf("the replace way's build was not cancelled: %v", f.calls)
		}
		if f.count("NoteIncident 7 resolved") != 0 {
			t.Errorf("an aborted failover resolved its incident: nothing serves the data: %v", f.calls)
		}
	})
	t.Run("approve, then no abort", func(t *testing.T) {
		f := newFakeFleet()
		f.inSyncAfter = 1000 // the repaired primary resyncs for a while: the failover is still running
		env := f.env(t)
		dec := newDecisions(env)
		env.RegisterDelayedCallback(func() {
			if f.count("DRBDPromote") != 0 {
				t.Error("promoted before the approval")
			}
			dec.send("approve", UpdateApprove, DecisionInput{By: "api:operator"})
		}, time.Minute)
		env.RegisterDelayedCallback(func() {
			dec.send("abort after the cutover", UpdateAbort, DecisionInput{By: "api:operator", Reason: "too late"})
			dec.send("a second approve", UpdateApprove, DecisionInput{By: "api:operator"})
		}, 2*time.Minute)
		res := f.runFailover(t, env, FailoverPolicy{ApproveCutover: true})
		if res.Winner != anyops.WayPromote {
			t.Fatalf("winner %s", res.Winner)
		}
		dec.check(t, "approve", true)
		dec.check(t, "abort after the cutover", false)
		dec.check(t, "a second approve", false)
	})
}

// TestFailoverLosersClean proves the clean loser policy: the ways that lost are cancelled and
// what they made is gone. With a hot backup, promote wins before the replace way begins (no
// server is built at all) and the repaired primary is not kept: a new backup is rebuilt in
// the old primary's place. With a backup that is no hot copy and a good boot disk, the repair
// wins while the replacement builds: the build is cancelled.
func TestFailoverLosersClean(t *testing.T) {
	t.Run("hot backup", func(t *testing.T) {
		f := newFakeFleet()
		res := f.runFailover(t, f.env(t), FailoverPolicy{Losers: anyops.LosersClean})
		if res.Winner != anyops.WayPromote {
			t.Fatalf("winner %s", res.Winner)
		}
		if o := res.Outcomes[anyops.WayRepair]; strings.Contains(o, "kept") {
			t.Errorf("repair: %q, want it not kept", o)
		}
		if n := f.count("BuildServer"); n != 0 {
			t.Errorf("%d servers built after promote won: %v", n, f.calls)
		}
		if f.count("BackupRebuild live-file onto \"\"") != 1 || res.Backup != "live-file-new" {
			t.Errorf("backup %q, calls %v; want a backup rebuilt for the old primary", res.Backup, f.calls)
		}
	})
	t.Run("repair wins while the build runs", func(t *testing.T) {
		f := newFakeFleet()
		f.backupDisk, f.stopHangs = "Inconsistent", true
		res := f.runFailover(t, f.env(t), FailoverPolicy{Losers: anyops.LosersClean})
		if res.Winner != anyops.WayRepair {
			t.Fatalf("winner %s, outcomes %v", res.Winner, res.Outcomes)
		}
		if !strings.HasPrefix(res.Outcomes[anyops.WayReplace], "cancelled") {
			t.Errorf("replace: %q, want cancelled", res.Outcomes[anyops.WayReplace])
		}
		if !f.logged("BuildServer live-file-", " cancelled") {
			t.Errorf("the replace way's build was not cancelled: %v", f.calls)
		}
	})
}

// TestFailoverNoHotBackupInterlock proves a failover never ends without a hot backup without
// saying so: when the new backup never gets in sync, the no-hot-backup interlock holds it (in
// Status) until an override, and the result says it ended without one.
func TestFailoverNoHotBackupInterlock(t *testing.T) {
	f := newFakeFleet()
	f.inSyncAfter = -1
	env := f.env(t)
	dec := newDecisions(env)
	in := failoverInput(FailoverPolicy{})
	in.Timing.SyncTimeout = time.Hour
	env.RegisterDelayedCallback(func() {
		st := status(t, env)
		if len(st.Blocked) != 1 || st.Blocked[0].Interlock != string(anyops.InterlockNoHotBackup) || st.Phase != stepRedundancy {
			t.Errorf("phase %s blocked %+v, want the no-hot-backup interlock", st.Phase, st.Blocked)
		}
		dec.send("override", UpdateOverride, DecisionInput{By: "api:operator", Reason: "the backup is rebuilt by hand", Interlock: string(anyops.InterlockNoHotBackup)})
	}, 48*time.Hour)
	env.ExecuteWorkflow(FailoverWorkflowType, in)
	var res FailoverResult
	if err := env.GetWorkflowResult(&res); err != nil {
		t.Fatal(err)
	}
	dec.check(t, "override", true)
	if !res.WithoutHotBackup || res.Backup != "" {
		t.Errorf("result %+v, want ended without a hot backup, saying so", res)
	}
}

// TestServerReplaceWithdrawsAConsoleHost proves a failed console host stops being offered to
// new consoles first thing (marked impaired before anything else), and each of its open
// consoles is told its host is lost; then the host is fenced, replaced, and retired.
func TestServerReplaceWithdrawsAConsoleHost(t *testing.T) {
	f := newFakeFleet()
	f.primary = f.clients[1] // live-console1
	env := f.env(t)
	var signalled []string
	env.OnSignalExternalWorkflow(mock.Anything, "console/c1", "", ConsoleSignalHostLost, HostLost{Server: "live-console1"}).Return(nil).Run(func(mock.Arguments) { signalled = append(signalled, "c1") })
	env.OnSignalExternalWorkflow(mock.Anything, "console/c2", "", ConsoleSignalHostLost, HostLost{Server: "live-console1"}).Return(nil).Run(func(mock.Arguments) { signalled = append(signalled, "c2") })
	env.ExecuteWorkflow(ServerReplaceWorkflowType, ServerReplaceInput{RecoveryRequest: RecoveryRequest{Server: "live-console1", RequestedBy: "alarm:sns"}})
	var res ServerReplaceResult
	if err := env.GetWorkflowResult(&res); err != nil {
		t.Fatalf("%v\n%v", err, f.calls)
	}
	if res.Consoles != 2 || len(signalled) != 2 {
		t.Errorf("consoles %d, signalled %v; want both told", res.Consoles, signalled)
	}
	if i := f.index("SetServerState live-console1 impaired"); i < 0 || i > f.index("ConsolesOn") || i > f.index("FenceInstance") || i > f.index("BuildServer") {
		t.Errorf("withdrawn at %d: it must come first; %v", i, f.calls)
	}
	if f.index("TerminateUnused "+f.primary.InstanceID) < f.index("MountNFS") {
		t.Errorf("retired before the replacement serves: %v", f.calls)
	}
}

// TestSeedChoice proves when a new backup is seeded from a snapshot: only when the volume has
// a snapshot already (the next is incremental) and little was written since; a first snapshot
// (20 MB/s) never beats a resync (100 MB/s); the policy can force either.
func TestSeedChoice(t *testing.T) {
	recent := &activities.Snapshot{}
	cases := []struct {
		name   string
		policy anyops.SeedPolicy
		last   *activities.Snapshot
		age    time.Duration
		want   anyops.SeedPolicy
	}{
		{"no snapshot: resync", anyops.SeedAuto, nil, 0, anyops.SeedResync},
		{"a snapshot an hour old: snapshot", anyops.SeedAuto, recent, time.Hour, anyops.SeedSnapshot},
		{"a snapshot a month old: resync", anyops.SeedAuto, recent, 30 * 24 * time.Hour, anyops.SeedResync},
		{"forced snapshot", anyops.SeedSnapshot, nil, 0, anyops.SeedSnapshot},
		{"forced resync", anyops.SeedResync, recent, time.Minute, anyops.SeedResync},
	}
	for _, tc := range cases {
		if got, _, _ := seedChoice(tc.policy, 500, tc.last, tc.age); got != tc.want {
			t.Errorf("%s: %s, want %s", tc.name, got, tc.want)
		}
	}
}

// TestReplacementName proves replacements get a name of their own, the same on every retry,
// another for another incident, without piling suffixes up.
func TestReplacementName(t *testing.T) {
	a, b := replacementName("live-file", "run-1"), replacementName("live-file", "run-2")
	if a == b || a != replacementName("live-file", "run-1") || !strings.HasPrefix(a, "live-file-") || len(a) != len("live-file-")+4 {
		t.Errorf("names %q, %q", a, b)
	}
	if again := replacementName(a, "run-3"); !strings.HasPrefix(again, "live-file-") || len(again) != len(a) {
		t.Errorf("a replacement's replacement is %q", again)
	}
	if !reServerName.MatchString(replacementName(strings.Repeat("x", 63), "r")) {
		t.Error("a long name's replacement is not a server name")
	}
}

// TestFailoverForcesAHungStopAtItsTimeout proves the repair forces a stop that hangs (failed
// hardware) once the policy's StopTimeout has passed, not later: the wait for stopped gives up
// retryably at its timeout, and its retries must not wait again past the bound (twenty of
// them made July 2014's repair force the stop ten simulated minutes late, after the build).
func TestFailoverForcesAHungStopAtItsTimeout(t *testing.T) {
	f := newFakeFleet()
	f.backupDisk, f.corruptBoot, f.stopHangs = "Inconsistent", true, true
	f.runFailover(t, f.env(t), FailoverPolicy{})
	graceful, forced := f.stops[false], f.stops[true]
	if graceful.IsZero() || forced.IsZero() {
		t.Fatalf("stops %v: want a graceful stop, then a forced one\n%v", f.stops, f.calls)
	}
	if bound := DefaultStopTimeout + DefaultRecoveryPollInterval; forced.Sub(graceful) > bound {
		t.Errorf("the stop was forced %s after the graceful one, want within the stop timeout and a poll (%s)", forced.Sub(graceful), bound)
	}
}

// replaceAsChild runs ServerReplace as the child of another recovery, as BackupRebuild runs
// under a failover.
func replaceAsChild(ctx workflow.Context, in ServerReplaceInput) error {
	return workflow.ExecuteChildWorkflow(ctx, ServerReplaceWorkflowType, in).Get(ctx, nil)
}

// TestRecoveriesResolveTheirIncident proves a recovery that the alarm started resolves its
// incident when it has brought the service back (so that a later fault of the same server
// starts a new recovery), once; one run as another's child leaves that to its parent.
func TestRecoveriesResolveTheirIncident(t *testing.T) {
	replace := ServerReplaceInput{RecoveryRequest: RecoveryRequest{Server: "live-web1", IncidentID: 7, RequestedBy: "alarm:sns"}}
	for _, tc := range []struct {
		name string
		run  func(f *fakeFleet, env *testsuite.TestWorkflowEnvironment)
		want int
	}{
		{"a failover", func(f *fakeFleet, env *testsuite.TestWorkflowEnvironment) { f.runFailover(t, env, FailoverPolicy{}) }, 1},
		{"a server replacement", func(f *fakeFleet, env *testsuite.TestWorkflowEnvironment) {
			env.ExecuteWorkflow(ServerReplaceWorkflowType, replace)
		}, 1},
		{"a replacement run as a child", func(f *fakeFleet, env *testsuite.TestWorkflowEnvironment) {
			env.RegisterWorkflow(replaceAsChild)
			env.ExecuteWorkflow(replaceAsChild, replace)
		}, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFakeFleet()
			if tc.name != "a failover" {
				f.primary = f.clients[0]
			}
			env := f.env(t)
			tc.run(f, env)
			if err := env.GetWorkflowError(); err != nil {
				t.Fatalf("%v\n%v", err, f.calls)
			}
			if got := f.count("NoteIncident 7 resolved"); got != tc.want {
				t.Errorf("the incident was resolved %d times, want %d: %v", got, tc.want, f.calls)
			}
		})
	}
}

// TestFailoverOfAServerServingNothing proves a failover of a file server that is the primary
// of no DRBD resource (a replacement still bootstrapping, watched too early) ends at assess:
// it stops nothing, builds nothing, promotes nothing.
func TestFailoverOfAServerServingNothing(t *testing.T) {
	f := newFakeFleet()
	f.servesNothing = true
	env := f.env(t)
	env.ExecuteWorkflow(FailoverWorkflowType, failoverInput(FailoverPolicy{}))
	var app *temporal.ApplicationError
	if err := env.GetWorkflowError(); !errors.As(err, &app) || app.Type() != ErrNothingToFailOver {
		t.Fatalf("error %v, want %s", err, ErrNothingToFailOver)
	}
	for _, call := range []string{"StopInstance", "FenceInstance", "BuildServer", "DRBDPromote", "SwitchRecord"} {
		if f.count(call) != 0 {
			t.Errorf("%s called for a server serving nothing: %v", call, f.calls)
		}
	}
}
