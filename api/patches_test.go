package api

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/anyops/anyops"
	"github.com/anyops/anyops/inventory"
)

// TestPatchBadAdvisoryIsRefusedAndStartsNothing proves bad advisory input gets a 400 with the
// API's error body and no workflow starts, on both inventories: an unknown role, a version
// that is not a Debian version, max errors below 0, concurrency 0 or above 100%.
func TestPatchBadAdvisoryIsRefusedAndStartsNothing(t *testing.T) {
	for _, driver := range []string{inventory.DriverSQLite, inventory.DriverPostgres} {
		t.Run(driver, func(t *testing.T) {
			f := newFixture(t, driver)
			adv := `{"id":"CVE-2014-0160","packages":[{"name":"openssl","fixed_version":"%s"}],"restart":{%s},"check":{"kind":"heartbleed"}}`
			body := func(version, restart, extra string) string {
				return `{"advisory":` + strings.Replace(strings.Replace(adv, "%s", version, 1), "%s", restart, 1) + extra + `}`
			}
			before := f.workflowCount()
			for _, tc := range []struct{ name, body, want string }{
				{"unknown role", body("1.0.1f-1ubuntu2.2", `"db":["postgres"]`, ""), "unknown role"},
				{"not a Debian version", body("1.0.1f_1ubuntu2.2", "", ""), "fixed_version"},
				{"max errors below 0", body("1.0.1f-1ubuntu2.2", "", `,"max_errors":"-1"`), "max_errors"},
				{"concurrency 0", body("1.0.1f-1ubuntu2.2", "", `,"max_concurrency":"0"`), "max_concurrency"},
				{"concurrency above 100%", body("1.0.1f-1ubuntu2.2", "", `,"max_concurrency":"150%"`), "max_concurrency"},
			} {
				rec := f.do("POST", "/v1/operations/patch", operatorToken, tc.body)
				e := decode[ErrorBody](t, rec)
				if rec.Code != http.StatusBadRequest || e.Error.Code != anyops.EINVALID || !strings.Contains(e.Error.Message, tc.want) {
					t.Errorf("%s: %d %s, want 400 invalid mentioning %q", tc.name, rec.Code, rec.Body, tc.want)
				}
			}
			if after := f.workflowCount(); after != before {
				t.Errorf("%d workflows before, %d after refused requests", before, after)
			}
			if rec := f.do("GET", "/v1/operations/patch%2FCVE-2014-0160", viewerToken, ""); rec.Code != http.StatusNotFound {
				t.Errorf("GET the refused operation: %d", rec.Code)
			}
			if rec := f.do("GET", "/v1/patches/CVE-2014-0160", viewerToken, ""); rec.Code != http.StatusNotFound {
				t.Errorf("GET the refused rollout: %d", rec.Code)
			}
		})
	}
}

// TestPatchReportRoutes proves GET /v1/patches and /v1/patches/{advisory} show what the
// inventory recorded (servers in plan order with their checks, notices, drains), that the
// certificates list needs an admin and hides keys, and that the ACME challenge route answers
// a pending challenge's key authorization and 404 otherwise.
func TestPatchReportRoutes(t *testing.T) {
	f := newFixture(t, inventory.DriverSQLite)
	ctx := context.Background()
	if _, err := f.store.StartPatchRollout(ctx, inventory.PatchRollout{Advisory: "CVE-2014-0160", WorkflowID: "patch/CVE-2014-0160", RunID: "r"},
		[]inventory.PatchServer{{Server: "live-web1", Role: anyops.RoleWeb, Seq: 0}, {Server: "live-web2", Role: anyops.RoleWeb, Seq: 1}}); err != nil {
		t.Fatal(err)
	}
	if err := f.store.RecordPatchServer(ctx, inventory.PatchServer{Advisory: "CVE-2014-0160", Server: "live-web1", Outcome: anyops.PatchRunning,
		Before: &anyops.ServerCheck{Versions: map[string]string{"openssl": "1.0.1f-1ubuntu2"}, Check: anyops.CheckVulnerable}}); err != nil {
		t.Fatal(err)
	}
	if err := f.store.DrainServer(ctx, "live-web1", "patch CVE-2014-0160: restarting nginx", "test"); err != nil {
		t.Fatal(err)
	}
	list := decode[List[inventory.PatchRollout]](t, f.do("GET", "/v1/patches", viewerToken, ""))
	if len(list.Items) != 1 || list.Items[0].Advisory != "CVE-2014-0160" {
		t.Fatalf("list %+v", list)
	}
	rec := f.do("GET", "/v1/patches/CVE-2014-0160", viewerToken, "")
	rep := decode[PatchReport](t, rec)
	if rec.Code != 200 || len(rep.Servers) != 2 || rep.Servers[0].Before.Check != anyops.CheckVulnerable || rep.Servers[1].Outcome != anyops.PatchPending ||
		len(rep.Drained) != 1 || rep.Notices == nil {
		t.Fatalf("report %d %s", rec.Code, rec.Body)
	}
	if rec := f.do("GET", "/v1/patches/CVE-2014-0160?x=1", viewerToken, ""); rec.Code != 400 {
		t.Errorf("unknown query parameter: %d", rec.Code)
	}
	if rec := f.do("GET", "/v1/patches", "", ""); rec.Code != 401 {
		t.Errorf("no token: %d", rec.Code)
	}
	if _, err := f.store.BeginRotation(ctx, inventory.Certificate{Name: "platform", Domain: "www.anyops.example", KeyPEM: "SECRET-KEY", CSRPEM: "csr"}, "k"); err != nil {
		t.Fatal(err)
	}
	if rec := f.do("GET", "/v1/certificates", operatorToken, ""); rec.Code != 403 {
		t.Errorf("certificates for an operator: %d", rec.Code)
	}
	if rec := f.do("GET", "/v1/certificates", adminToken, ""); rec.Code != 200 || strings.Contains(rec.Body.String(), "SECRET-KEY") || !strings.Contains(rec.Body.String(), `"csr_pem":"csr"`) {
		t.Errorf("certificates: %d %s", rec.Code, rec.Body)
	}
	if err := f.store.PutChallenge(ctx, "tok123", "tok123.thumb", "www.anyops.example"); err != nil {
		t.Fatal(err)
	}
	if rec := f.do("GET", "/.well-known/acme-challenge/tok123", "", ""); rec.Code != 200 || rec.Body.String() != "tok123.thumb" {
		t.Errorf("challenge: %d %q", rec.Code, rec.Body)
	}
	if rec := f.do("GET", "/.well-known/acme-challenge/nope", "", ""); rec.Code != 404 {
		t.Errorf("unknown challenge: %d", rec.Code)
	}
}

// TestDrainedConsoleHostLeavesCapacity proves a drained console host admits no new console:
// the public status's capacity leaves it out.
func TestDrainedConsoleHostLeavesCapacity(t *testing.T) {
	f := newFixture(t, inventory.DriverSQLite)
	st, err := f.server.deps.Status.PublicStatus(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if err := f.store.DrainServer(context.Background(), "live-console1", "restarting tornado", "test"); err != nil {
		t.Fatal(err)
	}
	drained, err := f.server.deps.Status.PublicStatus(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if st.Capacity == 0 || drained.Capacity != st.Capacity/2 {
		t.Errorf("capacity %d, with one of two console hosts drained %d", st.Capacity, drained.Capacity)
	}
}
