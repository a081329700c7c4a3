package api

import (
	"context"
	"encoding/json"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"

	"github.com/gin-gonic/gin"
	"go.temporal.io/sdk/client"

	"github.com/anyops/anyops"
	"github.com/anyops/anyops/internal/testenv"
	"github.com/anyops/anyops/inventory"
)

// TestAuth proves the role rules: no or an unknown token is 401 with WWW-Authenticate, a
// viewer reads but may not start or cancel operations (403), operator and admin may. Rejected
// requests start no workflow and record nothing.
func TestAuth(t *testing.T) {
	f := newFixture(t, inventory.DriverSQLite)
	unchanged := f.unchanged()
	tests := []struct {
		name, method, path, token string
		wantStatus                int
		wantCode                  string
	}{
		{"no token", "GET", "/v1/zones", "", 401, anyops.EUNAUTHORIZED},
		{"unknown token", "GET", "/v1/zones", "not-a-token", 401, anyops.EUNAUTHORIZED},
		{"token that is a prefix of a real one", "GET", "/v1/zones", "viewer", 401, anyops.EUNAUTHORIZED},
		{"viewer reads", "GET", "/v1/zones", viewerToken, 200, ""},
		{"operator reads", "GET", "/v1/servers", operatorToken, 200, ""},
		{"admin reads", "GET", "/v1/replicas", adminToken, 200, ""},
		{"no token on POST", "POST", "/v1/operations/fleet-audit", "", 401, anyops.EUNAUTHORIZED},
		{"viewer may not start", "POST", "/v1/operations/fleet-audit", viewerToken, 403, anyops.EFORBIDDEN},
		{"viewer may not cancel", "POST", "/v1/operations/fleet-audit/cancel", viewerToken, 403, anyops.EFORBIDDEN},
		{"no token lists no operations", "GET", "/v1/operations", "", 401, anyops.EUNAUTHORIZED},
		{"public status needs no token", "GET", "/v1/status", "", 200, ""},
		{"openapi needs no token", "GET", "/v1/openapi.json", "", 200, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := f.do(tt.method, tt.path, tt.token, "")
			if rec.Code != tt.wantStatus {
				t.Fatalf("%s %s = %d %s, want %d", tt.method, tt.path, rec.Code, rec.Body, tt.wantStatus)
			}
			if tt.wantCode != "" {
				if got := decode[ErrorBody](t, rec).Error.Code; got != tt.wantCode {
					t.Fatalf("error code %q, want %q", got, tt.wantCode)
				}
			}
			if tt.wantStatus == 401 && !strings.HasPrefix(rec.Header().Get("WWW-Authenticate"), "Bearer") {
				t.Errorf("401 without a Bearer WWW-Authenticate challenge")
			}
		})
	}
	// A wrong scheme is no token at all.
	req := httptest.NewRequest("GET", "/v1/zones", nil)
	req.Header.Set("Authorization", "Basic "+viewerToken)
	rec := httptest.NewRecorder()
	f.server.Handler().ServeHTTP(rec, req)
	if rec.Code != 401 {
		t.Errorf("Basic auth with a valid token as password = %d, want 401", rec.Code)
	}
	unchanged(t, "rejected requests")
}

// TestBadRequestsChangeNothing proves every kind of bad input gets a 4xx JSON error with the
// right code, and that none of them starts a workflow or writes to the inventory.
func TestBadRequestsChangeNothing(t *testing.T) {
	f := newFixture(t, inventory.DriverSQLite)
	unchanged := f.unchanged()
	tests := []struct {
		name, method, path, body string
		wantStatus               int
		wantCode, wantMessage    string
	}{
		{"unknown kind", "POST", "/v1/operations/fleet-audits", "", 404, anyops.ENOTFOUND, `unknown operation kind "fleet-audits"`},
		{"malformed JSON", "POST", "/v1/operations/fleet-audit", `{"reason":`, 400, anyops.EINVALID, "truncated JSON"},
		{"not an object", "POST", "/v1/operations/fleet-audit", `"audit"`, 400, anyops.EINVALID, "expected a JSON object"},
		{"unknown field", "POST", "/v1/operations/fleet-audit", `{"reason":"x","force":true}`, 400, anyops.EINVALID, `unknown field "force"`},
		{"actor in body", "POST", "/v1/operations/fleet-audit", `{"requested_by":"admin"}`, 400, anyops.EINVALID, "requested_by is set by the server"},
		{"trailing data", "POST", "/v1/operations/fleet-audit", `{}{}`, 400, anyops.EINVALID, "unexpected data"},
		{"body too large", "POST", "/v1/operations/fleet-audit", `{"reason":"` + strings.Repeat("x", maxBodyBytes) + `"}`, 400, anyops.EINVALID, "larger than"},
		{"limit zero", "GET", "/v1/servers?limit=0", "", 400, anyops.EINVALID, "limit"},
		{"limit not a number", "GET", "/v1/servers?limit=ten", "", 400, anyops.EINVALID, "limit"},
		{"limit too large", "GET", "/v1/volumes?limit=100000", "", 400, anyops.EINVALID, "limit"},
		{"limit negative", "GET", "/v1/zones?limit=-1", "", 400, anyops.EINVALID, "limit"},
		{"cursor garbage", "GET", "/v1/servers?cursor=%%%", "", 400, anyops.EINVALID, ""},
		{"cursor not ours", "GET", "/v1/servers?cursor=bm90LWEtY3Vyc29y", "", 400, anyops.EINVALID, "cursor"},
		{"unknown filter", "GET", "/v1/servers?kind=home", "", 400, anyops.EINVALID, `unknown query parameter "kind"`},
		{"filter twice", "GET", "/v1/servers?role=file&role=web", "", 400, anyops.EINVALID, "more than once"},
		{"bad role", "GET", "/v1/servers?role=mainframe", "", 400, anyops.EINVALID, "mainframe"},
		{"bad volume kind", "GET", "/v1/volumes?kind=tape", "", 400, anyops.EINVALID, "tape"},
		{"bad cluster state", "GET", "/v1/clusters?state=on-fire", "", 400, anyops.EINVALID, "on-fire"},
		{"bad replica state", "GET", "/v1/replicas?state=meh", "", 400, anyops.EINVALID, "meh"},
		{"operations: bad state", "GET", "/v1/operations?state=done", "", 400, anyops.EINVALID, `state "done"`},
		{"operations: bad kind", "GET", "/v1/operations?kind=reboot", "", 400, anyops.EINVALID, `kind "reboot"`},
		{"operations: bad limit", "GET", "/v1/operations?limit=0", "", 400, anyops.EINVALID, "limit"},
		{"operations: bad cursor", "GET", "/v1/operations?cursor=***", "", 400, anyops.EINVALID, "cursor"},
		{"operations: unknown parameter", "GET", "/v1/operations?sort=asc", "", 400, anyops.EINVALID, "sort"},
		{"no such operation", "GET", "/v1/operations/failover%2Fno-such-server", "", 404, anyops.ENOTFOUND, "no such operation"},
		{"cancel no such operation", "POST", "/v1/operations/failover%2Fno-such-server/cancel", "", 404, anyops.ENOTFOUND, "no such operation"},
		{"no such route", "GET", "/v1/nothing", "", 404, anyops.ENOTFOUND, "no route"},
		{"wrong method", "DELETE", "/v1/zones", "", 405, anyops.EINVALID, "not allowed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := f.do(tt.method, tt.path, operatorToken, tt.body)
			if rec.Code != tt.wantStatus {
				t.Fatalf("%s %s = %d %s, want %d", tt.method, tt.path, rec.Code, rec.Body, tt.wantStatus)
			}
			if ct := rec.Header().Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
				t.Errorf("Content-Type %q, want JSON", ct)
			}
			e := decode[ErrorBody](t, rec).Error
			if e.Code != tt.wantCode || !strings.Contains(e.Message, tt.wantMessage) {
				t.Fatalf("error %+v, want code %q with message containing %q", e, tt.wantCode, tt.wantMessage)
			}
		})
	}
	unchanged(t, "bad requests")
}

// TestInventoryLists proves the filters and cursor pagination of the inventory reads against
// the demo fleet: walking /v1/servers two at a time visits every server once, and filters
// return exactly the matching rows.
func TestInventoryLists(t *testing.T) {
	f := newFixture(t, inventory.DriverSQLite)
	fleet := inventory.DemoFleet()

	seen := walkPages(f, "/v1/servers", 2, len(fleet.Servers), func(s inventory.Server) string { return s.Name })
	if len(seen) != len(fleet.Servers) {
		t.Errorf("pagination visited %d servers, demo fleet has %d", len(seen), len(fleet.Servers))
	}

	count := func(match func(inventory.Server) bool) int {
		n := 0
		for _, s := range fleet.Servers {
			if match(s) {
				n++
			}
		}
		return n
	}
	homeVolumes := 0
	for _, v := range fleet.Volumes {
		if v.Kind == anyops.VolumeHome {
			homeVolumes++
		}
	}
	tests := []struct {
		path string
		want int
	}{
		{"/v1/zones", len(fleet.Zones)},
		{"/v1/clusters?zone=" + inventory.DemoZone, 1},
		{"/v1/clusters?zone=" + inventory.DemoSpareZone, 0},
		{"/v1/servers?role=console", count(func(s inventory.Server) bool { return s.Role == anyops.RoleConsole })},
		{"/v1/servers?role=file&cluster=" + inventory.DemoCluster, count(func(s inventory.Server) bool { return s.Role == anyops.RoleFile })},
		{"/v1/servers?zone=" + inventory.DemoSpareZone, 0},
		{"/v1/volumes?kind=home&limit=500", homeVolumes},
		{"/v1/volumes?server=" + inventory.DemoFileServer + "&kind=logs", 1},
		{"/v1/replicas?cluster=" + inventory.DemoCluster, len(fleet.Replicas)},
	}
	for _, tt := range tests {
		rec := f.do("GET", tt.path, viewerToken, "")
		if rec.Code != 200 {
			t.Errorf("GET %s = %d %s", tt.path, rec.Code, rec.Body)
			continue
		}
		page := decode[struct {
			Items      []json.RawMessage `json:"items"`
			NextCursor *string           `json:"next_cursor"`
		}](t, rec)
		if page.Items == nil || page.NextCursor == nil {
			t.Errorf("GET %s: items or next_cursor missing (an empty list is [] and \"\"): %s", tt.path, rec.Body)
		}
		if len(page.Items) != tt.want {
			t.Errorf("GET %s returned %d items, want %d", tt.path, len(page.Items), tt.want)
		}
	}
}

// TestPublicStatus proves GET /v1/status is public, cacheable and CORS-enabled for the
// configured origins only, and that capacity counts the running console servers.
func TestPublicStatus(t *testing.T) {
	f := newFixture(t, inventory.DriverSQLite)
	consoles := 0
	for _, s := range inventory.DemoFleet().Servers {
		if s.Role == anyops.RoleConsole && s.State == anyops.ServerRunning {
			consoles++
		}
	}
	req := httptest.NewRequest("GET", "/v1/status", nil)
	req.Header.Set("Origin", "https://www.python.org")
	rec := httptest.NewRecorder()
	f.server.Handler().ServeHTTP(rec, req)
	if rec.Code != 200 {
		t.Fatalf("GET /v1/status = %d %s", rec.Code, rec.Body)
	}
	st := decode[PublicStatus](t, rec)
	if consoles == 0 || st.Capacity != consoles*64 || st.InUse != 0 || !st.AcceptingConsoles {
		t.Errorf("status %+v, want capacity %d (consoles × 64), in use 0, accepting", st, consoles*64)
	}
	if got := rec.Header().Get("Access-Control-Allow-Origin"); got != "https://www.python.org" {
		t.Errorf("Access-Control-Allow-Origin %q for an allowed origin", got)
	}
	if got := rec.Header().Get("Cache-Control"); got != "public, max-age=5" {
		t.Errorf("Cache-Control %q", got)
	}

	req = httptest.NewRequest("GET", "/v1/status", nil)
	req.Header.Set("Origin", "https://evil.example")
	rec = httptest.NewRecorder()
	f.server.Handler().ServeHTTP(rec, req)
	if got := rec.Header().Get("Access-Control-Allow-Origin"); rec.Code != 200 || got != "" {
		t.Errorf("other origin: %d with Access-Control-Allow-Origin %q, want 200 without it", rec.Code, got)
	}

	req = httptest.NewRequest("OPTIONS", "/v1/status", nil)
	req.Header.Set("Origin", "https://www.python.org")
	req.Header.Set("Access-Control-Request-Method", "GET")
	rec = httptest.NewRecorder()
	f.server.Handler().ServeHTTP(rec, req)
	if rec.Code != 204 || !strings.Contains(rec.Header().Get("Access-Control-Allow-Methods"), "GET") {
		t.Errorf("preflight = %d, Allow-Methods %q", rec.Code, rec.Header().Get("Access-Control-Allow-Methods"))
	}

	// The console routes' preflight must carry their methods and headers in what was written,
	// not only in the recorder's header map (which a handler can still change afterwards).
	req = httptest.NewRequest("OPTIONS", "/v1/consoles/c1", nil)
	req.Header.Set("Origin", "https://www.python.org")
	req.Header.Set("Access-Control-Request-Method", "DELETE")
	rec = httptest.NewRecorder()
	f.server.Handler().ServeHTTP(rec, req)
	if h := rec.Result().Header; rec.Code != 204 || !strings.Contains(h.Get("Access-Control-Allow-Methods"), "DELETE") ||
		!strings.Contains(h.Get("Access-Control-Allow-Headers"), "Authorization") {
		t.Errorf("console preflight = %d, Allow-Methods %q, Allow-Headers %q", rec.Code,
			h.Get("Access-Control-Allow-Methods"), h.Get("Access-Control-Allow-Headers"))
	}

	off := New(Deps{Store: f.store, Temporal: f.tc, Auth: &Authorizer{}, ConsolesEnabled: false})
	rec = httptest.NewRecorder()
	off.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/v1/status", nil))
	if st := decode[PublicStatus](t, rec); st.AcceptingConsoles {
		t.Errorf("consoles switched off, yet accepting: %+v", st)
	}
}

// TestReadyz proves readiness checks both dependencies and names the one that is down.
func TestReadyz(t *testing.T) {
	f := newFixture(t, inventory.DriverSQLite)
	if rec := f.do("GET", "/readyz", "", ""); rec.Code != 200 {
		t.Fatalf("readyz with all up = %d %s", rec.Code, rec.Body)
	}
	if rec := f.do("GET", "/healthz", "", ""); rec.Code != 200 {
		t.Fatalf("healthz = %d", rec.Code)
	}

	down, err := client.NewLazyClient(client.Options{HostPort: "127.0.0.1:" + strconv.Itoa(testenv.FreePort(t))})
	if err != nil {
		t.Fatal(err)
	}
	defer down.Close()
	s := New(Deps{Store: f.store, Temporal: down})
	rec := httptest.NewRecorder()
	s.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/readyz", nil))
	if rec.Code != 503 || !strings.Contains(rec.Body.String(), "temporal down") || strings.Contains(rec.Body.String(), "database down") {
		t.Errorf("readyz with Temporal down = %d %s, want 503 naming temporal only", rec.Code, rec.Body)
	}

	if err := f.store.Close(); err != nil {
		t.Fatal(err)
	}
	rec = f.do("GET", "/readyz", "", "")
	if rec.Code != 503 || !strings.Contains(rec.Body.String(), "not ready: database down") {
		t.Errorf("readyz with the database closed = %d %s, want 503 naming the database", rec.Code, rec.Body)
	}
	if e := decode[ErrorBody](t, rec).Error; e.Code != anyops.EUNAVAILABLE {
		t.Errorf("readyz error code %q, want %q", e.Code, anyops.EUNAVAILABLE)
	}
}

// TestMetricsCountRequests proves /metrics serves Prometheus text with requests counted by
// route pattern (not raw path) and status.
func TestMetricsCountRequests(t *testing.T) {
	f := newFixture(t, inventory.DriverSQLite)
	f.do("GET", "/v1/zones", viewerToken, "")
	f.do("GET", "/v1/zones", "", "")
	f.do("GET", "/v1/operations/a%2Fb", "", "")
	body := f.do("GET", "/metrics", "", "").Body.String()
	for _, want := range []string{
		`anyops_api_requests_total{method="GET",route="/v1/zones",status="200"} 1`,
		`anyops_api_requests_total{method="GET",route="/v1/zones",status="401"} 1`,
		`anyops_api_requests_total{method="GET",route="/v1/operations/:id",status="401"} 1`,
		`anyops_api_request_duration_seconds_count{method="GET",route="/v1/zones"} 2`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
}

// TestPanicIsInternalError proves a panicking handler (added through RegisterRoutes, the hook
// other parts use) answers a 500 JSON error that reveals nothing of the panic.
func TestPanicIsInternalError(t *testing.T) {
	f := newFixture(t, inventory.DriverSQLite)
	f.server.RegisterRoutes(func(v1 *gin.RouterGroup, auth *Authorizer) {
		v1.GET("/test-panic", auth.Require(RoleAdmin), func(*gin.Context) { panic("secret internals") })
	})
	if rec := f.do("GET", "/v1/test-panic", operatorToken, ""); rec.Code != 403 {
		t.Fatalf("operator on an admin route = %d", rec.Code)
	}
	rec := f.do("GET", "/v1/test-panic", adminToken, "")
	if rec.Code != 500 || strings.Contains(rec.Body.String(), "secret") {
		t.Fatalf("panic = %d %s, want 500 without internals", rec.Code, rec.Body)
	}
	if e := decode[ErrorBody](t, rec).Error; e.Code != anyops.EINTERNAL || e.Message != "internal error" {
		t.Fatalf("panic error %+v", e)
	}
}

// TestParseTokens proves the --tokens format — "name:role:token", and the older "role:token"
// named after its role — and its errors.
func TestParseTokens(t *testing.T) {
	type holder struct {
		name string
		role AccessRole
	}
	tests := []struct {
		spec    string
		holders map[string]holder // token → who it authenticates as
		wantErr string
	}{
		{"", map[string]holder{}, ""},
		{"admin:a1,viewer:v1", map[string]holder{"a1": {"admin", RoleAdmin}, "v1": {"viewer", RoleViewer}}, ""},
		{"alice:operator:o1,bob@example.com:viewer:v1", map[string]holder{"o1": {"alice", RoleOperator}, "v1": {"bob@example.com", RoleViewer}}, ""},
		{" operator:o:with:colons , ", map[string]holder{"o:with:colons": {"operator", RoleOperator}}, ""},
		{"ci-bot:admin:x:y", map[string]holder{"x:y": {"ci-bot", RoleAdmin}}, ""},
		{"root:x", nil, "root"},
		{"admin", nil, "want name:role:token"},
		{"admin:", nil, "want name:role:token"},
		{"admin:x,viewer:x", nil, "listed twice"},
		{"alice:admin:x,alice:viewer:y", nil, `name "alice" is listed twice`},
		{"Alice:admin:x", nil, "name"},
		{"admin:has space", nil, "whitespace"},
		{"admin:tab\there", nil, "whitespace"},
	}
	for _, tt := range tests {
		t.Run(tt.spec, func(t *testing.T) {
			a, err := ParseTokens(tt.spec)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("ParseTokens(%q) = %v, want error containing %q", tt.spec, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(a.tokens) != len(tt.holders) {
				t.Fatalf("%d tokens, want %d", len(a.tokens), len(tt.holders))
			}
			for tok, want := range tt.holders {
				got, err := a.authenticate(context.Background(), "Bearer "+tok)
				if err != nil || got.name != want.name || got.role != want.role {
					t.Errorf("token %q: %+v, %v; want %+v", tok, got, err, want)
				}
			}
		})
	}
}

// TestRoleOrder proves each role includes the ones below it and nothing includes an unknown role.
func TestRoleOrder(t *testing.T) {
	for i, have := range AccessRoles {
		for j, need := range AccessRoles {
			if got := have.Includes(need); got != (i >= j) {
				t.Errorf("%s.Includes(%s) = %v", have, need, got)
			}
		}
		if have.Includes("root") {
			t.Errorf("%s includes an unknown role", have)
		}
	}
}
