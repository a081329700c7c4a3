package config

import (
	"bytes"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/spf13/pflag"

	"github.com/anyops/anyops/sandboxd/network"
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

// The network settings parse from their ANYOPS_SANDBOXD_* variables (and their defaults) into
// the sandboxes' network configuration; a bad value is an error naming the setting.
func TestSandboxdNetworkConfig(t *testing.T) {
	parse := func(t *testing.T, env map[string]string) (network.Config, error) {
		for k, v := range env {
			t.Setenv(k, v)
		}
		fs := pflag.NewFlagSet("x", pflag.ContinueOnError)
		b := NewBinder(fs)
		var sc Sandboxd
		b.BindSandboxd(&sc, "")
		if err := fs.Parse(nil); err != nil {
			t.Fatal(err)
		}
		if err := b.Load(); err != nil {
			t.Fatal(err)
		}
		return sc.NetworkConfig()
	}
	def, err := parse(t, nil)
	if err != nil {
		t.Fatal(err)
	}
	if def.Pool != network.DefaultPool || !slices.Equal(def.PrivateRanges, network.DefaultPrivateRanges) ||
		!slices.Equal(def.Allowlist, network.DefaultAllowlist) || def.DNS != nil || def.ThrottleBytesPerSecond != network.DefaultThrottle {
		t.Fatalf("defaults: %+v", def)
	}
	got, err := parse(t, map[string]string{
		"ANYOPS_SANDBOXD_NETWORK_POOL":    "10.50.0.0/20",
		"ANYOPS_SANDBOXD_PRIVATE_RANGES":  "10.0.0.0/8, fd00::/8",
		"ANYOPS_SANDBOXD_PROXY_ALLOWLIST": "pypi.org,*.example.org",
		"ANYOPS_SANDBOXD_UPLINK":          "ens5",
		"ANYOPS_SANDBOXD_DNS":             "10.0.0.2, [fd00::53]:5353",
		"ANYOPS_SANDBOXD_TARPIT_RATE":     "4096",
	})
	if err != nil {
		t.Fatal(err)
	}
	want := network.Config{
		Pool:                   netip.MustParsePrefix("10.50.0.0/20"),
		PrivateRanges:          []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("fd00::/8")},
		Allowlist:              []string{"pypi.org", "*.example.org"},
		Uplink:                 "ens5",
		DNS:                    []netip.AddrPort{netip.MustParseAddrPort("10.0.0.2:53"), netip.MustParseAddrPort("[fd00::53]:5353")},
		ThrottleBytesPerSecond: 4096,
	}
	if got.Pool != want.Pool || !slices.Equal(got.PrivateRanges, want.PrivateRanges) || !slices.Equal(got.Allowlist, want.Allowlist) ||
		got.Uplink != want.Uplink || !slices.Equal(got.DNS, want.DNS) || got.ThrottleBytesPerSecond != want.ThrottleBytesPerSecond {
		t.Fatalf("got %+v, want %+v", got, want)
	}
	for env, value := range map[string]string{
		"ANYOPS_SANDBOXD_NETWORK_POOL":   "ten",
		"ANYOPS_SANDBOXD_PRIVATE_RANGES": "10.0.0.0/8,bogus",
		"ANYOPS_SANDBOXD_DNS":            "resolver.local",
	} {
		if _, err := parse(t, map[string]string{env: value}); err == nil {
			t.Errorf("%s=%q: accepted", env, value)
		}
	}
}

// TestCommandPollFromEnv proves ANYOPS_COMMAND_POLL (which the integration tests set for the
// worker they start) reaches Worker.CommandPoll, that the flag beats it, and that the default
// is the production 2 s.
func TestCommandPollFromEnv(t *testing.T) {
	for _, tt := range []struct {
		name string
		args []string
		env  string
		want time.Duration
	}{
		{"default", nil, "", 2 * time.Second},
		{"env", nil, "25ms", 25 * time.Millisecond},
		{"flag beats env", []string{"--command-poll=40ms"}, "25ms", 40 * time.Millisecond},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if tt.env != "" {
				t.Setenv("ANYOPS_COMMAND_POLL", tt.env)
			}
			fs := pflag.NewFlagSet("worker", pflag.ContinueOnError)
			b := NewBinder(fs)
			var w Worker
			b.BindWorker(&w)
			if err := fs.Parse(tt.args); err != nil {
				t.Fatal(err)
			}
			if err := b.Load(); err != nil {
				t.Fatal(err)
			}
			if w.CommandPoll != tt.want {
				t.Fatalf("CommandPoll %v, want %v", w.CommandPoll, tt.want)
			}
		})
	}
}
