package api

import (
	"errors"
	"strings"
	"testing"

	"github.com/anyops/anyops"
)

// TestDecisionRequestCheck: the API's part of a decision — reasons, interlocks and a
// release's plan hash checked before any update reaches a workflow (bad input is EINVALID,
// 400; whether the hash is the current plan's is the workflow's StalePlan).
func TestDecisionRequestCheck(t *testing.T) {
	cases := []struct {
		name     string
		decision Decision
		req      DecisionRequest
		wantErr  string
	}{
		{"approve", DecisionApprove, DecisionRequest{}, ""},
		{"approve a plan", DecisionApprove, DecisionRequest{PlanHash: "0123456789abcdef"}, ""},
		{"plan hash malformed", DecisionApprove, DecisionRequest{PlanHash: "0123456789ABCDEF"}, "not a plan's hash"},
		{"plan hash too short", DecisionApprove, DecisionRequest{PlanHash: "abc"}, "not a plan's hash"},
		{"plan hash on abort", DecisionAbort, DecisionRequest{Reason: "no", PlanHash: "0123456789abcdef"}, "approve only"},
		{"abort needs a reason", DecisionAbort, DecisionRequest{}, "needs a reason"},
		{"override names its interlock", DecisionOverride, DecisionRequest{Reason: "why", Interlock: "no-copy-in-target"}, ""},
		{"override without interlock", DecisionOverride, DecisionRequest{Reason: "why"}, "interlock"},
		{"interlock on approve", DecisionApprove, DecisionRequest{Interlock: "live-cluster"}, "override only"},
		{"reason too long", DecisionApprove, DecisionRequest{Reason: strings.Repeat("x", maxReasonLen+1)}, "longer"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := c.req.check(c.decision)
			if c.wantErr == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			var ae *anyops.Error
			if err == nil || !strings.Contains(err.Error(), c.wantErr) || !errors.As(err, &ae) || ae.Code != anyops.EINVALID {
				t.Fatalf("err %v, want EINVALID containing %q", err, c.wantErr)
			}
		})
	}
}
