package activities

import (
	"context"
	"strings"
)

// Host steps of a release's window: a file server stops serving (after UnexportNFS and
// Umount, StopRAID and DRBDSecondary) so that its data holds still while the copies are handed
// over, and what a host has mounted (Mounts), so that a new file server mounts what the old
// one did.

// StopRAIDInput names an md array to stop.
type StopRAIDInput struct {
	InstanceID string
	Device     string // e.g. /dev/md0
}

// StopRAID stops the array, so that its members (DRBD devices) are no longer held open and
// can be made Secondary; an array that is not running is success. The array's file system
// must be unmounted first (mdadm refuses a busy array: retryable TargetBusy).
func (h *Hosts) StopRAID(ctx context.Context, in StopRAIDInput) (CommandResult, error) {
	if err := checkField("Device", in.Device, reDevice); err != nil {
		return CommandResult{}, err
	}
	dev := shellQuote(in.Device)
	res, err := h.run(ctx, RunCommandInput{InstanceID: in.InstanceID, Comment: "anyops stop raid", Commands: []string{
		"mdadm --detail " + dev + " >/dev/null 2>&1 || exit 0",
		"mdadm --stop " + dev,
	}})
	if err != nil {
		return res, err
	}
	return res, classifyExit(res, "mdadm --stop "+in.Device, exitRule{0, "busy", ErrTargetBusy, true})
}

// DRBDSecondary makes a resource Secondary on the host (a resource that is down, or Secondary
// already, is success): the file server of a cluster in maintenance gives up its role so that
// the copy handed over can be made Primary elsewhere. A device still held open (an array not
// stopped, a file system mounted) is retryable TargetBusy.
func (h *Hosts) DRBDSecondary(ctx context.Context, in DRBDResourceInput) (CommandResult, error) {
	if err := checkField("Resource", in.Resource, reName); err != nil {
		return CommandResult{}, err
	}
	r := shellQuote(in.Resource)
	res, err := h.run(ctx, RunCommandInput{InstanceID: in.InstanceID, Comment: "anyops drbd secondary", Commands: []string{
		"drbdadm status " + r + " >/dev/null 2>&1 || exit 0",
		"drbdadm secondary " + r,
	}})
	if err != nil {
		return res, err
	}
	return res, classifyExit(res, "drbdadm secondary "+in.Resource, exitRule{11, "held open", ErrTargetBusy, true})
}

// HostMount is one line of a host's /proc/mounts.
type HostMount struct {
	Device     string
	MountPoint string
	FSType     string
}

// Mounts lists what the host has mounted from block devices (/dev/…), as /proc/mounts says.
// It only reads.
func (h *Hosts) Mounts(ctx context.Context, in InstanceRef) ([]HostMount, error) {
	res, err := h.run(ctx, RunCommandInput{InstanceID: in.InstanceID, Comment: "anyops mounts", Commands: []string{"cat /proc/mounts"}})
	if err != nil {
		return nil, err
	}
	if err := commandError(res); err != nil {
		return nil, err
	}
	return parseMounts(res.Stdout), nil
}

// parseMounts reads /proc/mounts: device, mount point, type, options, dump, pass.
func parseMounts(s string) []HostMount {
	var out []HostMount
	for _, line := range strings.Split(s, "\n") {
		f := strings.Fields(line)
		if len(f) < 3 || !strings.HasPrefix(f[0], "/dev/") {
			continue
		}
		out = append(out, HostMount{Device: f[0], MountPoint: f[1], FSType: f[2]})
	}
	return out
}
