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
	"log/slog"
	"net/http/httptest"
	"os"
	"sync"
	"testing"

	"github.com/anyops/anyops/internal/testenv"
	"github.com/anyops/anyops/sandboxd"
	"github.com/anyops/anyops/sandboxd/client"
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
	Server *httptest.Server // to take the host away: CloseClientConnections, Listener.Close
	Key    ed25519.PrivateKey
	Signer *token.Signer
	Client *client.Client // a client holding Signer
	Config sandboxd.Config

	srv       *sandboxd.Server
	closeOnce sync.Once
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
	cfg := sandboxd.Config{
		PublicKey:      o.Key.Public().(ed25519.PublicKey),
		StorageRoot:    t.TempDir(),
		StateDir:       state,
		ImageStore:     images.Dir(),
		CgroupParent:   "anyops-" + o.Name + "-test-" + randomHex(4),
		Slots:          o.Slots,
		AllowedOrigins: []string{"*"},
		Logger:         o.Logger,
	}
	srv, err := sandboxd.New(cfg)
	if err != nil {
		_ = teardown.RemoveStateDir(state)
		t.Fatalf("sandboxd: %v", err)
	}
	d := &Daemon{Key: o.Key, Signer: token.NewSigner(o.Key), Config: cfg, srv: srv}
	d.Server = httptest.NewServer(srv)
	d.URL = d.Server.URL
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
		teardown.RemoveCgroupParent(d.Config.CgroupParent)
		err = teardown.RemoveStateDir(d.Config.StateDir)
	})
	return err
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
