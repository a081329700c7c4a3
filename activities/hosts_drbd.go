package activities

import (
	"context"
	"fmt"
	"regexp"
	"strings"
	"time"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/temporal"

	"github.com/anyops/anyops"
)

// DRBD set up as on a real host: a resource file written through SSM (hosts_drbd_config.go),
// metadata created once, the resource brought up, and the initial primary of a brand new pair
// chosen. The status parser is in hosts_drbd_status.go.

// Error types of the DRBD activities.
const (
	// ErrDRBDNotNew is the initial-primary interlock: a side of the pair has held data, so
	// forcing one side's data onto the other could destroy the newer copy (non-retryable).
	ErrDRBDNotNew = "DRBDNotNew"
	// ErrDRBDNotConnected: the peer has not connected yet (retryable).
	ErrDRBDNotConnected = "DRBDNotConnected"
	// ErrDRBDPeerPrimary: the other side is Primary already; DRBD allows one (non-retryable).
	ErrDRBDPeerPrimary = "DRBDPeerPrimary"
)

// DRBDResourceInput names a resource on a host.
type DRBDResourceInput struct {
	InstanceID string
	Resource   string
}

func (in DRBDResourceInput) check() error {
	if err := checkField("Resource", in.Resource, reName); err != nil {
		return err
	}
	if in.InstanceID == "" {
		return invalidInput("InstanceID is required")
	}
	return nil
}

// DRBDGeneration is what `drbdadm get-gi` says of a resource's disk.
type DRBDGeneration struct {
	// Current is the current data generation UUID; DRBDJustCreated for a disk that has never
	// held data.
	Current string
	// Consistent, UpToDate, Primary: the metadata's flags.
	Consistent, UpToDate, Primary bool
}

// HasData is whether the disk has ever held data: anything but a brand new disk.
func (g DRBDGeneration) HasData() bool { return g.Current != DRBDJustCreated }

// DRBDJustCreated is the current UUID `drbdadm create-md` writes (DRBD's UUID_JUST_CREATED).
const DRBDJustCreated = "0000000000000004"

var reGI = regexp.MustCompile(`^([0-9A-Fa-f]{16}):[0-9A-Fa-f]{16}:[0-9A-Fa-f]{16}:[0-9A-Fa-f]{16}:([01]):([01]):([01])(:[01])*$`)

// ParseDRBDGeneration reads get-gi's line: CURRENT:BITMAP:HISTORY1:HISTORY2:consistent:
// was-up-to-date:primary:…
func ParseDRBDGeneration(out string) (DRBDGeneration, error) {
	line := strings.TrimSpace(out)
	if i := strings.LastIndexByte(line, '\n'); i >= 0 {
		line = strings.TrimSpace(line[i+1:])
	}
	m := reGI.FindStringSubmatch(line)
	if m == nil {
		return DRBDGeneration{}, fmt.Errorf("%q is not drbdadm get-gi output", truncate(line, 120))
	}
	return DRBDGeneration{Current: strings.ToUpper(m[1]), Consistent: m[2] == "1", UpToDate: m[3] == "1", Primary: m[4] == "1"}, nil
}

// CreateDRBDMetadataOutput says whether metadata was created now, and what the disk holds.
type CreateDRBDMetadataOutput struct {
	Created    bool // false: metadata was there already and is kept
	Generation DRBDGeneration
	Result     CommandResult
}

// CreateDRBDMetadata writes DRBD's metadata on the resource's backing disk (as its file names
// it) unless there is metadata already — with data or without, it is kept: create-md never
// runs with --force, so no retry or later run can wipe a replica. A disk holding a file system
// instead is a non-retryable DeviceHasData (drbdmeta refuses to truncate it).
func (h *Hosts) CreateDRBDMetadata(ctx context.Context, in DRBDResourceInput) (CreateDRBDMetadataOutput, error) {
	if err := in.check(); err != nil {
		return CreateDRBDMetadataOutput{}, err
	}
	r := shellQuote(in.Resource)
	res, err := h.run(ctx, RunCommandInput{InstanceID: in.InstanceID, Comment: "anyops drbd create-md " + in.Resource, Commands: []string{
		"drbdadm get-gi " + r + " 2>/dev/null && exit 0",
		"drbdadm create-md " + r + " >/dev/null && echo anyops-created && drbdadm get-gi " + r,
	}})
	if err != nil {
		return CreateDRBDMetadataOutput{}, err
	}
	if res.ExitCode == 40 {
		return CreateDRBDMetadataOutput{}, temporal.NewNonRetryableApplicationError(
			fmt.Sprintf("drbdadm create-md %s on %s refused: %s", in.Resource, in.InstanceID, lastLine(res.Stderr)), ErrDeviceHasData, nil, res)
	}
	if err := commandError(res); err != nil {
		return CreateDRBDMetadataOutput{}, err
	}
	gi, err := generationOf(res)
	if err != nil {
		return CreateDRBDMetadataOutput{}, err
	}
	return CreateDRBDMetadataOutput{Created: strings.Contains(res.Stdout, "anyops-created"), Generation: gi, Result: res}, nil
}

// DRBDGenerationOf reads a resource's data generation with `drbdadm get-gi`.
func (h *Hosts) DRBDGenerationOf(ctx context.Context, in DRBDResourceInput) (DRBDGeneration, error) {
	if err := in.check(); err != nil {
		return DRBDGeneration{}, err
	}
	res, err := h.RunCommand(ctx, RunCommandInput{InstanceID: in.InstanceID, Comment: "anyops drbd get-gi " + in.Resource,
		Commands: []string{"drbdadm get-gi " + shellQuote(in.Resource)}})
	if err != nil {
		return DRBDGeneration{}, err
	}
	return generationOf(res)
}

// generationOf reads get-gi's line from a command's output; output that is not one is a
// non-retryable UnexpectedOutput.
func generationOf(res CommandResult) (DRBDGeneration, error) {
	gi, err := ParseDRBDGeneration(res.Stdout)
	if err != nil {
		return DRBDGeneration{}, temporal.NewNonRetryableApplicationError(
			fmt.Sprintf("drbdadm get-gi on %s: %v", res.InstanceID, err), ErrUnexpectedOutput, nil, res)
	}
	return gi, nil
}

// DRBDUpOutput says whether the resource had to be brought up.
type DRBDUpOutput struct {
	AlreadyUp bool
	Result    CommandResult
}

// DRBDUp brings a configured resource up (attach the disk, connect to the peer); one up already
// is success.
func (h *Hosts) DRBDUp(ctx context.Context, in DRBDResourceInput) (DRBDUpOutput, error) {
	if err := in.check(); err != nil {
		return DRBDUpOutput{}, err
	}
	r := shellQuote(in.Resource)
	res, err := h.RunCommand(ctx, RunCommandInput{InstanceID: in.InstanceID, Comment: "anyops drbd up " + in.Resource, Commands: []string{
		"drbdadm status " + r + " >/dev/null 2>&1 && echo anyops-up && exit 0",
		"drbdadm up " + r,
	}})
	if err != nil {
		return DRBDUpOutput{}, err
	}
	return DRBDUpOutput{AlreadyUp: strings.Contains(res.Stdout, "anyops-up"), Result: res}, nil
}

// DRBDInitialPrimaryInput makes the designated side of a new pair its first Primary.
type DRBDInitialPrimaryInput struct {
	Resource string
	// Primary is the instance whose side becomes Primary: the designated initial primary.
	Primary string
	// Secondary is the other side's instance, checked for data too.
	Secondary string
	// SkipInitialSync: both disks are new and empty, so nothing needs copying — they are
	// marked in sync (drbdadm new-current-uuid --clear-bitmap, which needs the peer connected)
	// instead of a full resync from the primary.
	SkipInitialSync bool
}

// DRBDInitialPrimaryOutput says how the primary came about.
type DRBDInitialPrimaryOutput struct {
	AlreadyPrimary bool
	Forced         bool // drbdadm primary --force: the secondary resyncs everything from it
	SyncSkipped    bool
	Result         CommandResult
}

// DRBDInitialPrimary makes the designated side of a pair Primary. Already Primary is success;
// an UpToDate side is promoted without force. Otherwise the only way is to force it, and the
// interlock applies: both disks must be brand new (get-gi on each shows a current UUID of
// DRBDJustCreated, on both hosts) — never is a side forced whose data, or whose peer's, has
// existed, since forcing makes one side's data the other's. That is ErrDRBDNotNew, which no
// retry passes: promoting an existing replica is a failover's decision (with its own checks),
// not this activity's.
func (h *Hosts) DRBDInitialPrimary(ctx context.Context, in DRBDInitialPrimaryInput) (DRBDInitialPrimaryOutput, error) {
	primary := DRBDResourceInput{InstanceID: in.Primary, Resource: in.Resource}
	if err := primary.check(); err != nil {
		return DRBDInitialPrimaryOutput{}, err
	}
	if in.Secondary == "" || in.Secondary == in.Primary {
		return DRBDInitialPrimaryOutput{}, invalidInput("Secondary must name the other side of %s", in.Resource)
	}
	st, err := h.DRBDStatus(ctx, DRBDStatusInput{InstanceID: in.Primary, Resource: in.Resource})
	if err != nil {
		return DRBDInitialPrimaryOutput{}, err
	}
	if len(st.Resources) != 1 {
		return DRBDInitialPrimaryOutput{}, temporal.NewNonRetryableApplicationError(
			fmt.Sprintf("drbdadm status %s on %s shows %d resources", in.Resource, in.Primary, len(st.Resources)), ErrUnexpectedOutput, nil)
	}
	r := st.Resources[0]
	res := shellQuote(in.Resource)
	promote := func(out DRBDInitialPrimaryOutput, cmds ...string) (DRBDInitialPrimaryOutput, error) {
		out.Result, err = h.RunCommand(ctx, RunCommandInput{InstanceID: in.Primary, Comment: "anyops drbd initial primary " + in.Resource, Commands: cmds})
		return out, err
	}
	switch {
	case r.Role == "Primary":
		return DRBDInitialPrimaryOutput{AlreadyPrimary: true}, nil
	case len(r.Peers) == 1 && r.Peers[0].Role == "Primary":
		return DRBDInitialPrimaryOutput{}, temporal.NewNonRetryableApplicationError(
			fmt.Sprintf("%s: the peer of %s (%s) is Primary already", in.Resource, in.Primary, r.Peers[0].Name), ErrDRBDPeerPrimary, nil, r)
	case r.Disk == "UpToDate":
		return promote(DRBDInitialPrimaryOutput{}, "drbdadm primary "+res)
	}
	// The interlock: forcing is only for a pair where neither side has ever held data.
	for _, side := range []string{in.Primary, in.Secondary} {
		gi, err := h.DRBDGenerationOf(ctx, DRBDResourceInput{InstanceID: side, Resource: in.Resource})
		if err != nil {
			return DRBDInitialPrimaryOutput{}, err
		}
		if gi.HasData() {
			return DRBDInitialPrimaryOutput{}, temporal.NewNonRetryableApplicationError(
				fmt.Sprintf("refusing to force %s Primary on %s: the disk on %s has held data (generation %s), so this is not a brand new pair",
					in.Resource, in.Primary, side, gi.Current), ErrDRBDNotNew, nil, gi)
		}
	}
	if !in.SkipInitialSync {
		return promote(DRBDInitialPrimaryOutput{Forced: true}, "drbdadm primary --force "+res)
	}
	if len(r.Peers) != 1 || r.Peers[0].Connection != "Connected" {
		return DRBDInitialPrimaryOutput{}, temporal.NewApplicationError(
			fmt.Sprintf("%s on %s: the peer is not connected yet", in.Resource, in.Primary), ErrDRBDNotConnected, r)
	}
	return promote(DRBDInitialPrimaryOutput{SyncSkipped: true},
		"drbdadm new-current-uuid --clear-bitmap "+shellQuote(in.Resource+"/0"),
		"drbdadm primary "+res)
}

// HostName returns the host's name as `hostname` prints it: what DRBD's on sections name.
func (h *Hosts) HostName(ctx context.Context, in InstanceRef) (string, error) {
	res, err := h.RunCommand(ctx, RunCommandInput{InstanceID: in.InstanceID, Comment: "anyops hostname", Commands: []string{"hostname"}})
	if err != nil {
		return "", err
	}
	name := strings.TrimSpace(res.Stdout)
	if !reHostname.MatchString(name) {
		return "", temporal.NewNonRetryableApplicationError(fmt.Sprintf("hostname on %s printed %q", in.InstanceID, res.Stdout), ErrUnexpectedOutput, nil, res)
	}
	return name, nil
}

// DRBDPromoteInput makes a host the Primary of DRBD resources: a failover's takeover.
type DRBDPromoteInput struct {
	InstanceID string
	Resources  []string
	// Override passes the interlock it names: not-uptodate promotes a copy that is not
	// UpToDate (drbdadm primary --force: its data becomes the data); two-primaries tries
	// although a peer reports Primary (DRBD itself still refuses a second Primary it can see).
	Override *Override
}

// DRBDPromoteOutput says what DRBDPromote found and did.
type DRBDPromoteOutput struct {
	Promoted       []string
	AlreadyPrimary []string
	Forced         []string
	Result         CommandResult
}

// DRBDPromote makes the host Primary of every resource, with two interlocks checked first on
// the host's own `drbdadm status`: a resource whose disk is not UpToDate (Outdated,
// Inconsistent, Diskless: a copy that lags or never finished syncing) is refused with
// NotUpToDate, and one whose connected peer is Primary with TwoPrimaries — both non-retryable,
// naming the resource, unless the input overrides that interlock. A resource Primary already
// is left as it is, so a retry is harmless. A resource that is not up is a non-retryable
// UnexpectedOutput: the host must be set up first.
func (h *Hosts) DRBDPromote(ctx context.Context, in DRBDPromoteInput) (DRBDPromoteOutput, error) {
	if len(in.Resources) == 0 {
		return DRBDPromoteOutput{}, invalidInput("Resources are required")
	}
	for _, r := range in.Resources {
		if err := (DRBDResourceInput{InstanceID: in.InstanceID, Resource: r}).check(); err != nil {
			return DRBDPromoteOutput{}, err
		}
	}
	if in.Override != nil && (strings.TrimSpace(in.Override.Reason) == "" || in.Override.By == "") {
		return DRBDPromoteOutput{}, invalidInput("an override needs who and why")
	}
	overrides := func(lock anyops.Interlock) bool { return in.Override != nil && in.Override.Interlock == lock }
	st, err := h.DRBDStatus(ctx, DRBDStatusInput{InstanceID: in.InstanceID})
	if err != nil {
		return DRBDPromoteOutput{}, err
	}
	byName := map[string]DRBDResource{}
	for _, r := range st.Resources {
		byName[r.Name] = r
	}
	var out DRBDPromoteOutput
	var cmds []string
	for _, name := range in.Resources {
		r, up := byName[name]
		switch {
		case !up:
			return DRBDPromoteOutput{}, temporal.NewNonRetryableApplicationError(
				fmt.Sprintf("DRBD resource %s is not up on %s", name, in.InstanceID), ErrUnexpectedOutput, nil)
		case r.Role == "Primary":
			out.AlreadyPrimary = append(out.AlreadyPrimary, name)
			continue
		}
		for _, p := range r.Peers {
			if p.Connection == "Connected" && p.Role == "Primary" && !overrides(anyops.InterlockTwoPrimaries) {
				return DRBDPromoteOutput{}, InterlockError(anyops.InterlockTwoPrimaries, ErrTwoPrimaries,
					"refusing to promote %s on %s: its peer %s is Primary; never two Primaries", name, in.InstanceID, p.Name)
			}
		}
		cmd := "drbdadm primary " + shellQuote(name)
		if r.Disk != "UpToDate" {
			if !overrides(anyops.InterlockNotUpToDate) {
				return DRBDPromoteOutput{}, InterlockError(anyops.InterlockNotUpToDate, ErrNotUpToDate,
					"refusing to promote %s on %s: its disk is %s, not UpToDate", name, in.InstanceID, r.Disk)
			}
			cmd = "drbdadm primary --force " + shellQuote(name)
			out.Forced = append(out.Forced, name)
		}
		cmds = append(cmds, cmd)
		out.Promoted = append(out.Promoted, name)
	}
	if len(cmds) == 0 {
		return out, nil
	}
	if in.Override != nil {
		activity.GetLogger(ctx).Warn("promoting DRBD resources past an interlock: overridden",
			"instance", in.InstanceID, "interlock", in.Override.Interlock, "by", in.Override.By, "reason", in.Override.Reason, "forced", out.Forced)
	}
	out.Result, err = h.RunCommand(ctx, RunCommandInput{InstanceID: in.InstanceID, Comment: "anyops drbd promote", Commands: append([]string{"set -e"}, cmds...)})
	return out, err
}

// HostProbe says whether SSM reaches a host's agent: an instance that booted its operating
// system answers; one whose boot disk is corrupt (or whose hardware failed) does not.
type HostProbe struct {
	Reachable bool
	Detail    string
}

// ProbeHost runs `true` on the host. Unreachable is an answer, not an error, so that a
// workflow can poll it while a started instance boots.
func (h *Hosts) ProbeHost(ctx context.Context, in InstanceRef) (HostProbe, error) {
	res, err := h.RunCommand(ctx, RunCommandInput{InstanceID: in.InstanceID, Comment: "anyops probe", Commands: []string{"true"}, Timeout: time.Minute})
	if isType(err, ErrHostUnreachable) {
		return HostProbe{Detail: err.Error()}, nil
	}
	if err != nil {
		return HostProbe{}, err
	}
	return HostProbe{Reachable: true, Detail: res.Status}, nil
}

// WaitDRBDInSyncInput waits until resources are in sync on a host.
type WaitDRBDInSyncInput struct {
	InstanceID string
	Resources  []string
	// PollInterval between looks (0: DefaultPollInterval); For bounds this call: it returns
	// the latest status when For has passed, in sync or not (0: until the activity's deadline).
	PollInterval time.Duration
	For          time.Duration
}

// DRBDSyncProgress is how far resources are from being in sync: WaitDRBDInSync's heartbeat and
// its result.
type DRBDSyncProgress struct {
	InSync bool
	// Done is the share of the resources' data in sync, 0..100 (a resource in sync counts 100,
	// one resyncing its done:, one not connected 0).
	Done      float64
	Resources []DRBDResource
	Polls     int
}

// WaitDRBDInSync reads `drbdadm status` on the host every poll until every resource is in sync
// (UpToDate here, connected to an UpToDate peer), heartbeating the progress, or For has passed;
// either way it returns the latest progress, so that a workflow can show it and ask again. It
// only reads.
func (h *Hosts) WaitDRBDInSync(ctx context.Context, in WaitDRBDInSyncInput) (DRBDSyncProgress, error) {
	if len(in.Resources) == 0 {
		return DRBDSyncProgress{}, invalidInput("Resources are required")
	}
	interval, bound := waitBounds(ctx, in.PollInterval, in.For)
	deadline := time.Now().Add(bound)
	var p DRBDSyncProgress
	for {
		st, err := h.DRBDStatus(ctx, DRBDStatusInput{InstanceID: in.InstanceID})
		if err != nil {
			return p, err
		}
		p = syncProgress(st.Resources, in.Resources, p.Polls+1)
		activity.RecordHeartbeat(ctx, p)
		if p.InSync || !time.Now().Add(interval).Before(deadline) {
			return p, nil
		}
		select {
		case <-ctx.Done():
			return p, ctx.Err()
		case <-time.After(interval):
		}
	}
}

// syncProgress summarizes the named resources of a host's status.
func syncProgress(all []DRBDResource, names []string, polls int) DRBDSyncProgress {
	p := DRBDSyncProgress{InSync: true, Polls: polls}
	for _, name := range names {
		var found *DRBDResource
		for i := range all {
			if all[i].Name == name {
				found = &all[i]
			}
		}
		switch {
		case found == nil:
			p.InSync = false
			continue
		case found.InSync():
			p.Done += 100
		case len(found.Peers) > 0 && found.Peers[0].Connection == "Connected":
			p.Done += found.Peers[0].Done
			p.InSync = false
		default:
			p.InSync = false
		}
		p.Resources = append(p.Resources, *found)
	}
	p.Done /= float64(len(names))
	return p
}
