package api

import (
	"context"
	"net/http"
	"testing"

	"github.com/anyops/anyops/inventory"
)

// TestAuditRecordsTheTokensName proves API tokens name a person and audit events record that
// name: a named --tokens entry, and a token made with CreateToken (what `anyops token create`
// runs) that lives in the inventory as a SHA-256; a revoked one is refused at once.
func TestAuditRecordsTheTokensName(t *testing.T) {
	for _, driver := range []string{inventory.DriverSQLite, inventory.DriverPostgres} {
		t.Run(driver, func(t *testing.T) {
			f := newFixture(t, driver)
			auth, err := ParseTokens(testTokens + ",carol:admin:carol-secret")
			if err != nil {
				t.Fatal(err)
			}
			f.server = New(Deps{Store: f.store, Temporal: f.tc, Auth: auth, Logger: f.server.log})
			ctx := context.Background()
			dave, err := CreateToken(ctx, f.store, "dave@example.com", RoleAdmin, "test")
			if err != nil {
				t.Fatal(err)
			}
			if tokens, err := f.store.ListAPITokens(ctx); err != nil || len(tokens) != 1 || tokens[0].Digest != TokenDigest(dave) || tokens[0].Name != "dave@example.com" {
				t.Fatalf("inventory tokens %+v (%v), want dave's digest only", tokens, err)
			}
			if _, err := CreateToken(ctx, f.store, "dave@example.com", RoleViewer, "test"); err == nil {
				t.Fatal("a second token of the same name was made")
			}
			for _, tt := range []struct{ token, actor string }{
				{"carol-secret", "api:carol"},
				{dave, "api:dave@example.com"},
				{adminToken, "api:admin"}, // the older role:token form, named after its role
			} {
				if rec := f.do("POST", "/v1/admin/consoles/accepting", tt.token, `{"accepting":true}`); rec.Code != http.StatusOK {
					t.Fatalf("switch by %s = %d %s", tt.actor, rec.Code, rec.Body)
				}
				ev, err := f.store.LatestAudit(ctx, auditActionAccepting)
				if err != nil || ev.Actor != tt.actor {
					t.Fatalf("audit event %+v (%v), want actor %s", ev, err, tt.actor)
				}
			}
			if err := f.store.DeleteAPIToken(ctx, "dave@example.com"); err != nil {
				t.Fatal(err)
			}
			if rec := f.do("GET", "/v1/zones", dave, ""); rec.Code != http.StatusUnauthorized {
				t.Fatalf("a revoked token = %d, want 401", rec.Code)
			}
		})
	}
}

// TestTokensFailClosedWithoutTheInventory proves an inventory that cannot be read lets no
// inventory token in (503), while the configured ones still work.
func TestTokensFailClosedWithoutTheInventory(t *testing.T) {
	f := newFixture(t, inventory.DriverSQLite)
	tok, err := CreateToken(context.Background(), f.store, "erin", RoleViewer, "test")
	if err != nil {
		t.Fatal(err)
	}
	_ = f.store.Close()
	if rec := f.do("GET", "/v1/zones", tok, ""); rec.Code != http.StatusServiceUnavailable {
		t.Fatalf("inventory token with the inventory down = %d, want 503", rec.Code)
	}
	if who, err := f.server.deps.Auth.authenticate(context.Background(), "Bearer "+viewerToken); err != nil || who.role != RoleViewer {
		t.Fatalf("configured token with the inventory down = %+v, %v", who, err)
	}
}
