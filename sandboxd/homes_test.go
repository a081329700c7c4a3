package sandboxd

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/anyops/anyops"
	"github.com/anyops/anyops/sandboxd/homes"
	"github.com/anyops/anyops/sandboxd/homes/homestest"
	"github.com/anyops/anyops/sandboxd/wire"
)

// TestHomeQuotaStopsWritesNotTheConsole proves, through a real sandbox on a btrfs storage
// root, that a home has a total quota: a write past it fails with "Disk quota exceeded"
// (EDQUOT) in the writing process, the home holds no more than the quota, and the shell
// carries on.
func TestHomeQuotaStopsWritesNotTheConsole(t *testing.T) {
	h := newHarness(t, func(c *Config) { c.StorageRoot, c.HomeQuota = homestest.BtrfsRoot(t), homes.QuotaBtrfs })
	req := shell()
	const quota = 8 << 20
	req.Limits = &anyops.Limits{HomeBytes: quota}
	sb := h.create(req)
	tm := h.attach(sb.ID)
	tm.send("head -c 20M /dev/urandom > ~/big; echo \"wrote-rc=$?\"\n")
	tm.waitOutput("Disk quota exceeded")
	tm.waitOutput("wrote-rc=1")
	tm.send("echo still-here-$((6*7))\n")
	tm.waitOutput("still-here-42")
	st, err := os.Stat(filepath.Join(h.cfg.StorageRoot, "alice", "big"))
	if err != nil {
		t.Fatal(err)
	}
	if st.Size() > quota {
		t.Fatalf("the home holds a %d-byte file past its %d-byte quota", st.Size(), quota)
	}
	if got := h.get(sb.ID); got.State != wire.StateRunning || got.Limits.HomeBytes != quota {
		t.Fatalf("sandbox after the refused write: %+v, want running with home_bytes %d", got, quota)
	}
}

// TestAnonymousHomeGoesWithItsSandbox proves an anonymous user's home is removed when their
// sandbox ends — gone by the time DELETE answers, or by the time the sandbox reads exited
// when it ended by itself — while a registered user's home stays.
func TestAnonymousHomeGoesWithItsSandbox(t *testing.T) {
	h := newHarness(t, nil)
	ctx := context.Background()
	anon := wire.CreateRequest{User: "anon-1a2b", UID: 130001, Plan: anyops.PlanAnonymous}
	sb := h.create(anon)
	home := filepath.Join(h.cfg.StorageRoot, anon.User)
	if _, err := os.Stat(home); err != nil {
		t.Fatalf("anonymous home while its sandbox runs: %v", err)
	}
	if err := h.c.Delete(ctx, sb.ID); err != nil {
		t.Fatal(err)
	}
	requireGone(t, home)

	anon.Command = []string{"/bin/sh", "-c", "echo x > ~/file"}
	sb = h.create(anon)
	h.waitFor(sb.ID, "the command to exit", func(s wire.Sandbox) bool { return s.State == wire.StateExited })
	requireGone(t, home)

	reg := h.create(shell())
	if err := h.c.Delete(ctx, reg.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(h.cfg.StorageRoot, "alice")); err != nil {
		t.Fatalf("a registered user's home after their sandbox: %v, want kept", err)
	}
}

// requireGone fails the test unless path is gone.
func requireGone(t *testing.T, path string) {
	t.Helper()
	if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("%s is still there (%v)", path, err)
	}
}

// TestLeaseEndsASandboxTheControlPlaneForgot proves the lease: a sandbox whose lease nobody
// renews ends by itself (lease_expired), while one whose host checks (GETs) keep coming runs
// on past its lease.
func TestLeaseEndsASandboxTheControlPlaneForgot(t *testing.T) {
	h := newHarness(t, nil)
	const lease = time.Second
	req := shell()
	req.Lease = wire.Duration(lease)
	forgotten := h.create(req)
	req.User, req.UID = "bob", 120002
	checked := h.create(req)
	start := time.Now()
	for time.Since(start) < 3*lease {
		h.get(checked.ID) // the host check
		time.Sleep(lease / 5)
	}
	var got wire.Sandbox
	for deadline := time.Now().Add(waitLimit); ; time.Sleep(50 * time.Millisecond) {
		list, err := h.c.List(context.Background()) // a list renews nothing
		if err != nil {
			t.Fatal(err)
		}
		for _, sb := range list {
			if sb.ID == forgotten.ID {
				got = sb
			}
		}
		if got.State == wire.StateExited || time.Now().After(deadline) {
			break
		}
	}
	if got.State != wire.StateExited || got.EndReason != wire.EndLeaseExpired {
		t.Fatalf("unrenewed sandbox: %+v, want exited with lease_expired", got)
	}
	if age := got.ExitedAt.Sub(got.CreatedAt); age < lease {
		t.Fatalf("ended after %s, before its lease of %s", age, lease)
	}
	if got := h.get(checked.ID); got.State != wire.StateRunning {
		t.Fatalf("renewed sandbox: %+v, want running", got)
	}
}
