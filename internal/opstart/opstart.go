// Package opstart starts the workflow of an operation kind under its business key, or joins
// the one running there: the one start that POST /v1/operations/{kind} and the alarm intake
// share.
package opstart

import (
	"context"
	"errors"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"

	"github.com/anyops/anyops/workflows"
)

// Started is what a start did: the run it started, or the running one it joined.
type Started struct {
	RunID  string
	Joined bool
}

// Start starts the kind's workflow as start describes it, on queue ("": the kind's own). It
// uses the conflict policy FAIL with the already-started error switched on rather than
// USE_EXISTING: the outcome is the same (nothing new starts while one runs under the id), but
// the SDK reports USE_EXISTING's join no differently from a start, and the error tells the
// two apart exactly, with no race between a check and a start. A closed run of the same id
// does not stop a new one (reuse policy allow-duplicate).
func Start(ctx context.Context, c client.Client, kind workflows.Kind, start workflows.Start, queue string) (Started, error) {
	if queue == "" {
		queue = kind.TaskQueue
	}
	run, err := c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{
		ID:                                       start.ID,
		TaskQueue:                                queue,
		WorkflowExecutionTimeout:                 kind.ExecutionTimeout,
		WorkflowIDConflictPolicy:                 enumspb.WORKFLOW_ID_CONFLICT_POLICY_FAIL,
		WorkflowIDReusePolicy:                    enumspb.WORKFLOW_ID_REUSE_POLICY_ALLOW_DUPLICATE,
		WorkflowExecutionErrorWhenAlreadyStarted: true,
		TypedSearchAttributes:                    start.SearchAttributes,
	}, kind.WorkflowType, start.Input)
	var running *serviceerror.WorkflowExecutionAlreadyStarted
	if errors.As(err, &running) {
		return Started{RunID: running.RunId, Joined: true}, nil
	}
	if err != nil {
		return Started{}, err
	}
	return Started{RunID: run.GetRunID()}, nil
}
