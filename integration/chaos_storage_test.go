package integration

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/anyops/anyops/activities"
	"github.com/anyops/anyops/cloudsim"
	"github.com/anyops/anyops/drills"
	"github.com/anyops/anyops/inventory"
)

// hotCopiesKept is "never zero hot copies during a storage change": replayed from cloudsim's
// DRBD and instance events per resource and peer (drills.NoHotCopies, the replay the drill
// report's change_no_hot_backup_seconds sums), over the operation's run on cloudsim's clock,
// no resource of the file server was without an UpToDate Secondary connected to its Primary,
// unless an audited override of the no-uptodate-peer interlock allowed it.
var hotCopiesKept = chaosInvariant{name: "never zero hot copies during a storage change",
	check: func(t *testing.T, w *chaosWorld, _ chaosOperation) string {
		ctx := context.Background()
		store, err := w.openStore()
		if err != nil {
			return err.Error()
		}
		defer store.Close()
		overrides, err := activities.AuditedOverrides(ctx, store, time.Time{}, inventory.DemoCluster, nil)
		if err != nil {
			return err.Error()
		}
		resources, err := activities.ClusterResources(ctx, w.clouds, inventory.DemoCluster)
		if err != nil {
			return err.Error()
		}
		events := w.sim.QueryEvents(cloudsim.EventQuery{Types: drills.EventTypes})
		gaps := drills.NoHotCopies(events, resources, inventory.DemoCluster, w.opStarted, w.opEnded, overrides)
		t.Logf("hot copies of %s from %s to %s over %d events: %d gaps", inventory.DemoCluster,
			w.opStarted.Format(time.TimeOnly), w.opEnded.Format(time.TimeOnly), len(events), len(gaps))
		var out []string
		for _, g := range gaps {
			out = append(out, g.String())
		}
		if len(out) > 0 {
			return fmt.Sprintf("%d time(s) without a hot copy: %s", len(out), strings.Join(out, "; "))
		}
		return ""
	}}
