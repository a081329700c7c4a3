package main

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/anyops/anyops/internal/testenv"
)

// TestReport proves counts, skip reasons, failure output and the exit code.
func TestReport(t *testing.T) {
	tests := []struct {
		name     string
		in       string
		wantCode int
		want     []string
	}{
		{"all pass", `{"Action":"pass","Package":"p","Test":"TestA"}
{"Action":"pass","Package":"p","Elapsed":1}`, 0, []string{"PASS TestA", "ok   p", "1 passed, 0 failed, 0 skipped"}},
		{"skip keeps reason", `{"Action":"output","Package":"p","Test":"TestB","Output":"    x_test.go:9: no postgres\n"}
{"Action":"skip","Package":"p","Test":"TestB"}
{"Action":"pass","Package":"p","Test":"TestA"}
{"Action":"pass","Package":"p"}`, 0, []string{"p TestB: x_test.go:9: no postgres", "1 passed, 0 failed, 1 skipped"}},
		{"failure shows output", `{"Action":"output","Package":"p","Test":"TestC","Output":"boom\n"}
{"Action":"fail","Package":"p","Test":"TestC"}
{"Action":"fail","Package":"p"}`, 1, []string{"boom", "failed packages: p", "0 passed, 1 failed, 0 skipped"}},
		{"build error", `# p
p/x.go:1: syntax error
{"Action":"output","Package":"p","Output":"FAIL\tp [build failed]\n"}
{"Action":"fail","Package":"p"}`, 1, []string{"syntax error", "failed packages: p"}},
		{"no tests ran", ``, 1, []string{"0 passed, 0 failed, 0 skipped"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out bytes.Buffer
			code := report(strings.NewReader(tt.in), &out)
			if code != tt.wantCode {
				t.Errorf("exit %d, want %d", code, tt.wantCode)
			}
			for _, w := range tt.want {
				if !strings.Contains(out.String(), w) {
					t.Errorf("output lacks %q:\n%s", w, out.String())
				}
			}
		})
	}
}

// TestReportBuildFailures proves that a package that does not build is shown with the
// compiler's errors and counted as a failure in the closing line, from the `go test -json`
// output of Go 1.26 (build-output and build-fail events) over five packages: one that does not
// compile, one that imports it, one whose vet check fails, one that passes with a skip, and
// one whose TestMain exits non-zero after its only test passed (testdata/build-failures.jsonl,
// recorded with `go test -json ./...`).
func TestReportBuildFailures(t *testing.T) {
	in, err := os.Open("testdata/build-failures.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	var out bytes.Buffer
	if code := report(in, &out); code != 1 {
		t.Errorf("exit %d, want 1", code)
	}
	got := out.String()
	for _, want := range []string{
		"package example.com/trfix/bad did not build:\n# example.com/trfix/bad [example.com/trfix/bad.test]\nbad/bad.go:2:23: cannot use \"x\"",
		"package example.com/trfix/dep did not build (example.com/trfix/bad failed to build):\n# example.com/trfix/bad\nbad/bad.go:2:23",
		"package example.com/trfix/vetbad did not build:\n# example.com/trfix/vetbad\n# [example.com/trfix/vetbad]\nvetbad/v_test.go:3:39: fmt.Printf format %d has arg",
		"package example.com/trfix/mainfail (no test failed; the package did):\nPASS\nFAIL\texample.com/trfix/mainfail",
		"example.com/trfix/good TestS: good_test.go:4: no reason",
		// Three builds and one TestMain failed: four failures, though no test did.
		"\n2 passed, 4 failed, 1 skipped\n",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("report lacks %q:\n%s", want, got)
		}
	}
}

// TestReportCountsBrowserTests proves make test's closing line counts the browser tests with
// the Go tests: node --test with web/e2e/gotest-reporter.mjs over testdata/e2e (a pass, a
// skip, a subtest failing under its parent, a file that does not load) writes events that the
// report counts, shows the failures of, and lists the skip of, beside a Go package's tests.
func TestReportCountsBrowserTests(t *testing.T) {
	node, err := exec.LookPath("node")
	if err != nil {
		testenv.Missing(t, "node (scripts/test-deps.sh installs it)")
	}
	results := filepath.Join(t.TempDir(), "browser.jsonl")
	reporter := filepath.Join(testenv.RepoRoot(), "web", "e2e", "gotest-reporter.mjs")
	cmd := exec.Command(node, "--test", "--test-concurrency=1", "--test-reporter="+reporter,
		"--test-reporter-destination="+results, "e2e/sample.test.mjs", "e2e/broken.test.mjs")
	cmd.Dir = "testdata"
	if out, err := cmd.CombinedOutput(); err == nil {
		t.Fatalf("node --test passed over tests that fail:\n%s", out)
	}
	browser, err := os.ReadFile(results)
	if err != nil {
		t.Fatal(err)
	}
	goTests := `{"Action":"pass","Package":"p","Test":"TestA"}
{"Action":"pass","Package":"p"}
`
	var out bytes.Buffer
	if code := report(strings.NewReader(string(browser)+goTests), &out); code != 1 {
		t.Errorf("exit %d, want 1", code)
	}
	for _, want := range []string{
		"FAIL e2e/sample.test.mjs",
		"e2e/sample.test.mjs is skipped: no Chromium here",
		"e2e/sample.test.mjs has subtests/one fails:\nError: the page showed nothing",
		"e2e/broken.test.mjs (loading the file):",
		"no-such-module-anywhere",
		// passes, has subtests/one passes, TestA; one fails, has subtests, the broken file.
		"\n3 passed, 3 failed, 1 skipped\n",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("report lacks %q:\n%s", want, out.String())
		}
	}
}

// TestReportCountsSkippedBrowserTests proves a browser run that cannot start (no Chromium)
// is not a silent "0 skipped": scripts/browser-test.sh reports every test of web/e2e as
// skipped with the reason, and the closing line counts them; with CI set it is a failure.
func TestReportCountsSkippedBrowserTests(t *testing.T) {
	e2e, err := filepath.Glob(filepath.Join(testenv.RepoRoot(), "web", "e2e", "*.test.mjs"))
	if err != nil || len(e2e) == 0 {
		t.Fatalf("no browser tests in web/e2e: %v", err)
	}
	topLevel := regexp.MustCompile("(?m)^test\\(")
	tests := 0
	for _, f := range e2e {
		src, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		tests += len(topLevel.FindAll(src, -1))
	}
	for _, tt := range []struct {
		name     string
		ci       string
		wantCode int
		want     string
	}{
		{"skipped and counted", "", 0, fmt.Sprintf("\n1 passed, 0 failed, %d skipped\n", tests)},
		{"CI fails", "true", 1, "\n1 passed, 1 failed, 0 skipped\n"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			results := filepath.Join(t.TempDir(), "browser.jsonl")
			cmd := exec.Command(filepath.Join(testenv.RepoRoot(), "scripts", "browser-test.sh"))
			cmd.Env = append(os.Environ(), "CHROMIUM="+filepath.Join(t.TempDir(), "no-chromium"),
				"ANYOPS_BROWSER_REPORT="+results, "CI="+tt.ci)
			if out, err := cmd.CombinedOutput(); (err == nil) != (tt.wantCode == 0) {
				t.Fatalf("browser-test.sh: %v\n%s", err, out)
			}
			browser, err := os.ReadFile(results)
			if err != nil {
				t.Fatal(err)
			}
			var out bytes.Buffer
			code := report(strings.NewReader(string(browser)+`{"Action":"pass","Package":"p","Test":"TestA"}`+"\n"), &out)
			if code != tt.wantCode || !strings.Contains(out.String(), tt.want) || !strings.Contains(out.String(), "Chromium at ") {
				t.Errorf("exit %d (want %d), report lacks %q or the reason:\n%s", code, tt.wantCode, tt.want, out.String())
			}
		})
	}
}
