package worker

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.temporal.io/sdk/client"

	"github.com/anyops/anyops/internal/testenv"
	"github.com/anyops/anyops/workflows"
)

// TestMetricsFromARealWorker runs a FleetAudit through a worker whose client reports to
// Metrics and proves the SDK's metrics come out as a valid Prometheus exposition: completed
// workflows counted with their type, activity latency as a histogram, and no label conflict
// although the SDK tags one name differently in different places.
func TestMetricsFromARealWorker(t *testing.T) {
	ctx := context.Background()
	store := demoStore(t)
	m := NewMetrics()
	tc, err := client.Dial(client.Options{HostPort: testenv.Temporal(t), MetricsHandler: m.Handler()})
	if err != nil {
		t.Fatal(err)
	}
	defer tc.Close()

	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() {
		done <- Run(runCtx, Config{Client: tc, Deps: Deps{Store: store}, Logger: slog.New(slog.DiscardHandler), StopTimeout: 5 * time.Second})
	}()
	defer func() { stop(); <-done }()

	kind, _ := workflows.LookupKind(workflows.KindFleetAudit)
	run, err := tc.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: "worker-metrics-fleet-audit", TaskQueue: kind.TaskQueue},
		kind.WorkflowType, workflows.FleetAuditInput{RequestedBy: "metrics-test"})
	if err != nil {
		t.Fatal(err)
	}
	wctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	if err := run.Get(wctx, nil); err != nil {
		t.Fatal(err)
	}

	reg := prometheus.NewRegistry()
	reg.MustRegister(m)
	// The worker counts a completion after it reports it, so run.Get may return first.
	var byName map[string]bool
	completedFleetAudits := 0.0
	for deadline := time.Now().Add(10 * time.Second); completedFleetAudits < 1 && time.Now().Before(deadline); {
		families, err := reg.Gather()
		if err != nil {
			t.Fatalf("gather: %v", err)
		}
		byName = map[string]bool{}
		for _, f := range families {
			byName[f.GetName()] = true
			if f.GetName() != "temporal_workflow_completed" {
				continue
			}
			for _, metric := range f.GetMetric() {
				for _, l := range metric.GetLabel() {
					if l.GetName() == "workflow_type" && l.GetValue() == kind.WorkflowType {
						completedFleetAudits += metric.GetCounter().GetValue()
					}
				}
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	if completedFleetAudits < 1 {
		t.Errorf("temporal_workflow_completed{workflow_type=%q} = %v, want at least 1", kind.WorkflowType, completedFleetAudits)
	}
	for _, name := range []string{"temporal_activity_execution_latency_seconds", "temporal_request"} {
		if !byName[name] {
			t.Errorf("metric %s missing; have %v", name, byName)
		}
	}
}
