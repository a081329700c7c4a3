package devstack

import (
	"context"
	"errors"
	"reflect"
	"testing"
)

// TestStartup proves what /readyz is told while dev starts: every stage not yet done, the
// running one with its progress and the later ones after it; nothing once all are done, and
// for good; a failed stage with its error, never ready.
func TestStartup(t *testing.T) {
	ctx := context.Background()
	s := NewStartup("demo-fleet", "console-host")
	ready := func() bool {
		select {
		case <-s.Ready():
			return true
		default:
			return false
		}
	}
	check := func(want ...string) {
		t.Helper()
		if got := s.Waiting(ctx); !reflect.DeepEqual(got, want) {
			t.Errorf("Waiting = %q, want %q", got, want)
		}
	}
	check("demo-fleet: not started", "console-host: after demo-fleet")
	s.Begin("demo-fleet", func(context.Context) string { return "3/8 steps done" })
	check("demo-fleet: 3/8 steps done", "console-host: after demo-fleet")
	s.Finish("demo-fleet")
	if ready() {
		t.Fatal("ready with the console host still coming")
	}
	s.Begin("console-host", nil)
	check("console-host: in progress")
	s.Finish("console-host")
	if !ready() {
		t.Fatal("not ready with every stage done")
	}
	check()
	s.Finish("console-host") // finishing twice is harmless
	check()

	failed := NewStartup("demo-fleet")
	failed.Begin("demo-fleet", nil)
	failed.Fail("demo-fleet", errors.New("cloudsim refused RunInstances"))
	if got := failed.Waiting(ctx); !reflect.DeepEqual(got, []string{"demo-fleet: failed: cloudsim refused RunInstances"}) {
		t.Errorf("Waiting after a failure = %q", got)
	}
}
