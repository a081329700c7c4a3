package activities

import (
	"context"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/anyops/anyops"
)

// ServiceInput names a systemd service on a host.
type ServiceInput struct {
	InstanceID string
	Service    string // e.g. nginx, tornado
}

// ServiceStatus is the state systemd reports after the restart.
type ServiceStatus struct {
	Service string
	Active  string // active, failed, ...
	Result  CommandResult
}

// RestartService restarts a service and reports whether it came back active; a service that
// does not come up is a retryable CommandFailed error, one the host does not have a
// non-retryable ServiceNotFound.
func (h *Hosts) RestartService(ctx context.Context, in ServiceInput) (ServiceStatus, error) {
	if err := checkField("Service", in.Service, reName); err != nil {
		return ServiceStatus{}, err
	}
	svc := shellQuote(in.Service)
	res, err := h.run(ctx, RunCommandInput{InstanceID: in.InstanceID, Comment: "anyops restart " + in.Service, Commands: []string{
		// Chained: a failed restart must not hide behind the old process still being active.
		"systemctl restart " + svc + " && systemctl is-active " + svc,
	}})
	st := ServiceStatus{Service: in.Service, Active: strings.TrimSpace(lastLine(res.Stdout)), Result: res}
	if err != nil {
		return st, err
	}
	// A unit that does not come up may wait for something that will (a mount, the network):
	// retried. A unit systemd does not have (exit 5) is a package not installed.
	return st, classifyExit(res, "restart "+in.Service, exitRule{5, "not found", ErrServiceNotFound, false})
}

// BootstrapInput sets a new server up for its role.
type BootstrapInput struct {
	InstanceID string
	Role       anyops.Role
	// Timeout bounds the bootstrap on the host; 0 means one hour.
	Timeout time.Duration
}

// BootstrapOutput says whether the host was bootstrapped now.
type BootstrapOutput struct {
	Already bool // it had been bootstrapped for the role before
	Result  CommandResult
}

// Bootstrap runs the cluster build step on a host, `anyops-bootstrap --role R`: it installs the
// role's packages and starts its services (about 19 minutes the first time). A host already
// bootstrapped for the role says so and changes nothing, so a retry (or a later run) is
// harmless; a retried attempt takes over the command the previous one sent (RunCommand).
func (h *Hosts) Bootstrap(ctx context.Context, in BootstrapInput) (BootstrapOutput, error) {
	if _, err := anyops.Parse("Role", string(in.Role), anyops.Roles); err != nil {
		return BootstrapOutput{}, invalidInput("%s", anyops.ErrorMessage(err))
	}
	res, err := h.RunCommand(ctx, RunCommandInput{InstanceID: in.InstanceID, Comment: "anyops bootstrap " + string(in.Role),
		Timeout: in.Timeout, Commands: []string{"anyops-bootstrap --role " + shellQuote(string(in.Role))}})
	if err != nil {
		return BootstrapOutput{Result: res}, err
	}
	return BootstrapOutput{Already: strings.Contains(res.Stdout, "already bootstrapped"), Result: res}, nil
}

// UpgradePackageInput upgrades installed packages to the newest version the host's
// repositories have (the Heartbleed fix: openssl, libssl).
type UpgradePackageInput struct {
	InstanceID string
	Packages   []string
}

// UpgradePackageOutput has each package's version after the upgrade.
type UpgradePackageOutput struct {
	Versions map[string]string
	Result   CommandResult
}

// UpgradePackage runs apt-get's --only-upgrade install, which leaves packages already at
// the newest version alone, and reports the installed versions.
func (h *Hosts) UpgradePackage(ctx context.Context, in UpgradePackageInput) (UpgradePackageOutput, error) {
	if len(in.Packages) == 0 {
		return UpgradePackageOutput{}, invalidInput("Packages is required")
	}
	var quoted []string
	for _, p := range in.Packages {
		if err := checkField("Packages", p, rePackage); err != nil {
			return UpgradePackageOutput{}, err
		}
		quoted = append(quoted, shellQuote(p))
	}
	pkgs := strings.Join(quoted, " ")
	res, err := h.run(ctx, RunCommandInput{InstanceID: in.InstanceID, Comment: "anyops upgrade packages", Commands: []string{
		"set -e",
		"apt-get update -q",
		"apt-get install -y -q --only-upgrade " + pkgs,
		// apt's chatter shares stdout: the marker picks our lines out of it.
		"dpkg-query -W --showformat='" + versionMarker + " ${Package} ${Version}\\n' " + pkgs,
	}})
	if err == nil {
		// apt exits 100 for a held lock and a failed download too: those are retried.
		err = classifyExit(res, "upgrade", exitRule{100, "Unable to locate package", ErrPackageNotFound, false})
	}
	if err != nil {
		return UpgradePackageOutput{}, err
	}
	out := UpgradePackageOutput{Versions: map[string]string{}, Result: res}
	for _, line := range strings.Split(res.Stdout, "\n") {
		fields := strings.Fields(line)
		if len(fields) == 3 && fields[0] == versionMarker {
			out.Versions[fields[1]] = fields[2]
		}
	}
	return out, nil
}

// versionMarker starts the lines UpgradePackage parses.
const versionMarker = "anyops-version"

// HealthProbeInput probes a URL from the host itself, so that a firewall or a load balancer
// in between does not count.
type HealthProbeInput struct {
	InstanceID string
	URL        string
	Timeout    time.Duration // per request; 0 means 5s
}

// HealthProbeOutput says whether the URL answered with a success (2xx, 3xx).
type HealthProbeOutput struct {
	Healthy bool
	// CurlExit is curl's exit code: 0 healthy, 7 refused, 22 an HTTP error, 28 a timeout.
	CurlExit int
	Detail   string // curl's message when unhealthy
	Result   CommandResult
}

// HealthProbe fetches the URL with curl on the host. An unhealthy answer is a result, not an
// error: the caller decides what unhealthy means for it.
func (h *Hosts) HealthProbe(ctx context.Context, in HealthProbeInput) (HealthProbeOutput, error) {
	u, err := url.Parse(in.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return HealthProbeOutput{}, invalidInput("URL %q is not an http(s) URL", in.URL)
	}
	timeout := in.Timeout
	if timeout <= 0 {
		timeout = 5 * time.Second
	}
	res, err := h.run(ctx, RunCommandInput{InstanceID: in.InstanceID, Comment: "anyops health probe", Commands: []string{
		fmt.Sprintf("curl -fsS -o /dev/null --max-time %d %s", max(1, int(timeout.Seconds())), shellQuote(u.String())),
	}})
	if err != nil {
		return HealthProbeOutput{}, err
	}
	if res.ExitCode == exitCommandMissing {
		return HealthProbeOutput{}, commandError(res)
	}
	out := HealthProbeOutput{Healthy: res.ExitCode == 0, CurlExit: res.ExitCode, Result: res}
	if !out.Healthy {
		out.Detail = lastLine(res.Stderr)
	}
	return out, nil
}
