// Package jail runs one command per sandbox on a PTY, isolated from the host and from other
// sandboxes: new mount, PID, UTS, IPC, cgroup and network namespaces (the network one joined
// to the host by a veth pair by its policy, package network); a root
// pivoted into a read-only image with the user's home bind-mounted read-write and a
// size-limited tmpfs /tmp; cgroup limits (memory, pids, CPU shares) on cgroup v1 or v2;
// rlimits; an unprivileged uid and gid with every capability dropped, no_new_privs and a
// seccomp filter; and a session of its own whose controlling terminal is the PTY slave.
//
// Start launches a small init (PID 1 of the new PID namespace) that assembles the root,
// forks the command and reaps; see package internal/sandboxinit. The init is a re-execution of a binary that calls
// MaybeInit first thing in main: the separate, small anyops-sandbox-init next to the running
// executable when it exists (fast start), else the running executable itself.
//
// Inside a sandbox:
//
//	/              the image (a Debian root of package images), read-only, nosuid, nodev
//	/home/<user>   Spec.Home, read-write, nosuid, nodev; /home itself is an empty tmpfs
//	/tmp, /dev/shm tmpfs of Limits.TmpBytes each (charged to the memory cgroup)
//	/proc          of the sandbox's own PID namespace; no /sys
//	/dev           null zero full random urandom tty, a private devpts (ptmx), fd links
//	/run           tmpfs holding /etc/passwd and /etc/group with the user added
//
// The command is a session leader whose controlling terminal is the PTY slave; it runs as
// Spec.UID/GID with no supplementary groups, all capability sets empty, no_new_privs, the
// seccomp filters of seccomp.go, RLIMIT_CORE 0, RLIMIT_NOFILE and RLIMIT_FSIZE from Limits,
// and new mount, PID, UTS, IPC, cgroup and network namespaces, the latter with loopback up
// and, unless the policy is NetworkNone, the sandbox's end of its veth pair as eth0 (the proxy
// policies also get http_proxy and friends in their environment, and /etc/resolv.conf
// names no resolver for them and the DNS relay for internet). The init's own threads count
// against Limits.Pids (about four).
//
// Cgroups: one per sandbox under Config.CgroupParent, on v2 when /sys/fs/cgroup is a cgroup2
// mount offering cpu, memory and pids (the init is cloned straight into it), else on the v1
// hierarchies of those controllers (the init is moved in before it forks the command; the
// move, which can wait for an RCU grace period in the kernel, overlaps the init's work on
// its root).
package jail

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/creack/pty"

	"github.com/anyops/anyops"
	"github.com/anyops/anyops/sandboxd/jail/internal/sandboxinit"
	"github.com/anyops/anyops/sandboxd/network"
)

// Config configures a Manager.
type Config struct {
	// StateDir holds the mount point the sandboxes' roots are assembled on (each in its own
	// mount namespace, so one directory serves all of them).
	StateDir string
	// CgroupParent is the cgroup, relative to each hierarchy's root, under which every sandbox
	// gets its own cgroup named after its ID. Default "anyops".
	CgroupParent string
	// InitPath is the executable re-run as each sandbox's init; it must call MaybeInit first
	// thing in main. Default: InitBinaryName next to the running executable when present,
	// else the running executable.
	InitPath string
	// Network configures the sandboxes' links. Its Name defaults to one derived from
	// CgroupParent (network.InstanceName), so the parent names everything a daemon leaves.
	Network network.Config
}

// InitBinaryName is the file name of the small init binary built from ./cmd/sandbox-init.
// The manager uses it when it sits next to the running executable.
const InitBinaryName = sandboxinit.Arg0

// MaybeInit runs the sandbox init and exits when this process was started by Manager.Start
// as one; otherwise it returns at once. Call it first thing in main (and in TestMain of
// packages whose tests start sandboxes, since the test binary is then the init).
func MaybeInit() { sandboxinit.MaybeRun() }

// Manager starts sandboxes on this host.
type Manager struct {
	cfg     Config
	rootDir string
	cgroups *cgroupDriver
	net     *network.Manager
	seccomp [][]byte // assembled once (sandboxinit.EncodeFilter), installed by every init
}

// NewManager prepares the state directory and finds the cgroup hierarchies.
func NewManager(cfg Config) (*Manager, error) {
	if cfg.StateDir == "" {
		return nil, anyops.Errorf(anyops.EINVALID, "jail: StateDir is required")
	}
	if cfg.CgroupParent == "" {
		cfg.CgroupParent = "anyops"
	}
	if !validCgroupParent(cfg.CgroupParent) {
		return nil, anyops.Errorf(anyops.EINVALID, "jail: CgroupParent %q must be a relative cgroup path without '..'", cfg.CgroupParent)
	}
	if cfg.InitPath == "" {
		p, err := defaultInitPath()
		if err != nil {
			return nil, err
		}
		cfg.InitPath = p
	}
	rootDir := filepath.Join(cfg.StateDir, "rootfs")
	if err := os.MkdirAll(rootDir, 0o700); err != nil {
		return nil, fmt.Errorf("jail: state dir: %w", err)
	}
	cg, err := newCgroupDriver(cfg.CgroupParent)
	if err != nil {
		return nil, err
	}
	filters, err := seccompFilters()
	if err != nil {
		return nil, err
	}
	if cfg.Network.Name == "" {
		cfg.Network.Name = network.InstanceName(cfg.CgroupParent)
	}
	nm, err := network.New(cfg.Network)
	if err != nil {
		return nil, err
	}
	encoded := make([][]byte, len(filters))
	for i, f := range filters {
		encoded[i] = sandboxinit.EncodeFilter(f)
	}
	return &Manager{cfg: cfg, rootDir: rootDir, cgroups: cg, net: nm, seccomp: encoded}, nil
}

// Network is the manager of the sandboxes' links.
func (m *Manager) Network() *network.Manager { return m.net }

// Close removes the network table and links of this manager; call it after every sandbox is
// destroyed.
func (m *Manager) Close() error { return m.net.Close() }

func defaultInitPath() (string, error) {
	self, err := os.Executable()
	if err != nil {
		return "", fmt.Errorf("jail: find own executable: %w", err)
	}
	sibling := filepath.Join(filepath.Dir(self), InitBinaryName)
	if st, err := os.Stat(sibling); err == nil && st.Mode().IsRegular() && st.Mode()&0o111 != 0 {
		return sibling, nil
	}
	return self, nil
}

// InitPath is the executable the manager runs as each sandbox's init.
func (m *Manager) InitPath() string { return m.cfg.InitPath }

// CgroupVersion is "v1" or "v2": the cgroup interface the manager drives.
func (m *Manager) CgroupVersion() string { return m.cgroups.version() }

// Spec describes one sandbox.
type Spec struct {
	ID        string // names its cgroup; [a-z0-9-]{1,64}
	User      string // login name inside; home is /home/<User>
	UID, GID  int    // never 0
	Hostname  string // default: the ID
	ImageRoot string // read-only image root directory (from package images)
	Home      string // host directory bind-mounted read-write at /home/<User>
	Command   []string
	Env       []string
	Limits    anyops.Limits
	Network   anyops.NetworkPolicy // default NetworkNone
	Rows      uint16               // default 24
	Cols      uint16               // default 80
}

var (
	idPattern       = regexp.MustCompile(`^[a-z0-9-]{1,64}$`)
	userPattern     = regexp.MustCompile(`^[a-z_][a-z0-9_-]{0,31}$`)
	hostnamePattern = regexp.MustCompile(`^[A-Za-z0-9]([A-Za-z0-9.-]{0,62})$`)
)

func validCgroupParent(p string) bool {
	if filepath.IsAbs(p) || filepath.Clean(p) != p {
		return false
	}
	for _, part := range strings.Split(p, "/") {
		if part == ".." || part == "." || part == "" {
			return false
		}
	}
	return true
}

// DefaultCommand is what a sandbox runs when Spec.Command is empty: a login shell.
var DefaultCommand = []string{"/bin/bash", "--login"}

// validate checks spec and fills in defaults. Every failure is an EINVALID anyops.Error.
func (spec *Spec) validate() error {
	bad := func(format string, args ...any) error {
		return anyops.Errorf(anyops.EINVALID, "sandbox spec: "+format, args...)
	}
	if !idPattern.MatchString(spec.ID) {
		return bad("id %q must match [a-z0-9-]{1,64}", spec.ID)
	}
	if !userPattern.MatchString(spec.User) {
		return bad("user %q must match [a-z_][a-z0-9_-]{0,31}", spec.User)
	}
	if spec.UID <= 0 || spec.GID <= 0 || spec.UID > 1<<31-2 || spec.GID > 1<<31-2 {
		return bad("uid %d and gid %d must be positive (never root)", spec.UID, spec.GID)
	}
	if spec.Hostname == "" {
		spec.Hostname = spec.ID
	}
	if !hostnamePattern.MatchString(spec.Hostname) {
		return bad("hostname %q is not a valid host name", spec.Hostname)
	}
	for name, dir := range map[string]string{"image root": spec.ImageRoot, "home": spec.Home} {
		if !filepath.IsAbs(dir) {
			return bad("%s %q must be an absolute path", name, dir)
		}
		if st, err := os.Stat(dir); err != nil || !st.IsDir() {
			return bad("%s %q is not a directory", name, dir)
		}
	}
	for _, d := range []string{"dev", "proc", "tmp", "home"} {
		if st, err := os.Stat(filepath.Join(spec.ImageRoot, d)); err != nil || !st.IsDir() {
			return bad("image root %q lacks the /%s directory", spec.ImageRoot, d)
		}
	}
	if len(spec.Command) == 0 {
		spec.Command = DefaultCommand
	}
	if spec.Command[0] == "" {
		return bad("command must not start with an empty program name")
	}
	for _, a := range spec.Command {
		if strings.IndexByte(a, 0) >= 0 {
			return bad("command argument %q contains a NUL byte", a)
		}
	}
	for _, e := range spec.Env {
		if !strings.Contains(e, "=") || strings.HasPrefix(e, "=") || strings.IndexByte(e, 0) >= 0 {
			return bad("environment entry %q is not NAME=value", e)
		}
	}
	if spec.Network == "" {
		spec.Network = anyops.NetworkNone
	}
	if _, err := anyops.Parse("network", string(spec.Network), anyops.NetworkPolicies); err != nil {
		return err
	}
	l := spec.Limits
	if l.CPUShares < 0 || l.MemoryBytes < 0 || l.Pids < 0 || l.OpenFiles < 0 || l.FileSize < 0 || l.TmpBytes < 0 {
		return bad("limits must not be negative: %+v", l)
	}
	if l.CPUShares == 1 {
		return bad("cpu shares must be 0 (unlimited) or at least 2")
	}
	if spec.Rows == 0 {
		spec.Rows = 24
	}
	if spec.Cols == 0 {
		spec.Cols = 80
	}
	return nil
}

// commandEnv is the command's environment: login defaults and what its network needs,
// overridden by spec.Env.
func (spec *Spec) commandEnv(networkEnv []string) []string {
	home := "/home/" + spec.User
	env := []string{
		"HOME=" + home, "USER=" + spec.User, "LOGNAME=" + spec.User, "SHELL=/bin/bash",
		"PATH=/usr/local/bin:/usr/bin:/bin", "TERM=xterm-256color", "LANG=C.UTF-8",
		"HOSTNAME=" + spec.Hostname,
	}
	env = append(env, networkEnv...)
	set := map[string]int{}
	for i, e := range env {
		set[e[:strings.IndexByte(e, '=')]] = i
	}
	for _, e := range spec.Env {
		k := e[:strings.IndexByte(e, '=')]
		if i, ok := set[k]; ok {
			env[i] = e
		} else {
			set[k] = len(env)
			env = append(env, e)
		}
	}
	return env
}

// Sandbox is one running sandbox.
type Sandbox struct {
	id     string
	cmd    *exec.Cmd
	master *os.File
	// slave is the daemon's copy of the terminal's other end, held until the sandbox has
	// exited: while any slave is open, reads on the master wait for data instead of failing
	// with EIO, so output written just before the command exits is never lost to a read
	// that raced the hangup.
	slave *os.File
	cg    *cgroup
	link  *network.Link // nil under NetworkNone

	done     chan struct{} // closed once the init has exited and been reaped
	exitCode int
	waitErr  error

	destroyOnce sync.Once
	destroyErr  error
}

// Start creates the sandbox's cgroup, starts its init on a new PTY and returns once the
// command runs (or the setup failed; then nothing is left behind). A sandbox with the same
// ID already running is an ECONFLICT error; a bad spec is EINVALID.
func (m *Manager) Start(ctx context.Context, spec Spec) (_ *Sandbox, err error) {
	if err := spec.validate(); err != nil {
		return nil, err
	}
	cg, err := m.cgroups.create(spec.ID, spec.Limits)
	if err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			_ = cg.remove()
		}
	}()

	master, slave, err := pty.Open()
	if err != nil {
		return nil, fmt.Errorf("jail: open pty: %w", err)
	}
	defer func() {
		if err != nil {
			master.Close()
			slave.Close()
		}
	}()
	if err := pty.Setsize(master, &pty.Winsize{Rows: spec.Rows, Cols: spec.Cols}); err != nil {
		return nil, fmt.Errorf("jail: size pty: %w", err)
	}
	// The user owns their terminal, as login(1) arranges: programs may reopen it.
	if err := slave.Chown(spec.UID, spec.GID); err != nil {
		return nil, fmt.Errorf("jail: chown pty: %w", err)
	}

	var link *network.Link
	var networkEnv []string
	var resolvConf string // none keeps the image's: it has no network to reach a resolver by
	if spec.Network != anyops.NetworkNone {
		if link, err = m.net.Prepare(spec.Network); err != nil {
			return nil, err
		}
		defer func() {
			if err != nil {
				_ = link.Close()
			}
		}()
		networkEnv, resolvConf = link.Env(), link.ResolvConf()
	}

	cfgJSON, err := json.Marshal(sandboxinit.Config{
		RootDir:   m.rootDir,
		ImageRoot: spec.ImageRoot,
		Home:      spec.Home,
		User:      spec.User,
		UID:       spec.UID,
		GID:       spec.GID,
		Hostname:  spec.Hostname,
		Command:   spec.Command,
		Env:       spec.commandEnv(networkEnv),
		TmpBytes:  spec.Limits.TmpBytes,
		OpenFiles: spec.Limits.OpenFiles,
		FileSize:  spec.Limits.FileSize,
		Seccomp:   m.seccomp,

		ResolvConf: resolvConf,
	})
	if err != nil {
		return nil, err
	}

	// goR/goW: the parent tells the init that it sits in its cgroups and may fork the command.
	// statusR/statusW: the init reports "ok" once the command runs, or what failed.
	goR, goW, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	defer goW.Close()
	statusR, statusW, err := os.Pipe()
	if err != nil {
		goR.Close()
		return nil, err
	}
	defer statusR.Close()

	flags := uintptr(syscall.CLONE_NEWNS | syscall.CLONE_NEWPID | syscall.CLONE_NEWUTS | syscall.CLONE_NEWIPC | syscall.CLONE_NEWNET)
	cmd := &exec.Cmd{
		Path: m.cfg.InitPath,
		Args: []string{sandboxinit.Arg0},
		// One P: the init does nothing in parallel, and every thread counts against pids.max.
		Env:        []string{sandboxinit.Env + "=" + string(cfgJSON), "GOMAXPROCS=1"},
		Stdin:      slave,
		Stdout:     slave,
		Stderr:     slave,
		ExtraFiles: []*os.File{goR, statusW}, // fds 3 and 4 in the init
		SysProcAttr: &syscall.SysProcAttr{
			Cloneflags: flags,
			Setsid:     true,            // out of the daemon's session; the command takes the PTY
			Pdeathsig:  syscall.SIGKILL, // a dying daemon takes its sandboxes along
		},
	}
	cg.prepareCmd(cmd.SysProcAttr)
	startErr := cmd.Start()
	goR.Close()
	statusW.Close()
	if startErr != nil {
		cg.closeFD()
		return nil, fmt.Errorf("jail: start init %s: %w", m.cfg.InitPath, startErr)
	}
	cg.closeFD()

	started := &Sandbox{id: spec.ID, cmd: cmd, master: master, slave: slave, cg: cg, link: link, done: make(chan struct{})}
	go started.reap()
	defer func() {
		if err != nil {
			_ = cmd.Process.Kill()
			<-started.done
		}
	}()

	// The link is built while the init assembles its root; the command starts once both that
	// and the cgroup move are done.
	attached := make(chan error, 1)
	if link != nil {
		go func() { attached <- link.Attach(cmd.Process.Pid) }()
	} else {
		attached <- nil
	}
	cgErr := cg.addProcess(cmd.Process.Pid)
	if err := errors.Join(<-attached, cgErr); err != nil {
		return nil, err
	}
	if _, err := goW.Write([]byte{1}); err != nil {
		return nil, fmt.Errorf("jail: release init: %w", err)
	}
	goW.Close()

	status := make(chan string, 1)
	go func() {
		b, _ := io.ReadAll(io.LimitReader(statusR, 4096))
		status <- string(b)
	}()
	select {
	case s := <-status:
		if s != sandboxinit.OK {
			if s == "" {
				s = "init exited before the command started"
			}
			return nil, fmt.Errorf("jail: sandbox %s setup: %s", spec.ID, strings.TrimSpace(s))
		}
	case <-ctx.Done():
		return nil, fmt.Errorf("jail: sandbox %s setup: %w", spec.ID, ctx.Err())
	}
	return started, nil
}

func (s *Sandbox) reap() {
	err := s.cmd.Wait()
	// Only now may the master see the hangup: all the sandbox's output is in its buffer.
	s.slave.Close()
	var exit *exec.ExitError
	switch {
	case err == nil:
		s.exitCode = 0
	case errors.As(err, &exit):
		ws := exit.Sys().(syscall.WaitStatus)
		if ws.Signaled() {
			s.exitCode = 128 + int(ws.Signal())
		} else {
			s.exitCode = ws.ExitStatus()
		}
	default:
		s.exitCode, s.waitErr = -1, err
	}
	close(s.done)
}

// ID is the sandbox's id.
func (s *Sandbox) ID() string { return s.id }

// PTY is the master side of the sandbox's terminal: read output, write input, resize it
// with pty.Setsize. Once the command's session is gone, reads return what is still
// buffered and then fail (EIO): read to that point before Destroy, which closes it.
func (s *Sandbox) PTY() *os.File { return s.master }

// Link is the sandbox's network link; nil under NetworkNone.
func (s *Sandbox) Link() *network.Link { return s.link }

// Pid is the host pid of the sandbox's init.
func (s *Sandbox) Pid() int { return s.cmd.Process.Pid }

// Done is closed when the sandbox's command has exited.
func (s *Sandbox) Done() <-chan struct{} { return s.done }

// Wait blocks until the command exits and returns its exit code: its status, or 128+signal
// when a signal ended it (as a shell reports it). Destroy makes it return 137.
func (s *Sandbox) Wait() (exitCode int, err error) {
	<-s.done
	return s.exitCode, s.waitErr
}

// Destroy kills every process of the sandbox, waits for them, removes its cgroup and its
// network link and closes the PTY. Its mounts live only in its mount namespace and vanish with
// the last process.
// It is idempotent and safe to call concurrently with Wait.
func (s *Sandbox) Destroy() error {
	s.destroyOnce.Do(func() {
		select {
		case <-s.done:
		default:
			// Killing PID 1 of the namespace makes the kernel kill everything else in it.
			_ = s.cmd.Process.Kill()
			<-s.done
		}
		s.destroyErr = s.cg.remove()
		if s.link != nil {
			s.destroyErr = errors.Join(s.destroyErr, s.link.Close())
		}
		if err := s.master.Close(); err != nil && s.destroyErr == nil && !errors.Is(err, os.ErrClosed) {
			s.destroyErr = err
		}
	})
	return s.destroyErr
}

// CleanupStale kills and removes every sandbox a previous run of the daemon left under the
// cgroup parent: the cgroups are the record of what runs. It returns how many it removed.
func (m *Manager) CleanupStale() (removed int, err error) {
	return m.cgroups.cleanupStale(10 * time.Second)
}

// RemoveCgroupParent removes the manager's (empty) cgroup parent: for tests and benchmarks
// that use a parent of their own. A sandbox still under it makes it fail.
func (m *Manager) RemoveCgroupParent() error {
	var errs []error
	for _, dir := range m.cgroups.parents {
		if err := syscall.Rmdir(dir); err != nil && !errors.Is(err, syscall.ENOENT) {
			errs = append(errs, fmt.Errorf("jail: remove cgroup parent %s: %w", dir, err))
		}
	}
	return errors.Join(errs...)
}
