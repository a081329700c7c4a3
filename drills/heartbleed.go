package drills

import (
	"encoding/json"
	"fmt"

	"github.com/anyops/anyops"
)

// The heartbleed drill's report keys (docs/drills.md, docs/patches.md): the fleet patch's
// figures as FleetPatch measured them — the active check before and after, the largest share
// of a role out of rotation, the users' health checks that failed — its duration in simulated
// time, the notices sent and whether the platform's certificate was rotated.
var heartbleedKeys = []string{"vulnerable_before", "vulnerable_after", "max_role_down_percent", "user_errors", "user_checks",
	"patch_seconds", "notices_sent", "cert_rotated", "patch_state", "patch_outcomes"}

var heartbleedNumeric = []string{"vulnerable_before", "vulnerable_after", "max_role_down_percent", "user_errors", "user_checks",
	"patch_seconds", "notices_sent"}

// kindPatch is the operation kind of FleetPatch (workflows.KindPatch, which this package cannot
// import).
const kindPatch = "patch"

// heartbleedReport reads the drill's fleet patch: its result (anyops.PatchSummary and the
// certificate's rotation) and its run's times. A patch that left no result (it failed before
// its end) reports its state and null figures: nothing it did not measure is claimed.
func heartbleedReport(in ReportInput, _ Report) (map[string]any, error) {
	op, err := in.operationOf(kindPatch)
	if err != nil {
		return nil, err
	}
	out := map[string]any{"patch_state": op.State}
	for _, k := range heartbleedNumeric {
		out[k] = nil
	}
	out["cert_rotated"], out["patch_outcomes"] = false, map[string]int{}
	if op.Closed != nil {
		out["patch_seconds"] = round(in.Clock.ToSim(*op.Closed).Sub(in.Clock.ToSim(op.Started)).Seconds())
	}
	if len(op.Result) == 0 || string(op.Result) == "null" {
		return out, nil
	}
	var res struct {
		anyops.PatchSummary
		Certificate *struct {
			Rotated bool `json:"rotated"`
		} `json:"certificate"`
	}
	if err := json.Unmarshal(op.Result, &res); err != nil {
		return nil, fmt.Errorf("the %s operation's result: %w", kindPatch, err)
	}
	s := res.PatchSummary
	out["vulnerable_before"], out["vulnerable_after"] = s.VulnerableBefore, s.VulnerableAfter
	out["max_role_down_percent"], out["notices_sent"] = s.MaxRoleDownPercent, s.NoticesSent
	out["user_errors"], out["user_checks"] = s.UserErrors, s.UserChecks
	out["patch_state"], out["patch_outcomes"] = string(s.State), s.Outcomes
	out["cert_rotated"] = res.Certificate != nil && res.Certificate.Rotated
	return out, nil
}
