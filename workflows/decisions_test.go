package workflows

import (
	"errors"
	"strings"
	"testing"

	"go.temporal.io/sdk/temporal"

	"github.com/anyops/anyops"
)

// TestDecisionRefusals proves the rules the approve, abort and override validators share, in
// their order: every refusal is a 409 (ECONFLICT) with the reason, an abort without a reason is
// refused before anything else, the workflow's own refusal comes before "already aborted".
func TestDecisionRefusals(t *testing.T) {
	earlier := &DecisionInput{By: "api:alice", Reason: "a drill"}
	tooLate := func() error { return refused("the cutover is under way") }
	blockingNone := func(string) bool { return false }
	blockingAll := func(string) bool { return true }
	for _, tt := range []struct {
		name string
		err  error
		want string // "" accepted
	}{
		{"approve", refuseApprove("release", nil, nil), ""},
		{"approve after an abort", refuseApprove("release", earlier, nil), "the release was aborted"},
		{"approve: the workflow's refusal first", refuseApprove("release", earlier, tooLate()), "the cutover is under way"},
		{"abort", refuseAbort("failover", DecisionInput{By: "api:bob", Reason: "wrong server"}, nil, nil), ""},
		{"abort without a reason", refuseAbort("failover", DecisionInput{By: "api:bob", Reason: " "}, earlier, tooLate), "an abort needs a reason"},
		{"abort: the workflow's refusal before already aborted", refuseAbort("failover", DecisionInput{By: "api:bob", Reason: "x"}, earlier, tooLate), "the cutover is under way"},
		{"a second abort", refuseAbort("failover", DecisionInput{By: "api:bob", Reason: "x"}, earlier, func() error { return nil }), "the failover was aborted already by api:alice"},
		{"override", refuseOverride(DecisionInput{By: "api:bob", Reason: "verified by hand", Interlock: string(anyops.InterlockNotUpToDate)}, blockingAll), ""},
		{"override of an unknown interlock", refuseOverride(DecisionInput{By: "api:bob", Reason: "x", Interlock: "nope"}, blockingAll), `"nope"`},
		{"override without why", refuseOverride(DecisionInput{By: "api:bob", Interlock: string(anyops.InterlockNotUpToDate)}, blockingAll), "needs who and why"},
		{"override of an interlock holding nothing up", refuseOverride(DecisionInput{By: "api:bob", Reason: "x", Interlock: string(anyops.InterlockNotUpToDate)}, blockingNone), "holds nothing up now"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if tt.want == "" {
				if tt.err != nil {
					t.Fatalf("refused: %v, want it accepted", tt.err)
				}
				return
			}
			var app *temporal.ApplicationError
			if !errors.As(tt.err, &app) || app.Type() != anyops.ECONFLICT || !strings.Contains(app.Message(), tt.want) {
				t.Fatalf("refusal %v, want an %s application error containing %q", tt.err, anyops.ECONFLICT, tt.want)
			}
		})
	}
}
