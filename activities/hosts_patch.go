package activities

import (
	"context"
	"fmt"
	"regexp"
	"strings"

	"go.temporal.io/sdk/temporal"

	"github.com/anyops/anyops"
)

var reEndpoint = regexp.MustCompile(`^[A-Za-z0-9.-]+:[0-9]{1,5}$`)

// CheckPatchInput asks for a server's state against an advisory: the installed versions of
// its packages, and the active check of its TLS endpoint (empty: the role serves no TLS).
type CheckPatchInput struct {
	InstanceID string
	Packages   []string
	Check      anyops.CheckKind
	Endpoint   string
}

// CheckPatch reads the installed versions (dpkg-query; a package not installed has "") and,
// with an endpoint, runs the active check on the host itself: for Heartbleed
// `heartbleeder host:port`, whose INSECURE line means the running service still has a
// vulnerable library loaded. Read-only, so a retry is harmless. A host without heartbleeder
// is a non-retryable CommandNotFound.
func (h *Hosts) CheckPatch(ctx context.Context, in CheckPatchInput) (anyops.ServerCheck, error) {
	if len(in.Packages) == 0 {
		return anyops.ServerCheck{}, invalidInput("Packages is required")
	}
	var quoted []string
	for _, p := range in.Packages {
		if err := checkField("Packages", p, rePackage); err != nil {
			return anyops.ServerCheck{}, err
		}
		quoted = append(quoted, shellQuote(p))
	}
	// dpkg-query exits 1 when a package is not installed; the others are still listed.
	script := []string{"dpkg-query -W --showformat='" + versionMarker + " ${Package} ${Version}\\n' " + strings.Join(quoted, " ") + " 2>/dev/null || true"}
	if in.Endpoint != "" {
		if in.Check != anyops.CheckHeartbleed {
			return anyops.ServerCheck{}, invalidInput("check %q is not one this activity runs", in.Check)
		}
		if err := checkField("Endpoint", in.Endpoint, reEndpoint); err != nil {
			return anyops.ServerCheck{}, err
		}
		// Exit 1 (INSECURE) and 2 (no connection) are findings, read from the output.
		script = append(script, "heartbleeder "+shellQuote(in.Endpoint)+" 2>&1 || true")
	}
	res, err := h.run(ctx, RunCommandInput{InstanceID: in.InstanceID, Comment: "anyops patch check", Commands: script})
	if err != nil {
		return anyops.ServerCheck{}, err
	}
	if strings.Contains(res.Stdout, "heartbleeder: command not found") {
		res.ExitCode = exitCommandMissing
		return anyops.ServerCheck{}, commandError(res)
	}
	if err := commandError(res); err != nil {
		return anyops.ServerCheck{}, err
	}
	out := anyops.ServerCheck{Versions: map[string]string{}, Check: anyops.CheckNone, Endpoint: in.Endpoint}
	for _, p := range in.Packages {
		out.Versions[p] = ""
	}
	for _, line := range strings.Split(res.Stdout, "\n") {
		fields := strings.Fields(line)
		switch {
		case len(fields) == 3 && fields[0] == versionMarker:
			out.Versions[fields[1]] = fields[2]
		case strings.HasPrefix(line, "INSECURE - "):
			out.Check, out.Detail = anyops.CheckVulnerable, line
		case strings.HasPrefix(line, "SECURE - "):
			out.Check, out.Detail = anyops.CheckFixed, line
		case strings.HasPrefix(line, "Error connecting to "), strings.Contains(line, "Error connecting to "):
			out.Check, out.Detail = anyops.CheckNoAnswer, line
		}
	}
	if in.Endpoint != "" && out.Check == anyops.CheckNone {
		return anyops.ServerCheck{}, temporal.NewNonRetryableApplicationError(
			fmt.Sprintf("heartbleeder on %s said neither SECURE nor INSECURE", in.InstanceID), ErrUnexpectedOutput, nil, res)
	}
	return out, nil
}
