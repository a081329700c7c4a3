// Command testreport turns `go test -json` on stdin into what a person reads after `make test`:
// each top-level test and its first-level subtests with their result, the reason of every skip,
// the output of every failure, the compiler's errors for a package that did not build, and a
// closing "N passed, N failed, N skipped" line. A package that fails without a failing test in
// it (it did not build, its TestMain exited non-zero, it timed out) counts as one failure.
//
// Files named as arguments are read first, in the same format: `make test` passes the browser
// tests' results (scripts/browser-test.sh writes them), so the closing line counts every test
// that ran or was skipped. It exits non-zero when anything failed or nothing passed.
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

// event is one line of `go test -json` (cmd/test2json). Since Go 1.24 the build's own output
// comes as "build-output" events keyed by ImportPath, closed by "build-fail", and a package
// whose build failed ends with a "fail" event whose FailedBuild names that ImportPath.
type event struct {
	Action      string
	Package     string
	Test        string
	Elapsed     float64
	Output      string
	ImportPath  string
	FailedBuild string
}

type key struct{ pkg, test string }

func main() {
	var inputs []io.Reader
	for _, name := range os.Args[1:] {
		f, err := os.Open(name)
		if err != nil {
			fmt.Fprintf(os.Stderr, "testreport: %v\n", err)
			os.Exit(2)
		}
		inputs = append(inputs, f) // closed when the process exits
	}
	os.Exit(report(io.MultiReader(append(inputs, os.Stdin)...), os.Stdout))
}

// maxOutput bounds what is kept of one test's or one build's output.
const maxOutput = 64 << 10

// collector gathers the output of tests and builds as the events come.
type collector map[key]*strings.Builder

func (c collector) add(k key, s string) {
	b := c[k]
	if b == nil {
		b = &strings.Builder{}
		c[k] = b
	}
	if b.Len() < maxOutput {
		b.WriteString(s)
	}
}

func (c collector) text(k key) string {
	if b := c[k]; b != nil {
		return b.String()
	}
	return ""
}

func report(in io.Reader, out io.Writer) int {
	outputs := collector{}
	builds := collector{} // compiler output by import path (key.pkg)
	var passed, failed, skipped int
	var failedPkgs []string
	var skips, fails []string
	failedTests := map[string]int{} // failed tests by package
	shownBuilds := map[string]bool{}
	sc := bufio.NewScanner(in)
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	for sc.Scan() {
		line := sc.Bytes()
		var e event
		if err := json.Unmarshal(line, &e); err != nil || e.Action == "" {
			fmt.Fprintln(out, string(line)) // before Go 1.24, build errors came as plain text
			continue
		}
		k := key{e.Package, e.Test}
		switch e.Action {
		case "build-output":
			builds.add(key{pkg: e.ImportPath}, e.Output)
		case "output":
			outputs.add(k, e.Output)
		case "pass", "fail", "skip":
			if e.Test == "" {
				if e.Action == "fail" {
					failedPkgs = append(failedPkgs, e.Package)
					switch {
					case e.FailedBuild != "":
						failed++
						fails = append(fails, buildFailure(e.Package, e.FailedBuild, builds.text(key{pkg: e.FailedBuild}), shownBuilds))
					case failedTests[e.Package] == 0:
						// Nothing in it failed, yet the package did: TestMain, a panic outside a
						// test, a timeout. Its output says which.
						failed++
						fails = append(fails, fmt.Sprintf("package %s (no test failed; the package did):\n%s", e.Package, outputs.text(k)))
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
				failedTests[e.Package]++
				fails = append(fails, fmt.Sprintf("%s %s:\n%s", e.Package, e.Test, outputs.text(k)))
			case "skip":
				skipped++
				skips = append(skips, fmt.Sprintf("%s %s: %s", e.Package, e.Test, skipReason(outputs.text(k))))
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

// buildFailure describes a package that did not build, with the compiler's output of the
// build that failed. Packages that import a broken one all name the same build: its output is
// shown once, and the others point to it.
func buildFailure(pkg, build, output string, shown map[string]bool) string {
	head := fmt.Sprintf("package %s did not build", pkg)
	if build != pkg && !strings.HasPrefix(build, pkg+" ") {
		head += fmt.Sprintf(" (%s failed to build)", build)
	}
	switch {
	case shown[build]:
		return head + ": its compiler errors are shown above"
	case output == "":
		shown[build] = true
		return head + ": the build printed nothing"
	}
	shown[build] = true
	return head + ":\n" + output
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
