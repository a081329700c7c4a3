package api

import (
	"context"
	"net/http"
	"net/url"
	"strconv"

	"github.com/gin-gonic/gin"

	"github.com/anyops/anyops"
	"github.com/anyops/anyops/inventory"
)

// IncidentView is GET /v1/incidents/{id}: the incident with its timeline and, once linked, its
// recovery workflow as GET /v1/operations/{id} shows it (state and the Status query).
type IncidentView struct {
	inventory.Incident
	// Workflow is the linked run; nil before the incident has one, or when Temporal cannot
	// describe it (WorkflowError says why).
	Workflow      *Operation `json:"workflow,omitempty"`
	WorkflowError string     `json:"workflow_error,omitempty"`
}

func (s *Server) registerIncidents(v1 *gin.RouterGroup, auth *Authorizer) {
	viewer := auth.Require(RoleViewer)
	v1.GET("/incidents", viewer, listHandler([]string{"state", "cluster", "server"}, func(ctx context.Context, q url.Values, p inventory.Page) ([]inventory.Incident, string, error) {
		return s.deps.Store.ListIncidents(ctx, inventory.IncidentFilter{State: inventory.IncidentState(q.Get("state")),
			Cluster: q.Get("cluster"), Server: q.Get("server"), Page: p})
	}))
	v1.GET("/incidents/:id", viewer, s.getIncident)
}

func (s *Server) getIncident(c *gin.Context) {
	id, err := strconv.ParseInt(c.Param("id"), 10, 64)
	if err != nil || id <= 0 {
		WriteError(c, anyops.Errorf(anyops.EINVALID, "incident id %q is not a positive number", c.Param("id")))
		return
	}
	ctx := c.Request.Context()
	inc, err := s.deps.Store.GetIncident(ctx, id)
	if err != nil {
		WriteError(c, err)
		return
	}
	view := IncidentView{Incident: inc}
	if inc.WorkflowID != "" && inc.RunID != "" {
		var op Operation
		desc, err := s.deps.Temporal.DescribeWorkflow(ctx, inc.WorkflowID, inc.RunID)
		if err == nil {
			op, err = s.operationView(ctx, inc.WorkflowID, desc.RawResponse.GetWorkflowExecutionInfo())
		}
		if err != nil {
			// The incident is still worth showing: say why its workflow is not.
			s.log.Warn("incident workflow not described", "incident", id, "workflow_id", inc.WorkflowID, "err", err)
			view.WorkflowError = anyops.ErrorMessage(temporalError(err, "describe "+inc.WorkflowID))
		} else {
			view.Workflow = &op
		}
	}
	c.JSON(http.StatusOK, view)
}
