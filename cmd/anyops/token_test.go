package main

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/anyops/anyops/api"
	"github.com/anyops/anyops/inventory"
)

// TestTokenCommands proves `anyops token create --name NAME --role ROLE` stores only the
// token's SHA-256 under the name, list shows names and roles, and revoke removes it.
func TestTokenCommands(t *testing.T) {
	dir := t.TempDir()
	run := func(args ...string) (string, error) {
		cmd := newTokenCmd()
		var out bytes.Buffer
		cmd.SetOut(&out)
		cmd.SetErr(&out)
		cmd.SetArgs(append(args, "--data-dir", dir))
		err := cmd.ExecuteContext(context.Background())
		return out.String(), err
	}
	out, err := run("create", "--name", "alice", "--role", "operator")
	if err != nil {
		t.Fatalf("create: %v %s", err, out)
	}
	secret := strings.TrimSpace(out)
	if _, err := run("create", "--name", "bob", "--role", "root"); err == nil {
		t.Fatal("a token with an unknown role was made")
	}
	if _, err := run("create", "--role", "viewer"); err == nil {
		t.Fatal("a token without a name was made")
	}
	if out, err := run("list"); err != nil || !strings.Contains(out, "alice") || !strings.Contains(out, "operator") || strings.Contains(out, secret) {
		t.Fatalf("list = %q, %v; want alice's name and role, never the token", out, err)
	}
	store, err := inventory.Open(context.Background(), inventory.DriverSQLite, dir+"/"+inventory.DefaultSQLiteFile)
	if err != nil {
		t.Fatal(err)
	}
	tok, err := store.APITokenByDigest(context.Background(), api.TokenDigest(secret))
	_ = store.Close()
	if err != nil || tok.Name != "alice" || tok.Role != "operator" {
		t.Fatalf("the inventory has %+v (%v) for the printed token", tok, err)
	}
	if _, err := run("revoke", "--name", "alice"); err != nil {
		t.Fatal(err)
	}
	if _, err := run("revoke", "--name", "alice"); err == nil {
		t.Fatal("revoking twice succeeded")
	}
}
