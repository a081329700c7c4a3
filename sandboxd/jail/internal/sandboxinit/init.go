// Package sandboxinit is the init of every sandbox: PID 1 of its PID namespace, which builds
// the sandbox's root, forks its command and reaps. It is kept apart from package jail, and
// imports nothing heavy, because it runs once per sandbox start in a fresh process: every
// package initialiser linked into the init binary is paid on every start. The parent (jail)
// hands it a Config, including the seccomp filters already assembled.
package sandboxinit

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// The init is told apart from a normal run of its binary by both its argv[0] and its
// environment, so that neither alone (a user typing the name, an inherited variable) turns
// an anyops process into a sandbox init.
const (
	// Arg0 is the init's argv[0], and the file name of the small init binary.
	Arg0 = "anyops-sandbox-init"
	// Env carries the Config, as JSON.
	Env = "ANYOPS_SANDBOX_INIT"
	// OK is what the init writes on the status pipe (fd 4) once the command runs; anything
	// else there is the reason setup failed.
	OK = "ok"
	// exitSetupFailed is the init's status when it could not build the sandbox; the reason
	// went to the parent over the status pipe.
	exitSetupFailed = 125
)

// Filter is one classic BPF instruction of a seccomp filter.
type Filter struct {
	Code uint16
	Jt   uint8
	Jf   uint8
	K    uint32
}

// EncodeFilter lays a filter out as the kernel reads it (struct sock_filter, native byte
// order): how Config carries it, so the init decodes a few hundred bytes of base64 rather than
// an object per instruction.
func EncodeFilter(f []Filter) []byte {
	out := make([]byte, 0, 8*len(f))
	for _, in := range f {
		out = binary.NativeEndian.AppendUint16(out, in.Code)
		out = append(out, in.Jt, in.Jf)
		out = binary.NativeEndian.AppendUint32(out, in.K)
	}
	return out
}

// Config is what the parent hands the init, as JSON in Env. Paths are host paths.
type Config struct {
	RootDir   string   `json:"root_dir"`   // empty directory the new root is assembled on
	ImageRoot string   `json:"image_root"` // bind-mounted read-only as /
	Home      string   `json:"home"`       // bind-mounted read-write at /home/<User>
	User      string   `json:"user"`
	UID       int      `json:"uid"`
	GID       int      `json:"gid"`
	Hostname  string   `json:"hostname"`
	Command   []string `json:"command"`
	Env       []string `json:"env"`
	TmpBytes  int64    `json:"tmp_bytes"`
	OpenFiles int      `json:"open_files"`
	FileSize  int64    `json:"file_size"`
	// ResolvConf, when set, is laid over the image's /etc/resolv.conf (if that is a plain file).
	ResolvConf string `json:"resolv_conf,omitempty"`
	// Seccomp are the filters installed, in order, after no_new_privs and before the fork,
	// each as EncodeFilter lays it out.
	Seccomp [][]byte `json:"seccomp"`

	runMounted bool // /run is the init's tmpfs
}

// MaybeRun runs the sandbox init and exits when this process was started as one; otherwise
// it returns at once.
func MaybeRun() {
	if len(os.Args) == 0 || filepath.Base(os.Args[0]) != Arg0 {
		return
	}
	cfg, ok := os.LookupEnv(Env)
	if !ok {
		return
	}
	// Capabilities, no_new_privs and the seccomp filter are per thread: set them on this
	// thread and fork the command from it.
	runtime.LockOSThread()
	os.Exit(runInit(cfg))
}

// runInit is PID 1 of the sandbox: fds 0-2 are the PTY slave, fd 3 the parent's go-ahead,
// fd 4 the status pipe. It builds the root, waits until the parent has put it into its
// cgroups, forks the command, then reaps until the command exits and exits with its status.
func runInit(cfgJSON string) int {
	syscall.CloseOnExec(3)
	syscall.CloseOnExec(4)
	goAhead := os.NewFile(3, "go-ahead")
	status := os.NewFile(4, "status")
	fail := func(step string, err error) int {
		fmt.Fprintf(status, "%s: %v", step, err)
		return exitSetupFailed
	}
	var c Config
	if err := json.Unmarshal([]byte(cfgJSON), &c); err != nil {
		return fail("read config", err)
	}
	_ = os.Unsetenv(Env)
	unix.Umask(0)
	if err := buildRoot(&c); err != nil {
		return fail("build root", err)
	}
	if err := unix.Sethostname([]byte(c.Hostname)); err != nil {
		return fail("set hostname", err)
	}
	// The sandbox's own network namespace: its loopback, and whatever link the parent adds.
	if err := loopbackUp(); err != nil {
		return fail("bring up loopback", err)
	}
	if n, _ := goAhead.Read(make([]byte, 1)); n != 1 {
		return fail("wait for cgroup", errors.New("parent went away"))
	}
	goAhead.Close()
	// Now inside its cgroups: make them the root of a cgroup namespace, so the sandbox sees
	// "/" in /proc/self/cgroup rather than the host's layout.
	if err := unix.Unshare(unix.CLONE_NEWCGROUP); err != nil {
		return fail("new cgroup namespace", err)
	}
	if err := setRlimits(&c); err != nil {
		return fail("set rlimits", err)
	}
	unix.Umask(0o022)
	path, err := lookPath(c.Command[0], c.Env)
	if err != nil {
		return fail("find command", err)
	}
	if err := dropCapabilities(); err != nil {
		return fail("drop capabilities", err)
	}
	if err := loadSeccomp(c.Seccomp); err != nil {
		return fail("load seccomp filter", err)
	}
	// Caught from before the fork (a signal that arrives meanwhile waits in the channel) and
	// forwarded to the command once it runs.
	signals := make(chan os.Signal, 8)
	signal.Notify(signals, unix.SIGTERM, unix.SIGHUP, unix.SIGINT, unix.SIGQUIT)
	pid, err := syscall.ForkExec(path, c.Command, &syscall.ProcAttr{
		Dir:   "/home/" + c.User,
		Env:   c.Env,
		Files: []uintptr{0, 1, 2},
		Sys: &syscall.SysProcAttr{
			// A session of its own with the PTY slave as controlling terminal: job control
			// works, and TIOCSTI cannot reach any other terminal.
			Setsid:     true,
			Setctty:    true,
			Ctty:       0,
			Credential: &syscall.Credential{Uid: uint32(c.UID), Gid: uint32(c.GID), Groups: []uint32{}},
		},
	})
	if err != nil {
		return fail("start "+c.Command[0], err)
	}
	_, _ = status.WriteString(OK)
	status.Close()
	// The init keeps no end of the terminal open, so the PTY master sees the hangup as soon
	// as the command's session is gone.
	if null, err := unix.Open("/dev/null", unix.O_RDWR, 0); err == nil {
		for fd := 0; fd <= 2; fd++ {
			_ = unix.Dup2(null, fd)
		}
		_ = unix.Close(null)
	}

	go func() {
		for s := range signals {
			_ = unix.Kill(-pid, s.(syscall.Signal)) // the command leads its process group
		}
	}()
	for {
		var ws unix.WaitStatus
		wpid, err := unix.Wait4(-1, &ws, 0, nil)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return exitSetupFailed // ECHILD: the command is gone without us seeing it
		}
		if wpid != pid {
			continue // an orphan reparented to us
		}
		if ws.Signaled() {
			return 128 + int(ws.Signal())
		}
		return ws.ExitStatus()
	}
}

// device is a character device of the minimal /dev.
type device struct {
	name         string
	major, minor uint32
}

var devices = []device{{"null", 1, 3}, {"zero", 1, 5}, {"full", 1, 7}, {"random", 1, 8}, {"urandom", 1, 9}, {"tty", 5, 0}}

// buildRoot assembles the sandbox's root on c.RootDir and pivots into it. It runs in the
// sandbox's fresh mount namespace, so none of these mounts exist outside it.
func buildRoot(c *Config) error {
	root := c.RootDir
	at := func(p string) string { return filepath.Join(root, p) }
	type step struct {
		what string
		do   func() error
	}
	mount := func(src, target, fstype string, flags uintptr, data string) step {
		return step{"mount " + target, func() error { return unix.Mount(src, target, fstype, flags, data) }}
	}
	sizeOpt := func(n int64) string {
		if n > 0 {
			return ",size=" + strconv.FormatInt(n, 10)
		}
		return ""
	}
	home := at("home/" + c.User)
	steps := []step{
		// Nothing mounted here may propagate back to the host.
		mount("", "/", "", unix.MS_REC|unix.MS_PRIVATE, ""),
		mount(c.ImageRoot, root, "", unix.MS_BIND|unix.MS_REC, ""),
		mount("", root, "", unix.MS_BIND|unix.MS_REMOUNT|unix.MS_RDONLY|unix.MS_NOSUID|unix.MS_NODEV, ""),
		mount("proc", at("proc"), "proc", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, ""),
		mount("tmpfs", at("dev"), "tmpfs", unix.MS_NOSUID|unix.MS_NOEXEC, "mode=755,size=65536"),
		{"populate /dev", func() error { return populateDev(at("dev"), c.TmpBytes) }},
		mount("tmpfs", at("tmp"), "tmpfs", unix.MS_NOSUID|unix.MS_NODEV, "mode=1777"+sizeOpt(c.TmpBytes)),
		mount("tmpfs", at("home"), "tmpfs", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, "mode=755,size=65536"),
		{"mkdir " + home, func() error { return unix.Mkdir(home, 0o755) }},
		mount(c.Home, home, "", unix.MS_BIND|unix.MS_REC, ""),
		mount("", home, "", unix.MS_BIND|unix.MS_REMOUNT|unix.MS_NOSUID|unix.MS_NODEV, ""),
		{"/run", func() error { return mountRun(c) }},
		{"user database", func() error { return addUser(c) }},
		{"resolv.conf", func() error { return overlayResolvConf(c) }},
		{"pivot_root", func() error { return pivotRoot(root) }},
	}
	for _, s := range steps {
		if err := s.do(); err != nil {
			return fmt.Errorf("%s: %w", s.what, err)
		}
	}
	return nil
}

func populateDev(dev string, shmBytes int64) error {
	for _, d := range devices {
		p := filepath.Join(dev, d.name)
		err := unix.Mknod(p, unix.S_IFCHR|0o666, int(unix.Mkdev(d.major, d.minor)))
		if err == unix.EPERM {
			// A device cgroup may forbid mknod; bind the host's node instead.
			if err = os.WriteFile(p, nil, 0o666); err == nil {
				err = unix.Mount("/dev/"+d.name, p, "", unix.MS_BIND, "")
			}
		}
		if err != nil {
			return fmt.Errorf("%s: %w", d.name, err)
		}
	}
	for name, target := range map[string]string{
		"fd": "/proc/self/fd", "stdin": "/proc/self/fd/0", "stdout": "/proc/self/fd/1",
		"stderr": "/proc/self/fd/2", "ptmx": "pts/ptmx",
	} {
		if err := unix.Symlink(target, filepath.Join(dev, name)); err != nil {
			return err
		}
	}
	if err := unix.Mkdir(filepath.Join(dev, "pts"), 0o755); err != nil {
		return err
	}
	// A private devpts: the sandbox can open terminals of its own (python's pty, script)
	// and sees none of the host's or other sandboxes'.
	if err := unix.Mount("devpts", filepath.Join(dev, "pts"), "devpts", unix.MS_NOSUID|unix.MS_NOEXEC, "newinstance,ptmxmode=0666,mode=0620"); err != nil {
		return fmt.Errorf("devpts: %w", err)
	}
	if err := unix.Mkdir(filepath.Join(dev, "shm"), 0o1777); err != nil {
		return err
	}
	size := ""
	if shmBytes > 0 {
		size = ",size=" + strconv.FormatInt(shmBytes, 10)
	}
	return unix.Mount("tmpfs", filepath.Join(dev, "shm"), "tmpfs", unix.MS_NOSUID|unix.MS_NODEV, "mode=1777"+size)
}

// mountRun mounts a small tmpfs at /run, which holds the files laid over the image's /etc.
// An image without /run gets neither overlay.
func mountRun(c *Config) error {
	run := filepath.Join(c.RootDir, "run")
	if st, err := os.Stat(run); err != nil || !st.IsDir() {
		return nil
	}
	if err := unix.Mount("tmpfs", run, "tmpfs", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, "mode=755,size=1048576"); err != nil {
		return err
	}
	c.runMounted = true
	return nil
}

// addUser lays /etc/passwd and /etc/group with the sandbox's user over the image's, so the
// shell and python know the user's name. Images without them are left as they are.
func addUser(c *Config) error {
	entries := map[string]string{
		"passwd": fmt.Sprintf("%s:x:%d:%d::/home/%s:/bin/bash\n", c.User, c.UID, c.GID, c.User),
		"group":  fmt.Sprintf("%s:x:%d:\n", c.User, c.GID),
	}
	for name, line := range entries {
		base, err := os.ReadFile(filepath.Join(c.RootDir, "etc", name))
		if err != nil {
			continue
		}
		if len(base) > 0 && !strings.HasSuffix(string(base), "\n") {
			base = append(base, '\n')
		}
		if err := overlayEtc(c, name, append(base, line...)); err != nil {
			return err
		}
	}
	return nil
}

// overlayResolvConf lays c.ResolvConf over the image's /etc/resolv.conf when that is a plain
// file (a symlink would lead outside the image before the pivot).
func overlayResolvConf(c *Config) error {
	if c.ResolvConf == "" {
		return nil
	}
	if st, err := os.Lstat(filepath.Join(c.RootDir, "etc", "resolv.conf")); err != nil || !st.Mode().IsRegular() {
		return nil
	}
	return overlayEtc(c, "resolv.conf", []byte(c.ResolvConf))
}

// overlayEtc writes content to /run/<name> and binds it read-only over /etc/<name>.
func overlayEtc(c *Config, name string, content []byte) error {
	if !c.runMounted {
		return nil
	}
	overlay := filepath.Join(c.RootDir, "run", name)
	target := filepath.Join(c.RootDir, "etc", name)
	if err := os.WriteFile(overlay, content, 0o644); err != nil {
		return err
	}
	if err := unix.Mount(overlay, target, "", unix.MS_BIND, ""); err != nil {
		return err
	}
	return unix.Mount("", target, "", unix.MS_BIND|unix.MS_REMOUNT|unix.MS_RDONLY|unix.MS_NOSUID|unix.MS_NODEV, "")
}

// pivotRoot makes root the root and detaches the old one (runc's pivot_root(".", ".")).
func pivotRoot(root string) error {
	if err := unix.Chdir(root); err != nil {
		return err
	}
	if err := unix.PivotRoot(".", "."); err != nil {
		return err
	}
	if err := unix.Unmount(".", unix.MNT_DETACH); err != nil {
		return err
	}
	return unix.Chdir("/")
}

func loopbackUp() error {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	ifr, err := unix.NewIfreq("lo")
	if err != nil {
		return err
	}
	if err := unix.IoctlIfreq(fd, unix.SIOCGIFFLAGS, ifr); err != nil {
		return err
	}
	ifr.SetUint16(ifr.Uint16() | unix.IFF_UP | unix.IFF_RUNNING)
	return unix.IoctlIfreq(fd, unix.SIOCSIFFLAGS, ifr)
}

func setRlimits(c *Config) error {
	set := func(resource int, n uint64) error {
		var cur syscall.Rlimit
		if err := syscall.Getrlimit(resource, &cur); err != nil {
			return err
		}
		// Without CAP_SYS_RESOURCE a limit cannot rise above the current hard limit.
		n = min(n, cur.Max)
		// syscall.Setrlimit (not unix) so Go's forkExec does not restore its saved NOFILE.
		return syscall.Setrlimit(resource, &syscall.Rlimit{Cur: n, Max: n})
	}
	if err := set(unix.RLIMIT_CORE, 0); err != nil {
		return fmt.Errorf("core: %w", err)
	}
	if c.OpenFiles > 0 {
		if err := set(unix.RLIMIT_NOFILE, uint64(c.OpenFiles)); err != nil {
			return fmt.Errorf("open files: %w", err)
		}
	}
	if c.FileSize > 0 {
		if err := set(unix.RLIMIT_FSIZE, uint64(c.FileSize)); err != nil {
			return fmt.Errorf("file size: %w", err)
		}
	}
	return nil
}

// dropCapabilities empties this thread's bounding, ambient and inheritable sets. The
// command's setuid to a non-zero uid then clears its permitted and effective sets, and
// with an empty bounding set and no_new_privs no exec can give any back.
func dropCapabilities() error {
	b, err := os.ReadFile("/proc/sys/kernel/cap_last_cap")
	if err != nil {
		return err
	}
	last, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		return err
	}
	for c := 0; c <= last; c++ {
		if err := unix.Prctl(unix.PR_CAPBSET_DROP, uintptr(c), 0, 0, 0); err != nil && err != unix.EINVAL {
			return fmt.Errorf("bounding set: %w", err)
		}
	}
	if err := unix.Prctl(unix.PR_CAP_AMBIENT, unix.PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0); err != nil {
		return fmt.Errorf("ambient set: %w", err)
	}
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var data [2]unix.CapUserData
	if err := unix.Capget(&hdr, &data[0]); err != nil {
		return err
	}
	data[0].Inheritable, data[1].Inheritable = 0, 0
	return unix.Capset(&hdr, &data[0])
}

// lookPath finds file on the PATH of env, inside the sandbox's root.
func lookPath(file string, env []string) (string, error) {
	if strings.Contains(file, "/") {
		return file, nil
	}
	path := "/usr/local/bin:/usr/bin:/bin"
	for _, e := range env {
		if v, ok := strings.CutPrefix(e, "PATH="); ok {
			path = v
		}
	}
	for _, dir := range filepath.SplitList(path) {
		p := filepath.Join(dir, file)
		if st, err := os.Stat(p); err == nil && st.Mode().IsRegular() && st.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return "", fmt.Errorf("%q not found in PATH %s", file, path)
}

// loadSeccomp sets no_new_privs and installs the filters on the calling thread, from which
// the command is then forked. Filters stack: the kernel applies the strictest answer.
func loadSeccomp(filters [][]byte) error {
	if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
		return fmt.Errorf("no_new_privs: %w", err)
	}
	for i, f := range filters {
		if len(f) == 0 || len(f)%8 != 0 {
			return fmt.Errorf("filter %d: %d bytes is no program", i, len(f))
		}
		prog := make([]unix.SockFilter, len(f)/8)
		for j := range prog {
			in := f[8*j:]
			prog[j] = unix.SockFilter{Code: binary.NativeEndian.Uint16(in), Jt: in[2], Jf: in[3], K: binary.NativeEndian.Uint32(in[4:])}
		}
		fprog := unix.SockFprog{Len: uint16(len(prog)), Filter: &prog[0]}
		if _, _, errno := unix.Syscall(unix.SYS_SECCOMP, unix.SECCOMP_SET_MODE_FILTER, 0, uintptr(unsafe.Pointer(&fprog))); errno != 0 {
			return fmt.Errorf("filter %d: %w", i, errno)
		}
	}
	return nil
}
