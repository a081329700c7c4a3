package jail

import (
	"encoding/binary"
	"fmt"

	seccomp "github.com/elastic/go-seccomp-bpf"
	"github.com/elastic/go-seccomp-bpf/arch"
	"golang.org/x/net/bpf"
	"golang.org/x/sys/unix"

	"github.com/anyops/anyops/sandboxd/jail/internal/sandboxinit"
)

// deniedSyscalls fail with EPERM inside a sandbox: the obvious ways out of it or into the
// kernel (mounts, ptrace, kernel modules, keyrings, new namespaces, kexec, bpf, handles to
// files outside the root, swapping, rebooting, the kernel log).
var deniedSyscalls = []string{
	"mount", "umount2", "pivot_root", "chroot",
	"fsopen", "fsconfig", "fsmount", "fspick", "move_mount", "open_tree", "mount_setattr",
	"ptrace", "process_vm_readv", "process_vm_writev",
	"init_module", "finit_module", "delete_module",
	"kexec_load", "kexec_file_load",
	"add_key", "request_key", "keyctl",
	"unshare", "setns",
	"bpf", "perf_event_open", "userfaultfd",
	"open_by_handle_at", "name_to_handle_at",
	"swapon", "swapoff", "reboot", "syslog", "acct", "quotactl",
	"iopl", "ioperm", "vhangup",
}

// namespaceCloneFlags are the clone(2) flags that create namespaces.
var namespaceCloneFlags = []uint64{
	unix.CLONE_NEWNS, unix.CLONE_NEWUTS, unix.CLONE_NEWIPC, unix.CLONE_NEWUSER,
	unix.CLONE_NEWPID, unix.CLONE_NEWNET, unix.CLONE_NEWCGROUP,
}

// sandboxPolicy is the seccomp policy of every sandboxed command.
func sandboxPolicy() seccomp.Policy {
	var conditional []seccomp.NameWithConditions
	// clone's first argument is its flags: any namespace flag is refused. (Each entry is
	// an alternative; BitsSet matches when any of the bits is set.)
	conditional = append(conditional, seccomp.NameWithConditions{
		Name:       "clone",
		Conditions: seccomp.ArgumentConditions{{Argument: 0, Operation: seccomp.BitsSet, Value: namespaceMask()}},
	})
	// (TIOCSTI and TIOCLINUX, which push bytes into a terminal's input, are refused by the
	// guard filter: see guardFilter.)
	return seccomp.Policy{
		DefaultAction: seccomp.ActionAllow,
		Syscalls: []seccomp.SyscallGroup{
			{Action: seccomp.ActionErrno, Names: deniedSyscalls},
			{Action: seccomp.ActionErrno, NamesWithCondtions: conditional},
			// clone3 passes its flags in memory, where a filter cannot look: report it as
			// missing so libc falls back to clone, whose flags the filter checks.
			{Action: seccomp.ActionErrno | seccomp.Action(unix.ENOSYS), Names: []string{"clone3"}},
		},
	}
}

func namespaceMask() uint64 {
	var m uint64
	for _, f := range namespaceCloneFlags {
		m |= f
	}
	return m
}

// seccompFilters assembles the filters every sandboxed command runs under, once per
// manager: the policy above, then the guard. The init only installs them.
func seccompFilters() ([][]sandboxinit.Filter, error) {
	p := sandboxPolicy()
	insts, err := p.Assemble()
	if err != nil {
		return nil, fmt.Errorf("jail: seccomp policy: %w", err)
	}
	raw, err := bpf.Assemble(insts)
	if err != nil {
		return nil, fmt.Errorf("jail: seccomp policy: %w", err)
	}
	policy := make([]sandboxinit.Filter, len(raw))
	for i, in := range raw {
		policy[i] = sandboxinit.Filter{Code: in.Op, Jt: in.Jt, Jf: in.Jf, K: in.K}
	}
	guard, err := guardFilter()
	if err != nil {
		return nil, err
	}
	return [][]sandboxinit.Filter{policy, guard}, nil
}

// guardFilter is a second, hand-written filter for what go-seccomp-bpf's policies cannot say:
//
//   - every system call made through an ABI other than the native one (i386's int 0x80 on
//     x86_64) is refused with ENOSYS: the library lets a foreign architecture through to the
//     default action (allow), which would reopen unshare(CLONE_NEWUSER) and mount under
//     their 32-bit numbers;
//   - ioctl TIOCSTI and TIOCLINUX are refused by the low 32 bits of the request, which are
//     all the kernel looks at: the library compares all 64, so setting a high bit passed.
func guardFilter() ([]sandboxinit.Filter, error) {
	native, err := arch.GetInfo("")
	if err != nil {
		return nil, err
	}
	const (
		offNr   = 0  // seccomp_data.nr
		offArch = 4  // seccomp_data.arch
		offArg1 = 24 // seccomp_data.args[1], low word on little-endian
	)
	arg1Lo := uint32(offArg1)
	if binary.NativeEndian.Uint16([]byte{1, 0}) != 1 {
		arg1Lo += 4 // big-endian: the low word is the second
	}
	ret := func(k uint32) sandboxinit.Filter { return sandboxinit.Filter{Code: unix.BPF_RET | unix.BPF_K, K: k} }
	load := func(off uint32) sandboxinit.Filter {
		return sandboxinit.Filter{Code: unix.BPF_LD | unix.BPF_W | unix.BPF_ABS, K: off}
	}
	jeq := func(k uint32, jt, jf uint8) sandboxinit.Filter {
		return sandboxinit.Filter{Code: unix.BPF_JMP | unix.BPF_JEQ | unix.BPF_K, K: k, Jt: jt, Jf: jf}
	}
	return []sandboxinit.Filter{
		/* 0 */ load(offArch),
		/* 1 */ jeq(uint32(native.ID), 1, 0),
		/* 2 */ ret(unix.SECCOMP_RET_ERRNO | uint32(unix.ENOSYS)),
		/* 3 */ load(offNr),
		/* 4 */ jeq(uint32(unix.SYS_IOCTL), 0, 4), // not ioctl: to 9
		/* 5 */ load(arg1Lo),
		/* 6 */ jeq(unix.TIOCSTI, 1, 0), // to 8
		/* 7 */ jeq(unix.TIOCLINUX, 0, 1), // to 8, else 9
		/* 8 */ ret(unix.SECCOMP_RET_ERRNO | uint32(unix.EPERM)),
		/* 9 */ ret(unix.SECCOMP_RET_ALLOW),
	}, nil
}
