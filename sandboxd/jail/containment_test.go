package jail

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// The containment suite: each test attacks the sandbox from inside, as root on the real
// kernel, and checks the attack fails and the host is unharmed.

// A fork bomb hits the pids limit: the sandbox never holds more tasks than the limit, the
// kernel reports refused forks, and Destroy still ends it.
func TestContainmentForkBombStoppedByPidsLimit(t *testing.T) {
	f := newFixture(t)
	spec := f.spec(t, `bomb() { bomb | bomb & }; bomb; sleep 30`)
	spec.Limits.Pids = 40
	sb, err := f.m.Start(context.Background(), spec)
	if err != nil {
		t.Fatal(err)
	}
	defer sb.Destroy()
	go func() { _, _ = io.Copy(io.Discard, sb.PTY()) }()
	deadline := time.Now().Add(10 * time.Second)
	for {
		if events := f.cgroupFile(t, spec.ID, "pids", "pids.events"); events != "max 0" && strings.HasPrefix(events, "max ") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the fork bomb never hit the pids limit")
		}
		time.Sleep(20 * time.Millisecond)
	}
	for i := 0; i < 20; i++ {
		cur, err := strconv.Atoi(f.cgroupFile(t, spec.ID, "pids", "pids.current"))
		if err != nil {
			t.Fatal(err)
		}
		if cur > spec.Limits.Pids {
			t.Fatalf("pids.current %d exceeds the limit %d", cur, spec.Limits.Pids)
		}
		time.Sleep(10 * time.Millisecond)
	}
	start := time.Now()
	if err := sb.Destroy(); err != nil {
		t.Fatalf("Destroy of a fork-bombed sandbox: %v", err)
	}
	t.Logf("fork bomb destroyed in %v", time.Since(start))
}

// A memory hog is OOM-killed inside its own cgroup, while a neighbouring sandbox keeps
// running untouched.
func TestContainmentMemoryHogKilledInItsOwnCgroup(t *testing.T) {
	f := newFixture(t)
	neighbour := f.spec(t, "sleep 3; echo neighbour-alive")
	nsb, err := f.m.Start(context.Background(), neighbour)
	if err != nil {
		t.Fatal(err)
	}
	defer nsb.Destroy()
	nout := collect(nsb.PTY())

	hog := f.spec(t, `python3 -c 'b = b"x" * (512 << 20); print("survived", len(b))'`)
	hog.Limits.MemoryBytes = 64 << 20
	sb, err := f.m.Start(context.Background(), hog)
	if err != nil {
		t.Fatal(err)
	}
	defer sb.Destroy()
	out := collect(sb.PTY())
	code, _ := sb.Wait()
	if code != 137 || strings.Contains(out.String(), "survived") {
		t.Fatalf("hog exited %d with %q; want killed by SIGKILL (137)", code, out.String())
	}
	var kills string
	if f.m.CgroupVersion() == "v2" {
		kills = f.cgroupFile(t, hog.ID, "", "memory.events")
	} else {
		kills = f.cgroupFile(t, hog.ID, "memory", "memory.oom_control")
	}
	if !strings.Contains(kills, "oom_kill 1") && !strings.Contains(kills, "oom_kill 2") {
		t.Fatalf("the sandbox's own cgroup recorded no OOM kill: %q", kills)
	}
	if code, _ := nsb.Wait(); code != 0 || !strings.Contains(nout.String(), "neighbour-alive") {
		t.Fatalf("neighbour sandbox hurt by the OOM: exit %d, output %q", code, nout.String())
	}
}

// /tmp is a tmpfs of Limits.TmpBytes; a file in the home cannot outgrow Limits.FileSize
// (RLIMIT_FSIZE): the writer is stopped and the host's copy stays within the limit.
func TestContainmentTmpAndHomeSizeLimits(t *testing.T) {
	f := newFixture(t)
	spec := f.spec(t, `head -c 3145728 /dev/zero > /tmp/big 2>/dev/null; echo "tmp-rc=$? tmp-size=$(stat -c %s /tmp/big)"
head -c 3145728 /dev/zero > ~/big; echo "home-rc=$?"`)
	spec.Limits.TmpBytes = 1 << 20
	spec.Limits.FileSize = 2 << 20
	r := f.run(t, spec, 30*time.Second)
	if !strings.Contains(r.out, "tmp-rc=1 tmp-size=1048576") {
		t.Errorf("/tmp took more than its 1 MiB: %q", r.out)
	}
	if !strings.Contains(r.out, "home-rc=153") { // 128 + SIGXFSZ
		t.Errorf("writer of a 3 MiB home file was not stopped by SIGXFSZ: %q", r.out)
	}
	st, err := os.Stat(filepath.Join(spec.Home, "big"))
	if err != nil {
		t.Fatal(err)
	}
	if st.Size() > spec.Limits.FileSize {
		t.Errorf("home file grew to %d bytes, limit %d", st.Size(), spec.Limits.FileSize)
	}
}

// The sandbox sees its own home and nothing of the host's files or other users' homes.
func TestContainmentNoHostFilesNoOtherHomes(t *testing.T) {
	f := newFixture(t)
	bob := f.home(t, "bob", testUID+1)
	if err := os.WriteFile(filepath.Join(bob, "secret"), []byte("bob's secret"), 0o644); err != nil {
		t.Fatal(err)
	}
	hostSecret := filepath.Join(f.dir, "host-secret")
	if err := os.WriteFile(hostSecret, []byte("host secret"), 0o644); err != nil {
		t.Fatal(err)
	}
	spec := f.spec(t, fmt.Sprintf(`echo "homes=$(ls /home | tr '\n' ' ')"
for p in %s %s /work /root/.bashrc /etc/shadow /sys/kernel /old_root; do
  if [ -e "$p" ]; then echo "VISIBLE $p"; fi
done
cat /home/bob/secret 2>/dev/null && echo "READ bob"
touch /usr/bin/evil 2>/dev/null && echo "WROTE /usr"
touch /etc/evil 2>/dev/null && echo "WROTE /etc"
echo mine > ~/mine && echo "home-writable"`, hostSecret, bob))
	r := f.run(t, spec, 20*time.Second)
	if !strings.Contains(r.out, "homes=alice \n") {
		t.Errorf("/home shows more than the user's own home: %q", r.out)
	}
	for _, bad := range []string{"VISIBLE", "READ", "WROTE", "bob's secret", "host secret"} {
		if strings.Contains(r.out, bad) {
			t.Errorf("sandbox reached the host: %q", r.out)
		}
	}
	if !strings.Contains(r.out, "home-writable") {
		t.Errorf("own home not writable: %q", r.out)
	}
	if b, err := os.ReadFile(filepath.Join(spec.Home, "mine")); err != nil || string(b) != "mine\n" {
		t.Errorf("write to the home did not reach the host directory: %q, %v", b, err)
	}
}

// The sandbox's /proc shows its own PID namespace: its init as PID 1 and its own processes,
// none of the host's; its cgroup namespace hides the host's cgroup layout.
func TestContainmentNoSightOfHostProcesses(t *testing.T) {
	f := newFixture(t)
	spec := f.spec(t, fmt.Sprintf(`echo "pids=$(cd /proc && ls -d [0-9]* | tr '\n' ' ')"
[ -e /proc/%d ] && echo "SEES-TEST-PROCESS"
grep -q %s /proc/self/cgroup && echo "SEES-HOST-CGROUPS"
echo "init=$(tr '\0' ' ' </proc/1/cmdline)"`, os.Getpid(), f.m.cfg.CgroupParent))
	r := f.run(t, spec, 20*time.Second)
	if strings.Contains(r.out, "SEES-TEST-PROCESS") {
		t.Fatalf("the host's test process is visible: %q", r.out)
	}
	if strings.Contains(r.out, "SEES-HOST-CGROUPS") {
		t.Errorf("/proc/self/cgroup shows the host's cgroup layout: %q", r.out)
	}
	i := strings.Index(r.out, "pids=")
	if i < 0 {
		t.Fatalf("no pid list (exit %d): %q", r.code, r.out)
	}
	line := r.out[i+len("pids=") : i+strings.IndexByte(r.out[i:], '\n')]
	pids := strings.Fields(line)
	if len(pids) == 0 || len(pids) > 5 || !slices.Contains(pids, "1") {
		t.Fatalf("sandbox sees processes %v; want only its init (1), the shell, a subshell, ls and tr", pids)
	}
	if !strings.Contains(r.out, "init="+InitBinaryName+" \n") {
		t.Errorf("PID 1 is not the sandbox's init: %q", r.out)
	}
}

// No way back to root: setuid binaries (the host's, read-only and nosuid, and one planted
// in the home) run as the user; new user namespaces and other namespaces are refused;
// every capability set is empty; no_new_privs and seccomp are on.
func TestContainmentNoWayBackToRoot(t *testing.T) {
	f := newFixture(t)
	spec := f.spec(t, `~/suid-id -u | sed 's/^/planted-suid-euid=/'
su -c id root </dev/null >/dev/null 2>&1 || echo "su-refused"
unshare -U -r id -u 2>/dev/null && echo "USERNS-ROOT"
unshare -U -r --fork id -u 2>/dev/null && echo "USERNS-ROOT-FORK"
python3 -c 'import os; os.setuid(0)' 2>/dev/null || echo "setuid-refused"
grep -E '^(Cap(Inh|Prm|Eff|Bnd|Amb)|NoNewPrivs|Seccomp):' /proc/self/status | tr -s '\t' ' '`)
	// A setuid-root copy of id in the home, as a user might plant with help from outside.
	idBin, err := os.ReadFile("/usr/bin/id")
	if err != nil {
		t.Fatal(err)
	}
	planted := filepath.Join(spec.Home, "suid-id")
	if err := os.WriteFile(planted, idBin, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(planted, 0o4755); err != nil {
		t.Fatal(err)
	}
	r := f.run(t, spec, 20*time.Second)
	for _, want := range []string{
		fmt.Sprintf("planted-suid-euid=%d", testUID),
		"su-refused", "setuid-refused",
		"CapInh: 0000000000000000", "CapPrm: 0000000000000000", "CapEff: 0000000000000000",
		"CapBnd: 0000000000000000", "CapAmb: 0000000000000000",
		"NoNewPrivs: 1", "Seccomp: 2",
	} {
		if !strings.Contains(r.out, want) {
			t.Errorf("output lacks %q:\n%s", want, r.out)
		}
	}
	if strings.Contains(r.out, "USERNS-ROOT") {
		t.Errorf("a new user namespace gave root:\n%s", r.out)
	}
}

// The seccomp filter refuses the escapes it lists (mount, ptrace, keyrings, modules,
// namespaces) with EPERM, seen from a sandboxed python.
func TestContainmentSeccompRefusesEscapes(t *testing.T) {
	f := newFixture(t)
	spec := f.spec(t, `exec python3 - <<'EOF'
import ctypes, os
libc = ctypes.CDLL(None, use_errno=True)
def errno_of(name, *args):
    r = getattr(libc, name)(*args)
    return "ok" if r >= 0 else os.strerror(ctypes.get_errno())
print("mount:", errno_of("mount", b"none", b"/tmp", b"tmpfs", 0, None))
print("unshare-net:", errno_of("unshare", 0x40000000))
print("unshare-user:", errno_of("unshare", 0x10000000))
print("setns:", errno_of("setns", 0, 0))
print("ptrace:", errno_of("ptrace", 16, 1, None, None))
print("keyctl:", errno_of("syscall", 250, 0, 0, 0, 0))
print("init_module:", errno_of("syscall", 175, None, 0, b""))
print("clone-newuser:", errno_of("syscall", 56, 0x10000000 | 17, None, None, None, None))
EOF`)
	r := f.run(t, spec, 20*time.Second)
	for _, call := range []string{"mount", "unshare-net", "unshare-user", "setns", "ptrace", "keyctl", "init_module", "clone-newuser"} {
		if !strings.Contains(r.out, call+": Operation not permitted") {
			t.Errorf("%s was not refused with EPERM:\n%s", call, r.out)
		}
	}
}

// The filter cannot be bypassed through the 32-bit system call ABI (int 0x80), which this
// kernel still offers to 64-bit processes: unshare(CLONE_NEWUSER) by i386 number fails too.
func TestContainmentSeccompCoversThe32BitABI(t *testing.T) {
	f := newFixture(t)
	spec := f.spec(t, `exec python3 - <<'EOF'
import ctypes, mmap
def ia32(nr, arg):
    # mov eax, nr; mov ebx, arg; int 0x80; ret
    code = b"\xb8" + nr.to_bytes(4, "little") + b"\xbb" + arg.to_bytes(4, "little") + b"\xcd\x80\xc3"
    buf = mmap.mmap(-1, mmap.PAGESIZE, prot=mmap.PROT_READ | mmap.PROT_WRITE | mmap.PROT_EXEC)
    buf.write(code)
    return ctypes.CFUNCTYPE(ctypes.c_int)(ctypes.addressof(ctypes.c_char.from_buffer(buf)))()
print("ia32-unshare-user:", ia32(310, 0x10000000))
print("ia32-getpid:", ia32(20, 0))
EOF`)
	r := f.run(t, spec, 20*time.Second)
	if strings.Contains(r.out, "ia32-unshare-user: 0\n") {
		t.Fatalf("unshare(CLONE_NEWUSER) through int 0x80 succeeded:\n%s", r.out)
	}
	// Refused (or, on a kernel without IA32 emulation, the process dies on int 0x80).
	if !strings.Contains(r.out, "ia32-unshare-user: -") && r.code != 128+11 {
		t.Fatalf("unexpected result of the 32-bit ABI probe (exit %d):\n%s", r.code, r.out)
	}
	t.Logf("32-bit ABI probe: %s", strings.TrimSpace(r.out))
}

// TIOCSTI cannot inject input: not into the sandbox's own terminal (the seccomp filter),
// and the sandbox holds no other terminal.
func TestContainmentTIOCSTIInjectionFails(t *testing.T) {
	f := newFixture(t)
	spec := f.spec(t, `exec python3 - <<'EOF'
import ctypes, fcntl, termios, os
for name, fd in [("own terminal", 0), ("/dev/tty", os.open("/dev/tty", os.O_RDWR))]:
    try:
        fcntl.ioctl(fd, termios.TIOCSTI, b"X")
        print(name, "INJECTED")
    except OSError as e:
        print(name, "refused:", os.strerror(e.errno))
# The kernel reads only the low 32 bits of the request: a high bit must not slip past.
libc = ctypes.CDLL(None, use_errno=True)
r = libc.ioctl(0, ctypes.c_ulong(termios.TIOCSTI | (1 << 32)), ctypes.c_char_p(b"X"))
print("high-bit request", "INJECTED" if r == 0 else "refused: " + os.strerror(ctypes.get_errno()))
EOF`)
	r := f.run(t, spec, 20*time.Second)
	if strings.Contains(r.out, "INJECTED") {
		t.Fatalf("TIOCSTI injected input:\n%s", r.out)
	}
	for _, w := range []string{"own terminal refused: Operation not permitted", "/dev/tty refused: Operation not permitted", "high-bit request refused: Operation not permitted"} {
		if !strings.Contains(r.out, w) {
			t.Errorf("output lacks %q:\n%s", w, r.out)
		}
	}
}

// 500 create/destroy cycles leave no mount, cgroup, process or file descriptor behind.
func TestContainment500CyclesLeaveNothingBehind(t *testing.T) {
	f := newFixture(t)
	cycles := 500
	if testing.Short() {
		cycles = 50
	}
	before := hostTraces(t, f)
	home := f.home(t, "alice", testUID)
	var wg sync.WaitGroup
	errs := make(chan error, cycles)
	work := make(chan int)
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range work {
				spec := Spec{
					ID: fmt.Sprintf("cycle-%d", i), User: "alice", UID: testUID, GID: testGID,
					ImageRoot: f.image.Root, Home: home, Command: []string{"/bin/true"},
					Limits: f.spec(t, "").Limits,
				}
				sb, err := f.m.Start(context.Background(), spec)
				if err != nil {
					errs <- err
					continue
				}
				if code, err := sb.Wait(); err != nil || code != 0 {
					errs <- fmt.Errorf("cycle %d: exit %d, %v", i, code, err)
				}
				if err := sb.Destroy(); err != nil {
					errs <- err
				}
			}
		}()
	}
	start := time.Now()
	for i := 0; i < cycles; i++ {
		work <- i
	}
	close(work)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	t.Logf("%d cycles in %v", cycles, time.Since(start))
	after := hostTraces(t, f)
	if after != before {
		t.Fatalf("cycles left traces:\nbefore %+v\nafter  %+v", before, after)
	}
}

// traces is what a sandbox could leave on the host: mounts under the test's directory,
// cgroups under its parent, unreaped children, open file descriptors (PTYs, pipes).
type traces struct {
	Mounts, Cgroups, Children, FDs int
}

func hostTraces(t *testing.T, f *fixture) traces {
	t.Helper()
	var tr traces
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	// Mounts under the test's directory (the jail's root mount point, the image): other
	// processes on the host mount and unmount elsewhere while the test runs.
	for _, line := range strings.Split(string(b), "\n") {
		if fields := strings.Fields(line); len(fields) > 4 && strings.HasPrefix(unescapeMountinfo(fields[4]), f.dir) {
			tr.Mounts++
		}
	}
	for _, parent := range f.m.cgroups.parents {
		entries, err := os.ReadDir(parent)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range entries {
			if e.IsDir() {
				tr.Cgroups++
			}
		}
	}
	// Children of this process: sandboxes' inits that were not reaped.
	procs, _ := filepath.Glob("/proc/[0-9]*/stat")
	self := strconv.Itoa(os.Getpid())
	for _, p := range procs {
		b, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		fields := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+1:]))
		if len(fields) > 1 && fields[1] == self {
			tr.Children++
		}
	}
	fds, _ := os.ReadDir("/proc/self/fd")
	tr.FDs = len(fds)
	return tr
}
