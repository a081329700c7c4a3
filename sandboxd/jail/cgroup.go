package jail

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/anyops/anyops"
)

// The controllers a sandbox's limits need: memory (MemoryBytes), pids (Pids), cpu (CPUShares).
var neededControllers = []string{"cpu", "memory", "pids"}

// cgroupDriver creates and removes sandbox cgroups on cgroup v2 (one unified hierarchy) or
// cgroup v1 (one hierarchy per controller).
type cgroupDriver struct {
	v2 bool
	// parents maps a v1 controller to its parent directory ("memory" → /sys/fs/cgroup/memory/
	// anyops); on v2 the single key "" holds /sys/fs/cgroup/anyops.
	parents map[string]string
}

// cgroup is one sandbox's cgroup: a directory per hierarchy.
type cgroup struct {
	v2   bool
	dirs []string
	fd   int // v2: open directory, so the init is cloned straight into it (CLONE_INTO_CGROUP)
}

func newCgroupDriver(parent string) (*cgroupDriver, error) {
	var st unix.Statfs_t
	if err := unix.Statfs("/sys/fs/cgroup", &st); err != nil {
		return nil, anyops.Errorf(anyops.EUNAVAILABLE, "jail: no cgroup file system at /sys/fs/cgroup: %v", err)
	}
	if st.Type == unix.CGROUP2_SUPER_MAGIC {
		return newCgroupV2Driver("/sys/fs/cgroup", parent, neededControllers)
	}
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil, err
	}
	defer f.Close()
	mounts, err := parseCgroupV1Mounts(f)
	if err != nil {
		return nil, err
	}
	d := &cgroupDriver{parents: map[string]string{}}
	for _, c := range neededControllers {
		mp, ok := mounts[c]
		if !ok {
			return nil, anyops.Errorf(anyops.EUNAVAILABLE, "jail: cgroup v1 controller %q is not mounted (have %v)", c, mapKeys(mounts))
		}
		d.parents[c] = filepath.Join(mp, parent)
	}
	for _, dir := range d.parents {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return nil, fmt.Errorf("jail: cgroup parent: %w", err)
		}
	}
	return d, nil
}

// newCgroupV2Driver drives the unified hierarchy mounted at root, enabling controllers on
// the way down to parent.
func newCgroupV2Driver(root, parent string, controllers []string) (*cgroupDriver, error) {
	b, err := os.ReadFile(filepath.Join(root, "cgroup.controllers"))
	if err != nil {
		return nil, err
	}
	have := strings.Fields(string(b))
	var enable []string
	for _, c := range controllers {
		if !slices.Contains(have, c) {
			return nil, anyops.Errorf(anyops.EUNAVAILABLE, "jail: cgroup v2 controller %q is not available (have %v)", c, have)
		}
		enable = append(enable, "+"+c)
	}
	enableIn := func(dir string) error {
		if len(enable) == 0 {
			return nil
		}
		if err := writeFile(filepath.Join(dir, "cgroup.subtree_control"), strings.Join(enable, " ")); err != nil {
			return fmt.Errorf("jail: enable controllers in %s: %w", dir, err)
		}
		return nil
	}
	// root → ... → parent, whose children are the sandboxes.
	dir := root
	for _, part := range strings.Split(parent, "/") {
		if err := enableIn(dir); err != nil {
			return nil, err
		}
		dir = filepath.Join(dir, part)
		if err := os.Mkdir(dir, 0o755); err != nil && !errors.Is(err, os.ErrExist) {
			return nil, fmt.Errorf("jail: cgroup parent: %w", err)
		}
	}
	if err := enableIn(dir); err != nil {
		return nil, err
	}
	return &cgroupDriver{v2: true, parents: map[string]string{"": dir}}, nil
}

func (d *cgroupDriver) version() string {
	if d.v2 {
		return "v2"
	}
	return "v1"
}

// cgroupFor names the cgroup of sandbox id without touching the file system.
func (d *cgroupDriver) cgroupFor(id string) *cgroup {
	cg := &cgroup{v2: d.v2, fd: -1}
	for _, c := range slices.Sorted(maps.Keys(d.parents)) {
		cg.dirs = append(cg.dirs, filepath.Join(d.parents[c], id))
	}
	return cg
}

// create makes the sandbox's cgroup and writes its limits. An existing cgroup of the same id
// is an ECONFLICT: a sandbox of that id runs (or a stale one awaits CleanupStale).
func (d *cgroupDriver) create(id string, l anyops.Limits) (_ *cgroup, err error) {
	cg := d.cgroupFor(id)
	var made []string
	defer func() {
		if err != nil {
			for _, dir := range made {
				_ = unix.Rmdir(dir)
			}
		}
	}()
	for _, dir := range cg.dirs {
		if err := unix.Mkdir(dir, 0o755); err != nil {
			if err == unix.EEXIST {
				return nil, anyops.Errorf(anyops.ECONFLICT, "sandbox %s already exists", id)
			}
			return nil, fmt.Errorf("jail: create cgroup %s: %w", dir, err)
		}
		made = append(made, dir)
	}
	for _, w := range cgroupLimitWrites(d.v2, l) {
		for _, dir := range cg.dirs {
			p := filepath.Join(dir, w.file)
			if _, err := os.Stat(p); err != nil {
				continue // the file belongs to another v1 hierarchy, or an optional knob is absent
			}
			if err := writeFile(p, w.value); err != nil {
				return nil, fmt.Errorf("jail: cgroup limit %s=%s: %w", w.file, w.value, err)
			}
		}
	}
	if d.v2 {
		fd, err := unix.Open(cg.dirs[0], unix.O_DIRECTORY|unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			return nil, fmt.Errorf("jail: open cgroup: %w", err)
		}
		cg.fd = fd
	}
	return cg, nil
}

// limitWrite is one cgroup interface file and the value a limit puts in it.
type limitWrite struct{ file, value string }

// cgroupLimitWrites maps limits onto cgroup files, in the order they must be written (v1
// wants memory.limit_in_bytes before memory.memsw.limit_in_bytes). Zero means unlimited.
func cgroupLimitWrites(v2 bool, l anyops.Limits) []limitWrite {
	var w []limitWrite
	if v2 {
		if l.MemoryBytes > 0 {
			w = append(w, limitWrite{"memory.max", strconv.FormatInt(l.MemoryBytes, 10)},
				limitWrite{"memory.swap.max", "0"})
		}
		if l.Pids > 0 {
			w = append(w, limitWrite{"pids.max", strconv.Itoa(l.Pids)})
		}
		if l.CPUShares > 0 {
			w = append(w, limitWrite{"cpu.weight", strconv.Itoa(sharesToWeight(l.CPUShares))})
		}
		return w
	}
	if l.MemoryBytes > 0 {
		v := strconv.FormatInt(l.MemoryBytes, 10)
		w = append(w, limitWrite{"memory.limit_in_bytes", v}, limitWrite{"memory.memsw.limit_in_bytes", v})
	}
	if l.Pids > 0 {
		w = append(w, limitWrite{"pids.max", strconv.Itoa(l.Pids)})
	}
	if l.CPUShares > 0 {
		w = append(w, limitWrite{"cpu.shares", strconv.Itoa(l.CPUShares)})
	}
	return w
}

// sharesToWeight converts cgroup v1 cpu.shares [2, 262144] to v2 cpu.weight [1, 10000] the
// way runc and systemd do, so plans keep their proportions on either version.
func sharesToWeight(shares int) int {
	shares = min(max(shares, 2), 262144)
	return 1 + ((shares-2)*9999)/262142
}

func writeFile(path, value string) error {
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	_, err = f.WriteString(value)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// prepareCmd makes the init start inside the cgroup on v2 (no window outside it).
func (cg *cgroup) prepareCmd(attr *syscall.SysProcAttr) {
	if cg.v2 {
		attr.UseCgroupFD = true
		attr.CgroupFD = cg.fd
	}
}

func (cg *cgroup) closeFD() {
	if cg.fd >= 0 {
		_ = unix.Close(cg.fd)
		cg.fd = -1
	}
}

// addProcess moves pid into the cgroup on v1. The init waits for the parent's go-ahead before
// it forks anything, so all of the sandbox's processes are born inside.
func (cg *cgroup) addProcess(pid int) error {
	if cg.v2 {
		return nil
	}
	for _, dir := range cg.dirs {
		if err := writeFile(filepath.Join(dir, "cgroup.procs"), strconv.Itoa(pid)); err != nil {
			return fmt.Errorf("jail: move init into %s: %w", dir, err)
		}
	}
	return nil
}

// remove kills whatever still runs in the cgroup and removes its directories. It is
// idempotent: missing directories are already removed.
func (cg *cgroup) remove() error {
	cg.closeFD()
	deadline := time.Now().Add(10 * time.Second)
	pause := 200 * time.Microsecond
	for _, dir := range cg.dirs {
		for {
			err := unix.Rmdir(dir)
			if err == nil || err == unix.ENOENT {
				break
			}
			if err != unix.EBUSY {
				return fmt.Errorf("jail: remove cgroup %s: %w", dir, err)
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("jail: remove cgroup %s: still busy after 10s", dir)
			}
			cg.killAll(dir)
			time.Sleep(pause)
			pause = min(2*pause, 20*time.Millisecond)
		}
	}
	return nil
}

// killAll sends SIGKILL to every process in the cgroup directory dir.
func (cg *cgroup) killAll(dir string) {
	if cg.v2 {
		if writeFile(filepath.Join(dir, "cgroup.kill"), "1") == nil {
			return
		}
	}
	b, err := os.ReadFile(filepath.Join(dir, "cgroup.procs"))
	if err != nil {
		return
	}
	for _, f := range strings.Fields(string(b)) {
		if pid, err := strconv.Atoi(f); err == nil && pid > 0 {
			_ = unix.Kill(pid, unix.SIGKILL)
		}
	}
}

// cleanupStale removes every sandbox cgroup under the parent (and kills what runs in it).
func (d *cgroupDriver) cleanupStale(timeout time.Duration) (int, error) {
	ids := map[string]bool{}
	for _, parent := range d.parents {
		entries, err := os.ReadDir(parent)
		if err != nil {
			return 0, fmt.Errorf("jail: list cgroups: %w", err)
		}
		for _, e := range entries {
			if e.IsDir() && idPattern.MatchString(e.Name()) {
				ids[e.Name()] = true
			}
		}
	}
	removed := 0
	var errs []error
	for id := range ids {
		if err := d.cgroupFor(id).remove(); err != nil {
			errs = append(errs, err)
			continue
		}
		removed++
	}
	return removed, errors.Join(errs...)
}

// parseCgroupV1Mounts reads /proc/self/mountinfo and returns where each cgroup v1 controller
// is mounted ("memory" → /sys/fs/cgroup/memory; co-mounted controllers share a mount point).
func parseCgroupV1Mounts(r io.Reader) (map[string]string, error) {
	out := map[string]string{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for sc.Scan() {
		// id parent major:minor root mountpoint options [optional...] - fstype source superoptions
		fields := strings.Fields(sc.Text())
		sep := slices.Index(fields, "-")
		if sep < 6 || len(fields) < sep+4 || fields[sep+1] != "cgroup" {
			continue
		}
		mountPoint := unescapeMountinfo(fields[4])
		for _, opt := range strings.Split(fields[sep+3], ",") {
			if _, seen := out[opt]; !seen && isControllerName(opt) {
				out[opt] = mountPoint
			}
		}
	}
	return out, sc.Err()
}

// isControllerName rules out mount options that are not controllers.
func isControllerName(opt string) bool {
	switch opt {
	case "rw", "ro", "relatime", "noatime", "nosuid", "nodev", "noexec", "clone_children", "noprefix", "xattr", "":
		return false
	}
	return !strings.Contains(opt, "=")
}

// unescapeMountinfo undoes the octal escapes (\040 for space, ...) of mountinfo paths.
func unescapeMountinfo(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			if v, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(v))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

func mapKeys[V any](m map[string]V) []string { return slices.Sorted(maps.Keys(m)) }
