// Shell built-ins and the small text tools scripts pipe through: echo, true, false, :, exit, set,
// sudo, bash -c, sleep, hostname, uptime, cat, grep, head, tail, wc.

package cloudsim

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"
)

func cmdEcho(_ *execCtx, args []string, _ string) result {
	nl := "\n"
	if len(args) > 0 && args[0] == "-n" {
		nl, args = "", args[1:]
	}
	return ok(strings.Join(args, " ") + nl)
}

func cmdUptime(x *execCtx, _ []string, _ string) result {
	up := x.now.Sub(x.h.BootedAt).Round(time.Minute)
	return ok(fmt.Sprintf(" %s up %s,  1 user,  load average: 0.08, 0.03, 0.05\n", x.now.Format("15:04:05"), up))
}

func cmdSleep(_ *execCtx, args []string, _ string) result {
	if len(args) != 1 {
		return fail(1, "sleep: missing operand")
	}
	secs, err := strconv.ParseFloat(strings.TrimSuffix(args[0], "s"), 64)
	if err != nil || secs < 0 || secs > 86400 {
		return fail(1, "sleep: invalid time interval '%s'", args[0])
	}
	return result{dur: time.Duration(secs * float64(time.Second))}
}

func cmdExit(x *execCtx, args []string, _ string) result {
	code := 0
	if len(args) > 0 {
		n, err := strconv.Atoi(args[0])
		if err != nil {
			return fail(2, "_script.sh: exit: %s: numeric argument required", args[0])
		}
		code = n & 0xff
	}
	x.exited = true
	return result{code: code}
}

func cmdSet(x *execCtx, args []string, _ string) result {
	for i := 0; i < len(args); i++ {
		a := args[i]
		switch {
		case a == "-o" || a == "+o":
			i++ // pipefail and friends: accepted, pipelines already report their last command
		case strings.HasPrefix(a, "-"):
			if strings.Contains(a, "e") {
				x.errexit = true
			}
		case strings.HasPrefix(a, "+"):
			if strings.Contains(a, "e") {
				x.errexit = false
			}
		default:
			return fail(2, "_script.sh: set: %s: positional parameters are not simulated", a)
		}
	}
	return ok("")
}

func cmdSudo(x *execCtx, args []string, stdin string) result {
	for len(args) > 0 && strings.HasPrefix(args[0], "-") {
		if args[0] == "-u" && len(args) > 1 {
			args = args[1:]
		}
		args = args[1:]
	}
	if len(args) == 0 {
		return fail(1, "usage: sudo command")
	}
	return x.command(args, stdin)
}

func cmdShC(x *execCtx, args []string, _ string) result {
	for len(args) > 0 && args[0] != "-c" && strings.HasPrefix(args[0], "-") {
		args = args[1:]
	}
	if len(args) < 2 || args[0] != "-c" {
		return fail(2, "cloudsim: only `bash -c SCRIPT` is simulated")
	}
	if x.depth > 4 {
		return fail(2, "cloudsim: nested shells too deep")
	}
	sub := &execCtx{s: x.s, h: x.h, in: x.in, now: x.now, depth: x.depth + 1}
	r := sub.run(args[1])
	r.dur = sub.now.Sub(x.now)
	x.hung = sub.hung
	return r
}

// timeoutSignals are the signals timeout -s takes, by name and number.
var timeoutSignals = map[string]int{"HUP": 1, "INT": 2, "QUIT": 3, "KILL": 9, "USR1": 10, "USR2": 12, "ALRM": 14, "TERM": 15}

// cmdTimeout is coreutils' timeout DURATION COMMAND: the command is killed when it runs longer
// (a call blocked on a hard NFS mount dies of the signal too: the kernel's NFS waits are
// killable), and timeout exits 124 — 128+9 for KILL, 128+signal with --preserve-status. The
// effects of a simulated command happen when it starts; a killed one keeps them.
func cmdTimeout(x *execCtx, args []string, stdin string) result {
	sig, preserve := 15, false
	for len(args) > 0 && strings.HasPrefix(args[0], "-") {
		a := args[0]
		switch {
		case a == "--preserve-status":
			preserve = true
		case a == "--foreground" || a == "-v" || a == "--verbose":
		case (a == "-s" || a == "-k") && len(args) > 1:
			if a == "-s" {
				n, known := timeoutSignals[strings.TrimPrefix(strings.ToUpper(args[1]), "SIG")]
				if v, err := strconv.Atoi(args[1]); err == nil {
					n, known = v, v > 0 && v < 65
				}
				if !known {
					return fail(125, "timeout: %s: invalid signal", args[1])
				}
				sig = n
			}
			args = args[1:]
		case strings.HasPrefix(a, "--signal=") || strings.HasPrefix(a, "--kill-after="):
			if name, ok := strings.CutPrefix(a, "--signal="); ok {
				n, known := timeoutSignals[strings.TrimPrefix(strings.ToUpper(name), "SIG")]
				if !known {
					return fail(125, "timeout: %s: invalid signal", name)
				}
				sig = n
			}
		default:
			return fail(125, "timeout: unrecognized option '%s'", a)
		}
		args = args[1:]
	}
	if len(args) < 2 {
		return fail(125, "timeout: missing operand\nTry 'timeout --help' for more information.")
	}
	limit, err := parseTimeoutDuration(args[0])
	if err != nil {
		return fail(125, "timeout: invalid time interval '%s'", args[0])
	}
	r := x.command(args[1:], stdin)
	if limit == 0 || (!x.hung && r.dur <= limit) {
		return r
	}
	x.hung = false
	code := 124
	switch {
	case preserve:
		code = 128 + sig
	case sig == 9:
		code = 128 + 9
	}
	return result{out: r.out, err: r.err, code: code, dur: limit}
}

// parseTimeoutDuration reads timeout's DURATION: a number with an optional s, m, h or d.
func parseTimeoutDuration(v string) (time.Duration, error) {
	unit := time.Second
	switch {
	case strings.HasSuffix(v, "s"):
		v = strings.TrimSuffix(v, "s")
	case strings.HasSuffix(v, "m"):
		v, unit = strings.TrimSuffix(v, "m"), time.Minute
	case strings.HasSuffix(v, "h"):
		v, unit = strings.TrimSuffix(v, "h"), time.Hour
	case strings.HasSuffix(v, "d"):
		v, unit = strings.TrimSuffix(v, "d"), 24*time.Hour
	}
	n, err := strconv.ParseFloat(v, 64)
	if err != nil || n < 0 || n > 1e6 {
		return 0, fmt.Errorf("invalid duration")
	}
	return time.Duration(n * float64(unit)), nil
}

func cmdGrep(_ *execCtx, args []string, stdin string) result {
	quiet, invert, count, fixed, whole := false, false, false, false, false
	var pattern string
	for _, a := range args {
		switch {
		case a == "-q":
			quiet = true
		case a == "-v":
			invert = true
		case a == "-c":
			count = true
		case a == "-F":
			fixed = true
		case a == "-x":
			whole = true
		case a == "-E":
		case strings.HasPrefix(a, "-") && pattern == "":
			return fail(2, "grep: option %s is not simulated", a)
		case pattern == "":
			pattern = a
		default:
			return fail(2, "grep: reading files is not simulated; pipe into grep")
		}
	}
	if fixed {
		pattern = regexp.QuoteMeta(pattern)
	}
	if whole {
		pattern = "^(?:" + pattern + ")$"
	}
	re, err := regexp.Compile(pattern)
	if err != nil {
		return fail(2, "grep: invalid pattern: %v", err)
	}
	var hits []string
	for _, line := range splitLines(stdin) {
		if re.MatchString(line) != invert {
			hits = append(hits, line)
		}
	}
	code := 0
	if len(hits) == 0 {
		code = 1
	}
	switch {
	case quiet:
		return result{code: code}
	case count:
		return result{out: fmt.Sprintf("%d\n", len(hits)), code: code}
	}
	return result{out: joinLines(hits), code: code}
}

func headTail(tail bool) builtin {
	return func(_ *execCtx, args []string, stdin string) result {
		n := 10
		for i := 0; i < len(args); i++ {
			a := args[i]
			switch {
			case a == "-n" && i+1 < len(args):
				v, err := strconv.Atoi(args[i+1])
				if err != nil {
					return fail(1, "invalid number of lines: %s", args[i+1])
				}
				n, i = v, i+1
			case strings.HasPrefix(a, "-") && len(a) > 1:
				v, err := strconv.Atoi(a[1:])
				if err != nil {
					return fail(1, "invalid option %s", a)
				}
				n = v
			default:
				return fail(1, "reading files is not simulated")
			}
		}
		lines := splitLines(stdin)
		n = max(0, min(n, len(lines)))
		if tail {
			return ok(joinLines(lines[len(lines)-n:]))
		}
		return ok(joinLines(lines[:n]))
	}
}

func cmdWc(_ *execCtx, args []string, stdin string) result {
	if len(args) != 1 || args[0] != "-l" {
		return fail(1, "wc: only wc -l is simulated")
	}
	return ok(fmt.Sprintf("%d\n", len(splitLines(stdin))))
}

func splitLines(s string) []string {
	s = strings.TrimSuffix(s, "\n")
	if s == "" {
		return nil
	}
	return strings.Split(s, "\n")
}

func joinLines(l []string) string {
	if len(l) == 0 {
		return ""
	}
	return strings.Join(l, "\n") + "\n"
}

// cmdPrintf is the shell's printf: %s, %d and %% conversions and the escapes \n, \t, \\, \'
// and \" in the format, which is used again until the arguments are used up — so
// `printf '%s\n' LINE…` writes one line per argument.
func cmdPrintf(_ *execCtx, args []string, _ string) result {
	if len(args) == 0 {
		return fail(2, "printf: usage: printf format [arguments]")
	}
	format, rest := args[0], args[1:]
	var b strings.Builder
	for {
		conversions, err := printfOnce(&b, format, &rest)
		if err != nil {
			return result{out: b.String(), err: "printf: " + err.Error() + "\n", code: 1}
		}
		if len(rest) == 0 || conversions == 0 {
			return ok(b.String())
		}
	}
}

func printfOnce(b *strings.Builder, format string, args *[]string) (conversions int, err error) {
	next := func() string {
		if len(*args) == 0 {
			return ""
		}
		a := (*args)[0]
		*args = (*args)[1:]
		return a
	}
	for i := 0; i < len(format); i++ {
		c := format[i]
		switch {
		case c == '\\' && i+1 < len(format):
			i++
			switch e := format[i]; e {
			case 'n':
				b.WriteByte('\n')
			case 't':
				b.WriteByte('\t')
			case '\\', '\'', '"':
				b.WriteByte(e)
			default:
				return conversions, fmt.Errorf("escape \\%c is not simulated", e)
			}
		case c == '%' && i+1 < len(format):
			i++
			switch format[i] {
			case '%':
				b.WriteByte('%')
			case 's':
				conversions++
				b.WriteString(next())
			case 'd':
				conversions++
				a := next()
				if a == "" {
					a = "0"
				}
				n, err := strconv.ParseInt(a, 10, 64)
				if err != nil {
					return conversions, fmt.Errorf("%s: invalid number", a)
				}
				b.WriteString(strconv.FormatInt(n, 10))
			default:
				return conversions, fmt.Errorf("%%%c: only %%s, %%d and %%%% are simulated", format[i])
			}
		default:
			b.WriteByte(c)
		}
	}
	return conversions, nil
}
