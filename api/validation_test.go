package api

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"

	"github.com/anyops/anyops"
	"github.com/anyops/anyops/inventory"
	"github.com/anyops/anyops/workflows"
)

// withConsoles gives the fixture a sandboxd key, so the consoles routes get past "consoles are
// not configured" to their own input checks.
func withConsoles(t testing.TB) func(*Deps) {
	_, key, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return func(d *Deps) { d.Consoles.SandboxdKey = key }
}

// TestBadIDsAre4xx proves that an id or name no resource can have — a NUL, a space, a quote,
// one longer than anyops.MaxNameLen — in a path, a query filter or a body is a 400 naming the
// field, on every route that takes one, on SQLite and on PostgreSQL (which refuses a NUL in
// text with an error of its own), and that none of them starts a workflow or writes to the
// inventory. On main, GET /v1/operations/%00 was a 500: the NUL reached Temporal.
func TestBadIDsAre4xx(t *testing.T) {
	long := strings.Repeat("a", anyops.MaxNameLen+1)
	tests := []struct {
		name, method, path, token, body string
		wantField                       string
	}{
		{"operation id NUL", "GET", "/v1/operations/%00", viewerToken, "", "id"},
		{"operation id NUL in a business key", "GET", "/v1/operations/failover%2Flive%00file", viewerToken, "", "id"},
		{"operation id too long", "GET", "/v1/operations/" + long, viewerToken, "", "id"},
		{"cancel id NUL", "POST", "/v1/operations/%00/cancel", operatorToken, "", "id"},
		{"cancel id with a space", "POST", "/v1/operations/fleet%20audit/cancel", operatorToken, "", "id"},
		{"start kind NUL", "POST", "/v1/operations/fleet-audit%00", operatorToken, "", "id"},
		{"user name NUL", "GET", "/v1/users/%00", viewerToken, "", "name"},
		{"user name quote", "GET", "/v1/users/a'b", viewerToken, "", "name"},
		{"user image: name NUL", "PUT", "/v1/users/%00/image", operatorToken, `{"name":"host","version":"1"}`, "name"},
		{"user image: image name NUL in the body", "PUT", "/v1/users/alice/image", operatorToken, `{"name":"host\u0000","version":"1"}`, "name"},
		{"user image: version too long in the body", "PUT", "/v1/users/alice/image", operatorToken, `{"name":"host","version":"` + long + `"}`, "version"},
		{"console host: server NUL", "PUT", "/v1/servers/%00/sandboxd", adminToken, `{"url":"http://127.0.0.1:1"}`, "name"},
		{"console id NUL", "GET", "/v1/consoles/%00", viewerToken, "", "id"},
		{"console keepalive id NUL", "POST", "/v1/consoles/%00/keepalive", operatorToken, "", "id"},
		{"console: user NUL in the body", "POST", "/v1/consoles", operatorToken, `{"user":"a\u0000"}`, "user"},
		{"servers filter NUL", "GET", "/v1/servers?zone=%00", viewerToken, "", "zone"},
		{"volumes filter NUL", "GET", "/v1/volumes?server=live%00file", viewerToken, "", "server"},
		{"clusters filter NUL", "GET", "/v1/clusters?zone=us-east-1a%00", viewerToken, "", "zone"},
		{"consoles filter NUL", "GET", "/v1/consoles?user=%00", viewerToken, "", "user"},
		{"images filter NUL", "GET", "/v1/images?name=%00", viewerToken, "", "name"},
		{"operations filter too long", "GET", "/v1/operations?kind=" + long, viewerToken, "", "kind"},
	}
	for _, driver := range []string{inventory.DriverSQLite, inventory.DriverPostgres} {
		t.Run(driver, func(t *testing.T) {
			f := newFixture(t, driver, withConsoles(t))
			unchanged := f.unchanged()
			for _, tt := range tests {
				t.Run(tt.name, func(t *testing.T) {
					rec := f.do(tt.method, tt.path, tt.token, tt.body)
					if rec.Code != 400 {
						t.Fatalf("%s %s = %d %s, want 400", tt.method, tt.path, rec.Code, rec.Body)
					}
					e := decode[ErrorBody](t, rec).Error
					if e.Code != anyops.EINVALID || !strings.HasPrefix(e.Message, tt.wantField+" ") {
						t.Errorf("error %+v, want %s naming %q", e, anyops.EINVALID, tt.wantField)
					}
				})
			}
			unchanged(t, "bad ids")
		})
	}
}

// TestOperationsOnlyOfRegisteredKinds proves GET /v1/operations/{id} and its cancel see only
// workflows of registered kinds: a workflow of another type started on the same Temporal dev
// server straight through its client (as anything else in the namespace could be) is 404 to
// both, and the cancel requests nothing: the workflow stays running with no cancel request in
// its history.
func TestOperationsOnlyOfRegisteredKinds(t *testing.T) {
	f := newFixture(t, inventory.DriverSQLite)
	ctx := context.Background()
	id := "not-an-operation-" + uuid.NewString()
	// No worker serves this queue: the workflow stays running until the test terminates it.
	run, err := f.tc.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: id, TaskQueue: "no-worker-" + id}, "NotAnOperation")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = f.tc.TerminateWorkflow(context.Background(), id, run.GetRunID(), "test over") })

	for _, req := range []struct{ method, path, token string }{
		{"GET", operationPath(id), viewerToken},
		{"POST", operationPath(id) + "/cancel", operatorToken},
		{"POST", operationPath(id) + "/cancel", adminToken},
	} {
		rec := f.do(req.method, req.path, req.token, "")
		if rec.Code != 404 {
			t.Errorf("%s %s = %d %s, want 404", req.method, req.path, rec.Code, rec.Body)
		} else if e := decode[ErrorBody](t, rec).Error; e.Code != anyops.ENOTFOUND || !strings.Contains(e.Message, "no such operation") {
			t.Errorf("%s %s: error %+v, want not_found: no such operation", req.method, req.path, e)
		}
	}

	desc, err := f.tc.DescribeWorkflow(ctx, id, run.GetRunID())
	if err != nil {
		t.Fatal(err)
	}
	if st := desc.RawResponse.GetWorkflowExecutionInfo().GetStatus(); st != enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING {
		t.Errorf("the foreign workflow is %s after the API's cancel, want running", st)
	}
	hctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	it := f.tc.GetWorkflowHistory(hctx, id, run.GetRunID(), false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	for it.HasNext() {
		ev, err := it.Next()
		if err != nil {
			t.Fatal(err)
		}
		if ev.GetEventType() == enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_CANCEL_REQUESTED {
			t.Errorf("the API requested the cancellation of a workflow that is not an operation")
		}
	}
}

// TestOperationsCursor proves the cursor of GET /v1/operations pages through Temporal's list
// (two operations, one per page, each listed once), and that a cursor the API did not mint is a
// 400 and not Temporal's error: a mangled one is refused before Temporal is asked, and one
// with a valid checksum over a token Temporal cannot read is mapped to the same 400. On main
// GET /v1/operations?cursor=AAAA was a 500, after the SDK had retried for seconds.
func TestOperationsCursor(t *testing.T) {
	f := newFixture(t, inventory.DriverSQLite)
	for _, kind := range []string{workflows.KindFleetAudit, workflows.KindFleetSync} {
		started := f.postOperation(kind, "", 201) // no worker: both stay running
		t.Cleanup(func() { _ = f.tc.TerminateWorkflow(context.Background(), started.ID, started.RunID, "test over") })
	}
	// Walk every running operation one page at a time: both, each once (earlier tests of the
	// package may have left others running on the shared dev server).
	var seen map[string]bool
	// Visibility is eventually consistent: a run started a moment ago may not be listed yet.
	for deadline := time.Now().Add(30 * time.Second); !seen[workflows.FleetAuditWorkflowID] || !seen[workflows.FleetSyncWorkflowID]; time.Sleep(200 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("pages listed %v, want both operations", seen)
		}
		seen = walkPages(f, "/v1/operations?state=running", 1, 50, func(op Operation) string { return op.ID })
	}

	for _, tt := range []struct{ name, cursor string }{
		{"zero bytes", "AAAA"},
		{"JSON", base64.RawURLEncoding.EncodeToString([]byte(`{"StartTime":"x"}`))},
		{"mangled", "x" + encodeOperationsCursor([]byte(`{"RunID":"a"}`))[1:]},
		{"checksum right, token unreadable", encodeOperationsCursor([]byte(`{"StartTime":"not a time"}`))},
	} {
		t.Run(tt.name, func(t *testing.T) {
			rec := f.do("GET", "/v1/operations?cursor="+tt.cursor, viewerToken, "")
			if e := decode[ErrorBody](t, rec).Error; rec.Code != 400 || e.Code != anyops.EINVALID || !strings.Contains(e.Message, "cursor") {
				t.Errorf("cursor %q = %d %s, want 400 naming the cursor", tt.cursor, rec.Code, rec.Body)
			}
		})
	}
}
