package homes_test

import (
	"errors"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/anyops/anyops"
	"github.com/anyops/anyops/sandboxd/homes"
	"github.com/anyops/anyops/sandboxd/homes/homestest"
)

func openStore(t *testing.T, root string, mode homes.Mode) *homes.Store {
	t.Helper()
	s, err := homes.Open(homes.Config{Root: root, Mode: mode, Ledger: filepath.Join(t.TempDir(), "ledger")})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestQuotaStopsWritesWithEDQUOT proves the btrfs quota of a home is a total limit on it, not
// a per-file one: two files that each fit but together do not, and the second write fails
// with EDQUOT; raising the quota on the next Prepare (a new plan) lets writes through again.
func TestQuotaStopsWritesWithEDQUOT(t *testing.T) {
	s := openStore(t, homestest.BtrfsRoot(t), homes.QuotaBtrfs)
	const quota = 8 << 20
	home, err := s.Prepare(homes.Home{User: "alice", UID: 100001, GID: 100001, QuotaBytes: quota})
	if err != nil {
		t.Fatal(err)
	}
	if err := writeFile(filepath.Join(home, "a"), 5<<20); err != nil {
		t.Fatalf("first 5 MiB within an 8 MiB quota: %v", err)
	}
	err = writeFile(filepath.Join(home, "b"), 5<<20)
	if !errors.Is(err, syscall.EDQUOT) {
		t.Fatalf("second 5 MiB: %v, want EDQUOT", err)
	}
	if _, err := s.Prepare(homes.Home{User: "alice", UID: 100001, GID: 100001, QuotaBytes: 64 << 20}); err != nil {
		t.Fatal(err)
	}
	if err := writeFile(filepath.Join(home, "c"), 5<<20); err != nil {
		t.Fatalf("after raising the quota: %v", err)
	}
}

func writeFile(path string, n int) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	buf := make([]byte, 1<<20)
	for i := range buf {
		buf[i] = byte(i) // not zeros: nothing may compress or skip them
	}
	for written := 0; written < n && err == nil; written += len(buf) {
		_, err = f.Write(buf)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// TestPrepareRefusesForeignHomes proves a home owned by another uid, or a plain directory
// where a subvolume (and so a quota) is needed, is a conflict that changes nothing.
func TestPrepareRefusesForeignHomes(t *testing.T) {
	root := homestest.BtrfsRoot(t)
	s := openStore(t, root, homes.QuotaBtrfs)
	if _, err := s.Prepare(homes.Home{User: "bob", UID: 100002, GID: 100002, QuotaBytes: 1 << 20}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Prepare(homes.Home{User: "bob", UID: 100003, GID: 100003}); anyops.ErrorCode(err) != anyops.ECONFLICT {
		t.Fatalf("another uid's home: %v, want conflict", err)
	}
	if err := os.Mkdir(filepath.Join(root, "carol"), 0o700); err != nil {
		t.Fatal(err)
	}
	_ = os.Chown(filepath.Join(root, "carol"), 100004, 100004)
	if _, err := s.Prepare(homes.Home{User: "carol", UID: 100004, GID: 100004}); anyops.ErrorCode(err) != anyops.ECONFLICT {
		t.Fatalf("a plain directory home: %v, want conflict", err)
	}
	if _, err := s.Prepare(homes.Home{User: "../etc", UID: 100005}); anyops.ErrorCode(err) != anyops.EINVALID {
		t.Fatalf("a path for a user name: %v, want invalid", err)
	}
	if _, err := homes.Open(homes.Config{Root: t.TempDir(), Mode: homes.QuotaBtrfs, Ledger: t.TempDir()}); err == nil {
		t.Fatal("Open accepted a storage root that is not btrfs for quota mode btrfs")
	}
}

// TestEphemeralHomesLeftByACrash proves the ledger: an ephemeral home a crash left behind is
// removed by RemoveLeftovers (at sandboxd's start), while a registered user's home is kept —
// in both quota modes.
func TestEphemeralHomesLeftByACrash(t *testing.T) {
	for _, mode := range homes.Modes {
		t.Run(string(mode), func(t *testing.T) {
			root := t.TempDir()
			if mode == homes.QuotaBtrfs {
				root = homestest.BtrfsRoot(t)
			}
			ledger := filepath.Join(t.TempDir(), "ledger")
			s, err := homes.Open(homes.Config{Root: root, Mode: mode, Ledger: ledger})
			if err != nil {
				t.Fatal(err)
			}
			anon, err := s.Prepare(homes.Home{User: "anon-1", UID: 100010, GID: 100010, QuotaBytes: 1 << 20, Ephemeral: true})
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(anon, "x"), []byte("x"), 0o600); err != nil {
				t.Fatal(err)
			}
			kept, err := s.Prepare(homes.Home{User: "dave", UID: 100011, GID: 100011, QuotaBytes: 1 << 20})
			if err != nil {
				t.Fatal(err)
			}
			// The daemon "crashes": a new store over the same root and ledger starts.
			again, err := homes.Open(homes.Config{Root: root, Mode: mode, Ledger: ledger})
			if err != nil {
				t.Fatal(err)
			}
			if n, err := again.RemoveLeftovers(); err != nil || n != 1 {
				t.Fatalf("RemoveLeftovers = %d, %v; want 1", n, err)
			}
			if _, err := os.Stat(anon); !errors.Is(err, os.ErrNotExist) {
				t.Fatalf("ephemeral home after RemoveLeftovers: %v, want gone", err)
			}
			if _, err := os.Stat(kept); err != nil {
				t.Fatalf("registered home after RemoveLeftovers: %v, want kept", err)
			}
		})
	}
}
