package testenv

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// PostgresServer is a PostgreSQL server of a test's own (scripts/postgres-server.sh, the
// steps scripts/with-postgres.sh takes for `make test`), on a fixed port and data directory,
// so that the test can crash it and start it again: for a test of what the store and its
// callers do while the database is down. Tests that only need a database use Postgres.
type PostgresServer struct {
	// DSN reaches database postgres as the superuser.
	DSN    string
	script string
	dir    string
	port   int
	mu     sync.Mutex
	up     bool
}

// StartPostgresServer initdbs and starts a server, removed when the test ends. Without
// PostgreSQL's server binaries it fails under CI and skips otherwise (Missing).
func StartPostgresServer(t testing.TB) *PostgresServer {
	t.Helper()
	script := filepath.Join(RepoRoot(), "scripts", "postgres-server.sh")
	if out, err := exec.Command(script, "bindir").CombinedOutput(); err != nil {
		var exit *exec.ExitError
		if errors.As(err, &exit) && exit.ExitCode() == 3 {
			Missing(t, "%s", strings.TrimSpace(string(out)))
		}
		t.Fatalf("%s bindir: %v: %s", script, err, out)
	}
	// Not t.TempDir: its parents are root's 0700 directories, which the postgres user cannot enter.
	dir, err := os.MkdirTemp("", "anyops-pg-server.")
	if err != nil {
		t.Fatal(err)
	}
	p := &PostgresServer{script: script, dir: dir, port: FreePort(t)}
	p.DSN = fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable", p.port)
	t.Cleanup(func() {
		_ = p.Crash()
		_ = os.RemoveAll(dir)
	})
	if err := p.run("init", dir); err != nil {
		t.Fatal(err)
	}
	if err := p.Start(); err != nil {
		t.Fatal(err)
	}
	return p
}

func (p *PostgresServer) run(args ...string) error {
	if out, err := exec.Command(p.script, args...).CombinedOutput(); err != nil {
		return fmt.Errorf("postgres-server.sh %s: %v: %s", strings.Join(args, " "), err, out)
	}
	return nil
}

// Start starts the server on its data directory (after a crash: through crash recovery) and
// returns once it answers.
func (p *PostgresServer) Start() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if err := p.run("start", p.dir, strconv.Itoa(p.port)); err != nil {
		return err
	}
	p.up = true
	return nil
}

// Crash stops the server at once, without a checkpoint (pg_ctl -m immediate), as a power cut
// or kill -9 would: its connections break mid-way.
func (p *PostgresServer) Crash() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.up {
		return nil
	}
	p.up = false
	return p.run("crash", p.dir)
}
