package api

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/gin-gonic/gin"
	"go.temporal.io/sdk/temporal"

	"github.com/anyops/anyops"
	"github.com/anyops/anyops/drills"
	"github.com/anyops/anyops/internal/opstart"
	"github.com/anyops/anyops/inventory"
	"github.com/anyops/anyops/workflows"
)

// StartDrill is the body of POST /v1/drills: a shipped scenario by name, or a scenario file's
// text, and optionally the drill's policy.
type StartDrill struct {
	Scenario     string                `json:"scenario,omitempty"`
	ScenarioFile string                `json:"scenario_file,omitempty"`
	Policy       workflows.DrillPolicy `json:"policy,omitempty"`
}

// DrillView is a drill as the API shows it: its row, while it runs its workflow's Status, and
// its report once it has one.
type DrillView struct {
	ID          int64               `json:"id"`
	Scenario    string              `json:"scenario"`
	Cluster     string              `json:"cluster"`
	WorkflowID  string              `json:"workflow_id"`
	RunID       string              `json:"run_id,omitempty"`
	State       anyops.DrillState   `json:"state"`
	Speed       float64             `json:"speed"`
	RequestedBy string              `json:"requested_by,omitempty"`
	Error       string              `json:"error,omitempty"`
	CreatedAt   time.Time           `json:"created_at"`
	FinishedAt  *time.Time          `json:"finished_at,omitempty"`
	Status      *workflows.Status   `json:"status,omitempty"`
	Report      *anyops.DrillReport `json:"report,omitempty"`
}

// drillKind is how a drill's workflow is started: not an operation kind (the API numbers the
// drill first), but started the one way operations are (opstart).
var drillKind = workflows.Kind{Name: "drill", WorkflowType: workflows.DrillWorkflowType, TaskQueue: workflows.TaskQueueControl,
	ExecutionTimeout: workflows.DrillExecutionTimeout}

func (s *Server) registerDrills(v1 *gin.RouterGroup, auth *Authorizer) {
	viewer := auth.Require(RoleViewer)
	v1.GET("/drill-scenarios", viewer, func(c *gin.Context) {
		if _, err := queryParams(c); err != nil {
			WriteError(c, err)
			return
		}
		c.JSON(http.StatusOK, List[drills.ScenarioInfo]{Items: drills.Scenarios()})
	})
	v1.POST("/drills", auth.Require(RoleOperator), s.startDrill)
	v1.GET("/drills", viewer, listHandler([]string{"state"}, func(ctx context.Context, q url.Values, p inventory.Page) ([]DrillView, string, error) {
		rows, next, err := s.deps.Store.ListDrills(ctx, inventory.DrillFilter{State: anyops.DrillState(q.Get("state")), Page: p})
		views := make([]DrillView, len(rows))
		for i, d := range rows {
			views[i] = drillView(d)
		}
		return views, next, err
	}))
	v1.GET("/drills/:id", viewer, s.getDrill)
}

func drillView(d inventory.Drill) DrillView {
	return DrillView{ID: d.ID, Scenario: d.Scenario, Cluster: d.Cluster, WorkflowID: d.WorkflowID, RunID: d.RunID, State: d.State,
		Speed: d.Speed, RequestedBy: d.RequestedBy, Error: d.Error, CreatedAt: d.CreatedAt, FinishedAt: d.FinishedAt}
}

// startDrill validates the scenario whole (a bad one is a 400 and records nothing), numbers
// the drill, and starts drill/<n> with the scenario parsed for its cluster.
func (s *Server) startDrill(c *gin.Context) {
	body, err := ReadBody(c)
	if err != nil {
		WriteError(c, err)
		return
	}
	var req StartDrill
	if err := workflows.DecodeStrict(body, &req); err != nil {
		WriteError(c, err)
		return
	}
	name, src := req.Scenario, []byte(req.ScenarioFile)
	switch {
	case (req.Scenario == "") == (req.ScenarioFile == ""):
		WriteError(c, anyops.Errorf(anyops.EINVALID, "give scenario (one of %s) or scenario_file, not both", strings.Join(drills.ScenarioNames(), ", ")))
		return
	case req.Scenario != "":
		var ok bool
		if src, ok = drills.Shipped(req.Scenario); !ok {
			WriteError(c, anyops.Errorf(anyops.EINVALID, "no scenario %q ships; scenarios: %s", req.Scenario, strings.Join(drills.ScenarioNames(), ", ")))
			return
		}
	default:
		name = drills.FileScenario
	}
	if err := req.Policy.Validate(); err != nil {
		WriteError(c, err)
		return
	}
	// Validated for a placeholder cluster first: nothing is recorded for a bad file.
	probe, err := drills.ParseScenario(name, src, anyops.DrillCluster(0), workflows.CheckDrillOperation)
	if err != nil {
		WriteError(c, err)
		return
	}
	ctx := c.Request.Context()
	d, err := s.deps.Store.CreateDrill(ctx, inventory.Drill{Scenario: name, Source: string(src), Cluster: probe.Cluster,
		Speed: probe.Speed, RequestedBy: Actor(c)})
	if err != nil {
		WriteError(c, err)
		return
	}
	sc, err := drills.ParseScenario(name, src, d.Cluster, workflows.CheckDrillOperation)
	if err != nil {
		s.failDrill(d.ID, err)
		WriteError(c, err)
		return
	}
	started, err := opstart.Start(ctx, s.deps.Temporal, drillKind, workflows.Start{
		ID:               d.WorkflowID,
		Input:            workflows.DrillInput{DrillID: d.ID, Cluster: d.Cluster, Scenario: sc, Policy: req.Policy},
		SearchAttributes: temporal.NewSearchAttributes(workflows.SearchCluster.ValueSet(d.Cluster)),
	}, s.deps.DrillTaskQueue)
	if err != nil {
		s.failDrill(d.ID, err)
		WriteError(c, temporalError(err, "start "+d.WorkflowID))
		return
	}
	if err := s.deps.Store.SetDrillRun(ctx, d.ID, started.RunID); err != nil {
		WriteError(c, err)
		return
	}
	d.RunID = started.RunID
	c.Header("Location", "/v1/drills/"+strconv.FormatInt(d.ID, 10))
	c.JSON(http.StatusCreated, drillView(d))
}

// failDrill records that a numbered drill never started.
func (s *Server) failDrill(id int64, cause error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := s.deps.Store.FinishDrill(ctx, id, anyops.DrillFailed, nil, "not started: "+cause.Error()); err != nil {
		s.log.Error("recording a drill that did not start", "drill", id, "err", err)
	}
}

func (s *Server) getDrill(c *gin.Context) {
	id, err := strconv.ParseInt(c.Param("id"), 10, 64)
	if err != nil || id <= 0 {
		WriteError(c, anyops.Errorf(anyops.EINVALID, "drill id %q is not a positive number", c.Param("id")))
		return
	}
	ctx := c.Request.Context()
	d, err := s.deps.Store.GetDrill(ctx, id)
	if err != nil {
		WriteError(c, err)
		return
	}
	view := drillView(d)
	if d.RunID != "" {
		view.Status = s.queryStatus(ctx, d.WorkflowID, d.RunID)
	}
	if d.Report != "" {
		var r anyops.DrillReport
		if err := json.Unmarshal([]byte(d.Report), &r); err != nil {
			WriteError(c, fmt.Errorf("drill %d: its stored report does not decode: %w", id, err))
			return
		}
		view.Report = &r
	}
	c.JSON(http.StatusOK, view)
}
