// Command testreport turns `go test -json` on stdin into what a person reads after `make test`:
// each top-level test and its first-level subtests with their result, the reason of every skip,
// the output of every failure, and a closing "N passed, N failed, N skipped" line. It exits
// non-zero when anything failed, including a package that did not build.
package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
)

type event struct {
	Action  string
	Package string
	Test    string
	Elapsed float64
	Output  string
}

type key struct{ pkg, test string }

func main() {
	os.Exit(report(os.Stdin, os.Stdout))
}

func report(in io.Reader, out io.Writer) int {
	outputs := map[key]*strings.Builder{}
	var passed, failed, skipped int
	var failedPkgs []string
	var skips, fails []string
	sc := bufio.NewScanner(in)
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	for sc.Scan() {
		line := sc.Bytes()
		var e event
		if err := json.Unmarshal(line, &e); err != nil || e.Action == "" {
			fmt.Fprintln(out, string(line)) // build errors come as plain text
			continue
		}
		k := key{e.Package, e.Test}
		switch e.Action {
		case "output":
			b := outputs[k]
			if b == nil {
				b = &strings.Builder{}
				outputs[k] = b
			}
			if b.Len() < 64<<10 {
				b.WriteString(e.Output)
			}
		case "pass", "fail", "skip":
			if e.Test == "" {
				if e.Action == "fail" {
					failedPkgs = append(failedPkgs, e.Package)
					if b := outputs[k]; b != nil && !strings.Contains(b.String(), "--- FAIL") {
						fails = append(fails, fmt.Sprintf("package %s:\n%s", e.Package, b.String()))
					}
				}
				if e.Action != "skip" {
					fmt.Fprintf(out, "%-4s %s (%.1fs)\n", map[string]string{"pass": "ok", "fail": "FAIL"}[e.Action], e.Package, e.Elapsed)
				}
				continue
			}
			depth := strings.Count(e.Test, "/")
			switch e.Action {
			case "pass":
				passed++
			case "fail":
				failed++
				fails = append(fails, fmt.Sprintf("%s %s:\n%s", e.Package, e.Test, text(outputs[k])))
			case "skip":
				skipped++
				skips = append(skips, fmt.Sprintf("%s %s: %s", e.Package, e.Test, skipReason(text(outputs[k]))))
			}
			// Fuzz corpus entries are subtests too; their parent's line says enough.
			if depth == 0 || (depth == 1 && !strings.HasPrefix(e.Test, "Fuzz")) {
				fmt.Fprintf(out, "  %-4s %s (%.2fs)\n", strings.ToUpper(e.Action), e.Test, e.Elapsed)
			}
			delete(outputs, k)
		}
	}
	if len(skips) > 0 {
		sort.Strings(skips)
		fmt.Fprintln(out, "\nskipped:")
		for _, s := range skips {
			fmt.Fprintln(out, "  "+s)
		}
	}
	if len(fails) > 0 {
		fmt.Fprintln(out, "\nfailures:")
		for _, f := range fails {
			fmt.Fprintln(out, f)
		}
	}
	if len(failedPkgs) > 0 {
		fmt.Fprintf(out, "\nfailed packages: %s\n", strings.Join(failedPkgs, " "))
	}
	fmt.Fprintf(out, "\n%d passed, %d failed, %d skipped\n", passed, failed, skipped)
	if failed > 0 || len(failedPkgs) > 0 || passed == 0 {
		return 1
	}
	return 0
}

func text(b *strings.Builder) string {
	if b == nil {
		return ""
	}
	return b.String()
}

// skipReason keeps the line that t.Skip printed.
func skipReason(output string) string {
	for _, l := range strings.Split(output, "\n") {
		l = strings.TrimSpace(l)
		if l != "" && !strings.HasPrefix(l, "=== ") && !strings.HasPrefix(l, "--- ") {
			return l
		}
	}
	return "(no reason given)"
}
