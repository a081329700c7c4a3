// The simulated hosts' command interpreter: runScript runs an AWS-RunShellScript script through
// the shell of shell.go and dispatches each command to the tool that simulates it, one file per
// tool (builtins.go, drbd.go, mdadm.go, fs.go, nfs.go, systemd.go, apt.go, tls.go).

package cloudsim

import (
	"fmt"
	"time"
)

// result is what one simulated command did and how long it took in simulated time.
type result struct {
	out, err string
	code     int
	dur      time.Duration
}

func ok(out string) result { return result{out: out} }

func fail(code int, format string, args ...any) result {
	return result{err: fmt.Sprintf(format, args...) + "\n", code: code}
}

// execCtx is one script run on one host.
type execCtx struct {
	s       *Sim
	h       *host
	in      *instance
	now     time.Time // simulated time at which the current command starts
	errexit bool
	exited  bool
	hung    bool // a command blocks on a stale NFS mount: nothing after it runs
	depth   int
}

type builtin func(x *execCtx, args []string, stdin string) result

// commands is every command the simulated hosts know; anything else is exit 127.
var commands map[string]builtin

func init() {
	commands = map[string]builtin{
		"true":             func(*execCtx, []string, string) result { return ok("") },
		"false":            func(*execCtx, []string, string) result { return result{code: 1} },
		":":                func(*execCtx, []string, string) result { return ok("") },
		"echo":             cmdEcho,
		"hostname":         func(x *execCtx, _ []string, _ string) result { return ok(x.h.Hostname + "\n") },
		"uptime":           cmdUptime,
		"sleep":            cmdSleep,
		"exit":             cmdExit,
		"set":              cmdSet,
		"sudo":             cmdSudo,
		"bash":             cmdShC,
		"sh":               cmdShC,
		"cat":              cmdCat,
		"grep":             cmdGrep,
		"head":             headTail(false),
		"tail":             headTail(true),
		"wc":               cmdWc,
		"ls":               cmdLs,
		"printf":           cmdPrintf,
		"cmp":              cmdCmp,
		"mv":               cmdMv,
		"rm":               cmdRm,
		"mkdir":            cmdMkdir,
		"readlink":         cmdReadlink,
		"drbdadm":          cmdDrbdadm,
		"drbdmeta":         cmdDrbdmeta,
		"sed":              cmdSed,
		"mdadm":            cmdMdadm,
		"fsck":             cmdFsck,
		"fsck.ext4":        cmdFsck,
		"e2fsck":           cmdFsck,
		"xfs_repair":       cmdFsck,
		"mount":            cmdMount,
		"mkfs.ext4":        cmdMkfs("ext4"),
		"mkfs.xfs":         cmdMkfs("xfs"),
		"mkfs":             cmdMkfs(""),
		"blkid":            cmdBlkid,
		"umount":           cmdUmount,
		"mountpoint":       cmdMountpoint,
		"exportfs":         cmdExportfs,
		"systemctl":        cmdSystemctl,
		"service":          cmdService,
		"apt-get":          cmdAptGet,
		"dpkg-query":       cmdDpkgQuery,
		"openssl":          cmdOpenssl,
		"curl":             cmdCurl,
		"heartbleeder":     cmdHeartbleeder,
		"anyops-bootstrap": cmdBootstrap,
		"getent":           cmdGetent,
		"timeout":          cmdTimeout,
		"touch":            cmdTouch,
		"tee":              cmdTee,
		"stat":             cmdStat,
		"test":             cmdTest(false),
		"[":                cmdTest(true),
		"df":               cmdDf,
	}
}

// runScript runs a script on a host at simulated time now.
func (s *Sim) runScript(h *host, in *instance, script string, now time.Time) result {
	x := &execCtx{s: s, h: h, in: in, now: now}
	r := x.run(script)
	r.dur = x.now.Sub(now)
	if x.hung {
		r.dur = hangForever
	}
	return r
}

func (x *execCtx) run(script string) result {
	var total result
	toks, err := tokenize(script)
	if err != nil {
		return fail(2, "_script.sh: %s", err)
	}
	lists, err := parseScript(toks)
	if err != nil {
		return fail(2, "_script.sh: %s", err)
	}
	for _, ao := range lists {
		r := x.pipeline(ao.first)
		total.out += r.out
		total.err += r.err
		code := r.code
		// As bash: set -e ends the script only for a failure of the list's last pipeline; a
		// failure left of && or || is what the list tests.
		lastRan := len(ao.rest) == 0
		for i, next := range ao.rest {
			if x.exited || x.hung {
				break
			}
			if (next.op == tokAnd && code == 0) || (next.op == tokOr && code != 0) {
				r := x.pipeline(next.p)
				total.out += r.out
				total.err += r.err
				code = r.code
				lastRan = i == len(ao.rest)-1
			}
		}
		total.code = code
		if x.exited || x.hung || (x.errexit && code != 0 && lastRan) {
			break
		}
	}
	return total
}

func (x *execCtx) pipeline(p pipeline) result {
	var out result
	stdin := ""
	for i, c := range p {
		if x.exited || x.hung {
			break
		}
		if c.stdinDevNull {
			stdin = ""
		}
		r, redirected := x.redirect(c, &stdin)
		if !redirected {
			r = x.command(c.args, stdin)
		}
		x.now = x.now.Add(r.dur)
		x.s.nfsHealth(x.now) // what the command changed shows at its own moment
		if c.stderrToOut {
			r.out, r.err = r.out+r.err, ""
		}
		if c.stdoutNull {
			r.out = ""
		}
		if c.stdoutFile != "" && !redirected {
			if werr := x.writeFile(c.stdoutFile, r.out, true); werr != nil {
				r.err, r.code = r.err+werr.err, werr.code
			}
			r.out = ""
		}
		if c.stderrNull {
			r.err = ""
		}
		out.err += r.err
		out.code = r.code
		if i == len(p)-1 {
			out.out = r.out
		} else {
			stdin = r.out
		}
	}
	return out
}

// redirect opens a command's redirections before it runs, as the shell does: `< FILE` reads
// the file into stdin, `> FILE` empties the file (`>>` keeps it). When one cannot be opened
// the command does not run, and the shell's error is its result (redirected is then true).
func (x *execCtx) redirect(c simpleCmd, stdin *string) (r result, redirected bool) {
	if c.stdinFile != "" {
		content, errRes := x.readFile("_script.sh: line 1", c.stdinFile)
		if errRes != nil {
			return *errRes, true
		}
		*stdin = content
	}
	if c.stdoutFile != "" {
		if errRes := x.checkWrite("_script.sh: line 1", c.stdoutFile); errRes != nil {
			return *errRes, true
		}
		if errRes := x.writeFile(c.stdoutFile, "", c.stdoutAppend); errRes != nil {
			return *errRes, true
		}
	}
	return result{}, false
}

func (x *execCtx) command(args []string, stdin string) result {
	if r, injected := x.injectedFailure(args); injected {
		return r
	}
	fn, ok := commands[args[0]]
	if !ok {
		return fail(127, "_script.sh: line 1: %s: command not found", args[0])
	}
	return fn(x, args[1:], stdin) // commands that only read state take no simulated time
}
