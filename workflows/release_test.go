package workflows

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/mock"
	"go.temporal.io/sdk/temporal"

	"github.com/anyops/anyops"
	"github.com/anyops/anyops/activities"
)

// factsOf reads the model as Release's gather does.
func (f *releaseFleet) factsOf(t *testing.T, in ReleaseInput) releaseFacts {
	t.Helper()
	ctx := context.Background()
	cv, _ := f.ClusterVolumes(ctx, activities.ClusterVolumesInput{Cluster: in.Cluster})
	inv, _ := f.ClusterInventory(ctx, activities.ClusterInventoryInput{Cluster: in.Cluster})
	st, _ := f.DRBDStatus(ctx, activities.DRBDStatusInput{InstanceID: f.file.InstanceID})
	mounts, _ := f.Mounts(ctx, activities.InstanceRef{InstanceID: f.file.InstanceID})
	return releaseFacts{In: in, Inventory: inv, Cloud: cv, DRBD: st.Resources, Mounts: mounts, Now: time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)}
}

func moveOf(p ReleasePlan, volume string) (VolumeMove, bool) {
	i := slices.IndexFunc(p.Volumes, func(m VolumeMove) bool { return m.VolumeID == volume })
	if i < 0 {
		return VolumeMove{}, false
	}
	return p.Volumes[i], true
}

// TestReleasePlan: every attached volume is in the plan with its way — the seeds' release
// forgot logs and Dropbox; here a zone move snapshots logs in the window (after a full one
// ahead) and defers Dropbox, hands the home resources over by their replicas — and a volume
// the inventory does not know is a blocker until it is classified. The hash follows the
// decisions, not the minute.
func TestReleasePlan(t *testing.T) {
	cases := []struct {
		name         string
		extra        bool
		targetZone   string
		wantBlockers []string
		wantWays     map[string]anyops.VolumeWay
		wantDeferred []string
	}{
		{name: "same zone", wantWays: map[string]anyops.VolumeWay{"vol-0a000000000000000": anyops.WayReplica,
			"vol-0109500000000000l": anyops.WayInZone, "vol-0d0b0000000000000": anyops.WayInZone, "vol-0b000000000000000": anyops.WayStays}},
		{name: "zone move", targetZone: "us-east-1c", wantWays: map[string]anyops.VolumeWay{"vol-0a000000000000000": anyops.WayReplica,
			"vol-0109500000000000l": anyops.WaySnapshot, "vol-0d0b0000000000000": anyops.WaySnapshot}, wantDeferred: []string{"vol-0d0b0000000000000"}},
		{name: "untagged extra volume", extra: true, wantBlockers: []string{extraVolume}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := newReleaseFleet()
			f.extra = c.extra
			in := releaseInput(ReleasePolicy{})
			in.TargetZone = c.targetZone
			p := planRelease(f.factsOf(t, in))
			var blockers []string
			for _, b := range p.Blockers {
				blockers = append(blockers, b.VolumeID)
				if b.Kind != anyops.BlockerUnknownVolume || !strings.Contains(b.Message, "classify") {
					t.Errorf("blocker %+v: want an unknown-volume blocker that says to classify it", b)
				}
			}
			if !slices.Equal(blockers, c.wantBlockers) {
				t.Errorf("blockers %v, want %v", blockers, c.wantBlockers)
			}
			if got, want := len(p.Volumes), 6+len(c.wantBlockers); got != want {
				t.Errorf("%d volumes in the plan, want every attached one: %d", got, want)
			}
			for id, way := range c.wantWays {
				if m, ok := moveOf(p, id); !ok || m.Way != way {
					t.Errorf("%s: way %q, want %q", id, m.Way, way)
				}
			}
			var deferred []string
			for _, m := range p.Volumes {
				if m.Deferred {
					deferred = append(deferred, m.VolumeID)
				}
			}
			if !slices.Equal(deferred, c.wantDeferred) {
				t.Errorf("deferred %v, want %v", deferred, c.wantDeferred)
			}
			if p.PredictedDowntimeSeconds <= 0 || p.Hash == "" || len(p.CriticalPath) == 0 {
				t.Errorf("plan without a prediction, critical path or hash: %+v", p)
			}
			later := f.factsOf(t, in)
			later.Now = later.Now.Add(time.Hour)
			if h := planRelease(later).Hash; h != p.Hash {
				t.Errorf("the hash changed with the time alone: %s, was %s", h, p.Hash)
			}
		})
	}
	// Classifying the extra volume changes the plan, and its hash.
	f := newReleaseFleet()
	f.extra = true
	facts := f.factsOf(t, releaseInput(ReleasePolicy{}))
	before := planRelease(facts)
	facts.Inventory.Classifications[extraVolume] = activities.Classification{Kind: anyops.VolumeLogs, Criticality: anyops.Critical, By: "api:operator"}
	after := planRelease(facts)
	if len(after.Blockers) != 0 || after.Hash == before.Hash {
		t.Errorf("classified: blockers %v, hash %s (was %s): want none and a new hash", after.Blockers, after.Hash, before.Hash)
	}
}

// TestReleaseDryRun: a dry run returns the plan, blockers included, and changes nothing.
func TestReleaseDryRun(t *testing.T) {
	f := newReleaseFleet()
	f.extra = true
	env := f.env(t)
	in := releaseInput(ReleasePolicy{})
	in.DryRun = true
	env.ExecuteWorkflow(ReleaseWorkflowType, in)
	res := f.result(t, env)
	if res.Outcome != ReleaseDryRun || len(res.Plan.Blockers) != 1 || res.Plan.Blockers[0].VolumeID != extraVolume {
		t.Errorf("outcome %s, blockers %+v: want a dry run naming %s", res.Outcome, res.Plan.Blockers, extraVolume)
	}
	if len(f.calls) != 0 {
		t.Errorf("a dry run changed things: %v", f.calls)
	}
}

// TestReleaseApproval: the cutover waits for the approval of the current plan: one without
// a hash or with a stale one is refused (StalePlan), nothing stops serving meanwhile; an abort
// ends the release with the old cluster serving.
func TestReleaseApproval(t *testing.T) {
	f := newReleaseFleet()
	env := f.env(t)
	d := newDecisions(env)
	var hash string
	env.RegisterDelayedCallback(func() {
		st := status(t, env)
		if st.Plan == nil {
			t.Fatal("no plan in Status")
		}
		hash = st.Plan.Hash
		d.send("no-hash", UpdateApprove, DecisionInput{By: "api:operator"})
		d.send("stale", UpdateApprove, DecisionInput{By: "api:operator", PlanHash: "0123456789abcdef"})
	}, 2*time.Hour)
	env.RegisterDelayedCallback(func() {
		if i := f.index("UnexportNFS"); i >= 0 {
			t.Errorf("maintenance began without an approval: %v", f.calls)
		}
		d.send("abort-no-reason", UpdateAbort, DecisionInput{By: "api:operator"})
		d.send("abort", UpdateAbort, DecisionInput{By: "api:operator", Reason: "not tonight"})
	}, 4*time.Hour)
	env.ExecuteWorkflow(ReleaseWorkflowType, releaseInput(ReleasePolicy{}))
	res := f.result(t, env)
	d.check(t, "no-hash", false)
	d.check(t, "stale", false)
	var app *temporal.ApplicationError
	if err := d.errs["stale"]; !errors.As(err, &app) || app.Type() != ErrStalePlan || !strings.Contains(app.Message(), hash) {
		t.Errorf("stale approval: %v, want %s naming the current plan %s", err, ErrStalePlan, hash)
	}
	d.check(t, "abort-no-reason", false)
	d.check(t, "abort", true)
	if res.Outcome != ReleaseAborted || f.index("UnexportNFS") >= 0 || f.index("DRBDPromote") >= 0 {
		t.Errorf("outcome %s, calls %v: want aborted with the old cluster serving untouched", res.Outcome, f.calls)
	}
	// What the pre-stage built is gone; nothing of the live cluster is.
	slices.Sort(f.terminated)
	if want := []string{"live-2-backup", "live-2-file", "live-2-web1"}; !slices.Equal(f.terminated, want) || f.index("RecordFleet cluster live-2 retired") < 0 {
		t.Errorf("terminated %v, want %v with live-2 retired", f.terminated, want)
	}
}

// TestReleaseCutover: approved with the current hash, a release in the same zone stops the
// old file server, hands the backup's volumes and the logs and Dropbox volumes to the new file
// server, which alone is promoted and serves, moves the names, checks the clients, and records
// the new cluster live and the old standby; after the retention the old cluster is retired
// (only then are its servers terminated). Nothing is attached twice.
func TestReleaseCutover(t *testing.T) {
	f := newReleaseFleet()
	env := f.env(t)
	d := newDecisions(env)
	env.RegisterDelayedCallback(func() {
		d.send("approve", UpdateApprove, DecisionInput{By: "api:operator", PlanHash: status(t, env).Plan.Hash})
	}, 2*time.Hour)
	env.ExecuteWorkflow(ReleaseWorkflowType, releaseInput(ReleasePolicy{}))
	res := f.result(t, env)
	d.check(t, "approve", true)
	if res.Outcome != ReleaseLive || res.FileServer != "live-2-file" {
		t.Fatalf("outcome %s on %s, want live on live-2-file\ncalls %v", res.Outcome, res.FileServer, f.calls)
	}
	for _, v := range []string{"vol-0b000000000000000", "vol-0b000000000000001", "vol-0109500000000000l", "vol-0d0b0000000000000"} {
		if got := f.attached[v]; got != "i-0ne100210" {
			t.Errorf("%s is attached to %q, want the new file server", v, got)
		}
		if n := f.count("AttachVolume " + v); n != 1 {
			t.Errorf("%s attached %d times", v, n)
		}
	}
	order := []string{"UnexportNFS live-file", "StopRAID live-file", "DRBDSecondary live-file", "AttachVolume vol-0b000000000000000", "DRBDPromote live-2-file",
		"SwitchRecord files.live.internal", "RemountNFS live-2-web1", "RecordFleet cluster live-2 live", "RecordFleet cluster live retired", "TerminateInstance live-file"}
	last := -1
	for _, c := range order {
		i := f.index(c)
		if i <= last {
			t.Errorf("%q at %d, want it after the step before (%d)\ncalls %v", c, i, last, f.calls)
		}
		last = max(last, i)
	}
	if f.count("DRBDPromote") != 1 || slices.Contains(f.terminated, "live-2-file") {
		t.Errorf("promotions %d, terminated %v", f.count("DRBDPromote"), f.terminated)
	}
	if res.DowntimeSeconds < 0 || res.PredictedDowntimeSeconds <= 0 || res.RetiredAt == nil {
		t.Errorf("downtime %.0f (predicted %.0f), retired %v", res.DowntimeSeconds, res.PredictedDowntimeSeconds, res.RetiredAt)
	}
}

// TestReleaseCutoverRefusedWithoutCopy is the no-copy-in-target interlock: the backup falls
// behind after the approval; the cutover waits, shows the interlock blocked and stops nothing
// from serving, and goes ahead once the copy is UpToDate again.
func TestReleaseCutoverRefusedWithoutCopy(t *testing.T) {
	f := newReleaseFleet()
	f.behindAtCutover = true
	env := f.env(t)
	env.RegisterDelayedCallback(func() {
		st := status(t, env)
		if !slices.ContainsFunc(st.Blocked, func(b Blocked) bool { return b.Interlock == string(anyops.InterlockNoCopyInTarget) }) {
			t.Errorf("blocked %+v, want %s", st.Blocked, anyops.InterlockNoCopyInTarget)
		}
		if f.index("UnexportNFS") >= 0 {
			t.Errorf("the old file server stopped serving while a copy was missing: %v", f.calls)
		}
		f.mu.Lock()
		f.backupBehind = false
		f.mu.Unlock()
	}, 6*time.Hour)
	env.ExecuteWorkflow(ReleaseWorkflowType, releaseInput(ReleasePolicy{NoApproval: true}))
	res := f.result(t, env)
	if res.Outcome != ReleaseLive {
		t.Errorf("outcome %s, want live once the copy was back", res.Outcome)
	}
}

// TestReleaseRollsBack: the new cluster's clients fail their health check; the release rolls
// back by itself — the new file server stops serving, the old one (a connected Secondary
// throughout) is Primary again, the name points back, the volumes go back to the backup, and
// the new cluster is retired; nothing of the old cluster is terminated.
func TestReleaseRollsBack(t *testing.T) {
	f := newReleaseFleet()
	f.unhealthy = true
	env := f.env(t)
	env.ExecuteWorkflow(ReleaseWorkflowType, releaseInput(ReleasePolicy{NoApproval: true}))
	res := f.result(t, env)
	if res.Outcome != ReleaseRolledBack || res.FileServer != "live-file" {
		t.Fatalf("outcome %s on %s, want rolled back to live-file\ncalls %v", res.Outcome, res.FileServer, f.calls)
	}
	for _, v := range []string{"vol-0b000000000000000", "vol-0b000000000000001"} {
		if f.attached[v] != f.backup.InstanceID {
			t.Errorf("%s is on %s, want it back on the backup", v, f.attached[v])
		}
	}
	for _, v := range []string{"vol-0109500000000000l", "vol-0d0b0000000000000"} {
		if f.attached[v] != f.file.InstanceID {
			t.Errorf("%s is on %s, want it back on the old file server", v, f.attached[v])
		}
	}
	for r, p := range f.primary {
		if p != f.file.InstanceID {
			t.Errorf("%s is Primary on %q, want the old file server", r, p)
		}
	}
	if f.mounts[f.web.InstanceID] != f.file.PrivateIP {
		t.Errorf("the old client mounts %s", f.mounts[f.web.InstanceID])
	}
	for _, n := range f.terminated {
		if !strings.HasPrefix(n, "live-2-") {
			t.Errorf("terminated %s of the old cluster", n)
		}
	}
	if f.index("RecordFleet cluster live-2 retired") < 0 || f.index("RecordFleet cluster live-2 live") >= 0 {
		t.Errorf("the new cluster was not retired, or was recorded live: %v", f.calls)
	}
}

// TestReleaseApprovalTimesOut: a plan nobody approves within the approval timeout ends the
// release before anything stopped serving.
func TestReleaseApprovalTimesOut(t *testing.T) {
	f := newReleaseFleet()
	env := f.env(t)
	in := releaseInput(ReleasePolicy{})
	in.Timing.ApprovalTimeout = 3 * time.Hour
	env.ExecuteWorkflow(ReleaseWorkflowType, in)
	var app *temporal.ApplicationError
	if err := env.GetWorkflowError(); !errors.As(err, &app) || app.Type() != ErrApprovalTimeout {
		t.Fatalf("error %v, want %s", err, ErrApprovalTimeout)
	}
	if f.index("UnexportNFS") >= 0 || len(f.terminated) != 3 || slices.ContainsFunc(f.terminated, func(n string) bool { return !strings.HasPrefix(n, "live-2-") }) {
		t.Errorf("terminated %v, calls %v: want only the new cluster gone, nothing stopped serving", f.terminated, f.calls)
	}
}

// TestReleaseHoldsTheOldClusterInMaintenance: the release names the old file server in its
// maintenance hold (MemoMaintenance, which the alarm intake reads) before the file server
// stops serving, so its NFS watch seeing the export go starts no failover; once live, the hold
// is the whole standby cluster; after a rollback, once the old file server serves again, the
// hold is empty and its alarms are faults again.
func TestReleaseHoldsTheOldClusterInMaintenance(t *testing.T) {
	for _, tc := range []struct {
		name      string
		unhealthy bool
		after     string // the call the last hold follows
		last      string // the last hold
	}{
		{"live", false, "RecordFleet cluster live-2 live", "hold [live-file live-backup live-web1]"},
		{"rolled back", true, "RemountNFS live-web1", "hold []"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newReleaseFleet()
			f.unhealthy = tc.unhealthy
			env := f.env(t)
			env.OnUpsertMemo(mock.Anything).Run(func(args mock.Arguments) {
				f.log("hold %v", args.Get(0).(map[string]any)[MemoMaintenance])
			}).Return()
			env.ExecuteWorkflow(ReleaseWorkflowType, releaseInput(ReleasePolicy{NoApproval: true}))
			f.result(t, env)
			first, unexport := f.index("hold [live-file]"), f.index("UnexportNFS live-file")
			if first < 0 || unexport < 0 || first > unexport {
				t.Fatalf("the hold of live-file at %d, its unexport at %d: want it held before it stops serving\ncalls %v", first, unexport, f.calls)
			}
			var holds []int
			for i, c := range f.calls {
				if strings.HasPrefix(c, "hold ") {
					holds = append(holds, i)
				}
			}
			last := holds[len(holds)-1]
			if f.calls[last] != tc.last || last < f.index(tc.after) {
				t.Fatalf("the last hold is %q at %d, want %q after %q (%d)\ncalls %v", f.calls[last], last, tc.last, tc.after, f.index(tc.after), f.calls)
			}
		})
	}
}

// TestReleaseRetentionIsTheCloudsTime: under a simulated cloud at speed 10 the standby is kept
// for the policy's retention in the cloud's time — a tenth of it in the worker's — as every
// other wait of the release's timing; before, the worker slept the whole retention.
func TestReleaseRetentionIsTheCloudsTime(t *testing.T) {
	f := newReleaseFleet()
	env := f.env(t)
	var timers []time.Duration
	env.SetOnTimerScheduledListener(func(_ string, d time.Duration) { timers = append(timers, d) })
	in := releaseInput(ReleasePolicy{NoApproval: true, Retention: 10 * time.Hour})
	in.Timing = ReleaseTiming{}.Scaled(10)
	env.ExecuteWorkflow(ReleaseWorkflowType, in)
	if res := f.result(t, env); res.RetiredAt == nil {
		t.Fatal("the old cluster was not retired")
	}
	if !slices.Contains(timers, time.Hour) || slices.Contains(timers, 10*time.Hour) {
		t.Fatalf("timers %v: want the 10 h retention waited as 1 h of the worker's at speed 10", timers)
	}
}
