package main

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"go.temporal.io/sdk/client"
	tlog "go.temporal.io/sdk/log"
	"go.temporal.io/sdk/testsuite"

	"github.com/anyops/anyops/activities"
	"github.com/anyops/anyops/api"
	"github.com/anyops/anyops/internal/temporaldev"
	"github.com/anyops/anyops/inventory"
	"github.com/anyops/anyops/sandboxd"
	sbclient "github.com/anyops/anyops/sandboxd/client"
	"github.com/anyops/anyops/sandboxd/homes"
	sbimages "github.com/anyops/anyops/sandboxd/images"
	"github.com/anyops/anyops/sandboxd/sandboxdtest/teardown"
	"github.com/anyops/anyops/sandboxd/token"
	"github.com/anyops/anyops/worker"
)

// stack is every part consoles need, in this process on free ports: a Temporal dev server
// (bin/temporal), an inventory in SQLite with the demo fleet, a real sandboxd, the worker and
// the API with the public embed on.
type stack struct {
	APIURL      string
	SandboxdURL string
	Sandboxd    *sbclient.Client
	AdminToken  string

	dir      string
	cgroup   string
	temporal *testsuite.DevServer
	tc       client.Client
	store    *inventory.Store
	cancel   context.CancelFunc
	done     []chan error
}

type stackOptions struct {
	APIAddr   string // "" picks a free port
	Slots     int
	Admission api.AdmissionConfig
	Logger    *slog.Logger
}

const adminToken = "bench-admin"

func startStack(ctx context.Context, o stackOptions) (_ *stack, err error) {
	st := &stack{AdminToken: adminToken}
	defer func() {
		if err != nil {
			st.Close()
		}
	}()
	if st.dir, err = os.MkdirTemp("", "anyops-console-stack-"); err != nil {
		return nil, err
	}
	repo, err := repoRoot()
	if err != nil {
		return nil, err
	}
	temporalAddr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	st.temporal, err = testsuite.StartDevServer(ctx, testsuite.DevServerOptions{
		ExistingPath:  filepath.Join(repo, "bin", "temporal"),
		ClientOptions: &client.Options{HostPort: temporalAddr, Logger: quietLogger},
		LogLevel:      "error",
		ExtraArgs:     temporaldev.Args(),
		// The dev server's banner would bury the benchmark's lines; errors still show.
		Stdout: io.Discard,
		Stderr: os.Stderr,
	})
	if err != nil {
		return nil, fmt.Errorf("temporal dev server: %w", err)
	}
	if st.tc, err = client.Dial(client.Options{HostPort: temporalAddr, Logger: quietLogger}); err != nil {
		return nil, err
	}
	if st.store, err = inventory.Open(ctx, inventory.DriverSQLite, filepath.Join(st.dir, "inventory.db")); err != nil {
		return nil, err
	}
	if _, err := st.store.SeedDemoFleet(ctx); err != nil {
		return nil, err
	}

	pub, priv, err := token.GenerateKey()
	if err != nil {
		return nil, err
	}
	runCtx, cancel := context.WithCancel(context.Background())
	st.cancel = cancel
	sbAddr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	st.SandboxdURL = "http://" + sbAddr
	// A cgroup parent of its own: sandboxd kills whatever it finds under its parent at start,
	// and other sandboxds on this machine (anyops dev, tests) must not lose theirs to us.
	st.cgroup = "anyops-console-stack-" + filepath.Base(st.dir)
	// Consoles run on the console image of the machine's image cache, built there on first use.
	images, err := sbimages.OpenCache()
	if err != nil {
		return nil, err
	}
	if _, err := images.EnsureConsole(ctx, os.Stderr); err != nil {
		return nil, err
	}
	st.run(func() error {
		return sandboxd.Run(runCtx, sandboxd.Config{Addr: sbAddr, PublicKey: pub, StorageRoot: filepath.Join(st.dir, "homes"), HomeQuota: homes.QuotaNone,
			StateDir: filepath.Join(st.dir, "sandboxd"), ImageStore: images.Dir(), CgroupParent: st.cgroup, Slots: o.Slots, AllowedOrigins: []string{"*"},
			Logger: o.Logger.With("component", "sandboxd")})
	})
	if st.Sandboxd, err = sbclient.New(st.SandboxdURL, token.NewSigner(priv)); err != nil {
		return nil, err
	}
	if err := waitHTTP(ctx, st.SandboxdURL+"/healthz"); err != nil {
		return nil, fmt.Errorf("sandboxd: %w", err)
	}
	if _, err := activities.RegisterConsoleHost(ctx, st.store, inventory.Server{Name: "bench-console", Zone: inventory.DemoZone,
		Cluster: inventory.DemoCluster, SandboxdURL: st.SandboxdURL}, token.NewSigner(priv)); err != nil {
		return nil, err
	}

	st.run(func() error {
		return worker.Run(runCtx, worker.Config{Client: st.tc, Deps: worker.Deps{Store: st.store, SandboxdSigner: token.NewSigner(priv)},
			Logger: o.Logger.With("component", "worker"), StopTimeout: 5 * time.Second})
	})
	auth, err := api.ParseTokens("admin:" + adminToken)
	if err != nil {
		return nil, err
	}
	addr := o.APIAddr
	if addr == "" {
		if addr, err = freeAddr(); err != nil {
			return nil, err
		}
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	st.APIURL = "http://" + ln.Addr().String()
	srv := api.New(api.Deps{Store: st.store, Temporal: st.tc, Auth: auth, Logger: o.Logger.With("component", "api"),
		CORSOrigins: []string{"*"}, ConsolesEnabled: true,
		Consoles: api.ConsoleDeps{SandboxdKey: ed25519.PrivateKey(priv), Admission: o.Admission}})
	st.run(func() error { return srv.Serve(runCtx, ln, 5*time.Second) })
	if err := waitHTTP(ctx, st.APIURL+"/readyz"); err != nil {
		return nil, fmt.Errorf("api: %w", err)
	}
	return st, nil
}

func (st *stack) run(fn func() error) {
	done := make(chan error, 1)
	st.done = append(st.done, done)
	go func() { done <- fn() }()
}

// Close stops every part and removes the state (sandboxd has undone its mounts by then;
// teardown makes sure: never delete through a mount).
func (st *stack) Close() {
	if st.cancel != nil {
		st.cancel()
	}
	for _, d := range st.done {
		if err := <-d; err != nil && !errors.Is(err, context.Canceled) {
			fmt.Fprintln(os.Stderr, "console stack:", err)
		}
	}
	if st.tc != nil {
		st.tc.Close()
	}
	if st.store != nil {
		_ = st.store.Close()
	}
	if st.temporal != nil {
		_ = st.temporal.Stop()
	}
	if st.cgroup != "" {
		teardown.RemoveCgroupParent(st.cgroup)
	}
	if st.dir != "" {
		if err := teardown.RemoveStateDir(st.dir); err != nil {
			fmt.Fprintln(os.Stderr, "console stack:", err)
		}
	}
}

func freeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

func waitHTTP(ctx context.Context, url string) error {
	deadline := time.Now().Add(60 * time.Second)
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			err = fmt.Errorf("%s answered %s", url, resp.Status)
		}
		if time.Now().After(deadline) {
			return err
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func repoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for d := dir; ; d = filepath.Dir(d) {
		if _, err := os.Stat(filepath.Join(d, "go.mod")); err == nil {
			return d, nil
		}
		if filepath.Dir(d) == d {
			return "", errors.New("not inside the anyops module (no go.mod above the working directory)")
		}
	}
}

// quietLogger keeps the SDK's dial retries out of the benchmark's output.
var quietLogger = tlog.NewStructuredLogger(slog.New(slog.DiscardHandler))
