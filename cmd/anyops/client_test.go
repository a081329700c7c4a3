package main

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/anyops/anyops/api"
)

// TestFollow proves what op show --watch, op start --watch, release plan and drill run share:
// follow asks until the operation no longer runs (ended, its last answer returned), prints a
// plain line only when the progress changes, passes an error of the API on, and an interrupt
// ends it without an error and not ended (the operation goes on).
func TestFollow(t *testing.T) {
	answers := func(states ...string) func(context.Context) (api.Operation, bool, error) {
		i := 0
		return func(context.Context) (api.Operation, bool, error) {
			op := api.Operation{ID: "fleet-audit", State: states[min(i, len(states)-1)]}
			i++
			return op, op.State == api.StateRunning, nil
		}
	}
	t.Run("to its end, a line a change", func(t *testing.T) {
		var out strings.Builder
		last, ended, err := follow(context.Background(), &out, false, time.Millisecond, answers("running", "running", "running", "completed"))
		if err != nil || !ended || last.State != api.StateCompleted {
			t.Fatalf("follow = %+v, %v, %v; want the completed answer, ended", last, ended, err)
		}
		if n := strings.Count(out.String(), "\n"); n != 2 {
			t.Fatalf("%d lines for two distinct progresses:\n%s", n, out.String())
		}
	})
	t.Run("an error of the API", func(t *testing.T) {
		boom := errors.New("503")
		_, ended, err := follow(context.Background(), &strings.Builder{}, false, time.Millisecond,
			func(context.Context) (api.Operation, bool, error) { return api.Operation{}, false, boom })
		if !errors.Is(err, boom) || ended {
			t.Fatalf("follow = %v, ended %v; want the API's error, not ended", err, ended)
		}
	})
	t.Run("interrupted", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		calls := 0
		_, ended, err := follow(ctx, &strings.Builder{}, true, time.Hour, func(context.Context) (api.Operation, bool, error) {
			calls++
			cancel()
			return api.Operation{ID: "fleet-audit", State: api.StateRunning}, true, nil
		})
		if err != nil || ended || calls != 1 {
			t.Fatalf("follow = %v, ended %v after %d asks; want no error, not ended, one ask", err, ended, calls)
		}
	})
}
