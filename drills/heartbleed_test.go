package drills

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
)

// TestHeartbleedReport proves the heartbleed drill's keys come from its fleet patch: the figures
// of a completed rollout (and patch_seconds in simulated time: 60 real seconds at speed 10),
// the goals checked on them; a patch that left no result claims nothing (null figures, its
// state); a drill without a patch cannot report.
func TestHeartbleedReport(t *testing.T) {
	real0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	closed := real0.Add(time.Minute)
	patch := func(result string) Run {
		return Run{WorkflowID: "patch/CVE-2014-0160", Type: "FleetPatch", State: "Completed", Started: real0, Closed: &closed, Result: json.RawMessage(result)}
	}
	in := func(ops ...Run) ReportInput {
		r := input(built(), time.Hour)
		r.Scenario, r.Cluster, r.Operations = "heartbleed", "live", ops
		r.Kinds = map[string]string{"FleetPatch": kindPatch}
		r.Goals = map[string]float64{"vulnerable_after": 0, "user_errors": 0, "max_role_down_percent": 50}
		return r
	}
	done := `{"advisory":"CVE-2014-0160","state":"completed","vulnerable_before":4,"vulnerable_after":0,"max_role_down_percent":50,
		"outcomes":{"patched":7},"notices_sent":2,"user_checks":120,"user_errors":0,"certificate":{"rotated":true}}`

	r, err := Compute(in(patch(done)))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]any{"vulnerable_before": 4, "vulnerable_after": 0, "max_role_down_percent": 50, "user_errors": 0, "user_checks": 120,
		"notices_sent": 2, "cert_rotated": true, "patch_state": "completed", "patch_seconds": 600.0}
	for k, v := range want {
		if got := r.Extra[k]; got != v {
			t.Errorf("%s = %v (%T), want %v", k, got, got, v)
		}
	}
	for _, g := range []string{"vulnerable_after", "user_errors", "max_role_down_percent"} {
		if goal := r.Goals[g]; !goal.Met || goal.Value == nil {
			t.Errorf("goal %s %+v, want met", g, goal)
		}
	}

	bad := patch(`{"advisory":"CVE-2014-0160","state":"completed","vulnerable_before":4,"vulnerable_after":1,"max_role_down_percent":100,"user_errors":3}`)
	if r, err = Compute(in(bad)); err != nil {
		t.Fatal(err)
	}
	for _, g := range []string{"vulnerable_after", "user_errors", "max_role_down_percent"} {
		if r.Goals[g].Met {
			t.Errorf("goal %s met by %+v", g, r.Goals[g])
		}
	}
	if r.Extra["cert_rotated"] != false {
		t.Errorf("cert_rotated %v without a certificate", r.Extra["cert_rotated"])
	}

	failed := patch("")
	failed.State = "Failed"
	if r, err = Compute(in(failed)); err != nil {
		t.Fatal(err)
	}
	if r.Extra["vulnerable_after"] != nil || r.Extra["patch_state"] != "Failed" || r.Goals["vulnerable_after"].Met {
		t.Errorf("a patch without a result: %v, goals %+v", r.Extra, r.Goals)
	}

	if _, err := Compute(in()); err == nil || !strings.Contains(err.Error(), "no patch operation") {
		t.Errorf("heartbleed without a patch: %v", err)
	}
}

// TestHeartbleedShips proves the scenario ships on the demo fleet with its claims as goals.
func TestHeartbleedShips(t *testing.T) {
	src, ok := Shipped("heartbleed")
	if !ok {
		t.Fatal("heartbleed does not ship")
	}
	sc, err := ParseScenario("heartbleed", src, "drill-7", nil)
	if err != nil {
		t.Fatal(err)
	}
	if sc.Cluster != "live" || len(sc.Steps) != 1 || sc.Steps[0].Operation == nil || sc.Steps[0].Operation.Kind != kindPatch {
		t.Fatalf("scenario %+v", sc)
	}
	for _, g := range []string{"vulnerable_after", "user_errors", "max_role_down_percent"} {
		if _, ok := sc.Goals[g]; !ok {
			t.Errorf("no goal on %s", g)
		}
	}
}
