package workflows

import (
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
}

// FleetSyncResult is what FleetSync did: the counts of the reconcile and each drift.
type FleetSyncResult struct {
	Counts  activities.SyncCounts `json:"counts"`
	Drift   []activities.Drift    `json:"drift"`
	Summary string                `json:"summary"`
	// DRBDUnreadable lists the hosts whose DRBD status could not be read (their replicas are
	// recorded as unknown).
	DRBDUnreadable []string `json:"drbd_unreadable,omitempty"`
}

func prepareFleetSync(in *FleetSyncInput, actor string) (string, temporal.SearchAttributes, error) {
	if err := setRequestedBy(&in.RequestedBy, actor); err != nil {
		return "", temporal.SearchAttributes{}, err
	}
	if err := in.Timing.validate(); err != nil {
		return "", temporal.SearchAttributes{}, err
	}
	return FleetSyncWorkflowID, temporal.NewSearchAttributes(), nil
}

// Steps of FleetSync, as its Status shows them.
const (
	stepDescribeFleet = "describe-fleet"
	stepDRBDStatus    = "drbd-status"
	stepReconcile     = "reconcile"
)

// drbdStatusAttempts bounds the tries of one host's `drbdadm status`: a host that does not
// answer makes its replicas unknown for this sync instead of holding the sync up.
const drbdStatusAttempts = 2

// FleetSync reconciles the inventory with the cloud: it describes every instance, volume and
// status check, reads DRBD status on the hosts holding primaries, and lets ReconcileFleet
// record what differs (new, changed, missing) as drift events. A Temporal schedule runs it
// every few minutes (worker.EnsureSchedules).
func FleetSync(ctx workflow.Context, in FleetSyncInput) (FleetSyncResult, error) {
	tracker, err := NewTracker(ctx, stepDescribeFleet, stepDRBDStatus, stepReconcile)
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

	tracker.Start(stepReconcile, "reconciling the inventory with the cloud")
	var rec activities.ReconcileFleetResult
	if err := workflow.ExecuteActivity(callCtx, inv.ReconcileFleet, activities.ReconcileFleetInput{
		Fleet: fleet, DRBD: statuses, Actor: in.RequestedBy, // ReconcileFleet defaults it
	}).Get(ctx, &rec); err != nil {
		tracker.Fail(stepReconcile, err)
		return res, err
	}
	res.Counts, res.Drift = rec.Counts, rec.Drift
	res.Summary = FleetSyncSummary(rec.Counts)
	tracker.Done(stepReconcile, res.Summary)
	tracker.Finish(res.Summary)
	return res, nil
}

// FleetSyncSummary words a sync's counts on one line.
func FleetSyncSummary(c activities.SyncCounts) string {
	return fmt.Sprintf("created %d, updated %d, missing %d, unchanged %d, ignored %d", c.Created, c.Updated, c.Missing, c.Unchanged, c.Ignored)
}
