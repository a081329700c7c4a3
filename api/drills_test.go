package api

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/anyops/anyops"
	"github.com/anyops/anyops/drills"
	"github.com/anyops/anyops/inventory"
	"github.com/anyops/anyops/workflows"
)

// TestDrillRoutes proves POST /v1/drills refuses a bad request with a 400 naming the problem
// and records nothing (no drill row, no workflow), and that a good one numbers the drill,
// starts drill/<n> under its business key with the scenario parsed for drill-<n> (Cluster
// search attribute set), and is shown by GET /v1/drills and GET /v1/drills/{n}; a viewer
// may read but not start; GET /v1/drill-scenarios lists what ships.
func TestDrillRoutes(t *testing.T) {
	// No worker serves this queue: the drill stays running, and is terminated at the end.
	queue := "drills-" + strings.ReplaceAll(t.Name(), "/", "-")
	f := newFixture(t, inventory.DriverSQLite, func(d *Deps) { d.DrillTaskQueue = queue })

	rec := f.do("GET", "/v1/drill-scenarios", viewerToken, "")
	if rec.Code != 200 {
		t.Fatalf("scenarios: %d %s", rec.Code, rec.Body)
	}
	if got := decode[List[drills.ScenarioInfo]](t, rec); len(got.Items) != len(drills.Scenarios()) || got.Items[0].Description == "" {
		t.Errorf("scenarios %+v", got.Items)
	}

	unchanged := f.unchanged()
	hw := `- at: 1m\n  fault: {type: hardware-failure, instance_id: \"tag:Name={{cluster}}-file\"}\n`
	for _, tc := range []struct{ name, body, want string }{
		{"empty", `{}`, "give scenario"},
		{"both", `{"scenario": "hot-backup", "scenario_file": "` + hw + `"}`, "not both"},
		{"unknown scenario", `{"scenario": "meteor-strike"}`, "no scenario"},
		{"unknown field", `{"scenario": "hot-backup", "speed": 3}`, "unknown field"},
		{"bad file", `{"scenario_file": "- at: soon\n  fault: {type: hardware-failure}\n"}`, "must be a duration"},
		{"bad fault", `{"scenario_file": "[{\"at\": \"1m\", \"fault\": {\"type\": \"meteor\"}}]"}`, "unknown fault type"},
		{"bad operation", `{"scenario_file": "[{\"at\": \"1m\", \"operation\": {\"kind\": \"fleet-audit\", \"input\": {\"x\": 1}}}]"}`, "unknown field"},
		{"bad policy", `{"scenario": "hot-backup", "policy": {"build_speed": -5}}`, "build_speed"},
		{"not json", `{"scenario": `, "invalid JSON"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec := f.do("POST", "/v1/drills", operatorToken, tc.body)
			if rec.Code != 400 || !strings.Contains(rec.Body.String(), tc.want) {
				t.Errorf("POST %s = %d %s, want 400 saying %q", tc.body, rec.Code, rec.Body, tc.want)
			}
		})
	}
	if rec := f.do("POST", "/v1/drills", viewerToken, `{"scenario": "hot-backup"}`); rec.Code != 403 {
		t.Errorf("a viewer started a drill: %d", rec.Code)
	}
	if rows, _, err := f.store.ListDrills(context.Background(), inventory.DrillFilter{}); err != nil || len(rows) != 0 {
		t.Fatalf("refused requests recorded drills: %+v %v", rows, err)
	}
	unchanged(t, "refused drill requests")

	rec = f.do("POST", "/v1/drills", operatorToken, `{"scenario": "hot-backup", "policy": {"keep_cluster": true}}`)
	if rec.Code != 201 {
		t.Fatalf("start: %d %s", rec.Code, rec.Body)
	}
	d := decode[DrillView](t, rec)
	t.Cleanup(func() { _ = f.tc.TerminateWorkflow(context.Background(), d.WorkflowID, d.RunID, "test over") })
	if d.WorkflowID != anyops.DrillWorkflowID(d.ID) || d.Cluster != anyops.DrillCluster(d.ID) || d.RunID == "" || d.State != anyops.DrillRunning {
		t.Fatalf("started %+v", d)
	}
	if loc := rec.Header().Get("Location"); loc != fmt.Sprintf("/v1/drills/%d", d.ID) {
		t.Errorf("Location %q", loc)
	}
	desc, err := f.tc.DescribeWorkflow(context.Background(), d.WorkflowID, d.RunID)
	if err != nil {
		t.Fatal(err)
	}
	if desc.RawResponse.GetWorkflowExecutionInfo().GetType().GetName() != workflows.DrillWorkflowType {
		t.Errorf("workflow type %s", desc.RawResponse.GetWorkflowExecutionInfo().GetType().GetName())
	}
	if v, ok := desc.TypedSearchAttributes.GetKeyword(workflows.SearchCluster); !ok || v != d.Cluster {
		t.Errorf("Cluster search attribute %q %v, want %s", v, ok, d.Cluster)
	}
	hist := f.tc.GetWorkflowHistory(context.Background(), d.WorkflowID, d.RunID, false, 0)
	ev, err := hist.Next()
	if err != nil {
		t.Fatal(err)
	}
	var in workflows.DrillInput
	if err := json.Unmarshal(ev.GetWorkflowExecutionStartedEventAttributes().GetInput().GetPayloads()[0].GetData(), &in); err != nil {
		t.Fatal(err)
	}
	if in.DrillID != d.ID || !in.Policy.KeepCluster || in.Scenario.Name != "hot-backup" ||
		!strings.Contains(string(in.Scenario.Steps[0].Fault), "tag:Name="+d.Cluster+"-file") {
		t.Errorf("drill input %+v (fault %s)", in, in.Scenario.Steps[0].Fault)
	}

	rec = f.do("GET", fmt.Sprintf("/v1/drills/%d", d.ID), viewerToken, "")
	if got := decode[DrillView](t, rec); rec.Code != 200 || got.ID != d.ID || got.Report != nil || got.RunID != d.RunID {
		t.Errorf("get: %d %s", rec.Code, rec.Body)
	}
	rec = f.do("GET", "/v1/drills?state=running", viewerToken, "")
	if got := decode[List[DrillView]](t, rec); rec.Code != 200 || len(got.Items) != 1 || got.Items[0].ID != d.ID {
		t.Errorf("list: %d %s", rec.Code, rec.Body)
	}
	for path, want := range map[string]int{"/v1/drills/abc": 400, "/v1/drills/0": 400, "/v1/drills/99999": 404,
		"/v1/drills?state=bored": 400, "/v1/drills?colour=red": 400, "/v1/drill-scenarios?x=1": 400} {
		if rec := f.do("GET", path, viewerToken, ""); rec.Code != want {
			t.Errorf("GET %s = %d %s, want %d", path, rec.Code, rec.Body, want)
		}
	}
	// A stored report is shown as the drill's, extra keys included.
	rto := 12.5
	report, _ := json.Marshal(anyops.DrillReport{Drill: d.WorkflowID, RTOSeconds: &rto, Extra: map[string]any{"downtime_seconds": 3.0}})
	if err := f.store.FinishDrill(context.Background(), d.ID, anyops.DrillCompleted, report, ""); err != nil {
		t.Fatal(err)
	}
	rec = f.do("GET", fmt.Sprintf("/v1/drills/%d", d.ID), viewerToken, "")
	got := decode[DrillView](t, rec)
	if got.State != anyops.DrillCompleted || got.Report == nil || *got.Report.RTOSeconds != 12.5 || got.Report.Extra["downtime_seconds"] != 3.0 {
		t.Errorf("finished drill: %s", rec.Body)
	}
}
