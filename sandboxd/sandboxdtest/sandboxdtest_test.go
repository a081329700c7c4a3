package sandboxdtest

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/anyops/anyops"
	"github.com/anyops/anyops/internal/mountinfo"
	"github.com/anyops/anyops/sandboxd/client"
	"github.com/anyops/anyops/sandboxd/token"
	"github.com/anyops/anyops/sandboxd/wire"
)

func TestMain(m *testing.M) { Main(m) }

// TestStartServesAndCloseLeavesNothing proves a Daemon runs sandboxes for its own Client, that
// a daemon given a key accepts that key's tokens and no other's, and that Close ends the
// sandboxes and leaves neither mounts, nor the state dir, nor the cgroup parent behind; it
// mounts nothing on the host even while its sandboxes run.
func TestStartServesAndCloseLeavesNothing(t *testing.T) {
	_, fleetKey, err := token.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		key  bool // start with fleetKey rather than a fresh key
	}{
		{"fresh key", false},
		{"given key", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := Options{Name: "sbdtest", Slots: 1}
			if tt.key {
				o.Key = fleetKey
			}
			d := Start(t, o)
			if tt.key != d.Key.Equal(fleetKey) {
				t.Fatalf("daemon key is the given one: %v, want %v", d.Key.Equal(fleetKey), tt.key)
			}
			ctx := context.Background()
			sb, err := d.Client.Create(ctx, wire.CreateRequest{User: "alice", UID: 120001, Plan: anyops.PlanFree})
			if err != nil {
				t.Fatalf("create with the daemon's own client: %v", err)
			}
			if sb.State != wire.StateRunning {
				t.Fatalf("sandbox %+v, want running", sb)
			}
			_, otherKey, _ := token.GenerateKey()
			stranger, err := client.New(d.URL, token.NewSigner(otherKey))
			if err != nil {
				t.Fatal(err)
			}
			if _, err := stranger.List(ctx); anyops.ErrorCode(err) != anyops.EUNAUTHORIZED && anyops.ErrorCode(err) != anyops.EFORBIDDEN {
				t.Fatalf("list with another key = %v, want a refusal", err)
			}
			state := d.Config.StateDir
			for _, dir := range []string{state, d.Config.ImageStore, d.Config.StorageRoot} {
				if m := mountinfo.Under(dir); len(m) != 0 {
					t.Errorf("host mounts under %s while sandboxes run: %v", dir, m)
				}
			}

			if err := d.Close(); err != nil {
				t.Fatalf("Close: %v", err)
			}
			if err := d.Close(); err != nil {
				t.Fatalf("second Close: %v", err)
			}
			if _, err := os.Stat("/proc/" + strconv.Itoa(sb.Pid)); err == nil {
				t.Errorf("sandbox init %d survives Close", sb.Pid)
			}
			if m := mountinfo.Under(state); len(m) != 0 {
				t.Errorf("mounts left after Close: %v", m)
			}
			if _, err := os.Stat(state); !os.IsNotExist(err) {
				t.Errorf("state dir after Close: %v, want it removed", err)
			}
			left, _ := filepath.Glob("/sys/fs/cgroup/*/" + d.Config.CgroupParent)
			if _, err := os.Stat("/sys/fs/cgroup/" + d.Config.CgroupParent); err == nil {
				left = append(left, "/sys/fs/cgroup/"+d.Config.CgroupParent)
			}
			if len(left) != 0 {
				t.Errorf("cgroup parent left after Close: %v", left)
			}
		})
	}
}
