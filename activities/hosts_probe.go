package activities

import (
	"context"
	"fmt"
	"time"
)

// NFSProbeInput probes a client's mount of the file service.
type NFSProbeInput struct {
	InstanceID string
	// MountPoint is where the client mounts the file service; empty: /home.
	MountPoint string
	// Timeout bounds the probe on the host; 0 means 5s. A mount that does not answer in it
	// is hung: an NFS hard mount whose server is gone blocks every call on it.
	Timeout time.Duration
}

// NFSProbeOutput says whether the mount served a write. Not serving is a result, not an
// error: the NFSWatch workflow decides what a failed probe means.
type NFSProbeOutput struct {
	Serving bool `json:"serving"`
	// Hung: the probe was killed by its timeout (exit 124), the signature of a stale mount.
	Hung     bool   `json:"hung,omitempty"`
	ExitCode int    `json:"exit_code"`
	Detail   string `json:"detail,omitempty"`
}

// ProbeNFS writes a probe file on the client's mount, bounded by timeout(1): a write goes to
// the file server (no attribute cache answers it), so it fails or hangs whenever the server
// cannot serve. The file is the same one each time. A host that lacks timeout or touch is
// CommandNotFound; a host SSM cannot reach is HostUnreachable (retryable).
func (h *Hosts) ProbeNFS(ctx context.Context, in NFSProbeInput) (NFSProbeOutput, error) {
	mount := in.MountPoint
	if mount == "" {
		mount = "/home"
	}
	if err := checkPath("MountPoint", mount); err != nil {
		return NFSProbeOutput{}, err
	}
	timeout := in.Timeout
	if timeout <= 0 {
		timeout = 5 * time.Second
	}
	secs := max(1, int(timeout.Seconds()))
	res, err := h.run(ctx, RunCommandInput{InstanceID: in.InstanceID, Comment: "anyops NFS probe",
		// The command's own deadline on the host is longer than timeout(1)'s, so that a hung
		// mount shows as timeout's 124 rather than as SSM's TimedOut.
		Timeout:  time.Duration(secs+30) * time.Second,
		Commands: []string{fmt.Sprintf("timeout %d touch %s", secs, shellQuote(mount+"/.anyops-nfs-probe"))},
	})
	if err != nil {
		return NFSProbeOutput{}, err
	}
	if res.ExitCode == exitCommandMissing {
		return NFSProbeOutput{}, commandError(res)
	}
	out := NFSProbeOutput{Serving: res.ExitCode == 0, Hung: res.ExitCode == exitTimedOut, ExitCode: res.ExitCode}
	if !out.Serving {
		out.Detail = lastLine(res.Stderr)
		if out.Hung {
			out.Detail = fmt.Sprintf("%s did not answer within %ds", mount, secs)
		}
	}
	return out, nil
}
