// Package sandboxdtest runs a real sandboxd (real jail, the console image of the machine's
// image cache, built there on first use: root) behind an httptest server for the tests of
// packages that talk to one: activities, workflows, api. Such a
// package's TestMain is Main (or calls jail.MaybeInit first thing), because the jail
// re-executes the test binary as the sandboxes' init.
package sandboxdtest

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/anyops/anyops/internal/testenv"
	"github.com/anyops/anyops/sandboxd"
	"github.com/anyops/anyops/sandboxd/client"
	"github.com/anyops/anyops/sandboxd/homes"
	"github.com/anyops/anyops/sandboxd/images/imagestest"
	"github.com/anyops/anyops/sandboxd/jail"
	"github.com/anyops/anyops/sandboxd/sandboxdtest/teardown"
	"github.com/anyops/anyops/sandboxd/token"
)

// Options shape a Daemon; the zero value is a 4-slot daemon with a fresh key that logs nothing.
type Options struct {
	// Name tells the daemon's cgroup parent and state dir apart from other tests' on the
	// machine ("api" gives cgroup parent anyops-api-test-<random>); "" is "sandboxd".
	Name string
	// Slots is how many sandboxes the daemon runs at most; 0 is 4.
	Slots int
	// Key signs the tokens the daemon accepts; nil makes a fresh key pair. Daemons that stand
	// for the console hosts of one fleet share the key of the fleet's signer.
	Key ed25519.PrivateKey
	// Logger gets the daemon's logs; nil discards them.
	Logger *slog.Logger
	// StorageRoot holds the homes; "" is a t.TempDir of the daemon's own. Daemons that stand
	// for console hosts sharing the file service's export share one (homestest.BtrfsRoot).
	StorageRoot string
	// HomeQuota is the daemon's quota mode; "" is homes.QuotaNone, or QuotaBtrfs when
	// StorageRoot is a btrfs file system.
	HomeQuota homes.Mode
	// Wrap, when set, stands between the daemon's listener and its API on the daemon's own
	// URL (the audience of its tokens): a test's hook on its calls, such as a crash point.
	Wrap func(http.Handler) http.Handler
}

// Main is TestMain for a package whose tests start a Daemon: the test binary doubles as the
// sandboxes' init, and otherwise runs the tests with testenv.Main (which stops the servers
// they shared).
func Main(m *testing.M) {
	jail.MaybeInit()
	testenv.Main(m)
}

// Daemon is a running sandboxd and what a test needs to talk to it.
type Daemon struct {
	URL    string
	Server *httptest.Server // to take the host away for good: CloseClientConnections, Listener.Close
	Key    ed25519.PrivateKey
	Signer *token.Signer
	Client *client.Client // a client holding Signer
	Config sandboxd.Config

	srv       *sandboxd.Server
	closeOnce sync.Once

	mu          sync.Mutex
	partitioned bool
	healed      *http.Server // serving again on the same address after Heal
}

// Start runs a sandboxd until the test ends (or Close), skipping the test without root (and
// failing it where CI is set). Its storage root is a t.TempDir; its state dir and cgroup
// parent are its own and removed at the end, the state dir only once nothing is mounted
// below it. Its image store is the machine's image cache (imagestest), whose default is the
// console image.
func Start(t testing.TB, o Options) *Daemon {
	t.Helper()
	testenv.RequireRoot(t)
	if o.Name == "" {
		o.Name = "sandboxd"
	}
	if o.Slots == 0 {
		o.Slots = 4
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Key == nil {
		_, priv, err := token.GenerateKey()
		if err != nil {
			t.Fatal(err)
		}
		o.Key = priv
	}
	images, _ := imagestest.Console(t)
	state, err := os.MkdirTemp("", "anyops-"+o.Name+"-sandboxd-state-")
	if err != nil {
		t.Fatal(err)
	}
	if o.StorageRoot == "" {
		o.StorageRoot = t.TempDir()
	}
	if o.HomeQuota == "" {
		o.HomeQuota = homes.QuotaNone
		if homes.IsBtrfs(o.StorageRoot) {
			o.HomeQuota = homes.QuotaBtrfs
		}
	}
	// The listener first: its address is the daemon's URL, the audience of its tokens.
	ts := httptest.NewUnstartedServer(nil)
	cfg := sandboxd.Config{
		URL:            "http://" + ts.Listener.Addr().String(),
		PublicKey:      o.Key.Public().(ed25519.PublicKey),
		StorageRoot:    o.StorageRoot,
		HomeQuota:      o.HomeQuota,
		StateDir:       state,
		ImageStore:     images.Dir(),
		CgroupParent:   "anyops-" + o.Name + "-test-" + randomHex(4),
		Slots:          o.Slots,
		AllowedOrigins: []string{"*"},
		Logger:         o.Logger,
	}
	srv, err := sandboxd.New(cfg)
	if err != nil {
		ts.Close()
		_ = teardown.RemoveStateDir(state)
		t.Fatalf("sandboxd: %v", err)
	}
	d := &Daemon{Key: o.Key, Signer: token.NewSigner(o.Key), Config: cfg, srv: srv}
	ts.Config.Handler = srv
	if o.Wrap != nil {
		ts.Config.Handler = o.Wrap(srv)
	}
	ts.Start()
	d.Server = ts
	d.URL = ts.URL
	t.Cleanup(func() {
		if err := d.Close(); err != nil {
			t.Log(err) // the dir stays for a person to look at; the test's result stands
		}
	})
	if d.Client, err = client.New(d.URL, d.Signer); err != nil {
		t.Fatal(err)
	}
	return d
}

// Close ends every sandbox, stops serving and removes the cgroup parent and the state dir.
// Later calls do nothing. It is called when the test ends.
func (d *Daemon) Close() error {
	var err error
	d.closeOnce.Do(func() {
		d.srv.Close()
		d.Server.Close()
		d.mu.Lock()
		if d.healed != nil {
			_ = d.healed.Close()
		}
		d.mu.Unlock()
		teardown.RemoveCgroupParent(d.Config.CgroupParent)
		err = errors.Join(teardown.RemoveNetwork(d.Config.CgroupParent), teardown.RemoveStateDir(d.Config.StateDir))
	})
	return err
}

// Partition cuts the daemon off the network, as a host partitioned from the control plane:
// its sandboxes keep running, nobody reaches it. Heal brings it back on the same URL.
func (d *Daemon) Partition() {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.partitioned = true
	d.Server.CloseClientConnections()
	_ = d.Server.Listener.Close()
}

// Heal ends a Partition: the daemon answers on its URL again.
func (d *Daemon) Heal(t testing.TB) {
	t.Helper()
	d.mu.Lock()
	defer d.mu.Unlock()
	if !d.partitioned {
		return
	}
	l, err := net.Listen("tcp", d.Server.Listener.Addr().String())
	if err != nil {
		t.Fatalf("heal %s: %v", d.URL, err)
	}
	d.partitioned = false
	d.healed = &http.Server{Handler: d.srv, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = d.healed.Serve(l) }()
}

// Behind returns a client that reaches the daemon in process, not over its network: what a
// test uses to see what a partitioned host is doing.
func (d *Daemon) Behind() *client.Client {
	c, _ := client.New(d.URL, d.Signer)
	c.HTTP = &http.Client{Transport: inProcess{d.srv}}
	return c
}

// inProcess is a RoundTripper that serves requests with a handler.
type inProcess struct{ h http.Handler }

func (p inProcess) RoundTrip(r *http.Request) (*http.Response, error) {
	rec := httptest.NewRecorder()
	p.h.ServeHTTP(rec, r)
	return rec.Result(), nil
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
