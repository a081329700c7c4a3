package sandboxd

import "github.com/anyops/anyops"

// planNetwork is the plan's network policy, or the requested one when it reaches no further.
func planNetwork(plan anyops.Plan, requested anyops.NetworkPolicy) (anyops.NetworkPolicy, error) {
	limit := anyops.PlanNetwork(plan)
	if requested == "" {
		return limit, nil
	}
	if _, err := anyops.Parse("network", string(requested), anyops.NetworkPolicies); err != nil {
		return "", err
	}
	if !requested.Within(limit) {
		return "", anyops.Errorf(anyops.EINVALID, "network %s reaches further than plan %s's %s", requested, plan, limit)
	}
	return requested, nil
}
