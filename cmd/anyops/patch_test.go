package main

import (
	"bytes"
	"context"
	"log/slog"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/anyops/anyops"
	"github.com/anyops/anyops/api"
	"github.com/anyops/anyops/config"
	"github.com/anyops/anyops/internal/testenv"
	"github.com/anyops/anyops/inventory"
)

// TestPatchCommands proves `anyops patch status ADVISORY` reads the report from a real API
// (a table with each server's outcome, before and after, restarts; --json the API's body),
// finds the token in the data dir, and that `anyops patch start` with bad input prints the
// API's 400 as one line and fails.
func TestPatchCommands(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	store, err := inventory.Open(ctx, inventory.DriverSQLite, filepath.Join(dir, "inv.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	if _, err := store.SeedDemoFleet(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := store.StartPatchRollout(ctx, inventory.PatchRollout{Advisory: "CVE-2014-0160", WorkflowID: "patch/CVE-2014-0160", RunID: "r", MaxErrors: 1},
		[]inventory.PatchServer{{Server: "live-web1", Role: anyops.RoleWeb, Canary: true}, {Server: "live-web2", Role: anyops.RoleWeb, Seq: 1}}); err != nil {
		t.Fatal(err)
	}
	if err := store.RecordPatchServer(ctx, inventory.PatchServer{Advisory: "CVE-2014-0160", Server: "live-web1", Outcome: anyops.PatchPatched, Restarted: []string{"nginx"},
		Before: &anyops.ServerCheck{Versions: map[string]string{"libssl1.0.0": "1.0.1f-1ubuntu2"}, Check: anyops.CheckVulnerable},
		After:  &anyops.ServerCheck{Versions: map[string]string{"libssl1.0.0": "1.0.1f-1ubuntu2.2"}, Check: anyops.CheckFixed}}); err != nil {
		t.Fatal(err)
	}
	auth, err := api.ParseTokens("admin:s3cret")
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(api.New(api.Deps{Store: store, Temporal: testenv.TemporalClient(t), Auth: auth, Logger: slog.New(slog.DiscardHandler)}).Handler())
	defer srv.Close()
	if err := os.WriteFile(filepath.Join(dir, config.AdminTokenFile), []byte("s3cret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	run := func(args ...string) (string, error) {
		cmd := newPatchCmd()
		var out bytes.Buffer
		cmd.SetOut(&out)
		cmd.SetErr(&out)
		cmd.SetIn(strings.NewReader(`{"advisory":{"id":"CVE-2014-0160","packages":[{"name":"openssl","fixed_version":"nope"}],"check":{"kind":"heartbleed"}}}`))
		cmd.SetArgs(append(args, "--server", srv.URL, "--data-dir", dir))
		err := cmd.ExecuteContext(ctx)
		return out.String(), err
	}
	out, err := run("status", "CVE-2014-0160")
	if err != nil || !strings.Contains(out, "live-web1 (canary)") || !strings.Contains(out, "1.0.1f-1ubuntu2 vulnerable") ||
		!strings.Contains(out, "1.0.1f-1ubuntu2.2 fixed") || !strings.Contains(out, "nginx") || !strings.Contains(out, "pending") {
		t.Fatalf("status:\n%s\n%v", out, err)
	}
	if out, err := run("status", "CVE-2014-0160", "--json"); err != nil || !strings.Contains(out, `"outcome": "patched"`) {
		t.Fatalf("status --json:\n%s\n%v", out, err)
	}
	if _, err := run("status", "CVE-1999-0001"); err == nil || !strings.Contains(err.Error(), "HTTP 404") {
		t.Fatalf("status of an unknown advisory: %v", err)
	}
	if _, err := run("start", "-"); err == nil || !strings.Contains(err.Error(), "fixed_version") || !strings.Contains(err.Error(), "HTTP 400") {
		t.Fatalf("start with a bad version: %v", err)
	}
}
