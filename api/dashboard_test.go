package api

import (
	"log/slog"
	"net/http"
	"strings"
	"testing"

	"github.com/anyops/anyops/inventory"
	"github.com/anyops/anyops/workflows"
)

// TestDashboardRoutes proves the dashboard is reachable at / and /dashboard without a token,
// that its assets are served and a missing one is a JSON 404, and that GET /v1/dashboard
// needs a token.
func TestDashboardRoutes(t *testing.T) {
	f := newFixture(t, inventory.DriverSQLite)
	for _, tc := range []struct {
		name, path, token string
		wantCode          int
		wantType          string // Content-Type prefix
		wantBody          string // a substring of the body
		wantLocation      string
	}{
		{name: "root redirects to the dashboard", path: "/", wantCode: http.StatusFound, wantLocation: "/dashboard"},
		{name: "page is public", path: "/dashboard", wantCode: 200, wantType: "text/html", wantBody: `src="/dashboard/assets/dashboard.js"`},
		{name: "script", path: "/dashboard/assets/dashboard.js", wantCode: 200, wantType: "text/javascript", wantBody: "/v1/dashboard"},
		{name: "styles", path: "/dashboard/assets/dashboard.css", wantCode: 200, wantType: "text/css"},
		{name: "missing asset", path: "/dashboard/assets/nope.js", wantCode: 404, wantType: "application/json", wantBody: `"code":"not_found"`},
		{name: "no directory listing", path: "/dashboard/assets/vendor/", wantCode: 404, wantType: "application/json"},
		{name: "info needs a token", path: "/v1/dashboard", wantCode: 401, wantType: "application/json", wantBody: `"code":"unauthorized"`},
		{name: "info with a bad token", path: "/v1/dashboard", token: "wrong", wantCode: 401, wantType: "application/json"},
		{name: "info for a viewer", path: "/v1/dashboard", token: viewerToken, wantCode: 200, wantType: "application/json", wantBody: `"operation_kinds"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec := f.do("GET", tc.path, tc.token, "")
			if rec.Code != tc.wantCode {
				t.Fatalf("GET %s = %d %s, want %d", tc.path, rec.Code, rec.Body.String(), tc.wantCode)
			}
			if got := rec.Header().Get("Content-Type"); !strings.HasPrefix(got, tc.wantType) {
				t.Errorf("Content-Type %q, want %s…", got, tc.wantType)
			}
			if !strings.Contains(rec.Body.String(), tc.wantBody) {
				t.Errorf("body does not contain %s: %.300s", tc.wantBody, rec.Body.String())
			}
			if got := rec.Header().Get("Location"); got != tc.wantLocation {
				t.Errorf("Location %q, want %q", got, tc.wantLocation)
			}
		})
	}
	if rec := f.do("GET", "/dashboard", "", ""); !strings.Contains(rec.Header().Get("Content-Security-Policy"), "frame-ancestors 'none'") {
		t.Error("the dashboard page (it holds a token) may be framed by other sites")
	}
}

// TestDashboardInfo proves GET /v1/dashboard answers the configured Temporal UI (trailing
// slash dropped, so the page can append paths) and namespace, defaults the namespace, and lists
// the operation kinds of the registry in its order.
func TestDashboardInfo(t *testing.T) {
	f := newFixture(t, inventory.DriverSQLite)
	for _, tc := range []struct {
		name           string
		cfg            DashboardConfig
		wantUI, wantNS string
	}{
		{name: "not configured", cfg: DashboardConfig{}, wantUI: "", wantNS: "default"},
		{name: "dev", cfg: DashboardConfig{TemporalUIURL: "http://127.0.0.1:8233/"}, wantUI: "http://127.0.0.1:8233", wantNS: "default"},
		{name: "production", cfg: DashboardConfig{TemporalUIURL: "https://temporal.example.com", TemporalNamespace: "anyops"},
			wantUI: "https://temporal.example.com", wantNS: "anyops"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := New(Deps{Store: f.store, Temporal: f.tc, Auth: f.server.deps.Auth, Logger: slog.New(slog.DiscardHandler), Dashboard: tc.cfg})
			g := &fixture{t: t, store: f.store, tc: f.tc, server: s}
			rec := g.do("GET", "/v1/dashboard", viewerToken, "")
			if rec.Code != 200 {
				t.Fatalf("GET /v1/dashboard = %d %s", rec.Code, rec.Body.String())
			}
			info := decode[DashboardInfo](t, rec)
			if info.TemporalUIURL != tc.wantUI || info.TemporalNamespace != tc.wantNS {
				t.Errorf("temporal UI %q namespace %q, want %q %q", info.TemporalUIURL, info.TemporalNamespace, tc.wantUI, tc.wantNS)
			}
			var names []string
			for _, k := range info.OperationKinds {
				names = append(names, k.Name)
				if k.Description == "" || k.TaskQueue == "" {
					t.Errorf("kind %s lacks a description or task queue: %+v", k.Name, k)
				}
			}
			if strings.Join(names, ",") != strings.Join(workflows.KindNames(), ",") {
				t.Errorf("kinds %v, registry has %v", names, workflows.KindNames())
			}
		})
	}
}
