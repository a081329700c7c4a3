package worker

import (
	"context"
	"path/filepath"
	"testing"

	"go.temporal.io/sdk/worker"

	"github.com/anyops/anyops/activities"
	"github.com/anyops/anyops/alarms"
	"github.com/anyops/anyops/config"
	"github.com/anyops/anyops/internal/testenv"
	"github.com/anyops/anyops/inventory"
)

// TestRegisterWithCloud proves a worker given cloud clients registers the Cloud and Hosts
// activities next to the Inventory, Sandboxes and Alarms ones without a name clash (the SDK panics on one), on
// every task queue.
func TestRegisterWithCloud(t *testing.T) {
	ctx := context.Background()
	store, err := inventory.Open(ctx, inventory.DriverSQLite, filepath.Join(t.TempDir(), "inv.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	clients, err := activities.NewClients(ctx, config.AWS{Region: "us-east-1", Endpoint: "http://127.0.0.1:1"})
	if err != nil {
		t.Fatal(err)
	}
	tc := testenv.TemporalClient(t)
	for _, q := range TaskQueues {
		w := worker.New(tc, q+"-register-test", worker.Options{})
		Register(w, q, Deps{Store: store, AWS: clients, Alarms: &alarms.Intake{Store: store, Temporal: tc}})
	}
}
