// Package homes keeps the users' home directories under sandboxd's storage root, each with a
// total size limit that the file system enforces.
//
// The mechanism is btrfs quota groups (QuotaBtrfs): every home is a btrfs subvolume, and the
// quota group of that subvolume limits the bytes it references. A write that would take a
// home past its limit fails with EDQUOT ("Disk quota exceeded") in the process that writes;
// nothing else happens to the sandbox, whose shell carries on. The kernels these hosts run
// are built without the quota formats ext4 and XFS project quotas need (CONFIG_QFMT_V2,
// CONFIG_XFS_QUOTA), and with btrfs, whose quota groups need none.
//
// QuotaNone keeps plain directories and sets no limit: for a storage root that is an NFS
// export, whose file server enforces the quota on its own file system (an NFS client cannot
// create subvolumes or set quotas), or for a host that has no quota to give.
//
// Homes of throw-away users (Ephemeral) are recorded in a ledger directory on the host before
// they are made, so that the ones a crash left behind are removed when sandboxd starts again
// (RemoveLeftovers), even on a storage root other hosts share.
package homes

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"syscall"

	"github.com/anyops/anyops"
)

// Mode is how homes get their quota.
type Mode string

const (
	QuotaBtrfs Mode = "btrfs" // a subvolume per home, limited by its quota group
	QuotaNone  Mode = "none"  // plain directories; the storage server's quota, if any
)

// Modes lists every Mode.
var Modes = []Mode{QuotaBtrfs, QuotaNone}

// Config configures a Store.
type Config struct {
	Root string // the storage root: <Root>/<user> is a user's home
	Mode Mode
	// Ledger is a host-local directory recording the ephemeral homes this host made.
	Ledger string
}

// Store makes, limits and removes homes.
type Store struct {
	cfg Config
}

var userPattern = regexp.MustCompile(`^[a-z_][a-z0-9_-]{0,31}$`)

// Open checks that cfg.Root can hold homes of cfg.Mode: for QuotaBtrfs it must be a btrfs file
// system, whose quota groups Open switches on.
func Open(cfg Config) (*Store, error) {
	if _, err := anyops.Parse("home quota mode", string(cfg.Mode), Modes); err != nil {
		return nil, err
	}
	if !filepath.IsAbs(cfg.Root) || !filepath.IsAbs(cfg.Ledger) {
		return nil, fmt.Errorf("homes: storage root %q and ledger %q must be absolute paths", cfg.Root, cfg.Ledger)
	}
	if err := os.MkdirAll(cfg.Root, 0o755); err != nil {
		return nil, fmt.Errorf("homes: storage root: %w", err)
	}
	if err := os.MkdirAll(cfg.Ledger, 0o700); err != nil {
		return nil, fmt.Errorf("homes: ledger: %w", err)
	}
	if cfg.Mode == QuotaBtrfs {
		if !IsBtrfs(cfg.Root) {
			return nil, fmt.Errorf("homes: storage root %s is not a btrfs file system, so homes cannot have quotas: mount one there (docs/sandboxd.md, \"Homes\") or pass --home-quota none", cfg.Root)
		}
		if err := enableQuota(cfg.Root); err != nil {
			return nil, fmt.Errorf("homes: enable btrfs quota groups on %s: %w", cfg.Root, err)
		}
	}
	return &Store{cfg: cfg}, nil
}

// Mode is the store's quota mode.
func (s *Store) Mode() Mode { return s.cfg.Mode }

// Home describes the home a sandbox needs.
type Home struct {
	User     string
	UID, GID int
	// QuotaBytes is the total size the home may hold (QuotaBtrfs); set again on every
	// Prepare, so a user whose plan changed gets the new limit with their next sandbox.
	QuotaBytes int64
	// Ephemeral homes belong to throw-away users: recorded in the ledger, removed with them.
	Ephemeral bool
}

// Prepare makes sure the home exists, is a real directory (a subvolume for QuotaBtrfs) owned
// by h.UID, and carries h.QuotaBytes; it returns its path. A home that belongs to another uid,
// or is a plain directory where a subvolume is needed, is ECONFLICT.
func (s *Store) Prepare(h Home) (string, error) {
	if !userPattern.MatchString(h.User) {
		return "", anyops.Errorf(anyops.EINVALID, "home: user %q is not a login name", h.User)
	}
	path := filepath.Join(s.cfg.Root, h.User)
	if h.Ephemeral {
		// Recorded before it exists: a crash in between leaves only a harmless entry.
		if err := os.WriteFile(filepath.Join(s.cfg.Ledger, h.User), nil, 0o600); err != nil {
			return "", fmt.Errorf("record ephemeral home %s: %w", path, err)
		}
	}
	created, err := s.create(path)
	if err != nil {
		return "", err
	}
	if created {
		if err := os.Chown(path, h.UID, h.GID); err != nil {
			return "", fmt.Errorf("chown home %s: %w", path, err)
		}
		if err := os.Chmod(path, 0o700); err != nil {
			return "", fmt.Errorf("chmod home %s: %w", path, err)
		}
	}
	fi, err := os.Lstat(path)
	if err != nil {
		return "", fmt.Errorf("stat home %s: %w", path, err)
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !fi.IsDir() || !ok {
		return "", anyops.Errorf(anyops.ECONFLICT, "home of user %s is not a directory", h.User)
	}
	if int(st.Uid) != h.UID {
		return "", anyops.Errorf(anyops.ECONFLICT, "home of user %s belongs to uid %d, not %d", h.User, st.Uid, h.UID)
	}
	if s.cfg.Mode == QuotaBtrfs {
		if st.Ino != btrfsSubvolumeIno {
			return "", anyops.Errorf(anyops.ECONFLICT, "home of user %s is a plain directory, not a btrfs subvolume, so it cannot have a quota", h.User)
		}
		if err := limitSubvolume(path, h.QuotaBytes); err != nil {
			return "", fmt.Errorf("set the quota of home %s: %w", path, err)
		}
	}
	return path, nil
}

// create makes the home and reports whether it did; one that exists already is not an error.
func (s *Store) create(path string) (bool, error) {
	var err error
	if s.cfg.Mode == QuotaBtrfs {
		err = createSubvolume(path)
	} else {
		err = os.Mkdir(path, 0o700)
	}
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, os.ErrExist):
		return false, nil
	}
	return false, fmt.Errorf("create home %s: %w", path, err)
}

// Remove deletes a user's home with everything in it, and its ledger entry. A home that does
// not exist is removed already.
func (s *Store) Remove(user string) error {
	if !userPattern.MatchString(user) {
		return anyops.Errorf(anyops.EINVALID, "home: user %q is not a login name", user)
	}
	path := filepath.Join(s.cfg.Root, user)
	fi, err := os.Lstat(path)
	switch {
	case errors.Is(err, os.ErrNotExist):
	case err != nil:
		return err
	case !fi.IsDir():
		return anyops.Errorf(anyops.ECONFLICT, "home of user %s is not a directory", user)
	default:
		st, _ := fi.Sys().(*syscall.Stat_t)
		if IsBtrfs(path) && st != nil && st.Ino == btrfsSubvolumeIno {
			err = destroySubvolume(path)
		} else {
			err = os.RemoveAll(path) // does not follow the symlinks a user may have left
		}
		if err != nil {
			return fmt.Errorf("remove home %s: %w", path, err)
		}
	}
	if err := os.Remove(filepath.Join(s.cfg.Ledger, user)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return nil
}

// RemoveLeftovers removes every ephemeral home the ledger records: sandboxd calls it at start,
// when none of its sandboxes can still be running. It returns how many it removed.
func (s *Store) RemoveLeftovers() (int, error) {
	entries, err := os.ReadDir(s.cfg.Ledger)
	if err != nil {
		return 0, err
	}
	var errs []error
	n := 0
	for _, e := range entries {
		if err := s.Remove(e.Name()); err != nil {
			errs = append(errs, err)
			continue
		}
		n++
	}
	return n, errors.Join(errs...)
}
