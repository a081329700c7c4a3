package main

import (
	"bytes"
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
