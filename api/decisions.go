package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/google/uuid"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"

	"github.com/anyops/anyops"
	"github.com/anyops/anyops/workflows"
)

// Decision is a human decision about a running operation: the route POST
// /v1/operations/{id}/<decision> sends it as the Temporal update of the same name. The API
// checks the request; the workflow's update validator decides whether it applies now.
type Decision string

const (
	DecisionApprove  Decision = workflows.UpdateApprove  // go on past a point the policy stops at (the cutover)
	DecisionAbort    Decision = workflows.UpdateAbort    // stop, leaving things safe
	DecisionOverride Decision = workflows.UpdateOverride // pass an interlock, with a reason; audited
)

// Decisions lists every Decision.
var Decisions = []Decision{DecisionApprove, DecisionAbort, DecisionOverride}

// DecisionRequest is the body of the decision routes.
type DecisionRequest struct {
	// Reason says why; required for abort and override.
	Reason string `json:"reason,omitempty"`
	// Interlock names the interlock an override passes; override only.
	Interlock string `json:"interlock,omitempty"`
}

// DecisionResult is the answer of a decision the workflow accepted.
type DecisionResult struct {
	ID       string   `json:"id"`
	RunID    string   `json:"run_id"`
	Decision Decision `json:"decision"`
	// Result is what the workflow's update handler returned.
	Result json.RawMessage `json:"result,omitempty"`
}

// decisionTimeout bounds the wait for the workflow's answer to a decision.
const decisionTimeout = 20 * time.Second

// maxReasonLen bounds a decision's reason: it goes into the workflow's history and the audit.
const maxReasonLen = 1000

// interlockName is how interlocks are named (no-verified-copy, not-uptodate, ...).
var interlockName = regexp.MustCompile(`^[a-z][a-z0-9-]{0,63}$`)

func (s *Server) registerDecisions(v1 *gin.RouterGroup, auth *Authorizer) {
	for _, d := range Decisions {
		v1.POST("/operations/:id/"+string(d), auth.Require(RoleOperator), s.decide(d))
	}
}

// check validates a decision request: the API's part; the workflow's validator does the rest.
func (r DecisionRequest) check(d Decision) error {
	r.Reason = strings.TrimSpace(r.Reason)
	switch {
	case len(r.Reason) > maxReasonLen:
		return anyops.Errorf(anyops.EINVALID, "reason is longer than %d bytes", maxReasonLen)
	case d != DecisionApprove && r.Reason == "":
		return anyops.Errorf(anyops.EINVALID, "%s needs a reason", d)
	case d == DecisionOverride && !interlockName.MatchString(r.Interlock):
		return anyops.Errorf(anyops.EINVALID, "override needs the interlock it passes, a name like no-verified-copy; got %q", r.Interlock)
	case d != DecisionOverride && r.Interlock != "":
		return anyops.Errorf(anyops.EINVALID, "interlock is for override only")
	}
	return nil
}

// decide serves one decision route: it checks the request, then sends the update to the
// latest run and waits for the workflow's answer. A refusal by the workflow (its validator, or
// a workflow that takes no such decision) is 409 with the workflow's reason.
func (s *Server) decide(d Decision) gin.HandlerFunc {
	return func(c *gin.Context) {
		var req DecisionRequest
		if err := BindJSON(c, &req); err != nil {
			WriteError(c, err)
			return
		}
		if err := req.check(d); err != nil {
			WriteError(c, err)
			return
		}
		id, info, ok := s.describeOperation(c)
		if !ok {
			return
		}
		if info.GetStatus() != enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING {
			WriteError(c, anyops.Errorf(anyops.ECONFLICT, "operation %s is %s, not running", id, stateName(info.GetStatus())))
			return
		}
		runID := info.GetExecution().GetRunId()
		// An update needs a worker to run the validator: without one it would wait forever.
		ctx, cancel := context.WithTimeout(c.Request.Context(), decisionTimeout)
		defer cancel()
		h, err := s.deps.Temporal.UpdateWorkflow(ctx, client.UpdateWorkflowOptions{
			WorkflowID: id, RunID: runID, UpdateID: uuid.NewString(),
			UpdateName:   string(d),
			Args:         []any{workflows.DecisionInput{By: Actor(c), Reason: strings.TrimSpace(req.Reason), Interlock: req.Interlock}},
			WaitForStage: client.WorkflowUpdateStageCompleted,
		})
		var result json.RawMessage
		if err == nil {
			err = h.Get(ctx, &result)
		}
		var refused *temporal.ApplicationError
		switch {
		case errors.As(err, &refused):
			WriteError(c, anyops.Errorf(anyops.ECONFLICT, "operation %s refused %s: %s", id, d, refused.Message()))
		case ctx.Err() != nil && c.Request.Context().Err() == nil:
			WriteError(c, fmt.Errorf("%s %s: %w: %w", d, id, anyops.Errorf(anyops.EUNAVAILABLE,
				"operation %s did not answer %s within %s: is a worker running?", id, d, decisionTimeout), err))
		case err != nil:
			WriteError(c, temporalError(err, string(d)+" "+id))
		default:
			c.JSON(http.StatusOK, DecisionResult{ID: id, RunID: runID, Decision: d, Result: result})
		}
	}
}
