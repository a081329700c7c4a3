package apiclient

import (
	"context"
	"net/http"
	"strconv"

	"github.com/anyops/anyops/api"
	"github.com/anyops/anyops/drills"
)

// DrillScenarios lists the scenarios that ship.
func (c *Client) DrillScenarios(ctx context.Context) ([]drills.ScenarioInfo, error) {
	var out api.List[drills.ScenarioInfo]
	return out.Items, c.Do(ctx, http.MethodGet, "/v1/drill-scenarios", nil, nil, &out)
}

// StartDrill starts a drill of a shipped scenario or of a scenario file's text.
func (c *Client) StartDrill(ctx context.Context, req api.StartDrill) (api.DrillView, error) {
	var out api.DrillView
	return out, c.Do(ctx, http.MethodPost, "/v1/drills", nil, req, &out)
}

// GetDrill shows a drill with its Status and, once it has one, its report.
func (c *Client) GetDrill(ctx context.Context, id int64) (api.DrillView, error) {
	var out api.DrillView
	return out, c.Do(ctx, http.MethodGet, "/v1/drills/"+strconv.FormatInt(id, 10), nil, nil, &out)
}

// DrillFilter selects drills.
type DrillFilter struct {
	State  string
	Limit  int
	Cursor string
}

// ListDrills lists one page of drills, newest first.
func (c *Client) ListDrills(ctx context.Context, f DrillFilter) (api.List[api.DrillView], error) {
	var out api.List[api.DrillView]
	return out, c.Do(ctx, http.MethodGet, "/v1/drills", listQuery(f.Limit, f.Cursor, "state", f.State), nil, &out)
}
