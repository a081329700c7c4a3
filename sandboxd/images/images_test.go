package images

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/anyops/anyops"
	"github.com/anyops/anyops/internal/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// mkImage makes an image directory by hand, as an unpacked image would be.
func mkImage(t *testing.T, s *Store, name, version string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Join(s.dir, name, version, "usr"), 0o755); err != nil {
		t.Fatal(err)
	}
}

// List orders by name, then by version with numeric parts compared as numbers; Get picks
// the newest version of a bare name or the exact name:version; half-built images and
// malformed names are not images.
func TestListAndGet(t *testing.T) {
	s, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range []string{"3.9", "3.10", "3.4"} {
		mkImage(t, s, "python", v)
	}
	mkImage(t, s, "classic", "2014.1")
	mkImage(t, s, "python", ".build-123") // in progress
	mkImage(t, s, "Bad Name", "1")

	var refs []string
	for _, img := range s.List() {
		refs = append(refs, img.Ref())
	}
	want := []string{"classic:2014.1", "python:3.4", "python:3.9", "python:3.10"}
	if len(refs) != len(want) {
		t.Fatalf("List = %v, want %v", refs, want)
	}
	for i := range want {
		if refs[i] != want[i] {
			t.Fatalf("List = %v, want %v", refs, want)
		}
	}

	cases := []struct {
		ref, want string
		code      string
	}{
		{"python", "python:3.10", ""},
		{"python:3.9", "python:3.9", ""},
		{"classic", "classic:2014.1", ""},
		{"python:2.7", "", anyops.ENOTFOUND},
		{"ruby", "", anyops.ENOTFOUND},
		{"", "", anyops.EINVALID},
		{"../etc", "", anyops.EINVALID},
		{"python:../../x", "", anyops.EINVALID},
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
		if img.Root != filepath.Join(s.dir, img.Name, img.Version) {
			t.Errorf("Get(%q).Root = %s", tc.ref, img.Root)
		}
	}
}

func TestOpenRejectsRelativeDir(t *testing.T) {
	if _, err := Open("images"); anyops.ErrorCode(err) != anyops.EINVALID {
		t.Fatalf("error %v, want EINVALID", err)
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

// The host image holds the host's /usr (read-only, nosuid) and the /etc bits bash and
// python3 need, lists as host:<version>, survives a second EnsureHost without a second
// mount, and Close unmounts it.
func TestEnsureHost(t *testing.T) {
	testenv.RequireRoot(t)
	s, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	img, err := s.EnsureHost()
	t.Cleanup(func() { _ = s.Close() })
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"usr/bin/bash", "usr/bin/python3", "etc/ld.so.cache", "etc/passwd", "etc/profile", "etc/ssl/certs"} {
		if _, err := os.Stat(filepath.Join(img.Root, p)); err != nil {
			t.Errorf("host image lacks %s: %v", p, err)
		}
	}
	for _, d := range []string{"proc", "dev", "tmp", "home", "run"} {
		if st, err := os.Stat(filepath.Join(img.Root, d)); err != nil || !st.IsDir() {
			t.Errorf("host image lacks the /%s mount point", d)
		}
	}
	if _, err := os.Lstat(filepath.Join(img.Root, "etc/ssl/private")); err == nil {
		t.Error("the image carries the host's private keys directory")
	}
	if _, err := os.Lstat(filepath.Join(img.Root, "etc/shadow")); err == nil {
		t.Error("the image carries the host's shadow file")
	}
	if b, _ := os.ReadFile(filepath.Join(img.Root, "etc/passwd")); len(b) == 0 || containsHostUsers(string(b)) {
		t.Errorf("image passwd should list system accounts only: %q", b)
	}
	if err := os.WriteFile(filepath.Join(img.Root, "usr", "anyops-probe"), nil, 0o644); err == nil {
		t.Error("the image's /usr is writable")
	}
	again, err := s.EnsureHost()
	if err != nil || again != img {
		t.Fatalf("second EnsureHost = %+v, %v; want %+v", again, err, img)
	}
	if len(s.hostMounts) != 1 {
		t.Fatalf("EnsureHost mounted %d times, want once: %v", len(s.hostMounts), s.hostMounts)
	}
	if got, err := s.Get(HostImageName); err != nil || got != img {
		t.Fatalf("Get(host) = %+v, %v", got, err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if sameFile("/usr", filepath.Join(img.Root, "usr")) {
		t.Fatal("Close left /usr mounted in the image")
	}
}

func containsHostUsers(passwd string) bool {
	host, err := os.ReadFile("/etc/passwd")
	if err != nil {
		return false
	}
	for _, line := range strings.Split(string(host), "\n") {
		name, _, _ := strings.Cut(line, ":")
		if name != "" && name != "root" && name != "nobody" && strings.Contains(passwd, "\n"+name+":") {
			return true
		}
	}
	return false
}
