package api

import (
	"context"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/anyops/anyops"
	"github.com/anyops/anyops/inventory"
)

// TestReadyzWaitsForStartup proves /readyz answers 503 naming what Deps.Startup still waits
// for, with the database and Temporal up, and 200 once it waits for nothing.
func TestReadyzWaitsForStartup(t *testing.T) {
	var waiting atomic.Value
	waiting.Store([]string{"demo-fleet: building (DemoFleet 2/8 steps done; launch-instances: launching 7 instances)", "console-host: after demo-fleet"})
	f := newFixture(t, inventory.DriverSQLite, func(d *Deps) {
		d.Startup = func(context.Context) []string { return waiting.Load().([]string) }
	})

	rec := f.do("GET", "/readyz", "", "")
	body := decode[struct {
		Error   ErrorDetail       `json:"error"`
		Checks  map[string]string `json:"checks"`
		Waiting []string          `json:"waiting"`
	}](t, rec)
	if rec.Code != 503 || body.Error.Code != anyops.EUNAVAILABLE || len(body.Waiting) != 2 ||
		body.Checks["startup"] != "waiting" || body.Checks["database"] != "ok" || body.Checks["temporal"] != "ok" ||
		!strings.Contains(body.Error.Message, "waiting for demo-fleet: building") {
		t.Errorf("readyz while starting = %d %s, want 503 naming both stages", rec.Code, rec.Body)
	}

	waiting.Store([]string(nil))
	rec = f.do("GET", "/readyz", "", "")
	if rec.Code != 200 || !strings.Contains(rec.Body.String(), `"startup":"ok"`) || strings.Contains(rec.Body.String(), "waiting") {
		t.Errorf("readyz once started = %d %s, want 200 with startup ok", rec.Code, rec.Body)
	}
}
