package api

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"

	"go.temporal.io/sdk/client"

	"github.com/anyops/anyops"
	"github.com/anyops/anyops/internal/testenv"
	"github.com/anyops/anyops/inventory"
)

// wantUnavailable fails unless rec is a 503 EUNAVAILABLE JSON error with Retry-After in
// whole seconds.
func wantUnavailable(t *testing.T, what string, rec *httptest.ResponseRecorder) {
	t.Helper()
	if rec.Code != http.StatusServiceUnavailable {
		t.Errorf("%s = %d %s, want 503", what, rec.Code, rec.Body)
		return
	}
	if s, err := strconv.Atoi(rec.Header().Get("Retry-After")); err != nil || s < 1 {
		t.Errorf("%s: Retry-After %q, want whole seconds", what, rec.Header().Get("Retry-After"))
	}
	if e := decode[ErrorBody](t, rec).Error; e.Code != anyops.EUNAVAILABLE {
		t.Errorf("%s: error %+v, want code %q", what, e, anyops.EUNAVAILABLE)
	}
}

// TestTemporalDownIs503 proves that with the Temporal dev server stopped every route that
// needs Temporal answers 503 with Retry-After (never 500), that a console asked for then
// leaves neither a console row nor a user behind (the request is refused before anything is
// written), and that reads needing only the inventory still answer.
func TestTemporalDownIs503(t *testing.T) {
	srv := testenv.StartTemporal(t)
	tc, err := client.Dial(client.Options{HostPort: srv.FrontendHostPort()})
	if err != nil {
		t.Fatal(err)
	}
	defer tc.Close()
	f := newFixture(t, inventory.DriverSQLite, func(d *Deps) {
		d.Temporal = tc
		d.Consoles = ConsoleDeps{SandboxdKey: testSandboxdKey(t)}
	})
	if rec := f.do("GET", "/v1/operations", viewerToken, ""); rec.Code != http.StatusOK {
		t.Fatalf("GET /v1/operations with Temporal up = %d %s", rec.Code, rec.Body)
	}
	if err := srv.Stop(); err != nil {
		t.Fatal(err)
	}
	usersBefore := countUsers(t, f.store)
	consolesBefore, err := f.store.CountConsoles(context.Background(), "")
	if err != nil {
		t.Fatal(err)
	}

	for _, r := range []struct{ method, path, token, body string }{
		{"POST", "/v1/operations/fleet-audit", operatorToken, "{}"},
		{"GET", "/v1/operations", viewerToken, ""},
		{"GET", "/v1/operations/fleet-audit", viewerToken, ""},
		{"POST", "/v1/operations/fleet-audit/cancel", operatorToken, ""},
		{"POST", "/v1/consoles", "", ""},
		{"POST", "/v1/consoles/c-1/keepalive", operatorToken, ""},
		{"DELETE", "/v1/consoles/c-1", operatorToken, ""},
	} {
		wantUnavailable(t, r.method+" "+r.path+" with Temporal down", f.do(r.method, r.path, r.token, r.body))
	}
	if got := countUsers(t, f.store); got != usersBefore {
		t.Errorf("users %d → %d: a refused console left its user behind", usersBefore, got)
	}
	if got, _ := f.store.CountConsoles(context.Background(), ""); got != consolesBefore {
		t.Errorf("consoles %d → %d: a refused console left its row behind", consolesBefore, got)
	}

	for _, path := range []string{"/v1/zones", "/v1/servers", "/v1/volumes", "/v1/status", "/v1/consoles"} {
		if rec := f.do("GET", path, viewerToken, ""); rec.Code != http.StatusOK {
			t.Errorf("GET %s with Temporal down = %d %s, want 200 (it needs only the inventory)", path, rec.Code, rec.Body)
		}
	}
}

// TestDatabaseDownIs503 proves that with the inventory's database closed, on both drivers,
// the inventory routes answer 503 with Retry-After (never 500), and that routes needing only
// Temporal still answer. (Consoles are configured, so that PUT /v1/images/default reaches the
// database rather than answering 503 for the missing sandboxd key.)
func TestDatabaseDownIs503(t *testing.T) {
	for _, driver := range []string{inventory.DriverSQLite, inventory.DriverPostgres} {
		t.Run(driver, func(t *testing.T) {
			f := newFixture(t, driver, func(d *Deps) { d.Consoles = ConsoleDeps{SandboxdKey: testSandboxdKey(t)} })
			if rec := f.do("PUT", "/v1/images/default", operatorToken, `{"name":"debian","version":"12"}`); rec.Code != http.StatusOK {
				t.Fatalf("PUT /v1/images/default with the database up = %d %s", rec.Code, rec.Body)
			}
			if err := f.store.Close(); err != nil {
				t.Fatal(err)
			}
			for _, path := range []string{"/v1/zones", "/v1/clusters", "/v1/servers", "/v1/volumes", "/v1/replicas", "/v1/consoles", "/v1/users/alice"} {
				wantUnavailable(t, "GET "+path+" with the database closed", f.do("GET", path, viewerToken, ""))
			}
			wantUnavailable(t, "PUT /v1/images/default with the database closed",
				f.do("PUT", "/v1/images/default", operatorToken, `{"name":"debian","version":"13"}`))
			if rec := f.do("GET", "/v1/operations", viewerToken, ""); rec.Code != http.StatusOK {
				t.Errorf("GET /v1/operations with the database closed = %d %s, want 200 (it needs only Temporal)", rec.Code, rec.Body)
			}
		})
	}
}
