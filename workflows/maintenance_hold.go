package workflows

import (
	commonpb "go.temporal.io/api/common/v1"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/workflow"
)

// MemoMaintenance is the memo key under which a running operation names the servers it holds
// in planned maintenance: a release's old file server from the moment its window opens, the
// whole old cluster once it is a standby. An alarm about a held server is not a fault: the
// alarm intake records it as suppressed by that operation and starts no recovery
// (alarms.Intake). The memo, not a query, so that the intake reads it from Temporal alone,
// with no worker needed to answer, while the operation's worker is down.
const MemoMaintenance = "maintenance"

// changeMaintenanceHold is the workflow.GetVersion change id of the release's maintenance
// hold (its memo upserts): a release recorded before it holds nothing.
const changeMaintenanceHold = "release-maintenance-hold"

// holdMaintenance sets the servers an operation holds in planned maintenance (none: the hold
// is over).
func holdMaintenance(ctx workflow.Context, servers []string) error {
	if servers == nil {
		servers = []string{}
	}
	return workflow.UpsertMemo(ctx, map[string]any{MemoMaintenance: servers})
}

// MaintenanceHeld reads the servers a workflow's memo holds in planned maintenance.
func MaintenanceHeld(memo *commonpb.Memo) ([]string, error) {
	p := memo.GetFields()[MemoMaintenance]
	if p == nil {
		return nil, nil
	}
	var servers []string
	if err := converter.GetDefaultDataConverter().FromPayload(p, &servers); err != nil {
		return nil, err
	}
	return servers, nil
}
