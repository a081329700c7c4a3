// Package images keeps the sandbox images of a console host. An image is a read-only root
// directory tree with a name and a version, stored at <dir>/<name>/<version>. The host image
// ("host") is assembled from the host itself: the host's /usr (and any of /bin, /lib, /lib64,
// /sbin that are real directories) bind-mounted read-only, nosuid and nodev, plus copies of
// the parts of /etc that bash, python3 and the dynamic linker need. Sandboxes of one image
// share its tree; nothing is copied per sandbox.
package images

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"

	"golang.org/x/sys/unix"

	"github.com/anyops/anyops"
)

// Image is one image: Root is its root directory.
type Image struct {
	Name    string `json:"name"`
	Version string `json:"version"`
	Root    string `json:"-"`
}

// Ref is "name:version".
func (i Image) Ref() string { return i.Name + ":" + i.Version }

// HostImageName is the name of the image built from the host's own /usr.
const HostImageName = "host"

// hostLayout is bumped when EnsureHost builds the host image differently, so that a new
// layout gets a new version instead of changing one in use.
const hostLayout = 1

var namePattern = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]{0,63}$`)

// Store is the image directory of a host.
type Store struct {
	dir string
	mu  sync.Mutex // serialises EnsureHost
	// hostMounts are the mounts EnsureHost made in this process, for Close.
	hostMounts []string
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

// List returns every complete image, by name and then oldest version first.
func (s *Store) List() []Image {
	var out []Image
	names, _ := os.ReadDir(s.dir)
	for _, n := range names {
		if !n.IsDir() || !namePattern.MatchString(n.Name()) {
			continue
		}
		versions, _ := os.ReadDir(filepath.Join(s.dir, n.Name()))
		for _, v := range versions {
			if v.IsDir() && namePattern.MatchString(v.Name()) {
				out = append(out, Image{Name: n.Name(), Version: v.Name(), Root: filepath.Join(s.dir, n.Name(), v.Name())})
			}
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

// Get returns the image ref names: "name" for its newest version, or "name:version". An
// unknown image is ENOTFOUND; a malformed ref is EINVALID.
func (s *Store) Get(ref string) (Image, error) {
	name, version, pinned := strings.Cut(ref, ":")
	if !namePattern.MatchString(name) || (pinned && !namePattern.MatchString(version)) {
		return Image{}, anyops.Errorf(anyops.EINVALID, "image %q is not a valid name or name:version", ref)
	}
	var newest *Image
	for _, img := range s.List() {
		if img.Name != name {
			continue
		}
		if pinned && img.Version == version {
			return img, nil
		}
		newest = &img
	}
	if newest == nil || pinned {
		return Image{}, anyops.Errorf(anyops.ENOTFOUND, "image %q not found", ref)
	}
	return *newest, nil
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

// hostTopDirs are the host's top-level entries an image needs from the host: bind-mounted
// when a real directory, recreated when a symlink (merged /usr: /bin → usr/bin).
var hostTopDirs = []string{"usr", "bin", "sbin", "lib", "lib32", "lib64", "libx32"}

// hostEtc is what the host image copies from /etc (glob patterns): the dynamic linker's
// cache, name service configuration, shell start-up files, alternatives, certificates and
// python's own config.
var hostEtc = []string{
	"ld.so.cache", "ld.so.conf", "ld.so.conf.d", "nsswitch.conf", "host.conf", "hosts",
	"resolv.conf", "localtime", "timezone", "os-release", "debian_version",
	"bash.bashrc", "profile", "profile.d", "inputrc", "environment", "shells", "skel",
	"alternatives", "ssl", "ca-certificates", "mime.types", "magic", "terminfo",
	"locale.alias", "gai.conf", "protocols", "services", "networks", "rpc",
	"python3", "python3.*", "pip.conf",
}

// hostVersion names the host image after the host's distribution release and the layout.
func hostVersion() string {
	b, _ := os.ReadFile("/etc/os-release")
	fields := map[string]string{}
	for _, line := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(line, "="); ok {
			fields[k] = strings.Trim(v, `"'`)
		}
	}
	id, ver := fields["ID"], fields["VERSION_ID"]
	if id == "" {
		id = "linux"
	}
	if ver == "" {
		ver = "0"
	}
	v := fmt.Sprintf("%s-%s-%d", id, ver, hostLayout)
	if !namePattern.MatchString(v) {
		v = fmt.Sprintf("linux-%d", hostLayout)
	}
	return v
}

// EnsureHost builds the host image when missing and (re)mounts the host's /usr into it when
// not mounted (after a reboot, or in a new process). Needs root. Close undoes the mounts.
func (s *Store) EnsureHost() (Image, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	img := Image{Name: HostImageName, Version: hostVersion()}
	img.Root = filepath.Join(s.dir, img.Name, img.Version)
	if _, err := os.Stat(img.Root); errors.Is(err, fs.ErrNotExist) {
		if err := s.buildHost(img.Root); err != nil {
			return Image{}, fmt.Errorf("images: build host image: %w", err)
		}
	} else if err != nil {
		return Image{}, err
	}
	for _, d := range hostTopDirs {
		host := "/" + d
		st, err := os.Lstat(host)
		if err != nil || !st.IsDir() {
			continue // absent, or a symlink recreated in the tree
		}
		target := filepath.Join(img.Root, d)
		if sameFile(host, target) {
			continue // mounted already
		}
		if err := bindReadOnly(host, target); err != nil {
			return Image{}, fmt.Errorf("images: mount %s into the host image: %w", host, err)
		}
		s.hostMounts = append(s.hostMounts, target)
	}
	return img, nil
}

// buildHost assembles a host image tree in a temporary directory and renames it into place,
// so a half-built image is never listed.
func (s *Store) buildHost(root string) error {
	parent := filepath.Dir(root)
	if err := os.MkdirAll(parent, 0o755); err != nil {
		return err
	}
	tmp, err := os.MkdirTemp(parent, ".build-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp) // only an unmounted tree: mounts are made after the rename
	if err := os.Chmod(tmp, 0o755); err != nil {
		return err
	}
	for _, d := range []struct {
		name string
		mode fs.FileMode
	}{{"dev", 0o755}, {"proc", 0o555}, {"tmp", 0o1777}, {"home", 0o755}, {"run", 0o755}, {"etc", 0o755}, {"root", 0o700}, {"var", 0o755}, {"var/tmp", 0o1777}, {"sys", 0o555}, {"mnt", 0o755}, {"opt", 0o755}, {"srv", 0o755}} {
		p := filepath.Join(tmp, d.name)
		if err := os.Mkdir(p, d.mode); err != nil {
			return err
		}
		if err := os.Chmod(p, d.mode); err != nil { // past the umask
			return err
		}
	}
	for _, d := range hostTopDirs {
		st, err := os.Lstat("/" + d)
		switch {
		case err != nil:
			continue
		case st.Mode()&fs.ModeSymlink != 0:
			link, err := os.Readlink("/" + d)
			if err != nil {
				return err
			}
			if err := os.Symlink(link, filepath.Join(tmp, d)); err != nil {
				return err
			}
		case st.IsDir():
			if err := os.Mkdir(filepath.Join(tmp, d), 0o755); err != nil {
				return err
			}
		}
	}
	for _, pattern := range hostEtc {
		matches, _ := filepath.Glob(filepath.Join("/etc", pattern))
		for _, src := range matches {
			if err := copyTree(src, filepath.Join(tmp, "etc", filepath.Base(src))); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return fmt.Errorf("copy %s: %w", src, err)
			}
		}
	}
	if err := writeUserDatabase(filepath.Join(tmp, "etc")); err != nil {
		return err
	}
	if err := os.Rename(tmp, root); err != nil {
		if st, serr := os.Stat(root); serr == nil && st.IsDir() {
			return nil // another process built it meanwhile
		}
		return err
	}
	return nil
}

// writeUserDatabase writes /etc/passwd and /etc/group with the system accounts only; the
// jail adds each sandbox's user when it starts. Host users never appear in an image.
func writeUserDatabase(etc string) error {
	passwd := "root:x:0:0:root:/root:/bin/bash\nnobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n"
	group := "root:x:0:\ntty:x:5:\nusers:x:100:\nnogroup:x:65534:\n"
	if err := os.WriteFile(filepath.Join(etc, "passwd"), []byte(passwd), 0o644); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(etc, "group"), []byte(group), 0o644); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(etc, "hostname"), []byte("sandbox\n"), 0o644)
}

// copyTree copies a file, symlink or directory tree, keeping modes and symlinks as they are.
// What is not world-readable (/etc/ssl/private, say) is left out: no sandbox user could read
// it, and an image must not carry the host's secrets.
func copyTree(src, dst string) error {
	return filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		target := filepath.Join(dst, rel)
		info, err := d.Info()
		if err != nil {
			return err
		}
		if info.Mode()&fs.ModeSymlink == 0 && info.Mode().Perm()&0o004 == 0 {
			if info.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		switch {
		case info.Mode()&fs.ModeSymlink != 0:
			link, err := os.Readlink(p)
			if err != nil {
				return err
			}
			return os.Symlink(link, target)
		case info.IsDir():
			return os.Mkdir(target, info.Mode().Perm())
		case info.Mode().IsRegular():
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			return os.WriteFile(target, b, info.Mode().Perm())
		}
		return nil // sockets, fifos, devices: not part of an image
	})
}

// bindReadOnly bind-mounts src at target, read-only, nosuid and nodev: the host's setuid
// binaries stay inert inside a sandbox even before no_new_privs.
func bindReadOnly(src, target string) error {
	if err := unix.Mount(src, target, "", unix.MS_BIND|unix.MS_REC, ""); err != nil {
		return err
	}
	if err := unix.Mount("", target, "", unix.MS_BIND|unix.MS_REMOUNT|unix.MS_RDONLY|unix.MS_NOSUID|unix.MS_NODEV, ""); err != nil {
		_ = unix.Unmount(target, unix.MNT_DETACH)
		return err
	}
	return nil
}

func sameFile(a, b string) bool {
	sa, err := os.Stat(a)
	if err != nil {
		return false
	}
	sb, err := os.Stat(b)
	return err == nil && os.SameFile(sa, sb)
}

// Close unmounts what EnsureHost mounted in this process. Sandboxes already running keep
// their own copies of the mounts. Without Close the mounts stay for the next run to reuse.
func (s *Store) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	var errs []error
	for _, m := range s.hostMounts {
		if err := unix.Unmount(m, unix.MNT_DETACH); err != nil && err != unix.EINVAL {
			errs = append(errs, fmt.Errorf("images: unmount %s: %w", m, err))
		}
	}
	s.hostMounts = nil
	return errors.Join(errs...)
}
