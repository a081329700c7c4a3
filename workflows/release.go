package workflows

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/anyops/anyops"
	"github.com/anyops/anyops/activities"
)

// ReleaseWorkflowType is the registered name of Release.
const ReleaseWorkflowType = "Release"

// ReleasePlanWorkflowID is the business key of a dry run of a cluster's release: apart from
// the release's own, so a plan can be asked for while a release runs.
func ReleasePlanWorkflowID(cluster string) string { return "release-plan/" + cluster }

// changeIncrementalsSimTime is the workflow.GetVersion change id of the incremental interval
// read in the cloud's time (ReleaseTiming.Speed) rather than the worker's.
const changeIncrementalsSimTime = "release-incrementals-sim-time"

// ErrStalePlan is the approve update's refusal: the plan it names is not the current one.
const ErrStalePlan = "StalePlan"

// ErrApprovalTimeout ends a release whose plan was not approved within ApprovalTimeout.
const ErrApprovalTimeout = "ApprovalTimeout"

// Steps of Release.
const (
	stepRelPlan        = "plan"
	stepRelMoveBackup  = "move-backup"
	stepRelBuild       = "build-new-cluster"
	stepRelSeedBackup  = "seed-new-backup"
	stepRelSnapshots   = "pre-stage-snapshots"
	stepRelApproval    = "approval"
	stepRelCheckNew    = "check-new-cluster"
	stepRelCopies      = "check-copies"
	stepRelMaintenance = "maintenance"
	stepRelInSync      = "check-in-sync"
	stepRelFinalSnaps  = "final-snapshots"
	stepRelHandover    = "handover"
	stepRelServe       = "new-file-server"
	stepRelNames       = "names"
	stepRelClients     = "clients"
	stepRelLive        = "live"
	stepRelDeferred    = "deferred-volumes"
	stepRelRetention   = "retention"
	stepRelRetire      = "retire-old-cluster"
	stepRelRollback    = "rollback"
)

// ReleaseSteps are Release's steps in order (rollback only when it rolls back).
var ReleaseSteps = []string{stepRelPlan, stepRelMoveBackup, stepRelBuild, stepRelSeedBackup, stepRelSnapshots, stepRelApproval,
	stepRelCheckNew, stepRelCopies, stepRelMaintenance, stepRelInSync, stepRelFinalSnaps, stepRelHandover, stepRelServe, stepRelNames,
	stepRelClients, stepRelLive, stepRelDeferred, stepRelRetention, stepRelRetire, stepRelRollback}

// Release builds a new cluster that takes over a live one's data, in the live cluster's zone
// or another (a zone move is a release whose target zone differs): one code path
// (docs/release.md). It plans first — every volume attached to every server of the cluster,
// read from the cloud and matched against the inventory, its way to the target zone, a time
// for each, the critical path, the downtime — and with dry_run stops there. Then it pre-stages
// (the backup moved into the target zone by a storage change, the new cluster built, its
// backup seeded from snapshots, full and then incremental snapshots of the critical volumes
// that DRBD does not replicate), waits for the approval of the current plan, and cuts over:
// the new cluster checked, every critical volume's copy verified (the no-copy-in-target
// interlock), the old cluster in maintenance, the last incrementals made volumes in the target
// zone while the backup's volumes are handed to the new file server, which serves; the names
// move, every client is checked. A failure before the new cluster is live rolls back to the
// old one (which stayed a connected DRBD node throughout, so nothing written is lost).
// Deferrable volumes follow in the background; the old cluster stays a standby for the
// retention period and is then retired.
func Release(ctx workflow.Context, in ReleaseInput) (ReleaseResult, error) {
	defer decisionsAnswered(ctx)
	r, err := newRelease(ctx, in)
	if err != nil {
		return ReleaseResult{}, err
	}
	if err := r.planUntilClear(ctx); err != nil {
		return r.fail(ctx, stepRelPlan, err)
	}
	if in.DryRun {
		r.res.Outcome = ReleaseDryRun
		for _, s := range ReleaseSteps[1:] {
			r.tracker.Skip(s, "dry run")
		}
		r.tracker.Finish(fmt.Sprintf("dry run: %d volumes, %d blockers, predicted downtime %.0f s", len(r.plan.Volumes), len(r.plan.Blockers), r.plan.PredictedDowntimeSeconds))
		return r.res, nil
	}
	if r.abort != nil {
		return r.aborted(ctx)
	}
	if err := r.preStage(ctx); err != nil {
		if r.abort != nil {
			return r.aborted(ctx)
		}
		return r.fail(ctx, r.tracker.status.Phase, err)
	}
	if err := r.awaitApproval(ctx); err != nil {
		if len(r.built) > 0 {
			if rerr := r.retireNew(ctx); rerr != nil {
				r.event("retiring %s: %v", r.res.NewCluster, rerr)
			}
		}
		return r.fail(ctx, stepRelApproval, err)
	}
	if r.abort != nil {
		return r.aborted(ctx)
	}
	if err := r.cutover(ctx); err != nil {
		var rb *rollbackNeeded
		if !errors.As(err, &rb) {
			return r.fail(ctx, r.tracker.status.Phase, err)
		}
		return r.rollback(ctx, rb)
	}
	if err := r.afterLive(ctx); err != nil {
		return r.fail(ctx, r.tracker.status.Phase, err)
	}
	return r.finish(ctx)
}

// release is one run of Release: what its steps share.
type release struct {
	in      ReleaseInput
	policy  ReleasePolicy
	timing  ReleaseTiming
	tracker *Tracker
	locks   *interlocks
	scope   string
	id      string
	res     ReleaseResult

	plan  ReleasePlan
	facts releaseFacts
	// approved is the approval of the plan whose hash it names; abort an abort.
	approved *DecisionInput
	abort    *DecisionInput

	// The old cluster: its file server, the backup whose volumes are handed over (in the
	// target zone once pre-staged), its clients.
	fileServer activities.ServerInfo
	backup     activities.ServerInfo
	clients    []activities.ServerInfo
	// layouts are the DRBD resources as the file server's files have them.
	layouts []SeedResource
	// built are the new cluster's servers by name; newFile and newBackup two of them.
	built     map[string]BuiltServer
	newFile   BuiltServer
	newBackup BuiltServer
	seeded    bool
	// snapshots are the latest completed snapshots of the critical unreplicated volumes.
	snapshots map[string]activities.Snapshot
	// stoppedAt is when the old file server stopped taking writes.
	stoppedAt time.Time
	// handedOver: the backup's volumes are on the new file server; live: past the point of no
	// return.
	handedOver, serving, namesMoved, live bool
	// overrideCopies: the no-copy-in-target interlock was overridden; the volumes with no copy
	// move after the cutover.
	overrideCopies       bool
	oldZoneID, newZoneID string
	// moved maps an old volume to its copy (a handed-over volume maps to itself).
	moved map[string]string
	// deferred runs the deferrable volumes' copies in the background.
	deferred []workflow.Future
	// holds: this run keeps its maintenance hold in its memo (MemoMaintenance); false when it
	// replays a history recorded before the hold existed.
	holds bool
}

func newRelease(ctx workflow.Context, in ReleaseInput) (*release, error) {
	tracker, err := NewTracker(ctx, ReleaseSteps...)
	if err != nil {
		return nil, err
	}
	info := workflow.GetInfo(ctx)
	r := &release{in: in, policy: in.Policy.withDefaults(), timing: in.Timing.withDefaults(), tracker: tracker,
		scope: info.FirstRunID, id: info.WorkflowExecution.ID, built: map[string]BuiltServer{}, snapshots: map[string]activities.Snapshot{},
		moved: map[string]string{}}
	r.res = ReleaseResult{NewCluster: in.newCluster(), Servers: map[string]string{}, Volumes: map[string]string{}}
	// A drill's cluster runs at its own speed: a release that was given no timing scales the
	// production one by it, as the alarm intake scales a recovery's.
	if in.Timing == (ReleaseTiming{}) {
		var scale float64
		if err := workflow.ExecuteActivity(r.callCtx(ctx), recInv.ClusterTimeScale, in.Cluster).Get(ctx, &scale); err != nil {
			return nil, err
		}
		if scale > 1 {
			r.timing = ReleaseTiming{}.Scaled(scale)
		}
	}
	r.locks = newInterlocks(tracker, r.timing.RecoveryTiming, r.id, 0)
	if err := r.registerDecisions(ctx); err != nil {
		return nil, err
	}
	return r, nil
}

// cloudSeconds is a span of the worker's time in the cloud's seconds (Timing.Speed).
func (r *release) cloudSeconds(d time.Duration) float64 { return d.Seconds() * max(r.timing.Speed, 1) }

// workerDuration is a span of the cloud's seconds in the worker's time.
func (r *release) workerDuration(cloudSeconds float64) time.Duration {
	return time.Duration(cloudSeconds / max(r.timing.Speed, 1) * float64(time.Second))
}

func (r *release) callCtx(ctx workflow.Context) workflow.Context {
	return workflow.WithActivityOptions(ctx, r.timing.callOptions())
}

func (r *release) hostCtx(ctx workflow.Context) workflow.Context {
	return workflow.WithActivityOptions(ctx, r.timing.hostOptions())
}

func (r *release) waitCtx(ctx workflow.Context, d time.Duration) workflow.Context {
	return workflow.WithActivityOptions(ctx, r.timing.boundedWaitOptions(d))
}

// waitResourcesUpToDate waits until every DRBD resource of the release is UpToDate on the
// instance with every connected peer UpToDate too, and returns the resources' names. In the
// window the wait is bounded by the client timeout, not by a recovery's resync timeout.
func (r *release) waitResourcesUpToDate(ctx workflow.Context, instanceID string) ([]string, error) {
	var names []string
	for _, l := range r.layouts {
		names = append(names, l.Name)
	}
	t := r.timing.RecoveryTiming
	t.SyncTimeout = r.timing.ClientTimeout
	return names, waitUpToDate(ctx, r.hostCtx(ctx), instanceID, names, t)
}

// event adds to the timeline.
func (r *release) event(format string, args ...any) { r.tracker.Event(fmt.Sprintf(format, args...)) }

// ---------------------------------------------------------------------------------------
// The plan.

// gather reads what the plan is made from: the inventory's cluster, the cloud's volumes on
// it, the file server's DRBD and mounts.
func (r *release) gather(ctx workflow.Context) error {
	var cv activities.ClusterVolumes
	if err := workflow.ExecuteActivity(r.callCtx(ctx), recCloud.ClusterVolumes, activities.ClusterVolumesInput{Cluster: r.in.Cluster}).Get(ctx, &cv); err != nil {
		return err
	}
	ids := make([]string, len(cv.Volumes))
	for i, v := range cv.Volumes {
		ids[i] = v.ID
	}
	var inv activities.ClusterInventory
	if err := workflow.ExecuteActivity(r.callCtx(ctx), recInv.ClusterInventory, activities.ClusterInventoryInput{Cluster: r.in.Cluster, VolumeIDs: ids}).Get(ctx, &inv); err != nil {
		return err
	}
	f := releaseFacts{In: r.in, Inventory: inv, Cloud: cv, Now: workflow.Now(ctx)}
	r.fileServer, r.backup, r.clients = activities.ServerInfo{}, activities.ServerInfo{}, nil
	for _, s := range inv.Servers {
		switch {
		case s.State != anyops.ServerRunning:
		case s.Role == anyops.RoleFile:
			r.fileServer = s
		case s.Role == anyops.RoleBackup:
			r.backup = s
		case isClientRole(s.Role):
			r.clients = append(r.clients, s)
		}
	}
	if r.fileServer.InstanceID == "" {
		return temporal.NewNonRetryableApplicationError("cluster "+r.in.Cluster+" has no running file server", activities.ErrInvalidInput, nil)
	}
	var st activities.DRBDStatusOutput
	if err := workflow.ExecuteActivity(r.hostCtx(ctx), recHosts.DRBDStatus, activities.DRBDStatusInput{InstanceID: r.fileServer.InstanceID}).Get(ctx, &st); err != nil {
		return err
	}
	f.DRBD = st.Resources
	if err := workflow.ExecuteActivity(r.hostCtx(ctx), recHosts.Mounts, activities.InstanceRef{InstanceID: r.fileServer.InstanceID}).Get(ctx, &f.Mounts); err != nil {
		return err
	}
	r.facts = f
	return nil
}

// replan gathers and plans again, showing the plan.
func (r *release) replan(ctx workflow.Context) error {
	if err := r.gather(ctx); err != nil {
		return err
	}
	p := planRelease(r.facts)
	if r.plan.Hash != "" && p.Hash != r.plan.Hash {
		r.event("the plan changed: %s (was %s)", p.Hash, r.plan.Hash)
	}
	r.plan = p
	r.res.Plan, r.res.PredictedDowntimeSeconds = p, p.PredictedDowntimeSeconds
	r.tracker.SetPlan(&p)
	return nil
}

// planUntilClear plans, and while the plan has blockers plans again every PlanInterval (an
// operator classifies the unknown volume meanwhile); a dry run returns the first plan.
func (r *release) planUntilClear(ctx workflow.Context) error {
	r.tracker.Start(stepRelPlan, "reading "+r.in.Cluster+"'s volumes from the cloud and the inventory")
	_ = workflow.UpsertTypedSearchAttributes(ctx, SearchCluster.ValueSet(r.in.Cluster))
	for {
		if err := r.replan(ctx); err != nil {
			return err
		}
		_ = workflow.UpsertTypedSearchAttributes(ctx, SearchZone.ValueSet(r.plan.TargetZone))
		if r.in.DryRun || len(r.plan.Blockers) == 0 || r.abort != nil {
			break
		}
		var why []string
		for _, b := range r.plan.Blockers {
			why = append(why, b.Message)
		}
		r.tracker.Start(stepRelPlan, fmt.Sprintf("%d blockers: %s", len(r.plan.Blockers), strings.Join(why, "; ")))
		if _, err := workflow.AwaitWithTimeout(ctx, r.timing.PlanInterval, func() bool { return r.abort != nil }); err != nil {
			return err
		}
	}
	r.tracker.Done(stepRelPlan, fmt.Sprintf("%d volumes, %d blockers; predicted downtime %.0f s (critical path: %s); plan %s",
		len(r.plan.Volumes), len(r.plan.Blockers), r.plan.PredictedDowntimeSeconds, strings.Join(r.plan.CriticalPath, ", "), r.plan.Hash))
	return nil
}

// ---------------------------------------------------------------------------------------
// The end.

func (r *release) fail(ctx workflow.Context, step string, err error) (ReleaseResult, error) {
	if step == "" || step == PhaseFailed || step == PhaseStarting {
		step = stepRelPlan
	}
	r.tracker.Fail(step, err)
	r.event("release failed at %s: %v", step, err)
	r.res.Overrides = r.locks.given
	return r.res, err
}

func (r *release) aborted(ctx workflow.Context) (ReleaseResult, error) {
	r.res.Outcome = ReleaseAborted
	// What the pre-stage built goes: the new backup leaves the resources, the new cluster is
	// retired and its servers terminated (the moved backup stays the cluster's backup).
	if len(r.built) > 0 {
		if err := r.retireNew(ctx); err != nil {
			return r.fail(ctx, stepRelApproval, fmt.Errorf("aborted, but retiring %s: %w", r.res.NewCluster, err))
		}
	}
	r.skipPending("aborted")
	msg := fmt.Sprintf("aborted by %s: %s; %s keeps serving", r.abort.By, r.abort.Reason, r.in.Cluster)
	r.audit(ctx, "release.aborted", map[string]any{"by": r.abort.By, "reason": r.abort.Reason})
	r.tracker.Finish(msg)
	return r.res, nil
}

func (r *release) skipPending(why string) {
	for _, s := range r.tracker.status.Steps {
		if s.State == StepPending {
			r.tracker.Skip(s.Name, why)
		}
	}
}

// audit records an audit event about the release (best effort: the release's own history
// is the record; a failing audit write is logged).
func (r *release) audit(ctx workflow.Context, action string, summary map[string]any) {
	summary["cluster"], summary["new_cluster"], summary["target_zone"] = r.in.Cluster, r.res.NewCluster, r.plan.TargetZone
	if err := workflow.ExecuteActivity(r.callCtx(ctx), recInv.RecordAudit, activities.AuditRecord{
		Actor: r.in.RequestedBy, Action: action, Subject: r.id, Summary: summary,
	}).Get(ctx, nil); err != nil {
		workflow.GetLogger(ctx).Warn("audit", "action", action, "err", err)
	}
}

func (r *release) finish(ctx workflow.Context) (ReleaseResult, error) {
	r.res.Outcome = ReleaseLive
	r.res.Overrides = r.locks.given
	msg := fmt.Sprintf("%s serves %s from %s in %s: downtime %.0f s (predicted %.0f s, %.0f%% off); %d volumes deferred",
		r.res.NewCluster, anyops.FileServiceName(r.in.Cluster), r.newFile.Name, r.plan.TargetZone, r.res.DowntimeSeconds,
		r.res.PredictedDowntimeSeconds, r.res.ETAErrorPercent, len(r.res.Deferred))
	r.tracker.Finish(msg)
	return r.res, nil
}
