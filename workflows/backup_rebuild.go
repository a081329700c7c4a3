package workflows

import (
	"fmt"

	"go.temporal.io/sdk/workflow"
)

// BackupRebuild (backup-rebuild/<server>) replaces a failed backup server by a new one. This
// first version records that it started on the incident.
func BackupRebuild(ctx workflow.Context, in BackupRebuildInput) (BackupRebuildResult, error) {
	tracker, err := NewTracker(ctx, stepAssess)
	if err != nil {
		return BackupRebuildResult{}, err
	}
	timing := in.Timing.withDefaults()
	tracker.Start(stepAssess, "assessing "+in.Server)
	noteIncident(ctx, timing, in.IncidentID, fmt.Sprintf("backup rebuild of %s started", in.Server))
	tracker.Done(stepAssess, "")
	tracker.Finish("backup rebuild of " + in.Server + " recorded")
	return BackupRebuildResult{Server: in.Server}, nil
}

// BackupRebuildResult is what a backup rebuild did.
type BackupRebuildResult struct {
	Server string `json:"server"`
}
