package inventory

import (
	"context"
	"errors"
	"path/filepath"
	"testing"

	"github.com/anyops/anyops"
	"github.com/anyops/anyops/internal/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// backends are the databases every store test runs on.
var backends = []string{DriverSQLite, DriverPostgres}

// forEachBackend runs fn against a fresh, migrated store on each backend: a SQLite file in
// t.TempDir and a new database on the test PostgreSQL server (a failure under CI when the
// server is missing, a skip elsewhere).
func forEachBackend(t *testing.T, fn func(t *testing.T, s *Store)) {
	t.Helper()
	for _, backend := range backends {
		t.Run(backend, func(t *testing.T) {
			fn(t, openStore(t, backend))
		})
	}
}

// openStore opens a fresh store on a backend.
func openStore(t *testing.T, backend string) *Store {
	t.Helper()
	s, err := Open(context.Background(), backend, dsnFor(t, backend))
	if err != nil {
		t.Fatalf("open %s store: %v", backend, err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func dsnFor(t *testing.T, backend string) string {
	t.Helper()
	if backend == DriverPostgres {
		return testenv.Postgres(t)
	}
	return filepath.Join(t.TempDir(), "inventory.db")
}

// wantCode fails the test unless err carries the anyops error code want.
func wantCode(t *testing.T, err error, want string) {
	t.Helper()
	if got := anyops.ErrorCode(err); got != want {
		t.Fatalf("error code = %q (%v), want %q", got, err, want)
	}
	var e *anyops.Error
	if want != "" && want != anyops.EINTERNAL && !errors.As(err, &e) {
		t.Fatalf("error %v is not an *anyops.Error", err)
	}
}

func must[T any](t *testing.T) func(T, error) T {
	return func(v T, err error) T {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
}
