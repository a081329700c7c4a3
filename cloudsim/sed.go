// sed: the stream editor's substitute command, which is what scripts on the hosts use it for
// (editing a metadata dump: drbdmeta.go). `sed [-E|-r] [-e SCRIPT]... [SCRIPT] [FILE...]`, each
// script one or more `s/RE/REPLACEMENT/[g]` separated by `;` or newlines, with any delimiter;
// REs are POSIX basic ones (extended with -E), the replacement knows & and \1…\9.

package cloudsim

import (
	"fmt"
	"regexp"
	"strings"
)

type sedSubst struct {
	re     *regexp.Regexp
	repl   string
	global bool
}

func cmdSed(x *execCtx, args []string, stdin string) result {
	var scripts, files []string
	extended := false
	for i := 0; i < len(args); i++ {
		switch a := args[i]; {
		case a == "-e" && i+1 < len(args):
			scripts, i = append(scripts, args[i+1]), i+1
		case a == "-E" || a == "-r":
			extended = true
		case strings.HasPrefix(a, "-") && a != "-":
			return fail(1, "sed: option %s is not simulated", a)
		default:
			files = append(files, a)
		}
	}
	if len(scripts) == 0 && len(files) > 0 {
		scripts, files = files[:1], files[1:] // without -e the first operand is the script
	}
	if len(scripts) == 0 {
		return fail(1, "Usage: sed [-E] [-e script]... [script] [file...]")
	}
	var subs []sedSubst
	for _, sc := range scripts {
		parsed, err := parseSed(sc, extended)
		if err != nil {
			return fail(1, "sed: -e expression #1: %v", err)
		}
		subs = append(subs, parsed...)
	}
	input := stdin
	if len(files) > 0 {
		input = ""
		for _, f := range files {
			if f == "-" {
				input += stdin
				continue
			}
			text, bad := x.readFile("sed", f)
			if bad != nil {
				return fail(2, "sed: can't read %s: No such file or directory", f)
			}
			input += text
		}
	}
	lines := strings.SplitAfter(input, "\n")
	var out strings.Builder
	for _, l := range lines {
		if l == "" {
			continue
		}
		body, nl := strings.CutSuffix(l, "\n")
		for _, s := range subs {
			body = s.apply(body)
		}
		out.WriteString(body)
		if nl {
			out.WriteString("\n")
		}
	}
	return ok(out.String())
}

func (s sedSubst) apply(line string) string {
	n := 0
	return s.re.ReplaceAllStringFunc(line, func(m string) string {
		n++
		if n > 1 && !s.global {
			return m
		}
		sub := s.re.FindStringSubmatch(m)
		var b strings.Builder
		for i := 0; i < len(s.repl); i++ {
			c := s.repl[i]
			switch {
			case c == '&':
				b.WriteString(sub[0])
			case c == '\\' && i+1 < len(s.repl):
				i++
				if d := s.repl[i]; d >= '1' && d <= '9' {
					if k := int(d - '0'); k < len(sub) {
						b.WriteString(sub[k])
					}
				} else if d == 'n' {
					b.WriteByte('\n')
				} else {
					b.WriteByte(d)
				}
			default:
				b.WriteByte(c)
			}
		}
		return b.String()
	})
}

// parseSed reads s commands separated by ; or newlines.
func parseSed(script string, extended bool) ([]sedSubst, error) {
	var out []sedSubst
	rest := strings.TrimSpace(script)
	for rest != "" {
		if rest[0] == ';' || rest[0] == '\n' {
			rest = strings.TrimSpace(rest[1:])
			continue
		}
		if rest[0] != 's' || len(rest) < 2 {
			return nil, fmt.Errorf("unknown command: `%c' (only s is simulated)", rest[0])
		}
		delim := rest[1]
		parts := []string{}
		var cur strings.Builder
		i := 2
		for ; i < len(rest) && len(parts) < 2; i++ {
			switch c := rest[i]; {
			case c == '\\' && i+1 < len(rest) && rest[i+1] == delim:
				cur.WriteByte(delim)
				i++
			case c == '\\' && i+1 < len(rest):
				cur.WriteByte(c)
				cur.WriteByte(rest[i+1])
				i++
			case c == delim:
				parts = append(parts, cur.String())
				cur.Reset()
			default:
				cur.WriteByte(c)
			}
		}
		if len(parts) < 2 {
			return nil, fmt.Errorf("unterminated `s' command")
		}
		flags := ""
		for ; i < len(rest) && rest[i] != ';' && rest[i] != '\n'; i++ {
			flags += string(rest[i])
		}
		flags = strings.TrimSpace(flags)
		if flags != "" && flags != "g" {
			return nil, fmt.Errorf("unknown option to `s': %q (only g is simulated)", flags)
		}
		pattern := parts[0]
		if !extended {
			pattern = breToERE(pattern)
		}
		re, err := regexp.Compile(pattern)
		if err != nil {
			return nil, fmt.Errorf("invalid regular expression %q: %v", parts[0], err)
		}
		out = append(out, sedSubst{re: re, repl: parts[1], global: flags == "g"})
		rest = strings.TrimSpace(rest[i:])
	}
	return out, nil
}

// breToERE turns a POSIX basic RE into Go's syntax: \( \) \{ \} \| \+ \? are the operators,
// and ( ) { } | + ? are plain characters.
func breToERE(bre string) string {
	var b strings.Builder
	for i := 0; i < len(bre); i++ {
		c := bre[i]
		switch {
		case c == '\\' && i+1 < len(bre):
			i++
			switch d := bre[i]; d {
			case '(', ')', '{', '}', '|', '+', '?':
				b.WriteByte(d)
			default:
				b.WriteByte('\\')
				b.WriteByte(d)
			}
		case strings.IndexByte("(){}|+?", c) >= 0:
			b.WriteByte('\\')
			b.WriteByte(c)
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}
