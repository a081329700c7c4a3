package images

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/anyops/anyops"
	"github.com/anyops/anyops/internal/mountinfo"
)

// Recipe is what an image is built from: the Essential:yes packages of a Debian suite plus
// Packages, fetched from Mirrors.
type Recipe struct {
	Suite string `json:"suite"`
	// Mirrors are apt sources: an archive URL ("http://deb.debian.org/debian": SUITE main of
	// it) or a whole one-line source ("deb URL SUITE COMPONENTS"). Empty: DefaultMirrors.
	Mirrors []string `json:"mirrors"`
	// Packages are installed on top of the essential set, with what they depend on. A
	// package may be pinned to a version: "python3=3.11.2-1+b1".
	Packages []string `json:"packages"`
}

// DefaultSuite is the Debian release images are built from unless a recipe names another.
const DefaultSuite = "bookworm"

// DefaultMirrors are the sources of a suite on the Debian archive (deb.debian.org): the
// release, its updates and its security updates, as the hosts' own apt sources.
func DefaultMirrors(suite string) []string {
	return []string{
		"deb http://deb.debian.org/debian " + suite + " main",
		"deb http://deb.debian.org/debian " + suite + "-updates main",
		"deb http://deb.debian.org/debian-security " + suite + "-security main",
	}
}

// layout is bumped whenever Build lays an image out differently, so that an image key (and
// the versions derived from it) changes with it.
const layout = 1

var (
	suitePattern   = regexp.MustCompile(`^[a-z][a-z0-9-]{0,31}$`)
	packagePattern = regexp.MustCompile(`^[a-z0-9][a-z0-9+.-]+(=[A-Za-z0-9.+~:-]+)?$`)
	mirrorURL      = regexp.MustCompile(`^https?://[A-Za-z0-9.:\[\]_~%/-]+$`)
	mirrorLine     = regexp.MustCompile(`^deb (\[[^\]\n]*\] )?https?://[^\s]+( [A-Za-z0-9./_-]+)+$`)
)

// normalized fills in the defaults, sorts and de-duplicates the packages, and refuses what
// could not be passed to mmdebstrap safely (EINVALID).
func (r Recipe) normalized() (Recipe, error) {
	if r.Suite == "" {
		r.Suite = DefaultSuite
	}
	if !suitePattern.MatchString(r.Suite) {
		return r, anyops.Errorf(anyops.EINVALID, "suite %q is not a Debian suite name", r.Suite)
	}
	if len(r.Mirrors) == 0 {
		r.Mirrors = DefaultMirrors(r.Suite)
	}
	for _, m := range r.Mirrors {
		if !mirrorURL.MatchString(m) && !mirrorLine.MatchString(m) {
			return r, anyops.Errorf(anyops.EINVALID, "mirror %q is neither an http(s) archive URL nor a line \"deb URL SUITE COMPONENT...\"", m)
		}
	}
	pkgs := make([]string, 0, len(r.Packages))
	for _, p := range r.Packages {
		if p = strings.TrimSpace(p); p == "" {
			continue
		}
		if !packagePattern.MatchString(p) {
			return r, anyops.Errorf(anyops.EINVALID, "package %q is not a Debian package name (optionally =version)", p)
		}
		pkgs = append(pkgs, p)
	}
	slices.Sort(pkgs)
	r.Packages = slices.Compact(pkgs)
	return r, nil
}

// Key names what a recipe builds: the same suite and packages (and build layout) give the
// same key, wherever they are fetched from. It keys caches of built images.
func (r Recipe) Key() string {
	n, err := r.normalized()
	if err != nil {
		n = r
	}
	sum := sha256.Sum256([]byte(fmt.Sprintf("layout %d\nsuite %s\npackages %s\n", layout, n.Suite, strings.Join(n.Packages, ","))))
	return hex.EncodeToString(sum[:])[:12]
}

// sameBuild reports whether two normalized recipes build the same image.
func sameBuild(a, b Recipe) bool {
	return a.Suite == b.Suite && slices.Equal(a.Packages, b.Packages)
}

// ConsoleImageName and ConsoleRecipe describe the image `anyops dev`, the tests and the
// benchmarks run consoles on: bash (essential) and python3, with the CA certificates.
const ConsoleImageName = "console"

// ConsoleRecipe is the console image's recipe.
var ConsoleRecipe = Recipe{Suite: DefaultSuite, Packages: []string{"ca-certificates", "python3"}}

// ConsoleImageVersion is the console image's version: its suite and the recipe's key, so a
// changed recipe is a new version and never a different image under an old name.
func ConsoleImageVersion() string { return ConsoleRecipe.Suite + "-" + ConsoleRecipe.Key() }

// EnsureConsole builds the console image when the store lacks it and makes it the default
// when the store has none; it returns the console image.
func (s *Store) EnsureConsole(ctx context.Context, progress io.Writer) (Image, error) {
	img, _, err := s.Build(ctx, ConsoleImageName, ConsoleImageVersion(), ConsoleRecipe, progress)
	if err != nil {
		return Image{}, err
	}
	if _, err := s.Default(); anyops.ErrorCode(err) == anyops.ENOTFOUND {
		if _, err := s.SetDefault(img.Ref()); err != nil {
			return Image{}, err
		}
	}
	return img, nil
}

// OpenCache opens the per-user store of built images ($XDG_CACHE_HOME/anyops/images, else
// ~/.cache/anyops/images): tests and benchmarks build their images there once per machine.
func OpenCache() (*Store, error) {
	dir, err := os.UserCacheDir()
	if err != nil {
		return nil, fmt.Errorf("images: no cache directory: %w", err)
	}
	return Open(filepath.Join(dir, "anyops", "images"))
}

// ErrNoBuilder is Build's error when mmdebstrap is not installed.
var ErrNoBuilder = anyops.Errorf(anyops.EUNAVAILABLE, "images: mmdebstrap is not installed (apt-get install mmdebstrap)")

// Build makes the image name:version from r, unless the store has it already; built says
// whether it did. Needs root and mmdebstrap. An image of that name and version built from
// another suite or other packages is ECONFLICT: a version, once built, is never changed.
//
// The root is assembled by mmdebstrap (unshare mode, inside a private mount namespace of its
// own, so none of its mounts ever shows on the host) in a hidden directory beside the
// version's, completed with the mount points, host name and hosts file every sandbox needs,
// and described by a manifest of dpkg-query's package versions; then the directory is renamed
// into place. A build that fails, is cancelled or dies leaves only that hidden directory,
// which is never listed and which the next build of the store removes. Builds of one store
// take turns, across processes.
func (s *Store) Build(ctx context.Context, name, version string, r Recipe, progress io.Writer) (img Image, built bool, err error) {
	if _, _, err := ParseRef(name + ":" + version); err != nil {
		return Image{}, false, err
	}
	if r, err = r.normalized(); err != nil {
		return Image{}, false, err
	}
	if progress == nil {
		progress = io.Discard
	}
	unlock, err := s.lockContext(ctx, progress)
	if err != nil {
		return Image{}, false, err
	}
	defer unlock()
	img = s.image(name, version)
	if complete(img) {
		m, err := s.Manifest(img)
		if err != nil {
			return Image{}, false, err
		}
		if !sameBuild(m.Recipe, r) {
			return Image{}, false, anyops.Errorf(anyops.ECONFLICT, "image %s exists, built from %s with packages %v: build another version", img.Ref(), m.Recipe.Suite, m.Recipe.Packages)
		}
		return img, false, nil
	}
	if _, err := os.Lstat(img.dir()); err == nil {
		return Image{}, false, anyops.Errorf(anyops.ECONFLICT, "%s exists but is not a complete image: remove it or build another version", img.dir())
	}
	if os.Geteuid() != 0 {
		return Image{}, false, anyops.Errorf(anyops.EFORBIDDEN, "building an image needs root")
	}
	mmdebstrap, err := exec.LookPath("mmdebstrap")
	if err != nil {
		return Image{}, false, ErrNoBuilder
	}
	parent := filepath.Join(s.dir, name)
	if err := os.MkdirAll(parent, 0o755); err != nil {
		return Image{}, false, fmt.Errorf("images: %w", err)
	}
	if err := s.discardPartialBuilds(parent); err != nil {
		return Image{}, false, err
	}
	tmp, err := os.MkdirTemp(parent, ".build-"+version+"-")
	if err != nil {
		return Image{}, false, fmt.Errorf("images: %w", err)
	}
	defer func() {
		if err != nil {
			_ = os.RemoveAll(tmp) // mmdebstrap is gone by now, and its mounts with its namespace
		}
	}()
	if err := os.Chmod(tmp, 0o755); err != nil {
		return Image{}, false, err
	}
	started := time.Now()
	fmt.Fprintf(progress, "images: building %s from %s with %s (mmdebstrap; once per version)\n", img.Ref(), r.Suite, packageList(r.Packages))
	builder, err := runMmdebstrap(ctx, mmdebstrap, filepath.Join(tmp, rootDirName), r, progress)
	if err != nil {
		return Image{}, false, err
	}
	root := filepath.Join(tmp, rootDirName)
	if err := finishRoot(root); err != nil {
		return Image{}, false, fmt.Errorf("images: finish root of %s: %w", img.Ref(), err)
	}
	pkgs, err := installedPackages(root)
	if err != nil {
		return Image{}, false, fmt.Errorf("images: list packages of %s: %w", img.Ref(), err)
	}
	for _, p := range r.Packages {
		want, pinned, _ := strings.Cut(p, "=")
		if got, ok := pkgs[want]; !ok || (pinned != "" && got != pinned) {
			return Image{}, false, fmt.Errorf("images: %s: package %s is not installed after the build (got %q)", img.Ref(), p, got)
		}
	}
	size, err := treeSize(root)
	if err != nil {
		return Image{}, false, err
	}
	m := Manifest{Name: name, Version: version, Recipe: r, Packages: pkgs, SizeBytes: size,
		CreatedAt: time.Now().UTC().Truncate(time.Second), Builder: builder}
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return Image{}, false, err
	}
	if err := os.WriteFile(filepath.Join(tmp, manifestName), append(b, '\n'), 0o444); err != nil {
		return Image{}, false, err
	}
	if err := syncFS(tmp); err != nil {
		return Image{}, false, fmt.Errorf("images: sync %s: %w", img.Ref(), err)
	}
	if err := os.Rename(tmp, img.dir()); err != nil {
		return Image{}, false, fmt.Errorf("images: install %s: %w", img.Ref(), err)
	}
	fmt.Fprintf(progress, "images: built %s: %d packages, %s, in %s\n", img.Ref(), len(pkgs), HumanSize(size), time.Since(started).Round(time.Second))
	return img, true, nil
}

func packageList(pkgs []string) string {
	if len(pkgs) == 0 {
		return "the essential packages only"
	}
	return "the essential packages and " + strings.Join(pkgs, ", ")
}

// lockContext takes the store's lock, waiting for another build as long as ctx allows.
func (s *Store) lockContext(ctx context.Context, progress io.Writer) (func(), error) {
	type result struct {
		unlock func()
		err    error
	}
	got := make(chan result, 1)
	go func() {
		unlock, err := s.lock()
		got <- result{unlock, err}
	}()
	select {
	case r := <-got:
		return r.unlock, r.err
	case <-time.After(time.Second):
		fmt.Fprintf(progress, "images: waiting for another build in %s\n", s.dir)
	}
	select {
	case r := <-got:
		return r.unlock, r.err
	case <-ctx.Done():
		go func() { // the lock may still come: give it back at once
			if r := <-got; r.err == nil {
				r.unlock()
			}
		}()
		return nil, ctx.Err()
	}
}

// discardPartialBuilds removes what builds that failed or died left in parent. The caller
// holds the store's lock, so none of them is in progress.
func (s *Store) discardPartialBuilds(parent string) error {
	partial, _ := filepath.Glob(filepath.Join(parent, ".build-*"))
	for _, p := range partial {
		if m := mountinfo.Under(p); len(m) > 0 {
			return fmt.Errorf("images: %s has mounts %v: not removing it", p, m)
		}
		if err := os.RemoveAll(p); err != nil {
			return fmt.Errorf("images: discard partial build: %w", err)
		}
	}
	return nil
}

// dpkgOptions keep documentation, manuals and translations out of an image (copyright files
// stay): a console has no man, and they are a third of a small image. dpkg skips its fsyncs
// (twice as fast a build): a build that does not finish is discarded, and Build syncs the
// finished tree once before it renames it into place.
var dpkgOptions = []string{"force-unsafe-io",
	"path-exclude=/usr/share/doc/*", "path-include=/usr/share/doc/*/copyright",
	"path-exclude=/usr/share/man/*", "path-exclude=/usr/share/info/*",
	"path-exclude=/usr/share/locale/*", "path-include=/usr/share/locale/locale.alias",
}

// runMmdebstrap builds the root at target and returns mmdebstrap's version. Its output goes
// to progress; the last lines of it are in the error when it fails.
func runMmdebstrap(ctx context.Context, mmdebstrap, target string, r Recipe, progress io.Writer) (string, error) {
	builder := "mmdebstrap"
	if out, err := exec.CommandContext(ctx, mmdebstrap, "--version").Output(); err == nil {
		builder = strings.TrimSpace(string(out))
	}
	// unshare(1) gives mmdebstrap a mount namespace whose mounts propagate nowhere: on a host
	// whose / is shared (systemd), mmdebstrap's own unshare would still let its /proc and
	// /dev mounts show on the host, and stay there if it died.
	args := []string{"--mount", "--propagation", "private", "--", mmdebstrap,
		"--mode=unshare", "--variant=essential", "--format=directory"}
	if len(r.Packages) > 0 {
		args = append(args, "--include="+strings.Join(r.Packages, ","))
	}
	for _, o := range dpkgOptions {
		args = append(args, "--dpkgopt="+o)
	}
	args = append(args, "--", r.Suite, target)
	args = append(args, r.Mirrors...)
	cmd := exec.CommandContext(ctx, "unshare", args...)
	var tail tailBuffer
	out := io.MultiWriter(progress, &tail)
	cmd.Stdout, cmd.Stderr = out, out
	// A group of its own, killed whole on cancel; and gone with us if we die.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 10 * time.Second
	if err := cmd.Run(); err != nil {
		if ctx.Err() != nil {
			return "", ctx.Err()
		}
		return "", fmt.Errorf("images: mmdebstrap failed: %v: %s", err, tail.String())
	}
	return builder, nil
}

// syncFS flushes the filesystem holding dir to disk: the image is whole on disk before it
// is renamed into place.
func syncFS(dir string) error {
	f, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer f.Close()
	return unix.Syncfs(int(f.Fd()))
}

// tailBuffer keeps the last few KiB written to it.
type tailBuffer struct{ b []byte }

func (t *tailBuffer) Write(p []byte) (int, error) {
	const keep = 2048
	t.b = append(t.b, p...)
	if len(t.b) > keep {
		t.b = t.b[len(t.b)-keep:]
	}
	return len(p), nil
}

func (t *tailBuffer) String() string { return strings.TrimSpace(string(t.b)) }

// finishRoot adds what every sandbox needs and packages do not give: the mount points the
// jail mounts on, a neutral host name (mmdebstrap copied the build host's), a hosts file
// for localhost, and a resolv.conf readable by all.
func finishRoot(root string) error {
	for _, d := range []struct {
		name string
		mode fs.FileMode
	}{{"dev", 0o755}, {"proc", 0o555}, {"sys", 0o555}, {"tmp", 0o777 | fs.ModeSticky}, {"home", 0o755}, {"run", 0o755}, {"root", 0o700}} {
		p := filepath.Join(root, d.name)
		if err := os.MkdirAll(p, 0o755); err != nil {
			return err
		}
		if err := os.Chmod(p, d.mode); err != nil {
			return err
		}
	}
	etc := filepath.Join(root, "etc")
	if err := os.WriteFile(filepath.Join(etc, "hostname"), []byte("sandbox\n"), 0o644); err != nil {
		return err
	}
	if _, err := os.Stat(filepath.Join(etc, "hosts")); errors.Is(err, fs.ErrNotExist) {
		hosts := "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n"
		if err := os.WriteFile(filepath.Join(etc, "hosts"), []byte(hosts), 0o644); err != nil {
			return err
		}
	}
	if err := os.Chmod(filepath.Join(etc, "resolv.conf"), 0o644); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}

// installedPackages runs dpkg-query inside root and returns every installed package's
// version.
func installedPackages(root string) (map[string]string, error) {
	// Path is the root's own dpkg-query: the chroot comes before the exec.
	cmd := &exec.Cmd{
		Path: "/usr/bin/dpkg-query", Args: []string{"dpkg-query", "-W", "-f", `${db:Status-Abbrev}\t${Package}\t${Version}\n`},
		Env: []string{"PATH=/usr/bin:/bin", "LC_ALL=C"}, Dir: "/",
		SysProcAttr: &syscall.SysProcAttr{Chroot: root},
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("dpkg-query: %v: %s", err, strings.TrimSpace(stderr.String()))
	}
	pkgs := map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		f := strings.Split(sc.Text(), "\t")
		if len(f) == 3 && strings.TrimSpace(f[0]) == "ii" {
			pkgs[f[1]] = f[2]
		}
	}
	if len(pkgs) == 0 {
		return nil, errors.New("dpkg-query lists no installed package")
	}
	return pkgs, nil
}

// treeSize adds up the sizes of the regular files under root, each hard-linked file once.
func treeSize(root string) (int64, error) {
	var total int64
	seen := map[uint64]bool{}
	err := filepath.WalkDir(root, func(_ string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		if st, ok := info.Sys().(*syscall.Stat_t); ok && st.Nlink > 1 {
			if seen[st.Ino] {
				return nil
			}
			seen[st.Ino] = true
		}
		total += info.Size()
		return nil
	})
	return total, err
}

// HumanSize writes a byte count the way ls -h does: 131M, 4.0K.
func HumanSize(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%dB", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	v := float64(n) / float64(div)
	if v < 10 {
		return fmt.Sprintf("%.1f%c", v, "KMGTPE"[exp])
	}
	return fmt.Sprintf("%.0f%c", v, "KMGTPE"[exp])
}
