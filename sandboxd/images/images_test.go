package images

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/anyops/anyops"
	"github.com/anyops/anyops/internal/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// mkImage lays out a complete image by hand, as Build leaves one: root/ and a manifest.
func mkImage(t *testing.T, s *Store, name, version string) Image {
	t.Helper()
	img := s.image(name, version)
	if err := os.MkdirAll(filepath.Join(img.Root, "usr"), 0o755); err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(Manifest{Name: name, Version: version, Packages: map[string]string{"bash": "5.2"}})
	if err := os.WriteFile(filepath.Join(img.dir(), manifestName), b, 0o444); err != nil {
		t.Fatal(err)
	}
	return img
}

// List orders by name, then by version with numeric parts compared as numbers; Get picks
// the exact name:version or the newest version of a bare name; builds in progress, version
// directories without a manifest and malformed names are not images.
func TestListAndGet(t *testing.T) {
	s, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range []string{"3.9", "3.10", "3.4"} {
		mkImage(t, s, "python", v)
	}
	mkImage(t, s, "classic", "2014.1")
	mkImage(t, s, "Bad Name", "1")
	for _, partial := range []string{"python/.build-3.11-123/root", "python/3.12/root", "host/debian-12-1/usr"} {
		if err := os.MkdirAll(filepath.Join(s.dir, partial), 0o755); err != nil { // a build in progress, a version without a manifest, an old layout
			t.Fatal(err)
		}
	}

	var refs []string
	for _, img := range s.List() {
		refs = append(refs, img.Ref())
	}
	if want := []string{"classic:2014.1", "python:3.4", "python:3.9", "python:3.10"}; !slices.Equal(refs, want) {
		t.Fatalf("List = %v, want %v", refs, want)
	}

	cases := []struct {
		ref, want string
		code      string
	}{
		{"python", "python:3.10", ""},
		{"python:3.9", "python:3.9", ""},
		{"classic", "classic:2014.1", ""},
		{"python:2.7", "", anyops.ENOTFOUND},
		{"python:3.12", "", anyops.ENOTFOUND},
		{"host", "", anyops.ENOTFOUND},
		{"ruby", "", anyops.ENOTFOUND},
		{"", "", anyops.ENOTFOUND}, // no default set
		{"../etc", "", anyops.EINVALID},
		{"python:../../x", "", anyops.EINVALID},
		{"python:.build-3.11-123", "", anyops.EINVALID},
		{"python:", "", anyops.EINVALID},
		{"Python", "", anyops.EINVALID},
	}
	for _, tc := range cases {
		img, err := s.Get(tc.ref)
		if tc.code != "" {
			if anyops.ErrorCode(err) != tc.code {
				t.Errorf("Get(%q) error %v, want %s", tc.ref, err, tc.code)
			}
			continue
		}
		if err != nil || img.Ref() != tc.want {
			t.Errorf("Get(%q) = %v, %v; want %s", tc.ref, img.Ref(), err, tc.want)
		}
		if img.Root != filepath.Join(s.dir, img.Name, img.Version, "root") {
			t.Errorf("Get(%q).Root = %s", tc.ref, img.Root)
		}
	}
}

// The default is one complete image, set by name:version; Get("") is the default; a
// default whose image is gone is no default.
func TestDefault(t *testing.T) {
	s, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	v1 := mkImage(t, s, "python", "1")
	v2 := mkImage(t, s, "python", "2")
	if _, err := s.Default(); anyops.ErrorCode(err) != anyops.ENOTFOUND {
		t.Fatalf("Default of a new store = %v, want ENOTFOUND", err)
	}
	for _, bad := range []struct{ ref, code string }{{"python", anyops.EINVALID}, {"python:3", anyops.ENOTFOUND}, {"", anyops.EINVALID}} {
		if _, err := s.SetDefault(bad.ref); anyops.ErrorCode(err) != bad.code {
			t.Errorf("SetDefault(%q) = %v, want %s", bad.ref, err, bad.code)
		}
	}
	for _, img := range []Image{v1, v2, v1} {
		if got, err := s.SetDefault(img.Ref()); err != nil || got != img {
			t.Fatalf("SetDefault(%s) = %v, %v", img.Ref(), got, err)
		}
		if got, err := s.Get(""); err != nil || got != img {
			t.Fatalf("Get(\"\") after SetDefault(%s) = %v, %v", img.Ref(), got, err)
		}
	}
	if err := os.Remove(filepath.Join(v1.dir(), manifestName)); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Default(); anyops.ErrorCode(err) != anyops.ENOTFOUND {
		t.Fatalf("Default after its image went = %v, want ENOTFOUND", err)
	}
}

func TestOpenRejectsRelativeDir(t *testing.T) {
	if _, err := Open("images"); anyops.ErrorCode(err) != anyops.EINVALID {
		t.Fatalf("error %v, want EINVALID", err)
	}
}

// A recipe is normalized before it is built or compared: defaults filled in, packages
// sorted and de-duplicated; names that could smuggle options or paths into mmdebstrap are
// refused. Its key depends on the suite and the packages, not on their order or mirrors.
func TestRecipe(t *testing.T) {
	bad := []Recipe{
		{Suite: "Bookworm"}, {Suite: "--variant=custom"}, {Suite: "../x"},
		{Packages: []string{"python3,evil"}}, {Packages: []string{"-f"}}, {Packages: []string{"a b"}}, {Packages: []string{"x=1 2"}},
		{Mirrors: []string{"ftp://x"}}, {Mirrors: []string{"--hook-dir=/tmp"}}, {Mirrors: []string{"deb http://x bookworm main\ndeb http://y z w"}},
	}
	for _, r := range bad {
		if _, err := r.normalized(); anyops.ErrorCode(err) != anyops.EINVALID {
			t.Errorf("normalized(%+v) = %v, want EINVALID", r, err)
		}
	}
	n, err := Recipe{Packages: []string{"python3", " hello", "python3", "", "tree=2.1.0-1"}}.normalized()
	if err != nil {
		t.Fatal(err)
	}
	if n.Suite != DefaultSuite || !slices.Equal(n.Mirrors, DefaultMirrors(DefaultSuite)) || !slices.Equal(n.Packages, []string{"hello", "python3", "tree=2.1.0-1"}) {
		t.Fatalf("normalized = %+v", n)
	}
	for _, ok := range [][]string{{"http://deb.debian.org/debian"}, {"deb [signed-by=/k.gpg] https://m.example/debian bookworm main contrib"}} {
		if _, err := (Recipe{Mirrors: ok}).normalized(); err != nil {
			t.Errorf("mirrors %q refused: %v", ok, err)
		}
	}
	a := Recipe{Packages: []string{"tree", "hello"}}
	if a.Key() != (Recipe{Suite: "bookworm", Packages: []string{"hello", "tree"}, Mirrors: []string{"http://m.example/debian"}}).Key() {
		t.Error("key depends on package order or mirrors")
	}
	if a.Key() == (Recipe{Packages: []string{"hello"}}).Key() || a.Key() == (Recipe{Suite: "trixie", Packages: a.Packages}).Key() {
		t.Error("key does not change with the packages or the suite")
	}
}

func TestCompareVersions(t *testing.T) {
	for _, tc := range []struct {
		a, b string
		less bool
	}{
		{"1.9", "1.10", true}, {"1.10", "1.9", false}, {"1", "1.0", true}, {"debian-12-1", "debian-12-2", true},
		{"a", "b", true}, {"2014.1", "2014.1", false},
	} {
		if got := compareVersions(tc.a, tc.b) < 0; got != tc.less {
			t.Errorf("%s < %s = %v, want %v", tc.a, tc.b, got, tc.less)
		}
	}
}

// Version ordering is antisymmetric for any input: no image list depends on input order.
func FuzzCompareVersions(f *testing.F) {
	f.Add("3.10", "3.9")
	f.Add("1-a", "1.a")
	f.Fuzz(func(t *testing.T, a, b string) {
		x, y := compareVersions(a, b), compareVersions(b, a)
		if (x < 0) != (y > 0) || (x == 0) != (y == 0) {
			t.Fatalf("compare(%q,%q)=%d but compare(%q,%q)=%d", a, b, x, b, a, y)
		}
	})
}

// Any package list either normalizes to names mmdebstrap takes as they are (no separators,
// no leading dash) or is refused.
func FuzzRecipePackages(f *testing.F) {
	f.Add("python3", "tree=2.1.0-1")
	f.Add("a,b", "-x")
	f.Fuzz(func(t *testing.T, a, b string) {
		n, err := Recipe{Packages: []string{a, b}}.normalized()
		if err != nil {
			return
		}
		for _, p := range n.Packages {
			if p == "" || p[0] == '-' || !packagePattern.MatchString(p) {
				t.Fatalf("normalized package %q", p)
			}
			for _, c := range p {
				if c == ',' || c == ' ' || c == '\n' || c == '\t' {
					t.Fatalf("normalized package %q holds a separator", p)
				}
			}
		}
	})
}

// Builds of one store take turns: while another holds the store's lock, a build waits (and
// says so) for as long as its context allows, and gives up without touching the store.
func TestBuildWaitsForTheStoreLock(t *testing.T) {
	s, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	other, err := Open(s.dir) // another process's store: flock conflicts across descriptions
	if err != nil {
		t.Fatal(err)
	}
	unlock, err := other.lock()
	if err != nil {
		t.Fatal(err)
	}
	defer unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 1500*time.Millisecond)
	defer cancel()
	var progress bytes.Buffer
	_, _, err = s.Build(ctx, "waits", "1", Recipe{Packages: []string{"hello"}}, &progress)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("build under another's lock = %v, want the context's deadline", err)
	}
	if !strings.Contains(progress.String(), "waiting for another build") {
		t.Errorf("progress = %q, want it to say it waits", progress.String())
	}
	if _, err := os.Stat(filepath.Join(s.dir, "waits")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a build that never got the lock touched the store: %v", err)
	}
}
