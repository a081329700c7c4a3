package workflows

import (
	"testing"

	"github.com/anyops/anyops"
)

// FuzzFleetKindsPrepare proves the demo-fleet and fleet-sync kinds never panic on a body,
// reject only with EINVALID, and that whatever they accept starts the one business key with
// the server's actor and timing within bounds.
func FuzzFleetKindsPrepare(f *testing.F) {
	for _, seed := range []string{"", "{}", `{"timing":{"poll_interval":1000000000}}`, `{"timing":{"call_timeout":-1}}`,
		`{"image_id":"ami-1"}`, `{"requested_by":"x"}`, `{"timing":null}`, `{"timing":{"wait_timeout":1e30}}`, `[`} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		for _, name := range []string{KindDemoFleet, KindFleetSync} {
			kind, _ := LookupKind(name)
			start, err := kind.Prepare(body, "api:fuzz")
			if err != nil {
				if anyops.ErrorCode(err) != anyops.EINVALID {
					t.Fatalf("%s: Prepare(%q) failed with %v, want EINVALID", name, body, err)
				}
				continue
			}
			var timing FleetTiming
			switch in := start.Input.(type) {
			case DemoFleetInput:
				if start.ID != DemoFleetWorkflowID || in.RequestedBy != "api:fuzz" {
					t.Fatalf("demo-fleet accepted %q as %+v", body, start)
				}
				timing = in.Timing
			case FleetSyncInput:
				if start.ID != FleetSyncWorkflowID || in.RequestedBy != "api:fuzz" {
					t.Fatalf("fleet-sync accepted %q as %+v", body, start)
				}
				timing = in.Timing
			default:
				t.Fatalf("%s: input of type %T", name, start.Input)
			}
			if timing.validate() != nil {
				t.Fatalf("%s accepted out-of-bounds timing %+v from %q", name, timing, body)
			}
		}
	})
}
