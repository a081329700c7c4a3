package workflows

import (
	"fmt"

	"go.temporal.io/sdk/workflow"
)

// ServerReplace (replace/<server>) replaces a failed web, console or task server by a new one
// of its role. This first version records that it started on the incident.
func ServerReplace(ctx workflow.Context, in ServerReplaceInput) (ServerReplaceResult, error) {
	tracker, err := NewTracker(ctx, stepAssess)
	if err != nil {
		return ServerReplaceResult{}, err
	}
	timing := in.Timing.withDefaults()
	tracker.Start(stepAssess, "assessing "+in.Server)
	noteIncident(ctx, timing, in.IncidentID, fmt.Sprintf("replacement of %s started", in.Server))
	tracker.Done(stepAssess, "")
	tracker.Finish("replacement of " + in.Server + " recorded")
	return ServerReplaceResult{Server: in.Server}, nil
}

// ServerReplaceResult is what a replacement did.
type ServerReplaceResult struct {
	Server string `json:"server"`
}
