package config

import (
	"bytes"
	"strings"
	"testing"

	"github.com/spf13/pflag"
)

// TestEnvFallback proves the precedence: a flag on the command line beats its ANYOPS_*
// variable, which beats the default; a secret is masked when printed.
func TestEnvFallback(t *testing.T) {
	tests := []struct {
		name     string
		args     []string
		env      map[string]string
		wantAddr string
	}{
		{"default", nil, nil, "127.0.0.1:7233"},
		{"env", nil, map[string]string{"ANYOPS_TEMPORAL_ADDR": "t:1"}, "t:1"},
		{"flag beats env", []string{"--temporal-addr=f:2"}, map[string]string{"ANYOPS_TEMPORAL_ADDR": "t:1"}, "f:2"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for k, v := range tt.env {
				t.Setenv(k, v)
			}
			fs := pflag.NewFlagSet("x", pflag.ContinueOnError)
			b := NewBinder(fs)
			var tc Temporal
			var db DB
			b.BindTemporal(&tc)
			b.BindDB(&db)
			if err := fs.Parse(tt.args); err != nil {
				t.Fatal(err)
			}
			if err := b.Load(); err != nil {
				t.Fatal(err)
			}
			if tc.Address != tt.wantAddr {
				t.Fatalf("address %q, want %q", tc.Address, tt.wantAddr)
			}
		})
	}
}

func TestPrintMasksSecrets(t *testing.T) {
	t.Setenv("ANYOPS_DB_DSN", "postgres://u:hunter2@h/db")
	fs := pflag.NewFlagSet("x", pflag.ContinueOnError)
	b := NewBinder(fs)
	var db DB
	b.BindDB(&db)
	if err := b.Load(); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	b.Print(&out)
	if strings.Contains(out.String(), "hunter2") || !strings.Contains(out.String(), "********") {
		t.Fatalf("secret not masked:\n%s", out.String())
	}
}

func TestBadEnvValueNamesVariable(t *testing.T) {
	t.Setenv("ANYOPS_SIM_SPEED", "fast")
	fs := pflag.NewFlagSet("x", pflag.ContinueOnError)
	b := NewBinder(fs)
	var c Cloudsim
	b.BindCloudsim(&c, "")
	if err := b.Load(); err == nil || !strings.Contains(err.Error(), "ANYOPS_SIM_SPEED") {
		t.Fatalf("err = %v, want it to name ANYOPS_SIM_SPEED", err)
	}
}
