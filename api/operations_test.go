package api

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/anyops/anyops/inventory"
	"github.com/anyops/anyops/workflows"
)

// pollOperation GETs an operation until its state is want, failing after a minute.
func (f *fixture) pollOperation(id, want string) Operation {
	f.t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		rec := f.do("GET", operationPath(id), viewerToken, "")
		if rec.Code != 200 {
			f.t.Fatalf("GET %s = %d %s", operationPath(id), rec.Code, rec.Body)
		}
		op := decode[Operation](f.t, rec)
		if op.State == want {
			return op
		}
		if time.Now().After(deadline) {
			f.t.Fatalf("operation %s still %s after a minute, want %s: %s", id, op.State, want, rec.Body)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// postOperation POSTs to start a kind and checks the status.
func (f *fixture) postOperation(kind, body string, wantStatus int) StartedOperation {
	f.t.Helper()
	rec := f.do("POST", "/v1/operations/"+kind, operatorToken, body)
	if rec.Code != wantStatus {
		f.t.Fatalf("POST /v1/operations/%s = %d %s, want %d", kind, rec.Code, rec.Body, wantStatus)
	}
	started := decode[StartedOperation](f.t, rec)
	if loc := rec.Header().Get("Location"); loc != operationPath(started.ID) {
		f.t.Errorf("Location %q, want %q", loc, operationPath(started.ID))
	}
	return started
}

// TestFleetAuditThroughAPI is the integration test of the operations API on the real Temporal
// dev server with an in-process worker, once per inventory backend. It proves:
//   - POST /v1/operations/fleet-audit answers 201 with the business-key id; a second POST
//     while that one runs answers 200 with the same run (joined), starting nothing new;
//   - GET /v1/operations/{id} shows it completed, with the demo fleet's counts as its result
//     and its Status query at phase done, and exactly one audit event was recorded;
//   - GET /v1/operations lists it by kind and state;
//   - a POST after completion starts a new run (201), and cancelling a completed one is 409.
func TestFleetAuditThroughAPI(t *testing.T) {
	for _, driver := range []string{inventory.DriverSQLite, inventory.DriverPostgres} {
		t.Run(driver, func(t *testing.T) {
			f := newFixture(t, driver)
			auditBefore := f.auditCount()

			// No worker yet: the first run stays open, so the second POST must join it.
			first := f.postOperation(workflows.KindFleetAudit, `{"reason":"integration test"}`, 201)
			if first.ID != workflows.FleetAuditWorkflowID || first.Kind != workflows.KindFleetAudit || first.Joined || first.RunID == "" {
				t.Fatalf("first POST = %+v", first)
			}
			workflowsBefore := f.workflowCount()
			joined := f.postOperation(workflows.KindFleetAudit, "", 200)
			if !joined.Joined || joined.ID != first.ID || joined.RunID != first.RunID {
				t.Fatalf("second POST = %+v, want joined to run %s", joined, first.RunID)
			}
			if got := f.workflowCount(); got != workflowsBefore {
				t.Fatalf("joining changed the workflow count from %d to %d", workflowsBefore, got)
			}

			f.startWorker()
			op := f.pollOperation(first.ID, StateCompleted)
			if op.RunID != first.RunID || op.Kind != workflows.KindFleetAudit || op.Closed == nil {
				t.Errorf("completed operation %+v, want run %s of kind fleet-audit with a close time", op, first.RunID)
			}
			var result workflows.FleetAuditResult
			if err := json.Unmarshal(op.Result, &result); err != nil {
				t.Fatalf("result %s: %v", op.Result, err)
			}
			want, err := f.store.FleetSummary(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			fleet := inventory.DemoFleet()
			if result.Counts.Totals != want.Totals || result.Counts.Totals.Servers != len(fleet.Servers) ||
				result.Counts.Totals.Volumes != len(fleet.Volumes) || result.Counts.Totals.Replicas != len(fleet.Replicas) {
				t.Errorf("result totals %+v; store says %+v; demo fleet has %d servers, %d volumes, %d replicas",
					result.Counts.Totals, want.Totals, len(fleet.Servers), len(fleet.Volumes), len(fleet.Replicas))
			}
			for role, n := range want.ServersByRole {
				if result.Counts.ServersByRole[role] != n {
					t.Errorf("servers_by_role[%s] = %d, want %d", role, result.Counts.ServersByRole[role], n)
				}
			}
			if op.Status == nil || op.Status.Phase != workflows.PhaseDone || op.Status.Progress != 1 {
				t.Errorf("status of the completed operation %+v, want phase done, progress 1", op.Status)
			}
			if got := f.auditCount(); got != auditBefore+1 {
				t.Errorf("audit log grew from %d to %d events, want exactly one more (the joined POST must not add one)", auditBefore, got)
			}
			events, _, err := f.store.ListAudit(context.Background(), inventory.Page{Limit: 1})
			if err != nil || len(events) != 1 || events[0].Action != workflows.KindFleetAudit || events[0].Actor != "api:operator" || events[0].Summary["reason"] != "integration test" {
				t.Errorf("newest audit event %+v (%v), want the fleet audit by api:operator with its reason", events, err)
			}

			// Visibility is eventually consistent: poll the list until the run shows completed.
			deadline := time.Now().Add(30 * time.Second)
			for {
				list := decode[List[Operation]](t, f.do("GET", "/v1/operations?kind=fleet-audit&state=completed&limit=100", viewerToken, ""))
				found := false
				for _, o := range list.Items {
					found = found || (o.RunID == first.RunID && o.State == StateCompleted && o.Kind == workflows.KindFleetAudit)
					if o.State != StateCompleted || o.Kind != workflows.KindFleetAudit {
						t.Fatalf("list filtered by kind and state returned %+v", o)
					}
				}
				if found {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("run %s not listed as completed after 30s", first.RunID)
				}
				time.Sleep(200 * time.Millisecond)
			}

			if rec := f.do("POST", operationPath(first.ID)+"/cancel", operatorToken, ""); rec.Code != 409 {
				t.Errorf("cancel of a completed operation = %d %s, want 409", rec.Code, rec.Body)
			}
			again := f.postOperation(workflows.KindFleetAudit, "", 201)
			if again.Joined || again.RunID == first.RunID {
				t.Errorf("POST after completion = %+v, want a new run", again)
			}
			f.pollOperation(again.ID, StateCompleted)
		})
	}
}

// TestCancelOperation proves POST /v1/operations/{id}/cancel on a running operation answers
// 202, and that the workflow ends canceled once a worker picks it up, without recording an
// audit event.
func TestCancelOperation(t *testing.T) {
	f := newFixture(t, inventory.DriverSQLite)
	auditBefore := f.auditCount()
	started := f.postOperation(workflows.KindFleetAudit, "", 201)
	rec := f.do("POST", operationPath(started.ID)+"/cancel", operatorToken, "")
	if rec.Code != 202 {
		t.Fatalf("cancel = %d %s, want 202", rec.Code, rec.Body)
	}
	if res := decode[CancelResult](t, rec); res.RunID != started.RunID || res.State != "cancel-requested" {
		t.Fatalf("cancel answered %+v", res)
	}
	f.startWorker()
	op := f.pollOperation(started.ID, StateCanceled)
	if op.Error == "" {
		t.Errorf("canceled operation without an error message: %+v", op)
	}
	if got := f.auditCount(); got != auditBefore {
		t.Errorf("a canceled audit recorded %d audit events", got-auditBefore)
	}
}

// TestServeShutsDownGracefully proves Serve answers on a real listener and returns nil once
// its context ends.
func TestServeShutsDownGracefully(t *testing.T) {
	f := newFixture(t, inventory.DriverSQLite)
	srv := httptest.NewUnstartedServer(nil)
	ln := srv.Listener
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- f.server.Serve(ctx, ln, time.Second) }()
	resp, err := (&http.Client{Timeout: 10 * time.Second}).Get("http://" + ln.Addr().String() + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("healthz over the listener = %d", resp.StatusCode)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Serve after cancel = %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Serve did not return after cancel")
	}
}
