package sandboxd

import (
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/anyops/anyops"
	"github.com/anyops/anyops/sandboxd/wire"
)

// A create request's validation: what a sandbox may ask for, bounded by its plan and by what a
// sandbox can run with; a bad field is EINVALID before anything is reserved.

// Smallest limits a sandbox can usefully run with: below them a request is a mistake.
var minLimits = anyops.Limits{
	CPUShares: 2, MemoryBytes: 16 << 20, Pids: 8, OpenFiles: 16, FileSize: 1 << 20, TmpBytes: 1 << 20,
	HomeBytes: 1 << 20, IdleTimeout: time.Second, MaxLifetime: time.Second,
}

// minLease is the shortest lease a sandbox may have: shorter, a healthy host check would not
// keep up.
const minLease = time.Second

// validateCreate turns a request into a spec (without ID and home) and the sandbox's
// description, or an EINVALID error naming the first bad field.
func (s *Server) validateCreate(req wire.CreateRequest) (sandboxSpec, wire.Sandbox, error) {
	bad := func(format string, args ...any) (sandboxSpec, wire.Sandbox, error) {
		return sandboxSpec{}, wire.Sandbox{}, anyops.Errorf(anyops.EINVALID, format, args...)
	}
	if !sandboxIDPattern.MatchString(req.ID) {
		return bad("id %q must match %s", req.ID, sandboxIDPattern)
	}
	if !userPattern.MatchString(req.User) {
		return bad("user %q must match %s", req.User, userPattern)
	}
	// Sandboxes run as ids of their own range only: a host's or an image's uid or gid (root,
	// shadow's 42, a person's 1000) would open that account's files to the sandbox.
	first, last := anyops.FirstSandboxID, anyops.LastSandboxID
	if req.UID < first || req.UID > last {
		return bad("uid %d is outside the sandbox range %d..%d", req.UID, first, last)
	}
	gid := req.GID
	if gid == 0 {
		gid = req.UID
	}
	if gid < first || gid > last {
		return bad("gid %d is outside the sandbox range %d..%d", req.GID, first, last)
	}
	if req.Lease < 0 || (req.Lease > 0 && time.Duration(req.Lease) < minLease) {
		return bad("lease %s must be 0 (none) or at least %s", time.Duration(req.Lease), minLease)
	}
	plan, err := anyops.Parse("plan", string(req.Plan), anyops.Plans)
	if err != nil {
		return sandboxSpec{}, wire.Sandbox{}, err
	}
	netPolicy, err := planNetwork(plan, req.Network)
	if err != nil {
		return sandboxSpec{}, wire.Sandbox{}, err
	}
	if len(req.Command) > maxArgs {
		return bad("command has %d arguments, at most %d allowed", len(req.Command), maxArgs)
	}
	for i, a := range req.Command {
		if len(a) > maxArgBytes || strings.ContainsRune(a, 0) || (i == 0 && a == "") {
			return bad("command argument %d must be 1 to %d bytes without NUL", i, maxArgBytes)
		}
	}
	rows, cols := req.Rows, req.Cols
	if rows == 0 && cols == 0 {
		rows, cols = 24, 80
	}
	if rows == 0 || cols == 0 || rows > maxTermSize || cols > maxTermSize {
		return bad("rows and cols must both be between 1 and %d", maxTermSize)
	}
	limits, err := effectiveLimits(plan, req)
	if err != nil {
		return sandboxSpec{}, wire.Sandbox{}, err
	}
	img, err := s.images.Get(req.Image) // "": this host's default
	if err != nil {
		return bad("%s", anyops.ErrorMessage(err))
	}
	spec := sandboxSpec{
		User: req.User, UID: req.UID, GID: gid, Hostname: "console",
		ImageRoot: img.Root, Command: slices.Clone(req.Command),
		Env:    []string{"TERM=xterm-256color", "LANG=C.UTF-8"},
		Limits: limits, Network: netPolicy, Rows: rows, Cols: cols,
	}
	info := wire.Sandbox{
		User: req.User, UID: req.UID, GID: gid, Plan: plan, Image: img.Ref(),
		Command: spec.Command, Network: netPolicy, Limits: limits,
		IdleTimeout: wire.Duration(limits.IdleTimeout), MaxLifetime: wire.Duration(limits.MaxLifetime),
		Lease: req.Lease,
	}
	return spec, info, nil
}

// effectiveLimits starts from the plan's limits and applies the request's lower ones. A
// negative value, one above the plan's, or one below what a sandbox can run with is refused.
func effectiveLimits(plan anyops.Plan, req wire.CreateRequest) (anyops.Limits, error) {
	lim := anyops.PlanLimits(plan)
	var want anyops.Limits
	if req.Limits != nil {
		want = *req.Limits
		if want.IdleTimeout != 0 || want.MaxLifetime != 0 {
			return lim, anyops.Errorf(anyops.EINVALID, "limits.idle_timeout and limits.max_lifetime are not accepted: use idle_timeout and max_lifetime (duration strings)")
		}
	}
	var err error
	num := func(v int64) string { return strconv.FormatInt(v, 10) }
	dur := func(v int64) string { return time.Duration(v).String() }
	// pick returns the effective value of one limit, or the plan's and sets err.
	pick := func(name string, requested, planned, least int64, format func(int64) string) int64 {
		if err != nil || requested == 0 {
			return planned
		}
		switch {
		case requested < 0:
			err = anyops.Errorf(anyops.EINVALID, "%s must not be negative, got %s", name, format(requested))
		case requested > planned:
			err = anyops.Errorf(anyops.EINVALID, "%s %s exceeds plan %s's %s", name, format(requested), plan, format(planned))
		case requested < least:
			err = anyops.Errorf(anyops.EINVALID, "%s %s is below the minimum of %s", name, format(requested), format(least))
		default:
			return requested
		}
		return planned
	}
	lim.CPUShares = int(pick("limits.cpu_shares", int64(want.CPUShares), int64(lim.CPUShares), int64(minLimits.CPUShares), num))
	lim.MemoryBytes = pick("limits.memory_bytes", want.MemoryBytes, lim.MemoryBytes, minLimits.MemoryBytes, num)
	lim.Pids = int(pick("limits.pids", int64(want.Pids), int64(lim.Pids), int64(minLimits.Pids), num))
	lim.OpenFiles = int(pick("limits.open_files", int64(want.OpenFiles), int64(lim.OpenFiles), int64(minLimits.OpenFiles), num))
	lim.FileSize = pick("limits.file_size", want.FileSize, lim.FileSize, minLimits.FileSize, num)
	lim.TmpBytes = pick("limits.tmp_bytes", want.TmpBytes, lim.TmpBytes, minLimits.TmpBytes, num)
	lim.HomeBytes = pick("limits.home_bytes", want.HomeBytes, lim.HomeBytes, minLimits.HomeBytes, num)
	lim.IdleTimeout = time.Duration(pick("idle_timeout", int64(req.IdleTimeout), int64(lim.IdleTimeout), int64(minLimits.IdleTimeout), dur))
	lim.MaxLifetime = time.Duration(pick("max_lifetime", int64(req.MaxLifetime), int64(lim.MaxLifetime), int64(minLimits.MaxLifetime), dur))
	return lim, err
}
