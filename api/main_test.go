package api

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"

	"github.com/anyops/anyops/internal/testenv"
	"github.com/anyops/anyops/inventory"
	"github.com/anyops/anyops/sandboxd/jail"
	"github.com/anyops/anyops/worker"
)

// TestMain: the test binary doubles as the sandboxes' init (the console tests run a real
// sandboxd) and as the console worker process the kill test starts and kills.
func TestMain(m *testing.M) {
	jail.MaybeInit()
	maybeRunConsoleWorker()
	testenv.Main(m)
}

// Tokens of the test API, one per role.
const (
	viewerToken   = "viewer-secret"
	operatorToken = "operator-secret"
	adminToken    = "admin-secret"
	testTokens    = "viewer:" + viewerToken + ",operator:" + operatorToken + ",admin:" + adminToken
)

// fixture is an API on real parts: an inventory store (SQLite in t.TempDir or a fresh
// PostgreSQL database) with the demo fleet, and a client of the shared Temporal dev server.
type fixture struct {
	t      *testing.T
	store  *inventory.Store
	tc     client.Client
	server *Server
}

func newFixture(t *testing.T, driver string, with ...func(*Deps)) *fixture {
	t.Helper()
	store, _ := openDemoInventory(t, driver)
	auth, err := ParseTokens(testTokens)
	if err != nil {
		t.Fatal(err)
	}
	tc := testenv.TemporalClient(t)
	deps := Deps{Store: store, Temporal: tc, Auth: auth, Logger: slog.New(slog.DiscardHandler),
		CORSOrigins: []string{"https://www.python.org"}, ConsolesEnabled: true}
	for _, w := range with {
		w(&deps)
	}
	return &fixture{t: t, store: store, tc: tc, server: New(deps)}
}

// openDemoInventory opens an inventory with the demo fleet until the test ends: a fresh
// PostgreSQL database for inventory.DriverPostgres, else SQLite in t.TempDir, whose file it
// returns too (for a child process to open; "" for PostgreSQL).
func openDemoInventory(t *testing.T, driver string) (store *inventory.Store, sqlitePath string) {
	t.Helper()
	dsn := filepath.Join(t.TempDir(), "inv.db")
	if driver == inventory.DriverPostgres {
		dsn = testenv.Postgres(t)
	} else {
		driver, sqlitePath = inventory.DriverSQLite, dsn
	}
	store, err := inventory.Open(context.Background(), driver, dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = store.Close() })
	if _, err := store.SeedDemoFleet(context.Background()); err != nil {
		t.Fatal(err)
	}
	return store, sqlitePath
}

// do sends a request through the handler; token "" sends no Authorization header.
func (f *fixture) do(method, path, token, body string) *httptest.ResponseRecorder {
	f.t.Helper()
	var r io.Reader
	if body != "" {
		r = strings.NewReader(body)
	}
	req := httptest.NewRequest(method, path, r)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	rec := httptest.NewRecorder()
	f.server.Handler().ServeHTTP(rec, req)
	return rec
}

// decode unmarshals a response body, failing the test on a bad one.
func decode[T any](t *testing.T, rec *httptest.ResponseRecorder) T {
	t.Helper()
	var v T
	if err := json.Unmarshal(rec.Body.Bytes(), &v); err != nil {
		t.Fatalf("response %d %q is not the expected JSON: %v", rec.Code, rec.Body.String(), err)
	}
	return v
}

// workflowCount counts every workflow in the namespace, open or closed: the "nothing
// changed" check of rejected requests.
func (f *fixture) workflowCount() int64 {
	f.t.Helper()
	// Visibility is eventually consistent: a run started a moment ago may not be counted yet.
	// Read until the count holds still, so "before" and "after" compare settled numbers.
	count := func() int64 {
		resp, err := f.tc.CountWorkflow(context.Background(), &workflowservice.CountWorkflowExecutionsRequest{})
		if err != nil {
			f.t.Fatal(err)
		}
		return resp.GetCount()
	}
	last := count()
	for stable := 0; stable < 3; {
		time.Sleep(200 * time.Millisecond)
		if n := count(); n == last {
			stable++
		} else {
			last, stable = n, 0
		}
	}
	return last
}

// auditCount counts the audit events in the inventory.
func (f *fixture) auditCount() int {
	f.t.Helper()
	n := 0
	page := inventory.Page{Limit: inventory.MaxLimit}
	for {
		events, next, err := f.store.ListAudit(context.Background(), page)
		if err != nil {
			f.t.Fatal(err)
		}
		n += len(events)
		if next == "" {
			return n
		}
		page.Cursor = next
	}
}

// startWorker runs an in-process worker on the fixture's store until the test ends.
func (f *fixture) startWorker() {
	f.t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- worker.Run(ctx, worker.Config{Client: f.tc, Deps: worker.Deps{Store: f.store},
			Logger: slog.New(slog.DiscardHandler), StopTimeout: 5 * time.Second})
	}()
	f.t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			f.t.Errorf("worker: %v", err)
		}
	})
}
