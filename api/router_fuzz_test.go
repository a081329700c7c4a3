package api

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"go.temporal.io/api/workflowservice/v1"
	"golang.org/x/net/http/httpguts"

	"github.com/anyops/anyops"
	"github.com/anyops/anyops/inventory"
	"github.com/anyops/anyops/workflows"
)

// fuzzTokens are the credentials a fuzzed request may carry, by its role byte.
var fuzzTokens = []string{"", viewerToken, operatorToken, adminToken, "not-a-token"}

// FuzzRouter sends arbitrary methods, paths, credentials and bodies through the whole API —
// the Gin engine as `anyops api` builds it, on a real inventory (SQLite with the demo fleet)
// and the real Temporal dev server, with consoles configured — and proves that none panics or
// answers 500: every answer is a success, a 4xx with the JSON error body, or a 503
// "unavailable" from a part this stack lacks by construction (no worker opens a console here,
// no sandboxd answers). The corpus is in testdata/fuzz/FuzzRouter.
func FuzzRouter(f *testing.F) {
	for _, seed := range []struct {
		method, path string
		role         uint8
		body         string
	}{
		{"GET", "/v1/operations/%00", 1, ""},
		{"POST", "/v1/operations/%00/cancel", 2, ""},
		{"GET", "/v1/operations/failover%2Flive-file", 1, ""},
		{"POST", "/v1/operations/fleet-audit", 2, `{"reason":"fuzz"}`},
		{"POST", "/v1/operations/demo-fleet", 3, `{"image_id":"ami-\u0000"}`},
		{"POST", "/v1/operations/fleet-sync", 2, `{"timing":{"poll_interval":-1}}`},
		{"GET", "/v1/operations?kind=fleet-audit&state=running&limit=2", 1, ""},
		{"GET", "/v1/operations?cursor=AAAA", 1, ""},
		{"GET", "/v1/servers?zone=us-east-1a&role=file&limit=1", 1, ""},
		{"GET", "/v1/servers?cursor=%00", 1, ""},
		{"GET", "/v1/volumes?server=live-file&kind=home", 1, ""},
		{"GET", "/v1/replicas?cluster=live&state=in-sync", 1, ""},
		{"GET", "/v1/users/alice", 1, ""},
		{"PUT", "/v1/users/alice/image", 2, `{"name":"host","version":"1"}`},
		{"POST", "/v1/consoles", 0, `{"command":"python3"}`},
		{"POST", "/v1/consoles", 2, `{"user":"alice","command":"bash"}`},
		{"GET", "/v1/consoles/00000000-0000-0000-0000-000000000000?token=1.AAAA", 0, ""},
		{"DELETE", "/v1/consoles/%2e%2e", 2, ""},
		{"POST", "/v1/admin/consoles/accepting", 3, `{"accepting":false}`},
		{"PUT", "/v1/servers/live-console1/sandboxd", 3, `{"url":"http://127.0.0.1:1"}`},
		{"OPTIONS", "/v1/consoles", 0, ""},
		{"GET", "/v1/status", 0, ""},
		{"GET", "/readyz", 0, ""},
		{"GET", "/dashboard/assets/..%2f..%2fgo.mod", 0, ""},
		{"GET", "/embed/%00", 0, ""},
		{"HEAD", "/v1/zones", 1, ""},
		{"PATCH", "/v1/zones", 1, "{}"},
		{"GET", "//v1//zones/../servers", 1, ""},
	} {
		f.Add(seed.method, seed.path, seed.role, []byte(seed.body))
	}
	fx := newFixture(f, inventory.DriverSQLite, withConsoles(f), func(d *Deps) {
		// Consoles open on a queue no worker serves, and give up at once.
		d.Consoles.TaskQueue = "fuzz-consoles-" + uuid.NewString()
		d.Consoles.OpenTimeout = 100 * time.Millisecond
	})
	began := time.Now()
	f.Cleanup(func() { terminateStartedSince(fx, began) })

	f.Fuzz(func(t *testing.T, method, target string, role uint8, body []byte) {
		// What net/http's server would refuse before any handler runs is no input of the API.
		u, err := url.ParseRequestURI(target)
		if err != nil || method == "" || !httpguts.ValidHeaderFieldName(method) || !strings.HasPrefix(target, "/") {
			return
		}
		req := httptest.NewRequest("GET", "/", strings.NewReader(string(body)))
		req.Method, req.URL, req.RequestURI = method, u, target
		if tok := fuzzTokens[int(role)%len(fuzzTokens)]; tok != "" {
			req.Header.Set("Authorization", "Bearer "+tok)
		}
		req.Header.Set("Content-Type", "application/json")
		rec := httptest.NewRecorder()
		fx.server.Handler().ServeHTTP(rec, req)

		if rec.Code < 400 {
			return
		}
		if rec.Code >= 500 && rec.Code != http.StatusServiceUnavailable {
			t.Fatalf("%s %q = %d %s", method, target, rec.Code, rec.Body)
		}
		if method == "HEAD" {
			return
		}
		var e ErrorBody
		if err := json.Unmarshal(rec.Body.Bytes(), &e); err != nil || e.Error.Code == "" || e.Error.Message == "" {
			t.Fatalf("%s %q = %d with a body that is not the JSON error: %q", method, target, rec.Code, rec.Body)
		}
		if rec.Code == http.StatusServiceUnavailable && e.Error.Code != anyops.EUNAVAILABLE {
			t.Fatalf("%s %q = 503 with code %q", method, target, e.Error.Code)
		}
	})
}

// terminateStartedSince ends the workflows a fuzz run may have started on the shared dev
// server: the operations (their business keys) and the consoles of its own queue, so no
// later test's worker picks them up.
func terminateStartedSince(fx *fixture, since time.Time) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	query := fmt.Sprintf("ExecutionStatus = 'Running' AND StartTime >= '%s' AND (TaskQueue = '%s' OR TaskQueue = '%s')",
		since.UTC().Format(time.RFC3339Nano), fx.server.consoles.cfg.TaskQueue, workflows.TaskQueueControl)
	resp, err := fx.tc.ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{Query: query, PageSize: 1000})
	if err != nil {
		return
	}
	for _, ex := range resp.GetExecutions() {
		_ = fx.tc.TerminateWorkflow(ctx, ex.GetExecution().GetWorkflowId(), ex.GetExecution().GetRunId(), "fuzz run over")
	}
}
