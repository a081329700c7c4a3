package token

import (
	"crypto/ed25519"
	"crypto/sha256"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"
)

// KeyRing is the set of public keys a sandboxd accepts: fixed ones (from --public-key) and
// every *.pub file in a directory (--public-key-dir). The directory is looked at again, at
// most once per reloadEvery, whenever its modification time has changed — which adding,
// removing or renaming a file does — so keys are added and retired without a restart, and
// a restart of sandboxd (which ends its sandboxes) is never needed to rotate them.
type KeyRing struct {
	fixed KeySet
	dir   string

	mu      sync.Mutex
	keys    KeySet
	modTime time.Time
	checked time.Time
	loadErr error
	now     func() time.Time
}

const reloadEvery = time.Second

// NewKeyRing returns the ring of fixed plus the keys in dir ("" for none). A dir that cannot be
// read, or holds a .pub file that is not an Ed25519 public key, is an error; so is a ring with
// no key at all.
func NewKeyRing(fixed []ed25519.PublicKey, dir string) (*KeyRing, error) {
	r := &KeyRing{fixed: NewKeySet(fixed...), dir: dir, now: time.Now}
	if dir != "" {
		if err := r.reload(); err != nil {
			return nil, err
		}
	}
	if len(r.IDs()) == 0 {
		return nil, fmt.Errorf("no public key: give --public-key FILE or --public-key-dir DIR")
	}
	return r, nil
}

// Key returns the key with id kid, looking at the directory again if it changed.
func (r *KeyRing) Key(kid string) (ed25519.PublicKey, bool) {
	if k, ok := r.fixed[kid]; ok {
		return k, true
	}
	if r.dir == "" {
		return nil, false
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if now := r.now(); now.Sub(r.checked) >= reloadEvery {
		r.checked = now
		if st, err := os.Stat(r.dir); err == nil && !st.ModTime().Equal(r.modTime) {
			// A directory that turned unreadable keeps the keys last read: failing closed
			// here would lock the control plane out of every host for a typo.
			r.loadErr = r.reloadLocked()
		}
	}
	k, ok := r.keys[kid]
	return k, ok
}

// IDs lists the ids of the keys the ring holds now, sorted.
func (r *KeyRing) IDs() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var ids []string
	for id := range r.fixed {
		ids = append(ids, id)
	}
	for id := range r.keys {
		if !slices.Contains(ids, id) {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	return ids
}

func (r *KeyRing) reload() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.checked = r.now()
	return r.reloadLocked()
}

func (r *KeyRing) reloadLocked() error {
	st, err := os.Stat(r.dir)
	if err != nil {
		return fmt.Errorf("public key dir: %w", err)
	}
	files, err := filepath.Glob(filepath.Join(r.dir, "*.pub"))
	if err != nil {
		return err
	}
	keys := KeySet{}
	for _, f := range files {
		if strings.HasPrefix(filepath.Base(f), ".") {
			continue // an editor's or a copy's temporary file
		}
		k, err := ReadPublicKey(f)
		if err != nil {
			return fmt.Errorf("public key dir: %w", err)
		}
		keys[KeyID(k)] = k
	}
	r.keys, r.modTime = keys, st.ModTime()
	return nil
}

// OnceSet remembers tokens until they expire, so that each is accepted once: sandboxd uses it
// for create tokens, which a captured copy could otherwise replay to make the sandbox again
// after it was deleted. It lives in memory: a restarted sandboxd, whose sandboxes are all
// gone, forgets it.
type OnceSet struct {
	mu   sync.Mutex
	seen map[[sha256.Size]byte]int64 // token digest -> its exp
	now  func() time.Time
}

// NewOnceSet returns an empty OnceSet.
func NewOnceSet() *OnceSet {
	return &OnceSet{seen: map[[sha256.Size]byte]int64{}, now: time.Now}
}

// Use records tok (valid until exp, unix seconds) and reports whether it was new.
func (o *OnceSet) Use(tok string, exp int64) bool {
	d := sha256.Sum256([]byte(tok))
	o.mu.Lock()
	defer o.mu.Unlock()
	now := o.now().Unix()
	for k, e := range o.seen {
		if e <= now {
			delete(o.seen, k)
		}
	}
	if _, dup := o.seen[d]; dup {
		return false
	}
	o.seen[d] = exp
	return true
}
