package main

import (
	"bytes"
	"os"
	"strings"
	"testing"
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
