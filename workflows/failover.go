package workflows

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/anyops/anyops"
	"github.com/anyops/anyops/activities"
)

// FileServerFailover (failover/<server>) brings a failed file server's data back to serving,
// as fast as any of three ways can, without ever letting two servers write it. It assesses in
// seconds (status checks, the DRBD state of every resource on the backup, the zone's warm
// spares), then races the ways back at once — promote the hot backup, repair the failed
// server, replace it — each a workflow.Go branch under one cancellable context, watched by a
// selector (temporalio/samples-go's pickfirst). There is one commit point: a branch with a
// server ready to serve asks for the cutover, and only one branch is ever granted it. The
// winner fences the old primary before it serves (a forced stop: it can never write to the
// data again), takes the data over and checks that it serves; the file service's name is
// moved at the commit, and each client is remounted and checked once the winner serves. The
// losers are cancelled and cleaned up, or kept as the new backup or spare (FailoverPolicy,
// docs/failover.md). Before it ends it restores a hot backup — the repaired old primary, the
// old backup, or a new one — and shows the time with none. Humans decide through updates:
// approve (when the policy asks for approval before the cutover), abort (before it), override
// (of an interlock holding something up, with a reason; audited).
func FileServerFailover(ctx workflow.Context, in FailoverInput) (FailoverResult, error) {
	defer decisionsAnswered(ctx)
	w, err := newFailover(ctx, in)
	if err != nil {
		return FailoverResult{}, err
	}
	if err := w.assess(ctx); err != nil {
		return w.fail(ctx, stepAssess, err)
	}
	if err := w.race(ctx); err != nil {
		if w.abort != nil {
			return w.aborted(ctx)
		}
		return w.fail(ctx, stepRace, err)
	}
	// The new picture holds from the cutover on: the inventory (the dashboard, the watches)
	// shows it while the clients switch and a backup resyncs, and again once that is done.
	if err := w.record(ctx); err != nil {
		return w.fail(ctx, stepRecord, err)
	}
	if err := w.switchClients(ctx); err != nil {
		return w.fail(ctx, stepClients, err)
	}
	if err := w.restoreRedundancy(ctx); err != nil {
		return w.fail(ctx, stepRedundancy, err)
	}
	if err := w.record(ctx); err != nil {
		return w.fail(ctx, stepRecord, err)
	}
	return w.finish(ctx)
}

// ErrNothingToFailOver is the error type of a failover of a file server that serves no data.
const ErrNothingToFailOver = "NothingToFailOver"

// Steps of FileServerFailover, as its Status shows them.
const (
	stepAssess     = "assess"
	stepRace       = "race"
	stepFence      = "fence"
	stepTakeOver   = "take-over"
	stepClients    = "switch-clients"
	stepRedundancy = "restore-redundancy"
	stepRecord     = "record"
)

// FailoverSteps are FileServerFailover's steps in order.
var FailoverSteps = []string{stepAssess, stepRace, stepFence, stepTakeOver, stepClients, stepRedundancy, stepRecord}

// FailoverResult is what a failover did.
type FailoverResult struct {
	// Server is the failed file server.
	Server string `json:"server"`
	// Winner is the way that won the race; Serving the server that serves the data now.
	Winner    anyops.RecoveryWay `json:"winner,omitempty"`
	Serving   string             `json:"serving,omitempty"`
	ServingIP string             `json:"serving_ip,omitempty"`
	// Fence is how the old primary was fenced (none when the repaired primary itself won).
	Fence *activities.Fence `json:"fence,omitempty"`
	// Clients maps each client to the server its mount reaches, checked reading and writing.
	Clients map[string]string `json:"clients,omitempty"`
	// Backup is the new hot backup; NoHotBackupSeconds the time the data had none.
	Backup             string  `json:"backup,omitempty"`
	NoHotBackupSeconds float64 `json:"no_hot_backup_seconds"`
	// WithoutHotBackup: it ended with no hot backup, by the override of no-hot-backup.
	WithoutHotBackup bool `json:"without_hot_backup,omitempty"`
	// BackupRebuiltBy is the BackupRebuild the failover joined, when the backup's own alarm
	// had started it: that run made the new backup (Backup is then empty).
	BackupRebuiltBy string `json:"backup_rebuilt_by,omitempty"`
	// Spare is a server a losing way built and kept as the zone's warm spare.
	Spare string `json:"spare,omitempty"`
	// Aborted: an operator aborted before the cutover; nothing took the data over.
	Aborted bool `json:"aborted,omitempty"`
	// Overrides are the interlocks passed, with who and why.
	Overrides []string `json:"overrides,omitempty"`
	// Outcomes is how each way ended.
	Outcomes map[anyops.RecoveryWay]string `json:"outcomes,omitempty"`
}

// failover is one run of FileServerFailover.
type failover struct {
	root    workflow.Context // the workflow's own context: what outlives a branch
	in      FailoverInput
	timing  RecoveryTiming
	policy  FailoverPolicy
	scope   string // the idempotency scope: the first run's id
	tracker *Tracker
	res     FailoverResult

	// What assess found.
	target    activities.RecoveryTarget
	primary   activities.ServerInfo
	resources []activities.ReplicaInfo // the primary's DRBD resources, by name
	backup    *activities.ServerInfo   // their other side, the hot backup (nil: none)
	// backupDisks is each resource's disk state on the backup ("" when it could not be read).
	backupDisks map[string]string
	spares      []activities.ServerInfo

	// The race.
	cancelRace workflow.CancelFunc
	branches   []*raceBranch
	granted    anyops.RecoveryWay // the one commit point: "" until a way is granted the cutover
	dns        workflow.Future    // the file service's name moving to the winner, from the commit
	fence      *activities.Fence
	claimed    *activities.ServerInfo // the warm spare the replace way claimed, as it was
	// joinedRebuild is the id of a BackupRebuild running already that restores the backup.
	joinedRebuild string
	serving       *activities.ServerInfo // set once the winner serves
	kept          map[anyops.RecoveryWay]wayOutcome

	// Human decisions.
	approved *DecisionInput
	abort    *DecisionInput
	locks    *interlocks
}

// raceBranch is one way in the race.
type raceBranch struct {
	way    anyops.RecoveryWay
	cancel workflow.CancelFunc
	done   workflow.Future // of a wayOutcome
	ended  bool
}

// wayOutcome is how a way ended: it served (the winner), or lost and kept a server (as the new
// backup, or a spare), or lost with nothing to keep.
type wayOutcome struct {
	Served bool                  `json:"served"`
	Server activities.ServerInfo `json:"server"`
	// Keep says what a losing way's server is kept as: "backup", "spare", or "".
	Keep string `json:"keep,omitempty"`
	// Hostname is the kept or serving server's host name (for DRBD's resource files).
	Hostname string `json:"hostname,omitempty"`
	Message  string `json:"message,omitempty"`
}

// What a losing way's server is kept as.
const (
	keepBackup = "backup"
	keepSpare  = "spare"
)

func newFailover(ctx workflow.Context, in FailoverInput) (*failover, error) {
	w := &failover{root: ctx, in: in, timing: in.Timing.withDefaults(), policy: in.Policy.withDefaults(),
		scope: workflow.GetInfo(ctx).FirstRunID, kept: map[anyops.RecoveryWay]wayOutcome{},
		res: FailoverResult{Server: in.Server, Outcomes: map[anyops.RecoveryWay]string{}}}
	var err error
	if w.tracker, err = NewTracker(ctx, FailoverSteps...); err != nil {
		return nil, err
	}
	for _, way := range w.policy.Ways {
		w.tracker.Branch(string(way), func(*Branch) {})
	}
	w.locks = newInterlocks(w.tracker, w.timing, anyops.FailoverWorkflowID(in.Server), in.IncidentID)
	if err := w.registerDecisions(ctx); err != nil {
		return nil, err
	}
	return w, nil
}

// Activity contexts of the failover.
func (w *failover) callCtx(ctx workflow.Context) workflow.Context {
	return workflow.WithActivityOptions(ctx, w.timing.callOptions())
}
func (w *failover) hostCtx(ctx workflow.Context) workflow.Context {
	return workflow.WithActivityOptions(ctx, w.timing.hostOptions())
}

// quickHostCtx is for a look at a host that may be down: few attempts, so that an unreachable
// host is an answer within seconds rather than a minute of retries.
func (w *failover) quickHostCtx(ctx workflow.Context) workflow.Context {
	o := w.timing.hostOptions()
	o.RetryPolicy = &temporal.RetryPolicy{InitialInterval: w.timing.PollInterval, MaximumAttempts: 2}
	return workflow.WithActivityOptions(ctx, o)
}

func (w *failover) waitCtx(ctx workflow.Context, d time.Duration) workflow.Context {
	return workflow.WithActivityOptions(ctx, w.timing.boundedWaitOptions(d))
}

// deadlineCtx is for a wait whose end is a decision (force the stop, call the boot failed):
// it ends within d and a poll, retries included. The wait activities give up retryably at
// their Timeout and a retry waits again, so without the bound twenty retries made a 2-minute
// stop timeout twenty times as long.
func (w *failover) deadlineCtx(ctx workflow.Context, d time.Duration) workflow.Context {
	o := w.timing.boundedWaitOptions(d + w.timing.PollInterval)
	o.ScheduleToCloseTimeout = d + w.timing.PollInterval
	return workflow.WithActivityOptions(ctx, o)
}

// event puts a line on the Status timeline and the incident's.
func (w *failover) event(ctx workflow.Context, format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	w.tracker.Event(msg)
	noteIncident(ctx, w.timing, w.in.IncidentID, msg)
}

// ---------------------------------------------------------------------------------------
// Assess.

// assess reads the failed server, its DRBD resources, its backup and the zone's spares from
// the inventory, then at once the status checks of the primary and the backup and the DRBD
// state of every resource on the backup (through SSM).
func (w *failover) assess(ctx workflow.Context) error {
	w.tracker.Start(stepAssess, "reading "+w.in.Server+" from the inventory")
	w.event(ctx, "failover of %s started (requested by %s)", w.in.Server, w.in.RequestedBy)
	if err := workflow.ExecuteActivity(w.callCtx(ctx), recInv.RecoveryTarget, activities.RecoveryTargetInput{Server: w.in.Server}).Get(ctx, &w.target); err != nil {
		return err
	}
	w.primary = w.target.Server
	if w.primary.Role != anyops.RoleFile {
		return temporal.NewNonRetryableApplicationError(fmt.Sprintf("%s is a %s server, not a file server: it does not fail over", w.primary.Name, w.primary.Role), anyops.EINVALID, nil)
	}
	_ = workflow.UpsertTypedSearchAttributes(ctx, SearchCluster.ValueSet(w.primary.Cluster), SearchZone.ValueSet(w.primary.Zone))
	for _, r := range w.target.Replicas {
		if r.PrimaryServer == w.primary.Name {
			w.resources = append(w.resources, r)
		}
	}
	if len(w.resources) == 0 {
		// A file server that serves no data (a replacement still bootstrapping, a spare):
		// nothing to fail over, and stopping it or building another would do harm.
		return temporal.NewNonRetryableApplicationError(fmt.Sprintf("%s is the primary of no DRBD resource: it serves no data, there is nothing to fail over", w.primary.Name), ErrNothingToFailOver, nil)
	}
	peer := w.target.Peers[w.resources[0].SecondaryServer]
	w.backup = &peer
	if !w.policy.NoWarmSpare {
		w.spares = w.target.Spares
	}

	w.tracker.Start(stepAssess, "status checks and the backup's DRBD state")
	primaryHealth := workflow.ExecuteActivity(w.callCtx(ctx), recCloud.InstanceStatus, activities.InstanceRef{InstanceID: w.primary.InstanceID})
	var backupDRBD workflow.Future
	if w.backup != nil {
		backupDRBD = workflow.ExecuteActivity(w.quickHostCtx(ctx), recHosts.DRBDStatus, activities.DRBDStatusInput{InstanceID: w.backup.InstanceID})
	}
	var health activities.InstanceHealth
	if err := primaryHealth.Get(ctx, &health); err != nil {
		return err
	}
	w.backupDisks = map[string]string{}
	backupState := "no backup"
	if backupDRBD != nil {
		var st activities.DRBDStatusOutput
		if err := backupDRBD.Get(ctx, &st); err != nil {
			backupState = "backup " + w.backup.Name + " unreachable: " + err.Error()
		} else {
			var states []string
			for _, r := range w.resources {
				for _, got := range st.Resources {
					if got.Name == r.Name {
						w.backupDisks[r.Name] = got.Disk
						states = append(states, fmt.Sprintf("%s %s%s", r.Name, got.Disk, syncDone(got)))
					}
				}
			}
			backupState = "backup " + w.backup.Name + ": " + strings.Join(states, ", ")
		}
	}
	// In the workflow's own clock: since the checks began to fail, when the cloud's clock says
	// so plausibly (a simulated cloud keeps its own), else since the failover started.
	since := workflow.Now(ctx)
	if s := health.ImpairedSince; s != nil && s.Before(since) && since.Sub(*s) < w.timing.SyncTimeout {
		since = *s
	}
	w.tracker.SetRedundancy(Redundancy{NoHotBackupSince: &since, Speed: w.timing.Speed, Message: "the failed server's data has no hot copy: " + backupState})
	summary := fmt.Sprintf("%s is %s (system %s, instance %s); %d DRBD resources; %s; %d warm spares in %s",
		w.primary.Name, health.State, health.SystemStatus, health.InstanceStatus, len(w.resources), backupState, len(w.spares), w.primary.Zone)
	w.tracker.Done(stepAssess, summary)
	w.event(ctx, "assessed: %s", summary)
	return nil
}

// syncDone words a resource's resync progress, when it is resyncing.
func syncDone(r activities.DRBDResource) string {
	if len(r.Peers) > 0 && r.Peers[0].Done > 0 {
		return fmt.Sprintf(" (%.1f%% synced)", r.Peers[0].Done)
	}
	return ""
}

// backupUpToDate says whether every resource of the primary is UpToDate on the backup, and
// names those that are not.
func (w *failover) backupUpToDate() (bool, []string) {
	var not []string
	for _, r := range w.resources {
		if d := w.backupDisks[r.Name]; d != "UpToDate" {
			not = append(not, fmt.Sprintf("%s is %s", r.Name, cmpOr(d, "unknown")))
		}
	}
	return len(not) == 0 && len(w.resources) > 0, not
}

func cmpOr(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// ---------------------------------------------------------------------------------------
// The race and its one commit point.

// race starts every way of the policy at once and returns when one serves: the winner. The
// others go on in the background, to be kept or cancelled by the loser policy (dismiss).
func (w *failover) race(ctx workflow.Context) error {
	w.tracker.Start(stepRace, fmt.Sprintf("racing %v", w.policy.Ways))
	raceCtx, cancel := workflow.WithCancel(ctx)
	w.cancelRace = cancel
	sel := workflow.NewSelector(ctx)
	var failures []string
	for _, way := range w.policy.Ways {
		branchCtx, cancelBranch := workflow.WithCancel(raceCtx)
		done, settle := workflow.NewFuture(ctx)
		b := &raceBranch{way: way, cancel: cancelBranch, done: done}
		w.branches = append(w.branches, b)
		w.setBranch(way, StepRunning, "starting", 0)
		workflow.Go(branchCtx, func(ctx workflow.Context) {
			out, err := w.runWay(ctx, way)
			settle.Set(out, err)
		})
		sel.AddFuture(done, func(f workflow.Future) {
			b.ended = true
			var out wayOutcome
			if err := f.Get(ctx, &out); err != nil {
				failures = append(failures, fmt.Sprintf("%s: %v", way, err))
				w.endBranch(way, err)
				return
			}
			w.settled(ctx, way, out)
		})
	}
	for range w.branches {
		sel.Select(ctx)
		if w.serving != nil {
			break
		}
	}
	if w.serving == nil {
		if w.abort != nil {
			return errors.New("aborted")
		}
		err := temporal.NewNonRetryableApplicationError("no way back to serving: "+strings.Join(failures, "; "), "NoWayBack", nil)
		w.tracker.Fail(stepRace, err)
		return err
	}
	w.tracker.Done(stepRace, fmt.Sprintf("%s won: %s serves", w.granted, w.serving.Name))
	w.dismiss(ctx)
	return nil
}

// runWay runs one way; a way that was not configured is skipped.
func (w *failover) runWay(ctx workflow.Context, way anyops.RecoveryWay) (wayOutcome, error) {
	switch way {
	case anyops.WayPromote:
		return w.promote(ctx)
	case anyops.WayRepair:
		return w.repair(ctx)
	case anyops.WayReplace:
		return w.replace(ctx)
	}
	return wayOutcome{}, temporal.NewNonRetryableApplicationError("unknown way "+string(way), anyops.EINVALID, nil)
}

// settled records how a way ended.
func (w *failover) settled(ctx workflow.Context, way anyops.RecoveryWay, out wayOutcome) {
	switch {
	case out.Served:
		w.serving = &out.Server
		w.res.Winner, w.res.Serving, w.res.ServingIP = way, out.Server.Name, out.Server.PrivateIP
		w.res.Outcomes[way] = "won"
		w.tracker.Branch(string(way), func(b *Branch) { b.State, b.Outcome, b.Progress, b.ETA = StepDone, "won", 1, nil })
	case out.Keep != "":
		w.kept[way] = out
		w.res.Outcomes[way] = "lost: kept " + out.Server.Name + " as the " + out.Keep
		w.tracker.Branch(string(way), func(b *Branch) {
			b.State, b.Outcome, b.Message, b.Progress, b.ETA = StepDone, "kept as the "+out.Keep, out.Message, 1, nil
		})
	default:
		w.res.Outcomes[way] = "lost: " + out.Message
		w.tracker.Branch(string(way), func(b *Branch) { b.State, b.Outcome, b.Message, b.ETA = StepSkipped, "lost", out.Message, nil })
	}
}

// endBranch records a way that failed or was cancelled.
func (w *failover) endBranch(way anyops.RecoveryWay, err error) {
	outcome, state := "failed", StepFailed
	if temporal.IsCanceledError(err) {
		outcome, state = "cancelled", StepSkipped
	}
	w.res.Outcomes[way] = outcome + ": " + err.Error()
	w.tracker.Branch(string(way), func(b *Branch) { b.State, b.Outcome, b.Message, b.ETA = state, outcome, err.Error(), nil })
}

// setBranch shows a way's progress.
func (w *failover) setBranch(way anyops.RecoveryWay, state StepState, message string, progress float64) {
	w.tracker.Branch(string(way), func(b *Branch) { b.State, b.Message, b.Progress = state, message, progress })
}

// branchETA shows when a way expects to be ready.
func (w *failover) branchETA(ctx workflow.Context, way anyops.RecoveryWay, in time.Duration) {
	eta := workflow.Now(ctx).Add(in)
	w.tracker.Branch(string(way), func(b *Branch) { b.ETA = &eta })
}

// cutover is the one commit point: a way with a server ready to serve (at ip) asks for the
// cutover, and is granted it only if no way has been before — the check and the grant happen
// without yielding, so of ways asking at the same moment exactly one gets it. With the policy's
// approval it waits for the approve update first. An abort, or the grant to another way, is a
// refusal. At the grant the file service's name starts moving to ip.
func (w *failover) cutover(ctx workflow.Context, way anyops.RecoveryWay, server activities.ServerInfo) (bool, error) {
	msg := "ready to serve on " + server.Name + ": asking for the cutover"
	if w.policy.ApproveCutover {
		msg += " (waiting for approval)"
	}
	w.setBranch(way, StepRunning, msg, 0.8)
	if err := workflow.Await(ctx, func() bool {
		return w.granted != "" || w.abort != nil || !w.policy.ApproveCutover || w.approved != nil
	}); err != nil {
		return false, err
	}
	if w.granted != "" || w.abort != nil {
		return false, nil
	}
	w.granted = way
	w.dns = w.startSwitchName(ctx, server.PrivateIP)
	w.event(ctx, "cutover granted to %s: %s takes the data over", way, server.Name)
	return true, nil
}

// lostTo says whether another way holds the cutover: a way that sees it stops competing.
func (w *failover) lostTo(way anyops.RecoveryWay) bool { return w.granted != "" && w.granted != way }

// fenceOldPrimary fences the failed primary, once, before the winner takes its data over: a
// forced stop, after which it can never write to the data again.
func (w *failover) fenceOldPrimary(ctx workflow.Context) error {
	if w.fence != nil {
		return nil
	}
	w.tracker.Start(stepFence, "force-stopping "+w.primary.Name+" ("+w.primary.InstanceID+")")
	var fence activities.Fence
	if err := workflow.ExecuteActivity(w.callCtx(ctx), recCloud.FenceInstance, activities.FenceInput{InstanceID: w.primary.InstanceID}).Get(ctx, &fence); err != nil {
		w.tracker.Fail(stepFence, err)
		return err
	}
	w.fence = &fence
	w.res.Fence = &fence
	w.tracker.Done(stepFence, fmt.Sprintf("%s fenced: %s after a forced stop", w.primary.Name, fence.State))
	w.event(ctx, "%s fenced (%s after a forced stop): it can no longer write to the data", w.primary.Name, fence.State)
	return nil
}

// dismiss handles the ways that lost, by the loser policy: with LosersClean every one still
// running is cancelled (each cleans up what it made); with LosersKeep only those that can be of
// no use are: the promote way (its backup serves, or it lost), and the repair way when the old
// primary's volumes moved to a replacement.
func (w *failover) dismiss(ctx workflow.Context) {
	for _, b := range w.branches {
		if b.ended || b.way == w.granted {
			continue
		}
		useful := w.policy.Losers == anyops.LosersKeep &&
			(b.way == anyops.WayReplace || (b.way == anyops.WayRepair && w.granted == anyops.WayPromote))
		if !useful {
			b.cancel()
			w.event(ctx, "%s cancelled: %s won", b.way, w.granted)
		}
	}
}

// branch returns the race branch of a way, nil when it is not racing.
func (w *failover) branch(way anyops.RecoveryWay) *raceBranch {
	i := slices.IndexFunc(w.branches, func(b *raceBranch) bool { return b.way == way })
	if i < 0 {
		return nil
	}
	return w.branches[i]
}

// ---------------------------------------------------------------------------------------
// The end.

func (w *failover) fail(ctx workflow.Context, step string, err error) (FailoverResult, error) {
	w.tracker.Fail(step, err)
	w.event(ctx, "failover failed at %s: %v", step, err)
	return w.res, err
}

func (w *failover) aborted(ctx workflow.Context) (FailoverResult, error) {
	w.res.Aborted = true
	// Let the cancelled ways clean up what they made.
	for _, b := range w.branches {
		_ = b.done.Get(ctx, nil)
	}
	for _, s := range w.tracker.status.Steps {
		if s.State == StepPending {
			w.tracker.set(s.Name, func(s *Step) { s.State = StepSkipped })
		}
	}
	msg := fmt.Sprintf("aborted by %s: %s; nothing took the data over", w.abort.By, w.abort.Reason)
	w.tracker.Finish(msg)
	noteIncident(ctx, w.timing, w.in.IncidentID, msg)
	return w.res, nil
}

func (w *failover) finish(ctx workflow.Context) (FailoverResult, error) {
	red := w.tracker.Redundancy()
	w.res.NoHotBackupSeconds = red.NoHotBackupSeconds
	w.res.Overrides = w.locks.given
	msg := fmt.Sprintf("%s won: %s serves %s, fenced %s; %d clients remounted", w.res.Winner, w.res.Serving,
		anyops.FileServiceName(w.primary.Cluster), w.primary.Name, len(w.res.Clients))
	if w.res.WithoutHotBackup {
		msg += "; NO HOT BACKUP (overridden)"
	} else {
		msg += fmt.Sprintf("; hot backup %s after %.0f s without one", cmpOr(w.res.Backup, "made by "+w.res.BackupRebuiltBy), w.res.NoHotBackupSeconds)
	}
	w.tracker.Finish(msg)
	resolveIncident(ctx, w.timing, w.in.IncidentID, "failover done: "+msg)
	return w.res, nil
}
