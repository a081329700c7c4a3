// Package testenv gives tests the real parts they run against: a Temporal dev server from
// bin/temporal, the throw-away PostgreSQL server that `make test` starts, moto, and root.
// Where CI is set a missing part fails the test; elsewhere it skips with the reason.
package testenv

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"fmt"
	mrand "math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // database/sql driver for creating test databases
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/testsuite"

	"github.com/anyops/anyops/internal/temporaldev"
)

// Missing fails the test when CI is set and skips it otherwise: a part the test needs is not
// on this machine.
func Missing(t testing.TB, format string, args ...any) {
	t.Helper()
	msg := fmt.Sprintf(format, args...)
	if os.Getenv("CI") != "" {
		t.Fatalf("CI: required test dependency missing: %s", msg)
	}
	t.Skipf("skipped, dependency missing: %s", msg)
}

// RequireRoot stops a test that needs root (namespaces, cgroups, mounts).
func RequireRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		Missing(t, "root (euid is %d)", os.Geteuid())
	}
}

// RepoRoot returns the module root, found by walking up to go.mod.
func RepoRoot() string {
	dir, _ := os.Getwd()
	for d := dir; ; d = filepath.Dir(d) {
		if _, err := os.Stat(filepath.Join(d, "go.mod")); err == nil {
			return d
		}
		if filepath.Dir(d) == d {
			return dir
		}
	}
}

// FreePort returns a TCP port free on 127.0.0.1 at the time of the call, for a process or
// server the test starts later.
func FreePort(t testing.TB) int {
	t.Helper()
	for range 200 {
		port := reservedPortLow + mrand.IntN(reservedPortHigh-reservedPortLow)
		if _, taken := portsHandedOut.LoadOrStore(port, true); taken {
			continue
		}
		l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port))
		if err != nil {
			continue
		}
		l.Close()
		return port
	}
	t.Fatal("no free TCP port below the ephemeral range")
	return 0
}

// Ports are drawn below Linux's ephemeral range (32768-60999), where the kernel hands out
// ports to every bind to port 0 and every outgoing connection: a port found free there may be
// taken by a Temporal dev server's internal service or anybody's client before the process it
// is meant for binds it. Below it only other tests drawing ports compete, and each draw checks.
const (
	reservedPortLow  = 20000
	reservedPortHigh = 32768
)

// portsHandedOut are the ports this process gave out: never twice.
var portsHandedOut sync.Map

// WaitServing polls url until it answers, failing the test when the server ends first (a
// value on exited) or limit passes.
func WaitServing(t testing.TB, url string, exited <-chan error, limit time.Duration) {
	t.Helper()
	for deadline := time.Now().Add(limit); ; time.Sleep(20 * time.Millisecond) {
		if resp, err := http.Get(url); err == nil {
			resp.Body.Close()
			return
		}
		select {
		case err := <-exited:
			t.Fatalf("%s: the server ended before it answered: %v", url, err)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: no answer after %s", url, limit)
		}
	}
}

var shared struct {
	sync.Mutex
	temporal *testsuite.DevServer
	moto     *exec.Cmd
	motoURL  string
}

// Main runs a package's tests, then runs the package's own cleanups and stops the servers
// the tests shared. Use it from TestMain.
func Main(m *testing.M, cleanups ...func()) {
	code := m.Run()
	for _, c := range cleanups {
		c()
	}
	shared.Lock()
	if shared.temporal != nil {
		_ = shared.temporal.Stop()
	}
	if shared.moto != nil {
		_ = syscall.Kill(-shared.moto.Process.Pid, syscall.SIGKILL)
		_ = shared.moto.Wait()
	}
	shared.Unlock()
	os.Exit(code)
}

// TemporalBinary returns the path of bin/temporal, or stops the test when it is missing.
func TemporalBinary(t testing.TB) string {
	t.Helper()
	p := filepath.Join(RepoRoot(), "bin", "temporal")
	if _, err := os.Stat(p); err != nil {
		Missing(t, "%s (run make build)", p)
	}
	return p
}

// Temporal returns the address of a real Temporal dev server shared by the package's tests,
// started from bin/temporal on first use with an in-memory database. Packages that use it
// must call Main from TestMain so the server stops.
func Temporal(t testing.TB) string {
	t.Helper()
	shared.Lock()
	defer shared.Unlock()
	if shared.temporal == nil {
		shared.temporal = startDevServer(t)
	}
	return shared.temporal.FrontendHostPort()
}

// StartTemporal starts a Temporal dev server of the test's own (in-memory, on a free port),
// for a test that stops it to see how the rest behaves while Temporal is down. It is stopped
// when the test ends, if the test has not stopped it.
func StartTemporal(t testing.TB) *testsuite.DevServer {
	t.Helper()
	srv := startDevServer(t)
	t.Cleanup(func() { _ = srv.Stop() })
	return srv
}

func startDevServer(t testing.TB) *testsuite.DevServer {
	t.Helper()
	bin := TemporalBinary(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	srv, err := testsuite.StartDevServer(ctx, testsuite.DevServerOptions{
		ExistingPath:  bin,
		ClientOptions: &client.Options{HostPort: fmt.Sprintf("127.0.0.1:%d", FreePort(t))},
		LogLevel:      "error",
		ExtraArgs:     temporaldev.Args(),
	})
	if err != nil {
		t.Fatalf("start Temporal dev server: %v", err)
	}
	return srv
}

// TemporalClient returns a client of the shared dev server, closed when the test ends.
func TemporalClient(t testing.TB) client.Client {
	t.Helper()
	c, err := client.Dial(client.Options{HostPort: Temporal(t)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

// PostgresEnv names the variable through which `make test` hands the tests the DSN of its
// throw-away PostgreSQL server (a superuser on database postgres).
const PostgresEnv = "ANYOPS_TEST_POSTGRES_DSN"

// Postgres creates a fresh database on the test PostgreSQL server and returns its DSN; the
// database is dropped when the test ends.
func Postgres(t testing.TB) string {
	t.Helper()
	admin := os.Getenv(PostgresEnv)
	if admin == "" {
		Missing(t, "PostgreSQL: %s is not set (make test starts a server)", PostgresEnv)
	}
	db, err := sql.Open("pgx", admin)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	buf := make([]byte, 6)
	_, _ = rand.Read(buf)
	name := "t_" + hex.EncodeToString(buf)
	if _, err := db.Exec("CREATE DATABASE " + name); err != nil {
		t.Fatalf("create test database: %v", err)
	}
	t.Cleanup(func() {
		db, err := sql.Open("pgx", admin)
		if err != nil {
			return
		}
		defer db.Close()
		_, _ = db.Exec("DROP DATABASE IF EXISTS " + name + " WITH (FORCE)")
	})
	u, err := url.Parse(admin)
	if err != nil {
		t.Fatalf("%s: %v", PostgresEnv, err)
	}
	u.Path = "/" + name
	return u.String()
}

// Moto returns the endpoint of a moto_server shared by the package's tests, reset to an
// empty cloud before returning. Packages that use it must call Main from TestMain.
func Moto(t testing.TB) string {
	t.Helper()
	shared.Lock()
	defer shared.Unlock()
	if shared.moto == nil {
		bin, err := exec.LookPath("moto_server")
		if err != nil {
			Missing(t, "moto_server not on PATH")
		}
		port := FreePort(t)
		cmd := exec.Command(bin, "-H", "127.0.0.1", "-p", fmt.Sprint(port))
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
		logf, _ := os.CreateTemp("", "moto-*.log")
		cmd.Stdout, cmd.Stderr = logf, logf
		if err := cmd.Start(); err != nil {
			t.Fatalf("start moto_server: %v", err)
		}
		shared.moto = cmd
		shared.motoURL = fmt.Sprintf("http://127.0.0.1:%d", port)
		deadline := time.Now().Add(60 * time.Second)
		for {
			resp, err := http.Get(shared.motoURL + "/moto-api/")
			if err == nil {
				resp.Body.Close()
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("moto_server did not come up on %s (log %s)", shared.motoURL, logf.Name())
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	resp, err := http.Post(shared.motoURL+"/moto-api/reset", "application/json", strings.NewReader("{}"))
	if err != nil {
		t.Fatalf("reset moto: %v", err)
	}
	resp.Body.Close()
	return shared.motoURL
}
