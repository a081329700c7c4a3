package cloudsim

import (
	"fmt"
	"path"
	"strings"
)

// The simulated hosts run AWS-RunShellScript's commands through a small shell: words with
// quotes and escapes, pipelines, &&, ||, ;, newlines, comments, `set -e`, and the redirections
// 2>&1, >/dev/null, 2>/dev/null, and > FILE, >> FILE, < FILE for files under /etc (files.go).
// Anything else a real shell would do differently (variables, command substitution, writing
// other files) is refused with exit 2 rather than guessed at.

type tokKind int

const (
	tokWord  tokKind = iota
	tokAnd           // &&
	tokOr            // ||
	tokPipe          // |
	tokSemi          // ; or newline
	tokRedir         // a redirection, text in the token
)

type token struct {
	kind tokKind
	text string
}

// maxScript bounds a script's size, as SSM bounds a command's parameters.
const maxScript = 64 << 10

// tokenize splits a script into words and operators.
func tokenize(src string) ([]token, error) {
	if len(src) > maxScript {
		return nil, fmt.Errorf("script too long")
	}
	var toks []token
	var word strings.Builder
	inWord := false
	flush := func() {
		if inWord {
			toks = append(toks, token{tokWord, word.String()})
			word.Reset()
			inWord = false
		}
	}
	for i := 0; i < len(src); i++ {
		c := src[i]
		switch {
		case c == '\'':
			j := strings.IndexByte(src[i+1:], '\'')
			if j < 0 {
				return nil, fmt.Errorf("unexpected EOF while looking for matching `''")
			}
			word.WriteString(src[i+1 : i+1+j])
			inWord = true
			i += j + 1
		case c == '"':
			inWord = true
			i++
			for ; i < len(src) && src[i] != '"'; i++ {
				if src[i] == '\\' && i+1 < len(src) && strings.IndexByte("\"\\$`", src[i+1]) >= 0 {
					i++
				} else if src[i] == '$' || src[i] == '`' {
					return nil, fmt.Errorf("variables and command substitution are not simulated")
				}
				word.WriteByte(src[i])
			}
			if i >= len(src) {
				return nil, fmt.Errorf("unexpected EOF while looking for matching `\"'")
			}
		case c == '\\':
			if i+1 < len(src) {
				i++
				if src[i] != '\n' {
					word.WriteByte(src[i])
					inWord = true
				}
			}
		case c == '$' || c == '`':
			return nil, fmt.Errorf("variables and command substitution are not simulated")
		case c == '#' && !inWord:
			for i < len(src) && src[i] != '\n' {
				i++
			}
			i--
		case c == ' ' || c == '\t' || c == '\r':
			flush()
		case c == '\n' || c == ';':
			flush()
			toks = append(toks, token{kind: tokSemi, text: string(c)})
		case c == '&' && i+1 < len(src) && src[i+1] == '&':
			flush()
			toks = append(toks, token{kind: tokAnd})
			i++
		case c == '|' && i+1 < len(src) && src[i+1] == '|':
			flush()
			toks = append(toks, token{kind: tokOr})
			i++
		case c == '|':
			flush()
			toks = append(toks, token{kind: tokPipe})
		case c == '>' || c == '<' || (c == '&' && i+1 < len(src) && src[i+1] == '>'):
			// A redirection; a lone fd digit just before it belongs to it (2>&1).
			var r strings.Builder
			if inWord && (word.String() == "1" || word.String() == "2") {
				r.WriteString(word.String())
				word.Reset()
				inWord = false
			}
			flush()
			for i < len(src) && strings.IndexByte("<>&", src[i]) >= 0 {
				r.WriteByte(src[i])
				i++
			}
			if i < len(src) && (src[i] == '1' || src[i] == '2') && strings.HasSuffix(r.String(), "&") {
				r.WriteByte(src[i])
				i++
			}
			i--
			toks = append(toks, token{tokRedir, r.String()})
		case c == '&':
			return nil, fmt.Errorf("background jobs are not simulated")
		case c == '(' || c == ')' || c == '{' && !inWord:
			return nil, fmt.Errorf("subshells and groups are not simulated")
		default:
			word.WriteByte(c)
			inWord = true
		}
	}
	flush()
	return toks, nil
}

// simpleCmd is one command of a pipeline with its redirections resolved.
type simpleCmd struct {
	args         []string
	stdoutNull   bool
	stderrNull   bool
	stderrToOut  bool
	stdinDevNull bool
	stdoutFile   string // > FILE or >> FILE (under /etc, files.go)
	stdoutAppend bool
	stdinFile    string // < FILE
}

type pipeline []simpleCmd

// andOr is a pipeline followed by && or || pipelines.
type andOr struct {
	first pipeline
	rest  []struct {
		op tokKind
		p  pipeline
	}
}

// parseScript turns tokens into a list of and-or lists.
func parseScript(toks []token) ([]andOr, error) {
	var out []andOr
	i := 0
	parsePipeline := func() (pipeline, error) {
		var p pipeline
		for {
			var c simpleCmd
			for i < len(toks) && (toks[i].kind == tokWord || toks[i].kind == tokRedir) {
				t := toks[i]
				i++
				if t.kind == tokWord {
					c.args = append(c.args, t.text)
					continue
				}
				switch t.text {
				case "2>&1":
					c.stderrToOut = true
					continue
				case ">&2", "1>&2":
					return nil, fmt.Errorf("redirecting stdout to stderr is not simulated")
				}
				if i >= len(toks) || toks[i].kind != tokWord {
					return nil, fmt.Errorf("syntax error near unexpected token `newline'")
				}
				target := toks[i].text
				i++
				if target != "/dev/null" {
					switch t.text {
					case ">", "1>", ">>", "1>>":
						if !path.IsAbs(target) || path.Clean(target) != target {
							return nil, fmt.Errorf("%s: redirection is simulated only to clean absolute paths", target)
						}
						c.stdoutFile, c.stdoutAppend = target, strings.HasSuffix(t.text, ">>")
						continue
					case "<":
						c.stdinFile = target
						continue
					}
					return nil, fmt.Errorf("%s: redirecting %s to a file is not simulated", target, t.text)
				}
				switch t.text {
				case ">", "1>", ">>":
					c.stdoutNull = true
				case "2>", "2>>":
					c.stderrNull = true
				case "&>", "&>>":
					c.stdoutNull, c.stderrNull = true, true
				case "<":
					c.stdinDevNull = true
				default:
					return nil, fmt.Errorf("syntax error near unexpected token `%s'", t.text)
				}
			}
			if len(c.args) == 0 {
				return nil, fmt.Errorf("syntax error: missing command")
			}
			p = append(p, c)
			if i < len(toks) && toks[i].kind == tokPipe {
				i++
				continue
			}
			return p, nil
		}
	}
	for i < len(toks) {
		if toks[i].kind == tokSemi {
			i++
			continue
		}
		first, err := parsePipeline()
		if err != nil {
			return nil, err
		}
		ao := andOr{first: first}
		for i < len(toks) && (toks[i].kind == tokAnd || toks[i].kind == tokOr) {
			op := toks[i].kind
			i++
			for i < len(toks) && toks[i].kind == tokSemi && toks[i].text == "\n" { // a && may end a line
				i++
			}
			p, err := parsePipeline()
			if err != nil {
				return nil, err
			}
			ao.rest = append(ao.rest, struct {
				op tokKind
				p  pipeline
			}{op, p})
		}
		if i < len(toks) && toks[i].kind != tokSemi {
			return nil, fmt.Errorf("syntax error near unexpected token")
		}
		out = append(out, ao)
	}
	return out, nil
}
