package jail

import (
	"encoding/binary"
	"fmt"
	"slices"
	"strings"

	"github.com/elastic/go-seccomp-bpf/arch"
	"golang.org/x/sys/unix"

	"github.com/anyops/anyops/sandboxd/jail/internal/sandboxinit"
)

// The sandbox's syscall policy is default-deny: a call is allowed only when syscallPolicy
// names it, with Docker's default profile (moby/moby profiles/seccomp/default.json, for a
// container without capabilities) as the reference, less what a console does not need and an
// escape would. syscallPolicy is the one list; docs/sandbox-syscalls.md is generated from it
// (go test ./sandboxd/jail -run TestSyscallPolicyDoc -update), and so is the filter:
// compileSyscallPolicy turns it into one classic BPF program that finds a call's answer by a
// binary search over ranges of call numbers (go-seccomp-bpf provides the architectures' call
// tables). A short program matters: the kernel compiles it, and prepares its per-call cache by
// running it for every call number, at every sandbox's start.
//
// What a call that is not allowed gets:
//   - EPERM for the calls listed as denied: the known ways out of a sandbox or into the
//     kernel, said plainly;
//   - ENOSYS for every call not listed at all, and for clone3 and io_uring: "the kernel has no
//     such call" is what libc and runtimes already handle by falling back (glibc's clone3 to
//     clone, whose flags the filter can check; liburing, libuv and tokio to epoll and threads),
//     where EPERM would be reported as a failure;
//   - EAFNOSUPPORT for a socket of another family than unix, inet, inet6 and netlink-route:
//     what the kernel itself answers for a family it lacks, which programs probing one (AF_VSOCK,
//     say) expect.
//
// AF_NETLINK is allowed for NETLINK_ROUTE only: it is read-only without CAP_NET_ADMIN and
// shows just the sandbox's own network namespace, and `ip addr`, getifaddrs(3) (Python's
// psutil and netifaces, Go's net.Interfaces) and glibc's getaddrinfo(AI_ADDRCONFIG) use it.
// Audit, sock_diag, uevents, netfilter, generic netlink and the rest are refused.

// answer is what a rule gives the calls it names.
type answer string

const (
	allow         answer = "allow"
	denyEPERM     answer = "EPERM"
	denyENOSYS    answer = "ENOSYS"
	denyNoFamily  answer = "EAFNOSUPPORT"
	allowIf       answer = "allow if"
	defaultENOSYS answer = "ENOSYS (default)"
)

const netlinkRoute = 0 // NETLINK_ROUTE, the protocol argument of socket(AF_NETLINK, ...)

// syscallRule is one line of the policy.
type syscallRule struct {
	names  []string
	answer answer
	when   string // for allowIf: the condition, checked by the call's block in argumentChecks
	why    string
	// guarded rules are the other half of an allowIf rule: the answer its check gives when the
	// condition does not hold (documentation; argumentChecks decides).
	guarded bool
}

// namespaceCloneFlags are the clone(2) flags that create namespaces.
var namespaceCloneFlags = []uint64{
	unix.CLONE_NEWNS, unix.CLONE_NEWUTS, unix.CLONE_NEWIPC, unix.CLONE_NEWUSER,
	unix.CLONE_NEWPID, unix.CLONE_NEWNET, unix.CLONE_NEWCGROUP,
}

func namespaceMask() uint64 {
	var m uint64
	for _, f := range namespaceCloneFlags {
		m |= f
	}
	return m
}

// syscallPolicy is evaluated in order; the first rule naming a call (and, for allowIf, whose
// condition holds) decides. Names a CPU architecture lacks are skipped on it.
var syscallPolicy = []syscallRule{
	{answer: allow, why: "memory: the allocator, the dynamic loader, mapped files, JITs", names: []string{
		"brk", "mmap", "munmap", "mprotect", "mremap", "madvise", "mincore", "msync",
		"mlock", "mlock2", "munlock", "mlockall", "munlockall", "membarrier", "memfd_create",
		"remap_file_pages", "pkey_alloc", "pkey_free", "pkey_mprotect", "map_shadow_stack", "mseal"}},
	{answer: allow, why: "threads and their synchronisation (pthreads, Python's threading)", names: []string{
		"futex", "futex_waitv", "futex_wake", "futex_wait", "futex_requeue", "set_tid_address",
		"set_robust_list", "get_robust_list", "rseq", "arch_prctl", "set_thread_area", "get_thread_area"}},
	{answer: allow, why: "scheduling of the sandbox's own tasks (its cgroup bounds the CPU it gets)", names: []string{
		"sched_yield", "sched_getaffinity", "sched_setaffinity", "sched_getparam", "sched_setparam",
		"sched_getscheduler", "sched_setscheduler", "sched_get_priority_max", "sched_get_priority_min",
		"sched_rr_get_interval", "sched_getattr", "sched_setattr", "getcpu"}},
	{answer: allow, why: "files and directories, inside the sandbox's own root and home", names: []string{
		"read", "write", "readv", "writev", "pread64", "pwrite64", "preadv", "pwritev", "preadv2", "pwritev2",
		"open", "openat", "openat2", "creat", "close", "close_range", "lseek",
		"stat", "fstat", "lstat", "newfstatat", "statx", "access", "faccessat", "faccessat2",
		"readlink", "readlinkat", "getdents", "getdents64", "getcwd", "chdir", "fchdir",
		"mkdir", "mkdirat", "rmdir", "rename", "renameat", "renameat2", "link", "linkat",
		"symlink", "symlinkat", "unlink", "unlinkat", "chmod", "fchmod", "fchmodat", "fchmodat2",
		"chown", "fchown", "lchown", "fchownat", "umask", "truncate", "ftruncate", "fallocate",
		"fadvise64", "readahead", "fsync", "fdatasync", "sync", "syncfs", "sync_file_range",
		"flock", "fcntl", "dup", "dup2", "dup3", "pipe", "pipe2", "splice", "tee", "vmsplice",
		"sendfile", "copy_file_range", "utime", "utimes", "utimensat", "futimesat",
		"statfs", "fstatfs", "mknod", "mknodat", "cachestat"}},
	{answer: allow, why: "extended attributes (ls -l, cp -a, tar); security ones need capabilities", names: []string{
		"getxattr", "lgetxattr", "fgetxattr", "listxattr", "llistxattr", "flistxattr",
		"setxattr", "lsetxattr", "fsetxattr", "removexattr", "lremovexattr", "fremovexattr",
		"getxattrat", "setxattrat", "listxattrat", "removexattrat"}},
	{answer: allow, why: "file change notification (editors, reloaders) and Linux AIO (databases)", names: []string{
		"inotify_init", "inotify_init1", "inotify_add_watch", "inotify_rm_watch",
		"io_setup", "io_destroy", "io_submit", "io_cancel", "io_getevents", "io_pgetevents"}},
	{answer: allow, why: "waiting on many things at once: event loops (asyncio, node, libuv)", names: []string{
		"poll", "ppoll", "select", "pselect6", "epoll_create", "epoll_create1", "epoll_ctl",
		"epoll_wait", "epoll_pwait", "epoll_pwait2", "eventfd", "eventfd2", "signalfd", "signalfd4",
		"timerfd_create", "timerfd_settime", "timerfd_gettime"}},
	{answer: allow, why: "processes: a shell's fork, exec and wait; signals within the sandbox's PID namespace", names: []string{
		"fork", "vfork", "execve", "execveat", "exit", "exit_group", "wait4", "waitid",
		"kill", "tkill", "tgkill", "getpid", "getppid", "gettid", "getpgid", "setpgid", "getpgrp",
		"getsid", "setsid", "pidfd_open", "pidfd_send_signal", "process_mrelease",
		"rt_sigaction", "rt_sigprocmask", "rt_sigreturn", "rt_sigpending", "rt_sigsuspend",
		"rt_sigtimedwait", "rt_sigqueueinfo", "rt_tgsigqueueinfo", "sigaltstack", "pause", "restart_syscall"}},
	{answer: allowIf, names: []string{"clone"}, when: "no namespace flag (CLONE_NEWNS, NEWUTS, NEWIPC, NEWUSER, NEWPID, NEWNET, NEWCGROUP)",
		why: "threads and processes (fork and pthread_create are clone), never a new namespace"},
	{answer: allow, why: "identity: reading it, and the calls login tools make (without capabilities they change nothing)", names: []string{
		"getuid", "geteuid", "getgid", "getegid", "getresuid", "getresgid", "getgroups",
		"setuid", "setgid", "setreuid", "setregid", "setresuid", "setresgid", "setgroups",
		"setfsuid", "setfsgid", "capget", "capset"}},
	{answer: allow, why: "limits and priorities (only lowered without capabilities), resource use", names: []string{
		"getrlimit", "setrlimit", "prlimit64", "getrusage", "getpriority", "setpriority",
		"ioprio_get", "ioprio_set", "times"}},
	{answer: allow, why: "clocks and timers (adjtimex and clock_adjtime only read without CAP_SYS_TIME)", names: []string{
		"clock_gettime", "clock_getres", "clock_nanosleep", "nanosleep", "gettimeofday", "time",
		"alarm", "getitimer", "setitimer", "timer_create", "timer_settime", "timer_gettime",
		"timer_getoverrun", "timer_delete", "adjtimex", "clock_adjtime"}},
	{answer: allow, why: "the system as the sandbox sees it, randomness, process attributes", names: []string{
		"uname", "sysinfo", "getrandom", "prctl"}},
	{answer: allowIf, names: []string{"personality"}, when: "PER_LINUX, UNAME26 or a query (0, 8, 0x20000, 0x20008, 0xffffffff), as Docker",
		why: "programs query their execution domain; none may switch it to one with other rules"},
	{answer: allow, why: "a program restricting itself further (browsers, systemd tools): filters and rules only add", names: []string{
		"seccomp", "landlock_create_ruleset", "landlock_add_rule", "landlock_restrict_self"}},
	{answer: allow, why: "System V and POSIX IPC, inside the sandbox's own IPC namespace", names: []string{
		"shmget", "shmat", "shmdt", "shmctl", "semget", "semop", "semtimedop", "semctl",
		"msgget", "msgsnd", "msgrcv", "msgctl", "mq_open", "mq_unlink", "mq_timedsend",
		"mq_timedreceive", "mq_notify", "mq_getsetattr"}},
	{answer: allowIf, names: []string{"socket"}, when: "family AF_UNIX, AF_INET or AF_INET6, or AF_NETLINK with protocol NETLINK_ROUTE",
		why: "local and IP sockets (the network namespace and its policy decide where they reach); route netlink to read the sandbox's own interfaces"},
	{answer: allowIf, names: []string{"socketpair"}, when: "family AF_UNIX",
		why: "pipes between processes (multiprocessing, subprocess)"},
	{answer: allow, why: "using sockets", names: []string{
		"bind", "listen", "accept", "accept4", "connect", "getsockname", "getpeername",
		"getsockopt", "setsockopt", "sendto", "recvfrom", "sendmsg", "recvmsg", "sendmmsg", "recvmmsg", "shutdown"}},
	{answer: allowIf, names: []string{"ioctl"}, when: "the request is not TIOCSTI or TIOCLINUX",
		why: "terminals and devices; those two push bytes into a terminal's input"},

	{answer: denyENOSYS, names: []string{"clone3"},
		why: "its flags are in memory the filter cannot read: libc falls back to clone, whose flags it checks"},
	{answer: denyENOSYS, names: []string{"io_uring_setup", "io_uring_enter", "io_uring_register"},
		why: "a large kernel surface with a history of escapes; its users fall back to epoll and threads when the kernel lacks it"},
	{answer: denyNoFamily, names: []string{"socket", "socketpair"}, guarded: true,
		why: "any other family: vsock (the hypervisor), netlink audit and the rest, packet, bluetooth, ..."},
	{answer: denyEPERM, names: []string{"clone"}, guarded: true, why: "with a namespace flag"},
	{answer: denyEPERM, names: []string{"ioctl"}, guarded: true, why: "TIOCSTI or TIOCLINUX"},
	{answer: denyEPERM, names: []string{"personality"}, guarded: true, why: "to any other execution domain"},
	{answer: denyEPERM, why: "mounts and roots: the sandbox's file system is built for it and fixed", names: []string{
		"mount", "umount2", "pivot_root", "chroot", "fsopen", "fsconfig", "fsmount", "fspick",
		"move_mount", "open_tree", "open_tree_attr", "mount_setattr", "statmount", "listmount"}},
	{answer: denyEPERM, why: "namespaces: no new ones, no joining others", names: []string{"unshare", "setns"}},
	{answer: denyEPERM, why: "other processes' memory and files", names: []string{
		"ptrace", "process_vm_readv", "process_vm_writev", "kcmp", "pidfd_getfd", "process_madvise"}},
	{answer: denyEPERM, why: "the kernel itself: modules, kexec, BPF, perf, userfaultfd, keyrings", names: []string{
		"init_module", "finit_module", "delete_module", "kexec_load", "kexec_file_load",
		"bpf", "perf_event_open", "userfaultfd", "add_key", "request_key", "keyctl"}},
	{answer: denyEPERM, why: "files by handle, outside any root", names: []string{"open_by_handle_at", "name_to_handle_at"}},
	{answer: denyEPERM, why: "the host's administration: swap, reboot, the kernel log, accounting, quotas, the clock, names", names: []string{
		"swapon", "swapoff", "reboot", "syslog", "acct", "quotactl", "quotactl_fd",
		"settimeofday", "clock_settime", "sethostname", "setdomainname", "vhangup",
		"fanotify_init", "fanotify_mark", "lookup_dcookie"}},
	{answer: denyEPERM, why: "raw hardware and memory placement", names: []string{
		"iopl", "ioperm", "modify_ldt", "mbind", "set_mempolicy", "get_mempolicy",
		"set_mempolicy_home_node", "migrate_pages", "move_pages"}},
}

// Labels of the blocks that answer a call.
const (
	labelAllow        = "allow"
	labelEPERM        = "eperm"
	labelENOSYS       = "enosys"
	labelEAFNOSUPPORT = "eafnosupport"
)

var answerLabel = map[answer]string{allow: labelAllow, denyEPERM: labelEPERM, denyENOSYS: labelENOSYS, denyNoFamily: labelEAFNOSUPPORT}

// argumentChecks are the blocks of the allowIf calls, by name: each ends in a jump to an
// answer. They read the low 32 bits of an argument, which are all the kernel reads of it (ints,
// clone's legacy flags, ioctl's request): a high bit set cannot slip a value past.
var argumentChecks = map[string]func(g *bpfProgram){
	"clone": func(g *bpfProgram) {
		g.load(argLow(0))
		g.jumpIfBits(uint32(namespaceMask()), labelEPERM, labelAllow)
	},
	"ioctl": func(g *bpfProgram) {
		g.load(argLow(1))
		g.jumpIf(unix.TIOCSTI, labelEPERM, "")
		g.jumpIf(unix.TIOCLINUX, labelEPERM, labelAllow)
	},
	"socket": func(g *bpfProgram) {
		g.load(argLow(0))
		g.jumpIf(unix.AF_UNIX, labelAllow, "")
		g.jumpIf(unix.AF_INET, labelAllow, "")
		g.jumpIf(unix.AF_INET6, labelAllow, "")
		g.jumpIf(unix.AF_NETLINK, "", labelEAFNOSUPPORT)
		g.load(argLow(2))
		g.jumpIf(netlinkRoute, labelAllow, labelEAFNOSUPPORT)
	},
	"socketpair": func(g *bpfProgram) {
		g.load(argLow(0))
		g.jumpIf(unix.AF_UNIX, labelAllow, labelEAFNOSUPPORT)
	},
	"personality": func(g *bpfProgram) {
		g.load(argLow(0))
		for _, v := range []uint32{0, 8, 0x20000, 0x20008} {
			g.jumpIf(v, labelAllow, "")
		}
		g.jumpIf(0xffffffff, labelAllow, labelEPERM)
	},
}

// argLow is the offset of the low word of seccomp_data.args[i].
func argLow(i uint32) uint32 {
	off := 16 + 8*i
	if binary.NativeEndian.Uint16([]byte{1, 0}) != 1 {
		off += 4 // big-endian: the low word is the second
	}
	return off
}

// callSpan is a run of call numbers, from lo up to the next span's lo, with one answer.
type callSpan struct {
	lo    uint32
	label string
}

// callSpans are the answers of every call number of info, in runs: the first rule naming a
// call decides, a call no rule names (and every number past the table) gets ENOSYS.
func callSpans(info *arch.Info) ([]callSpan, error) {
	answers := map[uint32]string{}
	for _, r := range syscallPolicy {
		if r.guarded {
			continue
		}
		for _, name := range r.names {
			nr, ok := info.SyscallNames[name]
			if !ok {
				continue // not a call of this architecture
			}
			if _, decided := answers[uint32(nr)]; decided {
				continue
			}
			label := answerLabel[r.answer]
			if r.answer == allowIf {
				if argumentChecks[name] == nil {
					return nil, fmt.Errorf("jail: seccomp policy: %s has no argument check", name)
				}
				label = "check " + name
			}
			answers[uint32(nr)] = label
		}
	}
	var spans []callSpan
	top := uint32(0)
	for nr := range answers {
		top = max(top, nr)
	}
	for nr := uint32(0); nr <= top+1; nr++ {
		label, ok := answers[nr]
		if !ok {
			label = labelENOSYS
		}
		if len(spans) == 0 || spans[len(spans)-1].label != label || strings.HasPrefix(label, "check ") {
			spans = append(spans, callSpan{nr, label})
		}
	}
	return spans, nil
}

// compileSyscallPolicy is the filter every sandboxed command runs under:
//
//	a call of another ABI (i386's int 0x80 on x86_64, x32)  → ENOSYS
//	its number, by binary search over callSpans             → its answer, or its argument check
func compileSyscallPolicy(info *arch.Info) ([]sandboxinit.Filter, error) {
	spans, err := callSpans(info)
	if err != nil {
		return nil, err
	}
	var g bpfProgram
	g.load(4) // seccomp_data.arch
	g.jumpIf(uint32(info.ID), "", labelENOSYS)
	g.load(0) // seccomp_data.nr
	if info.ID == arch.X86_64.ID {
		g.jumpIfAtLeast(uint32(arch.X32.SeccompMask), labelENOSYS, "") // x32 shares x86_64's arch value
	}
	// The search tree: a node compares the number with the first of its upper half's spans.
	type node struct {
		label string
		spans []callSpan
	}
	var pending []node
	target := func(spans []callSpan) string {
		if len(spans) == 1 {
			return spans[0].label
		}
		l := fmt.Sprintf("node %d-%d", spans[0].lo, len(spans))
		pending = append(pending, node{l, spans})
		return l
	}
	emit := func(spans []callSpan) {
		mid := len(spans) / 2
		g.jumpIfAtLeast(spans[mid].lo, target(spans[mid:]), target(spans[:mid]))
	}
	emit(spans)
	for len(pending) > 0 {
		n := pending[0]
		pending = pending[1:]
		g.label(n.label)
		emit(n.spans)
	}
	names := make([]string, 0, len(argumentChecks))
	for name := range argumentChecks {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		g.label("check " + name)
		argumentChecks[name](&g)
	}
	g.label(labelAllow)
	g.ret(unix.SECCOMP_RET_ALLOW)
	g.label(labelEPERM)
	g.ret(unix.SECCOMP_RET_ERRNO | uint32(unix.EPERM))
	g.label(labelEAFNOSUPPORT)
	g.ret(unix.SECCOMP_RET_ERRNO | uint32(unix.EAFNOSUPPORT))
	g.label(labelENOSYS)
	g.ret(unix.SECCOMP_RET_ERRNO | uint32(unix.ENOSYS))
	return g.assemble()
}

// seccompFilters assembles the filters every sandboxed command runs under, once per manager
// (one: compileSyscallPolicy's); the init only installs them.
func seccompFilters() ([][]sandboxinit.Filter, error) {
	native, err := arch.GetInfo("")
	if err != nil {
		return nil, err
	}
	f, err := compileSyscallPolicy(native)
	if err != nil {
		return nil, err
	}
	return [][]sandboxinit.Filter{f}, nil
}

// syscallPolicyDoc renders syscallPolicy as the markdown of docs/sandbox-syscalls.md.
func syscallPolicyDoc() string {
	var b strings.Builder
	b.WriteString("# The sandbox's system calls\n\n")
	b.WriteString("Generated from `syscallPolicy` in sandboxd/jail/seccomp.go by\n")
	b.WriteString("`go test ./sandboxd/jail -run TestSyscallPolicyDoc -update`; the comment there says why the\n")
	b.WriteString("answers are what they are. The first rule that names a call decides; a call no rule names\n")
	b.WriteString("fails with ENOSYS, and so does every call made through another ABI than the native one\n")
	b.WriteString("(i386's `int 0x80` or x32 on x86_64). An \"allow if\" row's refusal is the row further down\n")
	b.WriteString("that names the same call.\n\n")
	b.WriteString("| answer | calls | why |\n|---|---|---|\n")
	for _, r := range syscallPolicy {
		a := string(r.answer)
		if r.answer == allowIf {
			a = "allow if " + r.when
		}
		fmt.Fprintf(&b, "| %s | %s | %s |\n", a, "`"+strings.Join(r.names, "` `")+"`", r.why)
	}
	fmt.Fprintf(&b, "| %s | every other call | the kernel \"has no such call\": libc falls back where it can |\n", defaultENOSYS)
	return b.String()
}

// bpfProgram is a classic BPF program with named jump targets; "" goes on to the next
// instruction.
type bpfProgram struct {
	insts  []sandboxinit.Filter
	jumps  map[int][2]string // instruction index -> true, false target
	labels map[string]int
}

func (g *bpfProgram) add(f sandboxinit.Filter) { g.insts = append(g.insts, f) }

func (g *bpfProgram) load(off uint32) {
	g.add(sandboxinit.Filter{Code: unix.BPF_LD | unix.BPF_W | unix.BPF_ABS, K: off})
}

func (g *bpfProgram) ret(k uint32) { g.add(sandboxinit.Filter{Code: unix.BPF_RET | unix.BPF_K, K: k}) }

func (g *bpfProgram) jump(code uint16, k uint32, ifTrue, ifFalse string) {
	if g.jumps == nil {
		g.jumps = map[int][2]string{}
	}
	g.jumps[len(g.insts)] = [2]string{ifTrue, ifFalse}
	g.add(sandboxinit.Filter{Code: code, K: k})
}

// jumpIf compares the accumulator with k, jumpIfAtLeast orders it, jumpIfBits tests it for
// any of the bits of k.
func (g *bpfProgram) jumpIf(k uint32, ifTrue, ifFalse string) {
	g.jump(unix.BPF_JMP|unix.BPF_JEQ|unix.BPF_K, k, ifTrue, ifFalse)
}

func (g *bpfProgram) jumpIfAtLeast(k uint32, ifTrue, ifFalse string) {
	g.jump(unix.BPF_JMP|unix.BPF_JGE|unix.BPF_K, k, ifTrue, ifFalse)
}

func (g *bpfProgram) jumpIfBits(k uint32, ifTrue, ifFalse string) {
	g.jump(unix.BPF_JMP|unix.BPF_JSET|unix.BPF_K, k, ifTrue, ifFalse)
}

func (g *bpfProgram) label(name string) {
	if g.labels == nil {
		g.labels = map[string]int{}
	}
	g.labels[name] = len(g.insts)
}

// assemble resolves the jumps, which only go forward and less than 256 instructions.
func (g *bpfProgram) assemble() ([]sandboxinit.Filter, error) {
	for i, targets := range g.jumps {
		for k, name := range targets {
			skip := 0
			if name != "" {
				at, ok := g.labels[name]
				if !ok || at <= i || at-i-1 > 255 {
					return nil, fmt.Errorf("jail: guard filter: bad jump from %d to %q", i, name)
				}
				skip = at - i - 1
			}
			if k == 0 {
				g.insts[i].Jt = uint8(skip)
			} else {
				g.insts[i].Jf = uint8(skip)
			}
		}
	}
	return g.insts, nil
}
