package workflows

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/anyops/anyops"
	"github.com/anyops/anyops/activities"
)

// KindFleetAudit is the operation kind of FleetAudit.
const KindFleetAudit = "fleet-audit"

// FleetAuditWorkflowID is the business key of a fleet audit: there is one fleet, so a second
// request while an audit runs joins it.
const FleetAuditWorkflowID = "fleet-audit"

// maxReasonLen bounds the free-text reason an operator gives; it ends up in the audit log.
const maxReasonLen = 500

// FleetAuditInput is the body of POST /v1/operations/fleet-audit.
type FleetAuditInput struct {
	// Reason is why the audit was asked for; it is recorded with the audit event.
	Reason string `json:"reason,omitempty"`
	// RequestedBy is set by the API from the authenticated caller; a body may not set it.
	RequestedBy string `json:"requested_by,omitempty"`
}

// FleetAuditResult is what FleetAudit returns: the counts, and the summary it recorded.
type FleetAuditResult struct {
	Counts  activities.FleetCounts `json:"counts"`
	Summary string                 `json:"summary"`
}

func prepareFleetAudit(in *FleetAuditInput, actor string) (string, temporal.SearchAttributes, error) {
	if err := setRequestedBy(&in.RequestedBy, actor); err != nil {
		return "", temporal.SearchAttributes{}, err
	}
	if len(in.Reason) > maxReasonLen {
		return "", temporal.SearchAttributes{}, anyops.Errorf(anyops.EINVALID, "reason is longer than %d bytes", maxReasonLen)
	}
	return FleetAuditWorkflowID, temporal.NewSearchAttributes(), nil
}

// Steps of FleetAudit, as its Status shows them.
const (
	stepCountFleet  = "count-fleet"
	stepRecordAudit = "record-audit"
)

// FleetAudit reads the fleet's counts from the inventory, records an audit event that
// summarises them, and returns them.
func FleetAudit(ctx workflow.Context, in FleetAuditInput) (FleetAuditResult, error) {
	tracker, err := NewTracker(ctx, stepCountFleet, stepRecordAudit)
	if err != nil {
		return FleetAuditResult{}, err
	}
	ctx = workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout: time.Minute,
		RetryPolicy: &temporal.RetryPolicy{
			InitialInterval:    time.Second,
			BackoffCoefficient: 2,
			MaximumInterval:    30 * time.Second,
			MaximumAttempts:    10,
		},
	})
	var inv *activities.Inventory

	tracker.Start(stepCountFleet, "counting servers, volumes and replicas in the inventory")
	var counts activities.FleetCounts
	if err := workflow.ExecuteActivity(ctx, inv.CountFleet).Get(ctx, &counts); err != nil {
		tracker.Fail(stepCountFleet, err)
		return FleetAuditResult{}, err
	}
	tracker.Done(stepCountFleet, fmt.Sprintf("%d servers, %d volumes, %d replicas", counts.Totals.Servers, counts.Totals.Volumes, counts.Totals.Replicas))

	summary := FleetAuditSummary(counts)
	tracker.Start(stepRecordAudit, "recording the audit event")
	actor := in.RequestedBy
	if actor == "" {
		actor = "anyops"
	}
	event := activities.AuditRecord{Actor: actor, Action: KindFleetAudit, Subject: "fleet", Summary: map[string]any{
		"text":              summary,
		"servers_by_role":   counts.ServersByRole,
		"servers_by_zone":   counts.ServersByZone,
		"volumes_by_kind":   counts.VolumesByKind,
		"replicas_by_state": counts.ReplicasByState,
		"totals":            counts.Totals,
	}}
	if in.Reason != "" {
		event.Summary["reason"] = in.Reason
	}
	if err := workflow.ExecuteActivity(ctx, inv.RecordAudit, event).Get(ctx, nil); err != nil {
		tracker.Fail(stepRecordAudit, err)
		return FleetAuditResult{}, err
	}
	tracker.Done(stepRecordAudit, "recorded")
	tracker.Finish(summary)
	return FleetAuditResult{Counts: counts, Summary: summary}, nil
}

// FleetAuditSummary words the counts on one line, keys sorted so that the text (and so the
// workflow's history) is deterministic:
// "zones 2, clusters 1, servers 5 (by role: backup=1 console=1 ...; by zone: ...), ...".
func FleetAuditSummary(c activities.FleetCounts) string {
	return fmt.Sprintf("zones %d, clusters %d, servers %d (by role: %s; by zone: %s), volumes %d (by kind: %s), replicas %d (by state: %s)",
		c.Totals.Zones, c.Totals.Clusters, c.Totals.Servers, formatCounts(c.ServersByRole), formatCounts(c.ServersByZone),
		c.Totals.Volumes, formatCounts(c.VolumesByKind), c.Totals.Replicas, formatCounts(c.ReplicasByState))
}

func formatCounts(m map[string]int) string {
	if len(m) == 0 {
		return "none"
	}
	parts := make([]string, 0, len(m))
	for _, k := range slices.Sorted(maps.Keys(m)) {
		parts = append(parts, fmt.Sprintf("%s=%d", k, m[k]))
	}
	return strings.Join(parts, " ")
}
