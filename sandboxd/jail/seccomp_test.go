package jail

import (
	"encoding/binary"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/elastic/go-seccomp-bpf/arch"
	"golang.org/x/net/bpf"
	"golang.org/x/sys/unix"

	"github.com/anyops/anyops/sandboxd/images"
	"github.com/anyops/anyops/sandboxd/images/imagestest"
)

var updateDoc = flag.Bool("update", false, "rewrite docs/sandbox-syscalls.md from syscallPolicy")

const syscallDoc = "../../docs/sandbox-syscalls.md"

// The list of what a sandbox may call, and why, is docs/sandbox-syscalls.md, generated from
// syscallPolicy: this fails when the two differ (go test -run TestSyscallPolicyDoc -update).
func TestSyscallPolicyDoc(t *testing.T) {
	doc := syscallPolicyDoc()
	if *updateDoc {
		if err := os.WriteFile(syscallDoc, []byte(doc), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	b, err := os.ReadFile(syscallDoc)
	if err != nil {
		t.Fatal(err)
	}
	if string(b) != doc {
		t.Fatalf("%s is not what syscallPolicy says: run go test ./sandboxd/jail -run TestSyscallPolicyDoc -update", filepath.Base(syscallDoc))
	}
	t.Logf("\n%s", doc)
}

// Every name of the policy is a system call of x86_64 or arm64 (a typo would silently allow
// nothing, or deny nothing), and no call is named by two rules the library assembles (the
// second would never be reached).
func TestSyscallPolicyNamesAreRealAndUnique(t *testing.T) {
	var tables []map[string]int
	for _, name := range []string{"x86_64", "aarch64"} {
		info, err := arch.GetInfo(name)
		if err != nil {
			t.Fatal(err)
		}
		tables = append(tables, info.SyscallNames)
	}
	seen := map[string]string{}
	for _, r := range syscallPolicy {
		for _, n := range r.names {
			known := false
			for _, tab := range tables {
				_, ok := tab[n]
				known = known || ok
			}
			if !known {
				t.Errorf("%q (%s) is no system call of x86_64 or aarch64", n, r.answer)
			}
			if r.guarded {
				continue
			}
			if prev, ok := seen[n]; ok {
				t.Errorf("%q is named twice: %s and %s", n, prev, r.answer)
			}
			seen[n] = string(r.answer)
		}
	}
	for _, must := range []string{"io_uring_setup", "io_uring_enter", "io_uring_register", "bpf", "perf_event_open",
		"userfaultfd", "keyctl", "add_key", "request_key", "kexec_load", "kexec_file_load", "init_module",
		"finit_module", "delete_module", "mount", "umount2", "pivot_root", "move_mount", "fsopen", "open_tree"} {
		if a := seen[must]; a == "" || a == string(allow) {
			t.Errorf("%s must be denied, is %q", must, a)
		}
	}
}

// filterRun is what the kernel answers for one call under the sandbox's filters: the stricter
// action, and between two errnos the newer filter's.
type filterRun struct {
	vms    []*bpf.VM // in installation order
	native *arch.Info
}

func newFilterRun(t *testing.T) filterRun {
	t.Helper()
	if binary.NativeEndian.Uint16([]byte{1, 0}) != 1 {
		t.Skip("the emulation lays seccomp_data out little-endian")
	}
	filters, err := seccompFilters()
	if err != nil {
		t.Fatal(err)
	}
	native, err := arch.GetInfo("")
	if err != nil {
		t.Fatal(err)
	}
	r := filterRun{native: native}
	for _, f := range filters {
		t.Logf("filter of %d instructions", len(f))
		if len(f) > 200 {
			t.Errorf("the filter has %d instructions: the kernel compiles it and runs it for every call number at each start", len(f))
		}
		insts := make([]bpf.Instruction, len(f))
		for i, in := range f {
			insts[i] = bpf.RawInstruction{Op: in.Code, Jt: in.Jt, Jf: in.Jf, K: in.K}.Disassemble()
		}
		vm, err := bpf.NewVM(insts)
		if err != nil {
			t.Fatal(err)
		}
		r.vms = append(r.vms, vm)
	}
	return r
}

// answer runs the call with arguments args (on the native architecture when archID is 0).
func (r filterRun) answer(t *testing.T, archID uint32, nr int, args ...uint64) uint32 {
	t.Helper()
	if archID == 0 {
		archID = uint32(r.native.ID)
	}
	// x/net/bpf loads words big-endian: each 32-bit word goes where the kernel keeps it on
	// a little-endian machine, written so that the VM reads its value.
	data := make([]byte, 64)
	binary.BigEndian.PutUint32(data[0:], uint32(nr))
	binary.BigEndian.PutUint32(data[4:], archID)
	for i, a := range args {
		binary.BigEndian.PutUint32(data[16+8*i:], uint32(a))
		binary.BigEndian.PutUint32(data[20+8*i:], uint32(a>>32))
	}
	best := uint32(unix.SECCOMP_RET_ALLOW)
	for i := len(r.vms) - 1; i >= 0; i-- { // newest first, as the kernel walks them
		got, err := r.vms[i].Run(data)
		if err != nil {
			t.Fatal(err)
		}
		if uint32(got)&unix.SECCOMP_RET_ACTION_FULL < best&unix.SECCOMP_RET_ACTION_FULL {
			best = uint32(got)
		}
	}
	return best
}

func errnoRet(e unix.Errno) uint32 { return unix.SECCOMP_RET_ERRNO | uint32(e) }

func describe(ret uint32) string {
	if ret == unix.SECCOMP_RET_ALLOW {
		return "allow"
	}
	return unix.ErrnoName(unix.Errno(ret & unix.SECCOMP_RET_DATA))
}

// The compiled filter gives every call the policy names its answer, and the argument checks
// hold, including where go-seccomp-bpf's own conditions would have let a call through by its
// argument's value (socket(AF_NETLINK, ..., 16): 16 is ioctl's number on x86_64).
func TestSyscallPolicyAnswers(t *testing.T) {
	r := newFilterRun(t)
	want := map[answer]uint32{
		allow: unix.SECCOMP_RET_ALLOW, allowIf: unix.SECCOMP_RET_ALLOW,
		denyEPERM: errnoRet(unix.EPERM), denyENOSYS: errnoRet(unix.ENOSYS), denyNoFamily: errnoRet(unix.EAFNOSUPPORT),
	}
	for _, rule := range syscallPolicy {
		if rule.guarded {
			continue // the argument cases below
		}
		for _, name := range rule.names {
			nr, ok := r.native.SyscallNames[name]
			if !ok {
				continue
			}
			args := []uint64{}
			if name == "socket" || name == "socketpair" {
				args = []uint64{unix.AF_UNIX}
			}
			if got := r.answer(t, 0, nr, args...); got != want[rule.answer] {
				t.Errorf("%s: %s, want %s (%s)", name, describe(got), describe(want[rule.answer]), rule.why)
			}
		}
	}
	nr := func(name string) int { return r.native.SyscallNames[name] }
	for _, c := range []struct {
		what string
		call string
		args []uint64
		want uint32
	}{
		{"fork-like clone", "clone", []uint64{uint64(unix.SIGCHLD)}, unix.SECCOMP_RET_ALLOW},
		{"thread clone", "clone", []uint64{unix.CLONE_VM | unix.CLONE_FS | unix.CLONE_FILES | unix.CLONE_SIGHAND | unix.CLONE_THREAD | unix.CLONE_SYSVSEM}, unix.SECCOMP_RET_ALLOW},
		{"clone into a user namespace", "clone", []uint64{unix.CLONE_NEWUSER | uint64(unix.SIGCHLD)}, errnoRet(unix.EPERM)},
		{"clone into a network namespace", "clone", []uint64{unix.CLONE_NEWNET}, errnoRet(unix.EPERM)},
		{"clone3", "clone3", nil, errnoRet(unix.ENOSYS)},
		{"unix socket", "socket", []uint64{unix.AF_UNIX, unix.SOCK_STREAM}, unix.SECCOMP_RET_ALLOW},
		{"inet socket", "socket", []uint64{unix.AF_INET, unix.SOCK_STREAM}, unix.SECCOMP_RET_ALLOW},
		{"inet6 socket", "socket", []uint64{unix.AF_INET6, unix.SOCK_DGRAM}, unix.SECCOMP_RET_ALLOW},
		{"inet socket, high bits set", "socket", []uint64{unix.AF_INET | 1<<32, unix.SOCK_STREAM}, unix.SECCOMP_RET_ALLOW},
		{"route netlink", "socket", []uint64{unix.AF_NETLINK, unix.SOCK_RAW, unix.NETLINK_ROUTE}, unix.SECCOMP_RET_ALLOW},
		{"audit netlink", "socket", []uint64{unix.AF_NETLINK, unix.SOCK_RAW, unix.NETLINK_AUDIT}, errnoRet(unix.EAFNOSUPPORT)},
		{"generic netlink", "socket", []uint64{unix.AF_NETLINK, unix.SOCK_RAW, unix.NETLINK_GENERIC}, errnoRet(unix.EAFNOSUPPORT)},
		{"sock_diag netlink", "socket", []uint64{unix.AF_NETLINK, unix.SOCK_RAW, unix.NETLINK_SOCK_DIAG}, errnoRet(unix.EAFNOSUPPORT)},
		{"vsock", "socket", []uint64{unix.AF_VSOCK, unix.SOCK_STREAM}, errnoRet(unix.EAFNOSUPPORT)},
		{"vsock, high bits set", "socket", []uint64{unix.AF_VSOCK | 1<<32, unix.SOCK_STREAM}, errnoRet(unix.EAFNOSUPPORT)},
		{"packet socket", "socket", []uint64{unix.AF_PACKET, unix.SOCK_RAW}, errnoRet(unix.EAFNOSUPPORT)},
		{"bluetooth", "socket", []uint64{unix.AF_BLUETOOTH, unix.SOCK_STREAM}, errnoRet(unix.EAFNOSUPPORT)},
		{"alg socket", "socket", []uint64{unix.AF_ALG, unix.SOCK_SEQPACKET}, errnoRet(unix.EAFNOSUPPORT)},
		{"unix socketpair", "socketpair", []uint64{unix.AF_UNIX, unix.SOCK_STREAM}, unix.SECCOMP_RET_ALLOW},
		{"inet socketpair", "socketpair", []uint64{unix.AF_INET, unix.SOCK_STREAM}, errnoRet(unix.EAFNOSUPPORT)},
		{"terminal size", "ioctl", []uint64{0, unix.TIOCGWINSZ}, unix.SECCOMP_RET_ALLOW},
		{"TIOCSTI", "ioctl", []uint64{0, unix.TIOCSTI}, errnoRet(unix.EPERM)},
		{"TIOCSTI, high bit set", "ioctl", []uint64{0, unix.TIOCSTI | 1<<32}, errnoRet(unix.EPERM)},
		{"TIOCLINUX", "ioctl", []uint64{0, unix.TIOCLINUX}, errnoRet(unix.EPERM)},
		{"personality query", "personality", []uint64{0xffffffff}, unix.SECCOMP_RET_ALLOW},
		{"PER_LINUX", "personality", []uint64{0}, unix.SECCOMP_RET_ALLOW},
		{"ADDR_NO_RANDOMIZE", "personality", []uint64{0x0040000 /* ADDR_NO_RANDOMIZE */}, errnoRet(unix.EPERM)},
	} {
		if got := r.answer(t, 0, nr(c.call), c.args...); got != c.want {
			t.Errorf("%s (%s %#x): %s, want %s", c.what, c.call, c.args, describe(got), describe(c.want))
		}
	}
	if got := r.answer(t, 0, 4000); got != errnoRet(unix.ENOSYS) {
		t.Errorf("an unknown call: %s, want ENOSYS", describe(got))
	}
	i386, err := arch.GetInfo("i386")
	if err != nil {
		t.Fatal(err)
	}
	if got := r.answer(t, uint32(i386.ID), i386.SyscallNames["getpid"]); got != errnoRet(unix.ENOSYS) {
		t.Errorf("a call through the i386 ABI: %s, want ENOSYS", describe(got))
	}
}

// syscallNumbers is a python dict literal of the native numbers of names.
func syscallNumbers(t *testing.T, names []string) string {
	native, err := arch.GetInfo("")
	if err != nil {
		t.Fatal(err)
	}
	var parts []string
	for _, n := range names {
		if nr, ok := native.SyscallNames[n]; ok {
			parts = append(parts, fmt.Sprintf("%q: %d", n, nr))
		}
	}
	return "{" + strings.Join(parts, ", ") + "}"
}

// Inside a sandbox: io_uring and the kernel-facing calls fail (ENOSYS, EPERM), sockets of
// other families than unix, inet, inet6 and route netlink fail with EAFNOSUPPORT (vsock, audit
// netlink among them), while route netlink works (what ip addr and if_nameindex(3) read).
func TestContainmentSeccompDefaultDeny(t *testing.T) {
	f := newFixture(t)
	denied := map[string]string{
		"io_uring_setup": "ENOSYS", "io_uring_enter": "ENOSYS", "io_uring_register": "ENOSYS", "clone3": "ENOSYS",
		"bpf": "EPERM", "perf_event_open": "EPERM", "userfaultfd": "EPERM", "keyctl": "EPERM",
		"add_key": "EPERM", "request_key": "EPERM", "kexec_load": "EPERM", "kexec_file_load": "EPERM",
		"init_module": "EPERM", "finit_module": "EPERM", "delete_module": "EPERM", "mount": "EPERM",
		"umount2": "EPERM", "pivot_root": "EPERM", "move_mount": "EPERM", "fsopen": "EPERM", "open_tree": "EPERM",
	}
	names := make([]string, 0, len(denied))
	for n := range denied {
		names = append(names, n)
	}
	slices.Sort(names)
	spec := f.spec(t, fmt.Sprintf(`exec python3 - <<'EOF'
import ctypes, errno, socket
libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long
for name, nr in sorted(%s.items()):
    r = libc.syscall(ctypes.c_long(nr), ctypes.c_long(0), ctypes.c_long(0), ctypes.c_long(0), ctypes.c_long(0), ctypes.c_long(0))
    print(name + ":", "ok" if r >= 0 else errno.errorcode[ctypes.get_errno()])
print("unknown-call:", "ok" if libc.syscall(ctypes.c_long(4000)) >= 0 else errno.errorcode[ctypes.get_errno()])
for label, args in [("vsock", (socket.AF_VSOCK, socket.SOCK_STREAM)), ("netlink-audit", (socket.AF_NETLINK, socket.SOCK_RAW, 9)),
                    ("netlink-generic", (socket.AF_NETLINK, socket.SOCK_RAW, 16)), ("packet", (socket.AF_PACKET, socket.SOCK_RAW)),
                    ("netlink-route", (socket.AF_NETLINK, socket.SOCK_RAW, 0)), ("inet6", (socket.AF_INET6, socket.SOCK_STREAM))]:
    try:
        socket.socket(*args).close(); print("socket-" + label + ": ok")
    except OSError as e:
        print("socket-" + label + ":", errno.errorcode[e.errno])
print("interfaces-by-netlink:", socket.if_nameindex())  # glibc asks route netlink
EOF`, syscallNumbers(t, names)))
	r := f.run(t, spec, 30*time.Second)
	want := map[string]string{
		"unknown-call": "ENOSYS", "socket-vsock": "EAFNOSUPPORT", "socket-netlink-audit": "EAFNOSUPPORT",
		"socket-netlink-generic": "EAFNOSUPPORT", "socket-packet": "EAFNOSUPPORT", "socket-netlink-route": "ok",
		"socket-inet6": "ok", "interfaces-by-netlink": "[(1, 'lo')]",
	}
	for n, e := range denied {
		want[n] = e
	}
	for label, w := range want {
		if !strings.Contains(r.out, label+": "+w+"\n") {
			t.Errorf("%s: want %s, got:\n%s", label, w, r.out)
		}
	}
}

// toolsRecipe is an image with the tools a console user reaches for beyond bash and python3.
var toolsRecipe = images.Recipe{Suite: images.DefaultSuite, Packages: []string{"ca-certificates", "python3", "python3-pip", "git", "procps", "iproute2"}}

// What a console is for still works under the filter: bash and its tools, python3 with ssl,
// sockets, subprocesses, threads and a multiprocessing pool, pip, git, ps and ip (on an image
// that has them).
func TestContainmentSeccompToolsStillWork(t *testing.T) {
	f := newFixture(t)
	tools := imagestest.Build(t, "jail-tools", toolsRecipe.Suite+"-"+toolsRecipe.Key(), toolsRecipe)
	script := `set -e
bash -c 'echo "bash: ${BASH_VERSINFO[0]}"' 
ls -la / >/dev/null && echo "ls: ok"
echo hello > ~/f && grep -q hello ~/f && sort ~/f | uniq | wc -l | sed 's/^/pipes: /'
tar czf /tmp/t.tgz -C ~ f && tar tzf /tmp/t.tgz | sed 's/^/tar: /'
find ~ -name f | wc -l | sed 's/^/find: /'
ps -e >/dev/null && echo "ps: ok"
ip addr | grep -q "inet 127.0.0.1" && echo "ip-addr: ok"
id -un | sed 's/^/id: /'
date +%Y >/dev/null && echo "date: ok"
python3 - <<'EOF'
import ssl, socket, subprocess, threading, multiprocessing, os, json, sqlite3, hashlib
ctx = ssl.create_default_context(); print("ssl:", ctx.verify_mode == ssl.CERT_REQUIRED)
a, b = socket.socketpair(); a.send(b"x"); print("socketpair:", b.recv(1) == b"x")
print("subprocess:", subprocess.run(["echo", "sub"], capture_output=True, text=True).stdout.strip())
out = []; t = threading.Thread(target=lambda: out.append("thread")); t.start(); t.join(); print("threading:", out[0])
with multiprocessing.Pool(2) as p: print("multiprocessing:", sum(p.map(abs, [-1, -2, 3])))
db = sqlite3.connect(":memory:"); print("sqlite:", db.execute("select 1+1").fetchone()[0])
print("hashlib:", hashlib.sha256(b"").hexdigest()[:8])
EOF
pip --version >/dev/null && echo "pip: ok"
git --version >/dev/null && echo "git: ok"
echo "done"`
	spec := f.spec(t, script)
	spec.ImageRoot = tools.Root
	r := f.run(t, spec, 120*time.Second)
	want := []string{"bash: 5", "ls: ok", "pipes: 1", "tar: f", "find: 1", "ps: ok", "ip-addr: ok", "id: alice",
		"date: ok", "ssl: True", "socketpair: True", "subprocess: sub", "threading: thread",
		"multiprocessing: 6", "sqlite: 2", "hashlib: e3b0c442", "pip: ok", "git: ok", "done"}
	for _, w := range want {
		if !strings.Contains(r.out, w+"\n") {
			t.Errorf("output lacks %q (exit %d):\n%s", w, r.code, r.out)
		}
	}
}
