package workflows

import (
	"errors"
	"fmt"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/anyops/anyops/activities"
)

// KindFleetSync is the operation kind of FleetSync.
const KindFleetSync = "fleet-sync"

// FleetSyncWorkflowID is the business key of a fleet sync: a second request while one runs
// joins it.
const FleetSyncWorkflowID = "fleet-sync"

// FleetSyncInput is the body of POST /v1/operations/fleet-sync.
type FleetSyncInput struct {
	// Timing bounds the calls (only CallTimeout and HeartbeatTimeout are used).
	Timing FleetTiming `json:"timing,omitempty"`
	// RequestedBy is set by the API from the authenticated caller, and by the schedule.
	RequestedBy string `json:"requested_by,omitempty"`
	// NFSWatch, when set, makes the sync end by starting the NFS watch (nfs-watch/<server>,
	// with this timing; zero fields: production defaults) of every file server that has none
	// running. The schedule's syncs and dev's set it.
	NFSWatch *NFSWatchTiming `json:"nfs_watch,omitempty"`
}

// FleetSyncResult is what FleetSync did: the counts of the reconcile and each drift.
type FleetSyncResult struct {
	Counts  activities.SyncCounts `json:"counts"`
	Drift   []activities.Drift    `json:"drift"`
	Summary string                `json:"summary"`
	// DRBDUnreadable lists the hosts whose DRBD status could not be read (their replicas are
	// read from the other side, or recorded as unknown).
	DRBDUnreadable []string `json:"drbd_unreadable,omitempty"`
	// RoleTagsUpdated lists the volumes whose anyops:drbd-role tag was rewritten to the role
	// their host reports (after a promotion); RoleTagsFailed those whose tagging failed.
	RoleTagsUpdated []string `json:"role_tags_updated,omitempty"`
	RoleTagsFailed  []string `json:"role_tags_failed,omitempty"`
	// Superseded: a newer picture of the cloud had been applied when this one arrived.
	Superseded bool `json:"superseded,omitempty"`
	// NFSWatchesStarted lists the file servers whose NFS watch this sync started (the others
	// had theirs running); NFSWatchesFailed those whose watch would not start.
	NFSWatchesStarted []string `json:"nfs_watches_started,omitempty"`
	NFSWatchesFailed  []string `json:"nfs_watches_failed,omitempty"`
}

func prepareFleetSync(in *FleetSyncInput, actor string) (string, temporal.SearchAttributes, error) {
	if err := setRequestedBy(&in.RequestedBy, actor); err != nil {
		return "", temporal.SearchAttributes{}, err
	}
	if err := in.Timing.validate(); err != nil {
		return "", temporal.SearchAttributes{}, err
	}
	if in.NFSWatch != nil {
		if err := in.NFSWatch.validate(); err != nil {
			return "", temporal.SearchAttributes{}, err
		}
	}
	return FleetSyncWorkflowID, temporal.NewSearchAttributes(), nil
}

// Steps of FleetSync, as its Status shows them.
const (
	stepDescribeFleet = "describe-fleet"
	stepDRBDStatus    = "drbd-status"
	stepRoleTags      = "role-tags"
	stepReconcile     = "reconcile"
	stepNFSWatches    = "nfs-watches"
)

// drbdStatusAttempts bounds the tries of one host's `drbdadm status`: a host that does not
// answer makes its replicas unknown for this sync instead of holding the sync up.
const drbdStatusAttempts = 2

// FleetSync reconciles the inventory with the cloud: it describes every instance, volume and
// status check, reads DRBD status on both sides of every pair, rewrites the volumes' DRBD role
// tags where a host reports another role than the tag (a promotion changes no tag), and lets
// ReconcileFleet record what differs (new, changed, missing, unclassified) as drift events, in
// one transaction. It runs under one business key, FleetSyncWorkflowID, so one reconcile runs
// at a time: the API's runs and the schedule's (ScheduledFleetSync starts it as a child)
// join or skip one another.
func FleetSync(ctx workflow.Context, in FleetSyncInput) (FleetSyncResult, error) {
	steps := []string{stepDescribeFleet, stepDRBDStatus, stepRoleTags, stepReconcile}
	if in.NFSWatch != nil {
		steps = append(steps, stepNFSWatches)
	}
	tracker, err := NewTracker(ctx, steps...)
	if err != nil {
		return FleetSyncResult{}, err
	}
	timing := in.Timing.withDefaults()
	callCtx := workflow.WithActivityOptions(ctx, timing.callOptions())
	var (
		inv   *activities.Inventory
		cloud *activities.Cloud
		hosts *activities.Hosts
	)
	var res FleetSyncResult

	tracker.Start(stepDescribeFleet, "describing instances, volumes and status checks")
	var fleet activities.Fleet
	if err := workflow.ExecuteActivity(callCtx, cloud.DescribeFleet, activities.DescribeFleetInput{}).Get(ctx, &fleet); err != nil {
		tracker.Fail(stepDescribeFleet, err)
		return res, err
	}
	tracker.Done(stepDescribeFleet, fmt.Sprintf("%d instances, %d volumes", len(fleet.Instances), len(fleet.Volumes)))

	drbdHosts := activities.DRBDHosts(fleet)
	tracker.Start(stepDRBDStatus, fmt.Sprintf("reading DRBD status on %d hosts", len(drbdHosts)))
	drbdOptions := timing.hostOptions()
	drbdOptions.RetryPolicy = &temporal.RetryPolicy{InitialInterval: time.Second, MaximumAttempts: drbdStatusAttempts}
	drbdCtx := workflow.WithActivityOptions(ctx, drbdOptions)
	futures := make([]workflow.Future, len(drbdHosts))
	for i, id := range drbdHosts {
		futures[i] = workflow.ExecuteActivity(drbdCtx, hosts.DRBDStatus, activities.DRBDStatusInput{InstanceID: id})
	}
	statuses := make([]activities.HostDRBD, len(drbdHosts))
	for i, f := range futures {
		var out activities.DRBDStatusOutput
		statuses[i] = activities.HostDRBD{InstanceID: drbdHosts[i]}
		if err := f.Get(ctx, &out); err != nil {
			statuses[i].Error = err.Error()
			res.DRBDUnreadable = append(res.DRBDUnreadable, drbdHosts[i])
			continue
		}
		statuses[i].Resources = out.Resources
	}
	tracker.Done(stepDRBDStatus, fmt.Sprintf("%d hosts read, %d unreadable", len(drbdHosts)-len(res.DRBDUnreadable), len(res.DRBDUnreadable)))

	pairs, _ := activities.DRBDPairs(fleet, statuses)
	changes := activities.DRBDRoleTagChanges(fleet, pairs)
	tracker.Start(stepRoleTags, fmt.Sprintf("tagging %d volumes with the DRBD role their host reports", len(changes)))
	tags := make([]workflow.Future, len(changes))
	for i, c := range changes {
		tags[i] = workflow.ExecuteActivity(callCtx, cloud.TagResource, c)
	}
	for i, f := range tags {
		if err := f.Get(ctx, nil); err != nil {
			// The inventory takes the roles from the hosts either way; the tags catch up next time.
			res.RoleTagsFailed = append(res.RoleTagsFailed, changes[i].ResourceID)
			continue
		}
		res.RoleTagsUpdated = append(res.RoleTagsUpdated, changes[i].ResourceID)
	}
	tracker.Done(stepRoleTags, fmt.Sprintf("%d tagged, %d failed", len(res.RoleTagsUpdated), len(res.RoleTagsFailed)))

	tracker.Start(stepReconcile, "reconciling the inventory with the cloud")
	var rec activities.ReconcileFleetResult
	if err := workflow.ExecuteActivity(callCtx, inv.ReconcileFleet, activities.ReconcileFleetInput{
		Fleet: fleet, DRBD: statuses, Actor: in.RequestedBy, // ReconcileFleet defaults it
	}).Get(ctx, &rec); err != nil {
		tracker.Fail(stepReconcile, err)
		return res, err
	}
	res.Counts, res.Drift, res.Superseded = rec.Counts, rec.Drift, rec.Superseded
	res.Summary = FleetSyncSummary(rec.Counts)
	if rec.Superseded {
		res.Summary = "superseded: a newer picture of the cloud was applied already"
	}
	tracker.Done(stepReconcile, res.Summary)
	if in.NFSWatch != nil {
		if err := ensureNFSWatches(ctx, callCtx, tracker, *in.NFSWatch, &res); err != nil {
			return res, err
		}
	}
	tracker.Finish(res.Summary)
	return res, nil
}

// ensureNFSWatches starts the NFS watch of every file server the inventory has that has none
// running (StartNFSWatch): a start refused because one runs is the normal case.
func ensureNFSWatches(ctx, callCtx workflow.Context, tracker *Tracker, timing NFSWatchTiming, res *FleetSyncResult) error {
	var inv *activities.Inventory
	tracker.Start(stepNFSWatches, "ensuring an NFS watch on every file server")
	var servers []string
	if err := workflow.ExecuteActivity(callCtx, inv.FileServers).Get(ctx, &servers); err != nil {
		tracker.Fail(stepNFSWatches, err)
		return err
	}
	children := make([]workflow.ChildWorkflowFuture, len(servers))
	for i, name := range servers {
		children[i] = StartNFSWatch(ctx, name, timing)
	}
	for i, child := range children {
		err := child.GetChildWorkflowExecution().Get(ctx, nil)
		var running *temporal.ChildWorkflowExecutionAlreadyStartedError
		switch {
		case errors.As(err, &running):
		case err != nil:
			workflow.GetLogger(ctx).Error("NFS watch not started", "server", servers[i], "err", err)
			res.NFSWatchesFailed = append(res.NFSWatchesFailed, servers[i])
		default:
			res.NFSWatchesStarted = append(res.NFSWatchesStarted, servers[i])
		}
	}
	tracker.Done(stepNFSWatches, fmt.Sprintf("%d file servers watched: %d started now, %d failed to start",
		len(servers)-len(res.NFSWatchesFailed), len(res.NFSWatchesStarted), len(res.NFSWatchesFailed)))
	return nil
}

// FleetSyncSummary words a sync's counts on one line.
func FleetSyncSummary(c activities.SyncCounts) string {
	return fmt.Sprintf("created %d, updated %d, missing %d, unchanged %d, unclassified %d, ignored %d",
		c.Created, c.Updated, c.Missing, c.Unchanged, c.Unclassified, c.Ignored)
}
