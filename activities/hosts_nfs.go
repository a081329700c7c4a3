package activities

import (
	"context"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/temporal"
)

// NFS clients: web, console and task servers mount the file service by its name (a Route 53
// private record), so a failover moves the record and remounts each client. Every call that
// touches a mount is bounded by timeout(1): a hard NFS mount whose server is gone blocks every
// call on it, and only a kill ends it. /proc/mounts is read instead of stat-ing the mount point
// (mountpoint(1) would block as well).

// NFS client error types.
const (
	ErrNameNotResolved   = "NameNotResolved"   // retryable: the file service's name does not resolve (yet)
	ErrResolvedElsewhere = "ResolvedElsewhere" // retryable: the name still resolves to another server (a cached answer, or the record not INSYNC)
	ErrExportDenied      = "ExportDenied"      // non-retryable: the server does not export the path to this client
)

// Exit codes of the NFS scripts.
const (
	exitResolvedElsewhere = 67
	exitNotMounted        = 68
)

// DefaultNFSOptions are the mount options of the file service: NFS 4.2, hard (a client waits
// for its server rather than failing writes), the kernel's defaults otherwise.
const DefaultNFSOptions = "vers=4.2,hard"

// DefaultNFSMountPoint is where clients mount the file service.
const DefaultNFSMountPoint = "/home"

// nfsProbeFile is the file CheckMount (and the NFS watch's probe) writes on a mount.
const nfsProbeFile = ".anyops-nfs-probe"

var reNFSSource = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9.-]*:/[A-Za-z0-9/_.@+-]*$`)

// MountNFSInput mounts the file service on a client.
type MountNFSInput struct {
	InstanceID string
	// Source is NAME:/EXPORT, e.g. files.live.internal:/srv/home (a name, or an address).
	Source string
	// MountPoint is where; DefaultNFSMountPoint when empty.
	MountPoint string
	// Options are mount's -o; DefaultNFSOptions when empty.
	Options string
	// ExpectedServer, when set, is the address the mount must reach: the file server the
	// record names now. A client whose cached answer still names the old server refuses to
	// mount (retryable ResolvedElsewhere) rather than mount the old one.
	ExpectedServer string
	// Timeout bounds the mount on the host (mount.nfs4 retries a silent server for 2 minutes);
	// 0 means 3 minutes.
	Timeout time.Duration
}

func (in *MountNFSInput) check() error {
	if in.MountPoint == "" {
		in.MountPoint = DefaultNFSMountPoint
	}
	if in.Options == "" {
		in.Options = DefaultNFSOptions
	}
	if in.Timeout <= 0 {
		in.Timeout = 3 * time.Minute
	}
	if in.InstanceID == "" || !reNFSSource.MatchString(in.Source) || strings.Contains(in.Source, "..") {
		return invalidInput("InstanceID and a Source of the form NAME:/EXPORT are required, got %q", in.Source)
	}
	if err := checkPath("MountPoint", in.MountPoint); err != nil {
		return err
	}
	if in.ExpectedServer != "" && !reIPv4.MatchString(in.ExpectedServer) {
		return invalidInput("ExpectedServer %q is not an IPv4 address", in.ExpectedServer)
	}
	return checkField("Options", in.Options, reOptions)
}

var reIPv4 = regexp.MustCompile(`^(25[0-5]|2[0-4][0-9]|1?[0-9]?[0-9])(\.(25[0-5]|2[0-4][0-9]|1?[0-9]?[0-9])){3}$`)

// NFSMount is a client's NFS mount as /proc/mounts shows it.
type NFSMount struct {
	Source     string
	MountPoint string
	// Server is the address the mount talks to (addr=): where its name resolved when it was
	// made, whatever the name resolves to now.
	Server  string
	Options string
}

// MountNFSOutput is what MountNFS found or did.
type MountNFSOutput struct {
	Mount NFSMount
	// AlreadyMounted: the source was mounted there already (a retry, or a second run).
	AlreadyMounted bool
	Result         CommandResult
}

// mountScript is the mount itself, as two parts: nameCheck, when the server the mount must
// reach is known, refuses a name that resolves elsewhere (before anything is unmounted);
// mount makes the mount point, mounts bounded by timeout, marks that it did, and prints the
// resulting line of /proc/mounts. Both run under set -e.
func (in MountNFSInput) mountScript() (nameCheck, mount []string) {
	src, mp := shellQuote(in.Source), shellQuote(in.MountPoint)
	if host, _, _ := strings.Cut(in.Source, ":"); in.ExpectedServer != "" && host != in.ExpectedServer {
		nameCheck = []string{"getent hosts " + shellQuote(host) + " | head -n 1 | grep -q -E " +
			shellQuote("^"+regexp.QuoteMeta(in.ExpectedServer)+"[[:space:]]") + " || exit " + strconv.Itoa(exitResolvedElsewhere)}
	}
	mount = []string{
		"mkdir -p " + mp + " 2>/dev/null || true",
		fmt.Sprintf("timeout %d mount -t nfs4 -o %s %s %s", int(in.Timeout.Seconds()), shellQuote(in.Options), src, mp),
		"echo " + nfsMountedMark,
		"cat /proc/mounts | grep -F " + shellQuote(" "+in.MountPoint+" nfs4 "),
	}
	return nameCheck, mount
}

// nfsMountedMark is what the scripts print once they have mounted.
const nfsMountedMark = "anyops:mounted"

// MountNFS mounts the file service on a client. The same source mounted there already is
// success (AlreadyMounted); anything else on the mount point is a non-retryable
// MountpointBusy. With ExpectedServer, a mount that reaches another server is a retryable
// ResolvedElsewhere (RemountNFS moves it).
func (h *Hosts) MountNFS(ctx context.Context, in MountNFSInput) (MountNFSOutput, error) {
	if err := in.check(); err != nil {
		return MountNFSOutput{}, err
	}
	nameCheck, mount := in.mountScript()
	lines := []string{
		"set -e",
		"cat /proc/mounts | grep -F " + shellQuote(in.Source+" "+in.MountPoint+" nfs4 ") + " && exit 0",
		"cat /proc/mounts | grep -q -F " + shellQuote(" "+in.MountPoint+" ") + " && exit " + strconv.Itoa(exitMountpointBusy),
	}
	lines = append(append(lines, nameCheck...), mount...)
	return h.nfsMountResult(ctx, in, "mount", lines)
}

// nfsMountResult runs a mount script and reads the mount it leaves.
func (h *Hosts) nfsMountResult(ctx context.Context, in MountNFSInput, what string, lines []string) (MountNFSOutput, error) {
	res, err := h.run(ctx, RunCommandInput{InstanceID: in.InstanceID, Comment: "anyops " + what + " nfs", Commands: lines,
		Timeout: in.Timeout + time.Minute})
	if err != nil {
		return MountNFSOutput{Result: res}, err
	}
	if err := classifyExit(res, what+" "+in.Source, nfsMountFailures...); err != nil {
		return MountNFSOutput{Result: res}, err
	}
	m, ok := parseNFSMountLine(res.Stdout, in.MountPoint)
	if !ok {
		return MountNFSOutput{Result: res}, temporal.NewNonRetryableApplicationError(
			fmt.Sprintf("%s of %s on %s: no nfs4 line in /proc/mounts: %q", what, in.Source, in.InstanceID, res.Stdout), ErrUnexpectedOutput, nil, res)
	}
	out := MountNFSOutput{Mount: m, AlreadyMounted: !strings.Contains(res.Stdout, nfsMountedMark), Result: res}
	if in.ExpectedServer != "" && m.Server != in.ExpectedServer {
		return out, temporal.NewApplicationError(fmt.Sprintf("%s on %s is mounted from %s, not %s: remount it (RemountNFS)",
			in.MountPoint, in.InstanceID, m.Server, in.ExpectedServer), ErrResolvedElsewhere, res)
	}
	return out, nil
}

// nfsMountFailures: how mount.nfs4's exits map to errors.
var nfsMountFailures = []exitRule{
	{exitMountpointBusy, "", ErrMountpointBusy, false},
	{exitResolvedElsewhere, "", ErrResolvedElsewhere, true},
	{32, "Failed to resolve server", ErrNameNotResolved, true},
	{32, "access denied by server", ErrExportDenied, false},
	{32, "is busy or already mounted", ErrMountpointBusy, false},
	{32, "incorrect mount option", ErrInvalidInput, false},
	{32, "mount point", ErrMountFailed, false}, // the mount point does not exist and could not be made
	{exitTimedOut, "", ErrCommandFailed, true}, // the server answered but did not serve in time
}

// parseNFSMountLine finds the nfs4 line of a mount point in /proc/mounts output.
func parseNFSMountLine(out, mountPoint string) (NFSMount, bool) {
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		if len(f) < 4 || f[1] != mountPoint || f[2] != "nfs4" {
			continue
		}
		m := NFSMount{Source: f[0], MountPoint: f[1], Options: f[3]}
		for _, o := range strings.Split(f[3], ",") {
			if v, ok := strings.CutPrefix(o, "addr="); ok {
				m.Server = v
			}
		}
		return m, true
	}
	return NFSMount{}, false
}

// RemountNFS points a client's mount at the file server the name resolves to now: the old
// mount is detached at once (umount -f -l: a stale one cannot be unmounted otherwise) and the
// source mounted again, which resolves the name afresh. A mount already on ExpectedServer that
// serves is left alone, so a retry after success changes nothing. With ExpectedServer set, a
// client whose resolver still answers with another address fails with a retryable
// ResolvedElsewhere before it unmounts anything (its cached answer lives for the record's TTL).
func (h *Hosts) RemountNFS(ctx context.Context, in MountNFSInput) (MountNFSOutput, error) {
	if err := in.check(); err != nil {
		return MountNFSOutput{}, err
	}
	mp, nfsLine := shellQuote(in.MountPoint), shellQuote(" "+in.MountPoint+" nfs4 ")
	lines := []string{"set -e"}
	if in.ExpectedServer != "" {
		lines = append(lines, "cat /proc/mounts | grep -F "+nfsLine+" | grep -q -F "+shellQuote("addr="+in.ExpectedServer+" ")+
			" && timeout 5 stat "+mp+" >/dev/null && cat /proc/mounts | grep -F "+nfsLine+" && exit 0")
	}
	nameCheck, mount := in.mountScript()
	lines = append(lines, nameCheck...)
	lines = append(lines,
		"cat /proc/mounts | grep -q -F "+nfsLine+" && umount -f -l "+mp,
		"cat /proc/mounts | grep -q -F "+shellQuote(" "+in.MountPoint+" ")+" && exit "+strconv.Itoa(exitMountpointBusy),
	)
	return h.nfsMountResult(ctx, in, "remount", append(lines, mount...))
}

// CheckMountInput checks a client's mount of the file service.
type CheckMountInput struct {
	InstanceID string
	// MountPoint is the mount; DefaultNFSMountPoint when empty.
	MountPoint string
	// Timeout bounds the write and the read each; 0 means 5 s.
	Timeout time.Duration
}

// MountHealth is what CheckMount found: an unhealthy mount is a result, not an error.
type MountHealth struct {
	Mounted bool
	Mount   NFSMount
	// Writes: a probe written through the mount was read back; Reads: the probe file could
	// be read at all.
	Writes bool
	Reads  bool
	// Serving is Writes and Reads: the client reads and writes its home.
	Serving bool
	// Hung: the calls were killed by their timeout (exit 124), the mark of a stale hard mount.
	Hung   bool
	Detail string
	Result CommandResult
}

// CheckMount writes a probe through the client's NFS mount and reads it back, each bounded by
// Timeout. The probe's content is this attempt's own token, so reading it back proves the
// write reached the server that answers the read. Not mounted, hung or failing is a result.
func (h *Hosts) CheckMount(ctx context.Context, in CheckMountInput) (MountHealth, error) {
	if in.MountPoint == "" {
		in.MountPoint = DefaultNFSMountPoint
	}
	if err := checkPath("MountPoint", in.MountPoint); err != nil {
		return MountHealth{}, err
	}
	if in.Timeout <= 0 {
		in.Timeout = 5 * time.Second
	}
	secs := max(1, int(in.Timeout.Seconds()))
	info := activity.GetInfo(ctx)
	token := fmt.Sprintf("anyops-probe-%s-%s-%d", clientToken(info.WorkflowExecution.ID, info.WorkflowExecution.RunID, info.ActivityID)[:16], info.ActivityID, info.Attempt)
	probe := shellQuote(in.MountPoint + "/" + nfsProbeFile)
	res, err := h.run(ctx, RunCommandInput{InstanceID: in.InstanceID, Comment: "anyops check nfs mount",
		Timeout: time.Duration(2*secs+30) * time.Second,
		Commands: []string{
			"cat /proc/mounts | grep -F " + shellQuote(" "+in.MountPoint+" nfs4 ") + " || exit " + strconv.Itoa(exitNotMounted),
			fmt.Sprintf("printf '%%s\\n' %s | timeout %d tee %s >/dev/null", shellQuote(token), secs, probe),
			fmt.Sprintf("timeout %d cat %s", secs, probe),
		}})
	if err != nil {
		return MountHealth{}, err
	}
	if res.ExitCode == exitCommandMissing {
		return MountHealth{}, commandError(res)
	}
	out := MountHealth{Result: res}
	if res.ExitCode == exitNotMounted {
		out.Detail = in.MountPoint + " is not an NFS mount"
		return out, nil
	}
	out.Mount, out.Mounted = parseNFSMountLine(res.Stdout, in.MountPoint)
	out.Reads = res.ExitCode == 0
	out.Writes = out.Reads && strings.Contains(res.Stdout, token+"\n")
	out.Serving = out.Reads && out.Writes
	out.Hung = res.ExitCode == exitTimedOut
	switch {
	case out.Hung:
		out.Detail = fmt.Sprintf("%s did not answer within %ds: the server behind it (%s) does not serve", in.MountPoint, secs, out.Mount.Server)
	case !out.Serving:
		out.Detail = lastLine(res.Stderr)
	}
	return out, nil
}
