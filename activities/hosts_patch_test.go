package activities

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/anyops/anyops"
)

// TestCheckPatchReadsVersionsAndTheActiveCheck runs CheckPatch's script on cloudsim's hosts: a
// web server's versions and nginx's heartbeat verdict (vulnerable, then still vulnerable after
// the upgrade alone, fixed once nginx restarted), a task server without a TLS endpoint (the
// version check only), a package that is not installed (""), and an endpoint nothing serves
// (unreachable).
func TestCheckPatchReadsVersionsAndTheActiveCheck(t *testing.T) {
	s := newSimCloud(t)
	hosts, env := s.hosts, s.e.env
	web, task := s.launchAs(t, "web-1", "web"), s.launchAs(t, "task-1", "task")
	pkgs := []string{"openssl", "libssl-dev", "libssl1.0.0", "nosuch-pkg"}
	check := func(inst, endpoint string) anyops.ServerCheck {
		return call[anyops.ServerCheck](t, env, hosts.CheckPatch, CheckPatchInput{InstanceID: inst, Packages: pkgs, Check: anyops.CheckHeartbleed, Endpoint: endpoint})
	}
	c := check(web, "localhost:443")
	require.Equal(t, anyops.CheckVulnerable, c.Check)
	require.Equal(t, map[string]string{"openssl": "1.0.1f-1ubuntu2", "libssl-dev": "1.0.1f-1ubuntu2", "libssl1.0.0": "1.0.1f-1ubuntu2", "nosuch-pkg": ""}, c.Versions)
	require.False(t, c.Fixed(anyops.Heartbleed()))
	call[UpgradePackageOutput](t, env, hosts.UpgradePackage, UpgradePackageInput{InstanceID: web, Packages: pkgs[:3]})
	c = check(web, "localhost:443")
	require.Equal(t, anyops.CheckVulnerable, c.Check, "the fix is not live before the restart")
	require.Empty(t, c.Outdated(anyops.Heartbleed()))
	call[ServiceStatus](t, env, hosts.RestartService, ServiceInput{InstanceID: web, Service: "nginx"})
	c = check(web, "localhost:443")
	require.Equal(t, anyops.CheckFixed, c.Check)
	require.True(t, c.Fixed(anyops.Heartbleed()))

	require.Equal(t, anyops.CheckNone, check(task, "").Check)
	require.Equal(t, anyops.CheckNoAnswer, check(task, "localhost:443").Check)
	_, err := callErr[anyops.ServerCheck](env, hosts.CheckPatch, CheckPatchInput{InstanceID: web, Packages: []string{"x;reboot"}})
	require.ErrorContains(t, err, "not valid")
}
