package integration

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"sync"
	"testing"
	"time"

	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/testsuite"

	"github.com/anyops/anyops/internal/temporaldev"
	"github.com/anyops/anyops/internal/testenv"
)

// The dependencies the chaos harness restarts under a running operation: the Temporal dev
// server and cloudsim's endpoint (PostgreSQL's is in chaos_postgres_test.go).

// restartableTemporal is a dev server on a fixed port and database file, so that a restart
// keeps every workflow.
type restartableTemporal struct {
	t        *testing.T
	hostPort string
	dbFile   string
	mu       sync.Mutex
	srv      *testsuite.DevServer
}

func startRestartableTemporal(t *testing.T, dbFile string) *restartableTemporal {
	t.Helper()
	r := &restartableTemporal{t: t, hostPort: fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t)), dbFile: dbFile}
	if err := r.start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		r.mu.Lock()
		defer r.mu.Unlock()
		if r.srv != nil {
			_ = r.srv.Stop()
		}
	})
	return r
}

func (r *restartableTemporal) start() error {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	srv, err := testsuite.StartDevServer(ctx, testsuite.DevServerOptions{
		ExistingPath:  testenv.TemporalBinary(r.t),
		ClientOptions: &client.Options{HostPort: r.hostPort},
		DBFilename:    r.dbFile,
		LogLevel:      "error",
		ExtraArgs:     temporaldev.Args(),
	})
	if err != nil {
		return fmt.Errorf("start Temporal dev server: %w", err)
	}
	r.mu.Lock()
	r.srv = srv
	r.mu.Unlock()
	return nil
}

// restart stops the dev server and starts it again on the same port and database.
func (r *restartableTemporal) restart() error {
	r.mu.Lock()
	srv := r.srv
	r.srv = nil
	r.mu.Unlock()
	if err := srv.Stop(); err != nil {
		return fmt.Errorf("stop Temporal dev server: %w", err)
	}
	return r.start()
}

// restartableEndpoint serves a handler on a fixed port and can be taken down (every
// connection cut) and brought back: cloudsim restarting, its world kept as AWS keeps it.
type restartableEndpoint struct {
	t       *testing.T
	handler http.Handler
	addr    string
	url     string
	mu      sync.Mutex
	srv     *http.Server
}

func startRestartableEndpoint(t *testing.T, h http.Handler) *restartableEndpoint {
	t.Helper()
	e := &restartableEndpoint{t: t, handler: h, addr: fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))}
	e.url = "http://" + e.addr
	if err := e.start(); err != nil {
		t.Fatal(err)
	}
	return e
}

func (e *restartableEndpoint) start() error {
	var ln net.Listener
	var err error
	for range 50 { // the port of the closed listener may take a moment to be free again
		if ln, err = net.Listen("tcp", e.addr); err == nil {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil {
		return fmt.Errorf("listen %s: %w", e.addr, err)
	}
	srv := &http.Server{Handler: e.handler, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	e.mu.Lock()
	e.srv = srv
	e.mu.Unlock()
	return nil
}

func (e *restartableEndpoint) stop() {
	e.mu.Lock()
	srv := e.srv
	e.srv = nil
	e.mu.Unlock()
	if srv != nil {
		_ = srv.Close()
	}
}
