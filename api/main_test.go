package api

import (
	"context"
	"encoding/json"
	"fmt"
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
	t      testing.TB
	store  *inventory.Store
	tc     client.Client
	server *Server
}

// newFixture builds the API; options change its Deps before it is built.
func newFixture(t testing.TB, driver string, options ...func(*Deps)) *fixture {
	t.Helper()
	store, _ := openDemoInventory(t, driver)
	auth, err := ParseTokens(testTokens)
	if err != nil {
		t.Fatal(err)
	}
	tc := testenv.TemporalClient(t)
	deps := Deps{Store: store, Temporal: tc, Auth: auth, Logger: slog.New(slog.DiscardHandler),
		CORSOrigins: []string{"https://www.python.org"}, ConsolesEnabled: true}
	for _, o := range options {
		o(&deps)
	}
	return &fixture{t: t, store: store, tc: tc, server: New(deps)}
}

// openDemoInventory opens an inventory with the demo fleet until the test ends: a fresh
// PostgreSQL database for inventory.DriverPostgres, else SQLite in t.TempDir, whose file it
// returns too (for a child process to open; "" for PostgreSQL).
func openDemoInventory(t testing.TB, driver string) (store *inventory.Store, sqlitePath string) {
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
func decode[T any](t testing.TB, rec *httptest.ResponseRecorder) T {
	t.Helper()
	var v T
	if err := json.Unmarshal(rec.Body.Bytes(), &v); err != nil {
		t.Fatalf("response %d %q is not the expected JSON: %v", rec.Code, rec.Body.String(), err)
	}
	return v
}

// workflowCount counts every workflow in the namespace, open or closed: the "nothing
// changed" check of rejected requests.
func (f *fixture) workflowCount() int64 { return f.settledWorkflowCount("") }

// settledWorkflowCount counts the workflows a visibility query ("" for all) finds, open or
// closed. Visibility is eventually consistent: a run started a moment ago may not be counted
// yet. It reads until the count holds still, so "before" and "after" compare settled numbers.
func (f *fixture) settledWorkflowCount(query string) int64 {
	f.t.Helper()
	count := func() int64 {
		resp, err := f.tc.CountWorkflow(context.Background(), &workflowservice.CountWorkflowExecutionsRequest{Query: query})
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

// unchanged takes the workflow and audit counts now and returns the check, for the end of a
// test, that its requests changed neither: no workflow started, no audit event recorded.
func (f *fixture) unchanged() (check func(t testing.TB, what string)) {
	workflowsBefore, auditBefore := f.workflowCount(), f.auditCount()
	return func(t testing.TB, what string) {
		t.Helper()
		if got := f.workflowCount(); got != workflowsBefore {
			t.Errorf("%s changed the workflow count from %d to %d", what, workflowsBefore, got)
		}
		if got := f.auditCount(); got != auditBefore {
			t.Errorf("%s changed the audit log from %d to %d events", what, auditBefore, got)
		}
	}
}

// walkPages GETs path (which may carry filters) limit items a page, following next_cursor to the
// end, and returns the key of every item seen; an item on two pages, a page over the limit or
// more than maxPages pages fails the test.
func walkPages[T any](f *fixture, path string, limit, maxPages int, key func(T) string) map[string]bool {
	f.t.Helper()
	seen := map[string]bool{}
	for cursor, pages := "", 0; pages == 0 || cursor != ""; pages++ {
		if pages > maxPages {
			f.t.Fatalf("GET %s: pagination does not end after %d pages", path, maxPages)
		}
		sep := "?"
		if strings.Contains(path, "?") {
			sep = "&"
		}
		query := fmt.Sprintf("%s%slimit=%d&cursor=%s", path, sep, limit, cursor)
		rec := f.do("GET", query, viewerToken, "")
		if rec.Code != 200 {
			f.t.Fatalf("GET %s = %d %s", query, rec.Code, rec.Body)
		}
		page := decode[List[T]](f.t, rec)
		if len(page.Items) > limit {
			f.t.Fatalf("GET %s: page of %d items with limit %d", query, len(page.Items), limit)
		}
		for _, item := range page.Items {
			if seen[key(item)] {
				f.t.Fatalf("GET %s: %s on two pages", path, key(item))
			}
			seen[key(item)] = true
		}
		cursor = page.NextCursor
	}
	return seen
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
