package anyops

import "testing"

// Each plan's network is the one place the plan→network mapping lives; Within orders the
// policies by reach, so a request may lower its plan's network but never raise it.
func TestPlanNetworkAndWithin(t *testing.T) {
	for plan, want := range map[Plan]NetworkPolicy{
		PlanAnonymous: NetworkNone, PlanFree: NetworkProxy, PlanPaid: NetworkInternet, PlanTarpit: NetworkProxyThrottled, "": NetworkNone,
	} {
		if got := PlanNetwork(plan); got != want {
			t.Errorf("PlanNetwork(%q) = %q, want %q", plan, got, want)
		}
	}
	for _, tt := range []struct {
		p, limit NetworkPolicy
		want     bool
	}{
		{NetworkNone, NetworkNone, true},
		{NetworkNone, NetworkInternet, true},
		{NetworkProxyThrottled, NetworkProxy, true},
		{NetworkProxy, NetworkProxyThrottled, false},
		{NetworkInternet, NetworkProxy, false},
		{NetworkProxy, NetworkNone, false},
		{"host", NetworkInternet, false},
		{NetworkNone, "host", false},
	} {
		if got := tt.p.Within(tt.limit); got != tt.want {
			t.Errorf("%q.Within(%q) = %v, want %v", tt.p, tt.limit, got, tt.want)
		}
	}
}
