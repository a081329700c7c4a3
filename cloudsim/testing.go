package cloudsim

import (
	"net/http/httptest"
	"testing"
)

// TestSpeed is the clock speed NewTestServer uses when cfg.Speed is zero: a simulated
// 45-second boot takes 45 ms, a 10-second volume create 10 ms.
const TestSpeed = 1000

// NewTestServer starts a Sim behind an httptest server for the test's lifetime and returns it
// with its endpoint URL, for aws-sdk-go-v2 clients' BaseEndpoint. The Sim and server stop when
// the test ends.
func NewTestServer(t testing.TB, cfg Config) (*Sim, string) {
	t.Helper()
	if cfg.Speed == 0 {
		cfg.Speed = TestSpeed
	}
	sim, err := New(cfg)
	if err != nil {
		t.Fatalf("cloudsim: %v", err)
	}
	srv := httptest.NewServer(sim.Handler())
	t.Cleanup(func() {
		srv.Close()
		if err := sim.Close(); err != nil {
			t.Errorf("cloudsim: close: %v", err)
		}
	})
	return sim, srv.URL
}
