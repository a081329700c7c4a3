package workflows

import (
	"fmt"

	"go.temporal.io/sdk/workflow"
)

// FileServerFailover (failover/<server>) brings a failed file server's data back to serving.
// This first version records that it started on the incident; the race of the three ways back
// (promote, repair, replace) follows.
func FileServerFailover(ctx workflow.Context, in FailoverInput) (FailoverResult, error) {
	tracker, err := NewTracker(ctx, stepAssess)
	if err != nil {
		return FailoverResult{}, err
	}
	timing := in.Timing.withDefaults()
	tracker.Start(stepAssess, "assessing "+in.Server)
	noteIncident(ctx, timing, in.IncidentID, fmt.Sprintf("failover of %s started", in.Server))
	tracker.Done(stepAssess, "")
	tracker.Finish("failover of " + in.Server + " recorded")
	return FailoverResult{Server: in.Server}, nil
}

// FailoverResult is what a failover did.
type FailoverResult struct {
	Server string `json:"server"`
}

const stepAssess = "assess"
