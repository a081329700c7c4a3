package api

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/gin-gonic/gin"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	workflowpb "go.temporal.io/api/workflow/v1"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"

	"github.com/anyops/anyops"
	"github.com/anyops/anyops/internal/opstart"
	"github.com/anyops/anyops/workflows"
)

// Operation states, as the API names Temporal's execution statuses.
const (
	StateRunning        = "running"
	StateCompleted      = "completed"
	StateFailed         = "failed"
	StateCanceled       = "canceled"
	StateTerminated     = "terminated"
	StateContinuedAsNew = "continued-as-new"
	StateTimedOut       = "timed-out"
)

// operationStates maps API states to Temporal statuses and their visibility query names.
var operationStates = []struct {
	name   string
	status enumspb.WorkflowExecutionStatus
	query  string
}{
	{StateRunning, enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING, "Running"},
	{StateCompleted, enumspb.WORKFLOW_EXECUTION_STATUS_COMPLETED, "Completed"},
	{StateFailed, enumspb.WORKFLOW_EXECUTION_STATUS_FAILED, "Failed"},
	{StateCanceled, enumspb.WORKFLOW_EXECUTION_STATUS_CANCELED, "Canceled"},
	{StateTerminated, enumspb.WORKFLOW_EXECUTION_STATUS_TERMINATED, "Terminated"},
	{StateContinuedAsNew, enumspb.WORKFLOW_EXECUTION_STATUS_CONTINUED_AS_NEW, "ContinuedAsNew"},
	{StateTimedOut, enumspb.WORKFLOW_EXECUTION_STATUS_TIMED_OUT, "TimedOut"},
}

func stateName(s enumspb.WorkflowExecutionStatus) string {
	for _, st := range operationStates {
		if st.status == s {
			return st.name
		}
	}
	return "unknown"
}

// Operation is one workflow as the API shows it.
type Operation struct {
	ID      string     `json:"id"`
	RunID   string     `json:"run_id"`
	Kind    string     `json:"kind"`
	State   string     `json:"state"`
	Started time.Time  `json:"started"`
	Closed  *time.Time `json:"closed,omitempty"`
	// Status is the answer of the workflow's Status query, when it could be asked.
	Status *workflows.Status `json:"status,omitempty"`
	// Result is the workflow's result once completed.
	Result json.RawMessage `json:"result,omitempty"`
	// Error is why the workflow failed, once failed.
	Error string `json:"error,omitempty"`
}

// StartedOperation is the body of POST /v1/operations/{kind}.
type StartedOperation struct {
	ID    string `json:"id"`
	RunID string `json:"run_id"`
	Kind  string `json:"kind"`
	// Joined is true when an operation with the same business key was already running and
	// this request joined it (status 200) instead of starting one (status 201).
	Joined bool `json:"joined"`
}

// queryTimeout bounds the Status query of GET /v1/operations/{id}; a workflow whose worker
// is down is shown without its status rather than holding the request.
const queryTimeout = 3 * time.Second

func (s *Server) registerOperations(v1 *gin.RouterGroup, auth *Authorizer) {
	// POST /operations/:id starts an operation of kind :id. Gin, like OpenAPI, allows one
	// parameter name per path position, so the kind takes the name of the id it sits beside.
	v1.POST("/operations/:id", auth.Require(RoleOperator), s.startOperation)
	v1.GET("/operations", auth.Require(RoleViewer), s.listOperations)
	v1.GET("/operations/:id", auth.Require(RoleViewer), s.getOperation)
	v1.POST("/operations/:id/cancel", auth.Require(RoleOperator), s.cancelOperation)
}

// startOperation starts the workflow of a kind under its business-key id. If one with that id
// runs, it answers 200 with the running one instead of 201 (opstart.Start tells them apart).
func (s *Server) startOperation(c *gin.Context) {
	kind, ok := workflows.LookupKind(c.Param("id"))
	if !ok {
		WriteError(c, anyops.Errorf(anyops.ENOTFOUND, "unknown operation kind %q; kinds are %s", c.Param("id"), strings.Join(workflows.KindNames(), ", ")))
		return
	}
	body, err := ReadBody(c)
	if err != nil {
		WriteError(c, err)
		return
	}
	start, err := kind.Prepare(body, Actor(c))
	if err != nil {
		WriteError(c, err)
		return
	}
	started, err := opstart.Start(c.Request.Context(), s.deps.Temporal, kind, start, "")
	if err != nil {
		WriteError(c, temporalError(err, "start "+kind.Name))
		return
	}
	status := http.StatusCreated
	if started.Joined {
		status = http.StatusOK
	}
	c.Header("Location", operationPath(start.ID))
	c.JSON(status, StartedOperation{ID: start.ID, RunID: started.RunID, Kind: kind.Name, Joined: started.Joined})
}

// operationPath is the URL path of an operation, its id escaped so that '/' becomes %2F.
func operationPath(id string) string { return "/v1/operations/" + url.PathEscape(id) }

const (
	defaultOperationsLimit = 50
	maxOperationsLimit     = 500
)

func (s *Server) listOperations(c *gin.Context) {
	q, err := queryParams(c, "kind", "state", "limit", "cursor")
	if err != nil {
		WriteError(c, err)
		return
	}
	limit, err := parseLimit(q.Get("limit"), defaultOperationsLimit, maxOperationsLimit)
	if err != nil {
		WriteError(c, err)
		return
	}
	token, err := decodeOperationsCursor(q.Get("cursor"))
	if err != nil {
		WriteError(c, err)
		return
	}
	visQuery, err := operationsQuery(q.Get("kind"), q.Get("state"))
	if err != nil {
		WriteError(c, err)
		return
	}
	resp, err := s.deps.Temporal.ListWorkflow(c.Request.Context(), &workflowservice.ListWorkflowExecutionsRequest{
		PageSize: int32(limit), NextPageToken: token, Query: visQuery,
	})
	if err != nil {
		err = temporalError(err, "list operations")
		if len(token) > 0 && s.temporalHealthy(c.Request.Context()) {
			// Temporal answers a page token it cannot read with an error of any kind (Unknown,
			// or a deadline once the SDK has retried that): while it is up, the cursor is to blame.
			err = anyops.Errorf(anyops.EINVALID, "cursor is malformed or expired")
		}
		WriteError(c, err)
		return
	}
	out := List[Operation]{Items: []Operation{}, NextCursor: encodeOperationsCursor(resp.GetNextPageToken())}
	for _, info := range resp.GetExecutions() {
		out.Items = append(out.Items, operationOf(info))
	}
	c.JSON(http.StatusOK, out)
}

// The cursor of GET /v1/operations is Temporal's page token with a checksum after it, so that a
// mangled or made-up cursor is a 400 here and never reaches Temporal: Temporal answers a token
// it cannot read with an Unknown error, which the SDK retries for seconds before it fails.
const cursorSumLen = 8

func cursorSum(token []byte) []byte {
	sum := sha256.Sum256(append([]byte("anyops operations cursor\x00"), token...))
	return sum[:cursorSumLen]
}

// encodeOperationsCursor makes the cursor of a Temporal page token; "" for none (the last page).
func encodeOperationsCursor(token []byte) string {
	if len(token) == 0 {
		return ""
	}
	return base64.RawURLEncoding.EncodeToString(append(append([]byte(nil), token...), cursorSum(token)...))
}

// decodeOperationsCursor returns the page token of a cursor from encodeOperationsCursor (nil
// for ""); anything else is EINVALID.
func decodeOperationsCursor(cursor string) ([]byte, error) {
	if cursor == "" {
		return nil, nil
	}
	raw, err := base64.RawURLEncoding.Strict().DecodeString(cursor)
	if err != nil || len(raw) <= cursorSumLen {
		return nil, anyops.Errorf(anyops.EINVALID, "cursor is malformed")
	}
	token, sum := raw[:len(raw)-cursorSumLen], raw[len(raw)-cursorSumLen:]
	if subtle.ConstantTimeCompare(sum, cursorSum(token)) != 1 {
		return nil, anyops.Errorf(anyops.EINVALID, "cursor is malformed")
	}
	return token, nil
}

// temporalHealthy says whether Temporal's frontend answers its health check now.
func (s *Server) temporalHealthy(ctx context.Context) bool {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	_, err := s.deps.Temporal.CheckHealth(ctx, &client.CheckHealthRequest{})
	return err == nil
}

// operationOf is the summary of one workflow execution: the fields list and get share.
func operationOf(info *workflowpb.WorkflowExecutionInfo) Operation {
	op := Operation{
		ID:      info.GetExecution().GetWorkflowId(),
		RunID:   info.GetExecution().GetRunId(),
		State:   stateName(info.GetStatus()),
		Started: info.GetStartTime().AsTime(),
	}
	if k, ok := workflows.KindOfWorkflowType(info.GetType().GetName()); ok {
		op.Kind = k.Name
	}
	if info.GetCloseTime() != nil {
		t := info.GetCloseTime().AsTime()
		op.Closed = &t
	}
	return op
}

// operationsQuery builds the visibility query for the kind and state filters; only workflows
// of registered kinds are listed.
func operationsQuery(kind, state string) (string, error) {
	var types []string
	if kind != "" {
		k, ok := workflows.LookupKind(kind)
		if !ok {
			return "", anyops.Errorf(anyops.EINVALID, "kind %q is not one of %s", kind, strings.Join(workflows.KindNames(), ", "))
		}
		types = []string{k.WorkflowType}
	} else {
		for _, k := range workflows.Kinds() {
			types = append(types, k.WorkflowType)
		}
	}
	clauses := make([]string, len(types))
	for i, t := range types {
		clauses[i] = fmt.Sprintf("WorkflowType = '%s'", t) // registry names, never user input
	}
	query := "(" + strings.Join(clauses, " OR ") + ")"
	if state != "" {
		found := false
		var names []string
		for _, st := range operationStates {
			names = append(names, st.name)
			if st.name == state {
				query += fmt.Sprintf(" AND ExecutionStatus = '%s'", st.query)
				found = true
			}
		}
		if !found {
			return "", anyops.Errorf(anyops.EINVALID, "state %q is not one of %s", state, strings.Join(names, ", "))
		}
	}
	return query, nil
}

// describeOperation describes the latest run of the request's operation {id} (unescaped:
// ids contain '/', sent as %2F; checkPathParams has vetted it). Only workflows of registered
// kinds are operations: any other workflow in the namespace (a console's, or one started
// outside the API) is not found, so the API neither shows nor cancels it. On failure it has
// written the error response and returns ok false.
func (s *Server) describeOperation(c *gin.Context) (id string, info *workflowpb.WorkflowExecutionInfo, ok bool) {
	id = c.Param("id")
	desc, err := s.deps.Temporal.DescribeWorkflow(c.Request.Context(), id, "")
	if err != nil {
		WriteError(c, temporalError(err, "describe operation "+id))
		return "", nil, false
	}
	info = desc.RawResponse.GetWorkflowExecutionInfo()
	if _, registered := workflows.KindOfWorkflowType(info.GetType().GetName()); !registered {
		WriteError(c, anyops.Errorf(anyops.ENOTFOUND, "describe operation %s: no such operation", id))
		return "", nil, false
	}
	return id, info, true
}

func (s *Server) getOperation(c *gin.Context) {
	id, info, ok := s.describeOperation(c)
	if !ok {
		return
	}
	op, err := s.operationView(c.Request.Context(), id, info)
	if err != nil {
		WriteError(c, err)
		return
	}
	c.JSON(http.StatusOK, op)
}

// operationView shows a described run of workflow id as the API does: its state, the answer
// of its Status query, and its result or error once closed.
func (s *Server) operationView(ctx context.Context, id string, info *workflowpb.WorkflowExecutionInfo) (Operation, error) {
	op := operationOf(info)
	op.ID = id
	op.Status = s.queryStatus(ctx, id, op.RunID)
	switch info.GetStatus() {
	case enumspb.WORKFLOW_EXECUTION_STATUS_COMPLETED:
		var result json.RawMessage
		if err := s.deps.Temporal.GetWorkflow(ctx, id, op.RunID).Get(ctx, &result); err != nil {
			return op, fmt.Errorf("result of operation %s: %w", id, err)
		}
		op.Result = result
	case enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING:
	default:
		if err := s.deps.Temporal.GetWorkflow(ctx, id, op.RunID).Get(ctx, nil); err != nil {
			op.Error = err.Error()
		}
	}
	return op, nil
}

// queryStatus asks the workflow's Status query, nil when it cannot be answered in time (no
// worker polls, or the workflow predates the query).
func (s *Server) queryStatus(ctx context.Context, id, runID string) *workflows.Status {
	qctx, cancel := context.WithTimeout(ctx, queryTimeout)
	defer cancel()
	st, err := QueryStatus(qctx, s.deps.Temporal, id, runID)
	if err != nil {
		s.log.Debug("status query unanswered", "workflow_id", id, "err", err)
		return nil
	}
	return &st
}

// QueryStatus asks a workflow (its latest run when runID is "") for its Status.
func QueryStatus(ctx context.Context, tc client.Client, id, runID string) (workflows.Status, error) {
	var st workflows.Status
	v, err := tc.QueryWorkflow(ctx, id, runID, workflows.StatusQuery)
	if err != nil {
		return st, err
	}
	if err := v.Get(&st); err != nil {
		return st, fmt.Errorf("status of %s is undecodable: %w", id, err)
	}
	return st, nil
}

// CancelResult is the body of POST /v1/operations/{id}/cancel.
type CancelResult struct {
	ID    string `json:"id"`
	RunID string `json:"run_id"`
	State string `json:"state"` // "cancel-requested"
}

// cancelOperation asks a running operation to cancel; the workflow decides how to wind down.
// A closed one is 409.
func (s *Server) cancelOperation(c *gin.Context) {
	id, info, ok := s.describeOperation(c)
	if !ok {
		return
	}
	ctx := c.Request.Context()
	if info.GetStatus() != enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING {
		WriteError(c, anyops.Errorf(anyops.ECONFLICT, "operation %s is %s, not running", id, stateName(info.GetStatus())))
		return
	}
	runID := info.GetExecution().GetRunId()
	if err := s.deps.Temporal.CancelWorkflow(ctx, id, runID); err != nil {
		WriteError(c, temporalError(err, "cancel operation "+id))
		return
	}
	c.JSON(http.StatusAccepted, CancelResult{ID: id, RunID: runID, State: "cancel-requested"})
}

// temporalError maps a Temporal client error to an anyops error.
func temporalError(err error, what string) error {
	var notFound *serviceerror.NotFound
	var invalid *serviceerror.InvalidArgument
	var unavailable *serviceerror.Unavailable
	switch {
	case errors.As(err, &notFound):
		return anyops.Errorf(anyops.ENOTFOUND, "%s: no such operation", what)
	case errors.As(err, &invalid):
		return anyops.Errorf(anyops.EINVALID, "%s: %s", what, invalid.Message)
	case errors.As(err, &unavailable), errors.Is(err, context.DeadlineExceeded):
		// Both wrapped: the client sees the anyops error, the log the cause.
		return fmt.Errorf("%s: %w: %w", what, anyops.Errorf(anyops.EUNAVAILABLE, "temporal is unavailable"), err)
	}
	return fmt.Errorf("%s: %w", what, err)
}

// queryParams returns the request's query parameters, rejecting a query string that does not
// parse (URL.Query would drop the bad pair silently), parameters not in allowed, and any given
// twice: a misspelt filter must not silently list everything.
func queryParams(c *gin.Context, allowed ...string) (url.Values, error) {
	q, err := url.ParseQuery(c.Request.URL.RawQuery)
	if err != nil {
		return nil, anyops.Errorf(anyops.EINVALID, "query string is malformed: %v", err)
	}
	for name, values := range q {
		// Filters name things (zone, cluster, user, ...); cursor and limit have parsers of their own.
		if name != "cursor" && name != "limit" && values[0] != "" {
			if err := anyops.CheckName(name, values[0]); err != nil {
				return nil, err
			}
		}
		known := false
		for _, a := range allowed {
			known = known || a == name
		}
		if !known {
			return nil, anyops.Errorf(anyops.EINVALID, "unknown query parameter %q; allowed: %s", name, strings.Join(allowed, ", "))
		}
		if len(values) > 1 {
			return nil, anyops.Errorf(anyops.EINVALID, "query parameter %q given more than once", name)
		}
	}
	return q, nil
}

// parseLimit reads the limit parameter: empty means def.
func parseLimit(s string, def, max int) (int, error) {
	if s == "" {
		return def, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 || n > max {
		return 0, anyops.Errorf(anyops.EINVALID, "limit %q is not a whole number between 1 and %d", s, max)
	}
	return n, nil
}
