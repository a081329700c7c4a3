// Package images keeps the sandbox images of a console host. An image is a Debian root
// filesystem built with mmdebstrap from a list of packages (build.go), addressed as
// name:version and stored at <store>/<name>/<version>:
//
//	root/          the root filesystem, shared read-only by every sandbox of the image
//	manifest.json  what it was built from and every installed package's version (dpkg-query)
//
// A version directory only ever appears complete: a build assembles it in a hidden directory
// beside it and renames it into place with the manifest already inside, so a directory
// without a manifest is never listed and a complete image is never written again. The store
// also names one image its default (<store>/default): the image of a sandbox whose request
// names none.
package images

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/anyops/anyops"
)

// Image is one complete image of a store. Root is its root filesystem.
type Image struct {
	Name    string `json:"name"`
	Version string `json:"version"`
	Root    string `json:"-"`
}

// Ref is "name:version".
func (i Image) Ref() string { return i.Name + ":" + i.Version }

// dir is the image's version directory, holding root/ and manifest.json.
func (i Image) dir() string { return filepath.Dir(i.Root) }

// Manifest is manifest.json: how an image was built and what it holds.
type Manifest struct {
	Name    string `json:"name"`
	Version string `json:"version"`
	Recipe  Recipe `json:"recipe"`
	// Packages maps every installed package to its version, as dpkg-query reports them
	// inside the root.
	Packages  map[string]string `json:"packages"`
	SizeBytes int64             `json:"size_bytes"` // of the root's files, hard links once
	CreatedAt time.Time         `json:"created_at"`
	Builder   string            `json:"builder"` // "mmdebstrap 1.3.5"
}

const (
	rootDirName  = "root"
	manifestName = "manifest.json"
	defaultName  = "default" // <store>/default holds the default image's ref
	lockName     = ".lock"
)

// namePattern is what an image name or version may be: it never starts with a dot, so the
// hidden directories of builds in progress are never mistaken for images.
var namePattern = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]{0,63}$`)

// ParseRef splits "name:version", refusing anything else with EINVALID.
func ParseRef(ref string) (name, version string, err error) {
	name, version, ok := strings.Cut(ref, ":")
	if !ok || !namePattern.MatchString(name) || !namePattern.MatchString(version) {
		return "", "", anyops.Errorf(anyops.EINVALID, "image %q is not name:version (each [a-z0-9][a-z0-9._-]{0,63})", ref)
	}
	return name, version, nil
}

// Store is the image directory of a host.
type Store struct {
	dir string
}

// Open opens (creating when needed) the image store at dir.
func Open(dir string) (*Store, error) {
	if !filepath.IsAbs(dir) {
		return nil, anyops.Errorf(anyops.EINVALID, "images: store directory %q must be absolute", dir)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("images: %w", err)
	}
	return &Store{dir: dir}, nil
}

// Dir is the store's directory.
func (s *Store) Dir() string { return s.dir }

func (s *Store) image(name, version string) Image {
	return Image{Name: name, Version: version, Root: filepath.Join(s.dir, name, version, rootDirName)}
}

// complete reports whether img's version directory holds a manifest: then it is an image.
func complete(img Image) bool {
	st, err := os.Stat(filepath.Join(img.dir(), manifestName))
	return err == nil && st.Mode().IsRegular()
}

// List returns every complete image, by name and then oldest version first.
func (s *Store) List() []Image {
	var out []Image
	names, _ := os.ReadDir(s.dir)
	for _, n := range names {
		if n.IsDir() && namePattern.MatchString(n.Name()) {
			out = append(out, s.versions(n.Name())...)
		}
	}
	slices.SortFunc(out, func(a, b Image) int {
		if c := strings.Compare(a.Name, b.Name); c != 0 {
			return c
		}
		return compareVersions(a.Version, b.Version)
	})
	return out
}

// versions lists the complete images of one name, unsorted.
func (s *Store) versions(name string) []Image {
	var out []Image
	entries, _ := os.ReadDir(filepath.Join(s.dir, name))
	for _, v := range entries {
		if !v.IsDir() || !namePattern.MatchString(v.Name()) {
			continue
		}
		if img := s.image(name, v.Name()); complete(img) {
			out = append(out, img)
		}
	}
	return out
}

// Get returns the image ref names: "name:version", "name" for its newest version, or ""
// for the store's default. An unknown image is ENOTFOUND; a malformed ref is EINVALID.
func (s *Store) Get(ref string) (Image, error) {
	if ref == "" {
		return s.Default()
	}
	name, version, pinned := strings.Cut(ref, ":")
	if pinned {
		var err error
		if name, version, err = ParseRef(ref); err != nil {
			return Image{}, err
		}
		if img := s.image(name, version); complete(img) {
			return img, nil
		}
		return Image{}, anyops.Errorf(anyops.ENOTFOUND, "image %s is not on this host", ref)
	}
	if !namePattern.MatchString(name) {
		return Image{}, anyops.Errorf(anyops.EINVALID, "image %q is not a valid name or name:version", ref)
	}
	all := s.versions(name)
	if len(all) == 0 {
		return Image{}, anyops.Errorf(anyops.ENOTFOUND, "no image %s on this host", name)
	}
	return slices.MaxFunc(all, func(a, b Image) int { return compareVersions(a.Version, b.Version) }), nil
}

// Default returns the store's default image: ENOTFOUND when none is set (or it is gone).
func (s *Store) Default() (Image, error) {
	b, err := os.ReadFile(filepath.Join(s.dir, defaultName))
	if errors.Is(err, fs.ErrNotExist) {
		return Image{}, anyops.Errorf(anyops.ENOTFOUND, "this host has no default image (anyops image default NAME:VERSION)")
	}
	if err != nil {
		return Image{}, fmt.Errorf("images: read default: %w", err)
	}
	ref := strings.TrimSpace(string(b))
	img, err := s.Get(ref)
	if err != nil || ref == "" {
		return Image{}, anyops.Errorf(anyops.ENOTFOUND, "the default image %q of this host is not a complete image", ref)
	}
	return img, nil
}

// SetDefault makes the complete image ref ("name:version") the store's default.
func (s *Store) SetDefault(ref string) (Image, error) {
	if _, _, err := ParseRef(ref); err != nil {
		return Image{}, err
	}
	unlock, err := s.lock()
	if err != nil {
		return Image{}, err
	}
	defer unlock()
	img, err := s.Get(ref)
	if err != nil {
		return Image{}, err
	}
	if err := writeFileAtomic(filepath.Join(s.dir, defaultName), []byte(img.Ref()+"\n"), 0o644); err != nil {
		return Image{}, fmt.Errorf("images: set default: %w", err)
	}
	return img, nil
}

// Manifest reads img's manifest.
func (s *Store) Manifest(img Image) (Manifest, error) {
	var m Manifest
	b, err := os.ReadFile(filepath.Join(img.dir(), manifestName))
	if err != nil {
		return m, fmt.Errorf("images: manifest of %s: %w", img.Ref(), err)
	}
	if err := json.Unmarshal(b, &m); err != nil {
		return m, fmt.Errorf("images: manifest of %s: %w", img.Ref(), err)
	}
	return m, nil
}

// lock takes the store's lock (an flock, so it holds across processes: tests of several
// packages, and a build on the host while sandboxd runs) and returns its release.
func (s *Store) lock() (func(), error) {
	f, err := os.OpenFile(filepath.Join(s.dir, lockName), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, fmt.Errorf("images: lock store: %w", err)
	}
	for {
		err = unix.Flock(int(f.Fd()), unix.LOCK_EX)
		if err != unix.EINTR {
			break
		}
	}
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("images: lock store: %w", err)
	}
	return func() { f.Close() }, nil // closing the descriptor releases the lock
}

// writeFileAtomic writes a file beside its final name and renames it into place.
func writeFileAtomic(name string, data []byte, mode fs.FileMode) error {
	tmp, err := os.CreateTemp(filepath.Dir(name), "."+filepath.Base(name)+"-")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Chmod(mode); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), name)
}

// compareVersions orders versions by their dot- or dash-separated parts, numerically where
// both parts are numbers: 1.9 < 1.10.
func compareVersions(a, b string) int {
	split := func(s string) []string {
		return strings.FieldsFunc(s, func(r rune) bool { return r == '.' || r == '-' || r == '_' })
	}
	pa, pb := split(a), split(b)
	for i := 0; i < len(pa) && i < len(pb); i++ {
		na, ea := strconv.Atoi(pa[i])
		nb, eb := strconv.Atoi(pb[i])
		if ea == nil && eb == nil {
			if na != nb {
				return na - nb
			}
			continue
		}
		if c := strings.Compare(pa[i], pb[i]); c != 0 {
			return c
		}
	}
	if len(pa) != len(pb) {
		return len(pa) - len(pb)
	}
	return strings.Compare(a, b)
}
