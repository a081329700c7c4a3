package activities

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"math"
	"net/url"
	"path"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	"github.com/aws/aws-sdk-go-v2/service/ssm/types"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/temporal"

	"github.com/anyops/anyops"
)

// Hosts holds the activities that run commands on servers through SSM (AWS-RunShellScript).
// Register it with a worker as a struct. Every script is written so that running it twice
// leaves the host as running it once does: SSM has no idempotency token, and a retried
// activity runs its script again.
//
// The scripts keep to plain commands joined by &&, || and pipes, with quoted words and no
// variables, if-blocks or command substitution: that is what cloudsim's simulated hosts
// run, so dev and tests execute the very scripts production does.
type Hosts struct {
	Clients *Clients
	// PollInterval is how often GetCommandInvocation is polled; 0 means DefaultCommandPoll.
	PollInterval time.Duration
}

// NewHosts returns the host activities over clients.
func NewHosts(clients *Clients) *Hosts { return &Hosts{Clients: clients} }

// DefaultCommandPoll is how often a running command is polled when Hosts says nothing.
const DefaultCommandPoll = 2 * time.Second

// Host-side error types (the rest are with the cloud's, in cloud.go). Which failure of which
// command a retry can fix is in the table of docs/activities.md.
const (
	// Non-retryable: the host is in a state the workflow must change first.
	ErrMountpointBusy    = "MountpointBusy"    // another device is mounted where we want ours
	ErrMountFailed       = "MountFailed"       // the device cannot be mounted: not DRBD Primary, a bad file system, mounted elsewhere
	ErrDeviceMounted     = "DeviceMounted"     // fsck refused a mounted device: unmount it first
	ErrExportPathMissing = "ExportPathMissing" // exportfs found no such path: mount the file system first
	ErrServiceNotFound   = "ServiceNotFound"   // systemd has no such unit: the package is not installed
	ErrPackageNotFound   = "PackageNotFound"   // apt cannot locate a package

	// Retryable, typed so that a workflow whose retries ran out can tell what held it up.
	ErrDeviceMissing = "DeviceMissing" // the device is not there (yet): an attach still settling
	ErrTargetBusy    = "TargetBusy"    // umount: something still uses the file system
)

// Exit codes our scripts use to say why they refused, distinct from what the tools return.
const (
	exitMountpointBusy = 65
	exitDeviceMounted  = 66
	exitCommandMissing = 127 // the shell's "command not found"
	exitTimedOut       = 124 // coreutils' timeout killed the command
)

// RunCommandInput runs a shell script on one instance.
type RunCommandInput struct {
	InstanceID string
	// Commands are the script's lines, run by AWS-RunShellScript with /bin/sh.
	Commands []string
	Comment  string
	// Timeout bounds the command on the host; 0 means one hour.
	Timeout time.Duration
}

// CommandResult is how a command ended.
type CommandResult struct {
	CommandID  string
	InstanceID string
	Status     string // SSM's: Success, Failed, TimedOut, Cancelled, ...
	ExitCode   int
	Stdout     string
	Stderr     string
	// StartedAt and EndedAt are when the command ran on the host, in the cloud's clock (SSM's
	// ExecutionStartDateTime and ExecutionEndDateTime): EndedAt of the unmount that stopped a
	// volume's writes is the "writes stopped" time DeleteVolume checks a snapshot against.
	StartedAt time.Time
	EndedAt   time.Time
}

// CommandProgress is RunCommand's heartbeat. A retried attempt takes over the command the
// previous attempt sent while that command still runs, and takes its result when it
// succeeded; a command that failed, timed out or was cancelled is sent again (see run).
type CommandProgress struct {
	CommandID  string
	InstanceID string
	// Script names the script the command runs (scriptKey): an activity that runs several
	// (DRBDPromote reads the status, then promotes) resumes each only as itself.
	Script string `json:",omitempty"`
	Status string
	Polls  int
}

// RunCommand runs a script and returns its output. A non-zero exit is a retryable
// CommandFailed error, exit 127 a non-retryable CommandNotFound; both carry the
// CommandResult (stdout, stderr) as details.
func (h *Hosts) RunCommand(ctx context.Context, in RunCommandInput) (CommandResult, error) {
	res, err := h.run(ctx, in)
	if err != nil {
		return res, err
	}
	return res, commandError(res)
}

// run sends the script and polls it to the end, heartbeating. It returns an error only when
// the command did not run to an exit code.
//
// A retried attempt finds the previous attempt's command in the heartbeat details (Temporal
// hands them on after a failure too). It looks at that command first: still running
// (Pending, InProgress, Delayed, Cancelling), it polls it instead of running the script a
// second time beside it; finished with Success, it is this attempt's result — the previous
// attempt was lost after the command did its work (a worker crash, a heartbeat timeout), and
// every script is idempotent, so its result stands; finished otherwise (Failed, TimedOut,
// Cancelled), the previous attempt already failed on it, and this retry is there to run the
// script again.
func (h *Hosts) run(ctx context.Context, in RunCommandInput) (CommandResult, error) {
	if in.InstanceID == "" || len(in.Commands) == 0 {
		return CommandResult{}, invalidInput("InstanceID and Commands are required")
	}
	timeout := in.Timeout
	if timeout <= 0 {
		timeout = time.Hour
	}
	script := scriptKey(in.Commands)
	prog := CommandProgress{InstanceID: in.InstanceID, Script: script}
	if prev, ok := previousCommand(ctx, in.InstanceID, script); ok {
		out, err := h.invocation(ctx, prev)
		switch {
		case awsCode(err) == "InvocationDoesNotExist":
			// Sent just before the previous attempt ended, and not registered yet: sending
			// the script again could run it twice at once. Poll it below.
			prog = prev
		case err != nil:
			return CommandResult{}, cloudError("GetCommandInvocation", err)
		case !commandFinished(out.Status):
			prog = prev
		case out.Status == types.CommandInvocationStatusSuccess:
			return invocationResult(prev.CommandID, in.InstanceID, out), nil
		default:
			activity.GetLogger(ctx).Info("sending the command again: the previous attempt's ended "+string(out.Status),
				"instance", in.InstanceID, "command", prev.CommandID, "exit", out.ResponseCode)
		}
	}
	key := attemptKey(ctx, script)
	if prog.CommandID == "" && key != "" && activity.GetInfo(ctx).Attempt > 1 {
		// No heartbeat names an earlier command: the attempt before may have died between
		// SendCommand and its heartbeat. Its command carries the key in its comment.
		earlier, err := h.earlierCommand(ctx, in.InstanceID, key)
		if err != nil {
			return CommandResult{}, err
		}
		if earlier.CommandID != "" {
			out, err := h.invocation(ctx, earlier)
			switch {
			case err != nil && awsCode(err) != "InvocationDoesNotExist":
				return CommandResult{}, cloudError("GetCommandInvocation", err)
			case err != nil || !commandFinished(out.Status):
				prog = earlier // still running: poll it instead of running the script beside it
			case out.Status == types.CommandInvocationStatusSuccess:
				return invocationResult(earlier.CommandID, in.InstanceID, out), nil
			}
		}
	}
	if prog.CommandID == "" {
		comment := truncate(in.Comment, 100-len(key)-3)
		if key != "" {
			comment += " [" + key + "]"
		}
		out, err := h.Clients.SSM.SendCommand(ctx, &ssm.SendCommandInput{
			DocumentName: aws.String("AWS-RunShellScript"),
			InstanceIds:  []string{in.InstanceID},
			Comment:      optional(comment),
			Parameters: map[string][]string{
				"commands":         in.Commands,
				"executionTimeout": {strconv.Itoa(int(timeout.Seconds()))},
			},
		})
		if err != nil {
			return CommandResult{}, cloudError("SendCommand", err)
		}
		prog.CommandID = aws.ToString(out.Command.CommandId)
		heartbeatCommand(ctx, prog)
	}
	interval := h.PollInterval
	if interval <= 0 {
		interval = DefaultCommandPoll
	}
	for {
		out, err := h.invocation(ctx, prog)
		prog.Polls++
		switch {
		case awsCode(err) == "InvocationDoesNotExist":
			// Just sent: SSM has not registered the invocation yet.
		case err != nil:
			return CommandResult{}, cloudError("GetCommandInvocation", err)
		default:
			prog.Status = string(out.Status)
			if commandFinished(out.Status) {
				// Heartbeat the end too, so the next attempt knows how this one's command ended.
				heartbeatCommand(ctx, prog)
				res := invocationResult(prog.CommandID, in.InstanceID, out)
				if out.Status == types.CommandInvocationStatusTimedOut || out.Status == types.CommandInvocationStatusCancelled {
					return res, temporal.NewApplicationError(
						fmt.Sprintf("command %s on %s: %s", res.CommandID, res.InstanceID, res.Status), ErrCommandFailed, res)
				}
				return res, nil
			}
		}
		heartbeatCommand(ctx, prog)
		select {
		case <-ctx.Done():
			return CommandResult{}, ctx.Err()
		case <-time.After(interval):
		}
	}
}

// heartbeatCommand records the command's progress for the next attempt; outside an activity
// (the users' checks run many probes inside one) there is no attempt to tell.
func heartbeatCommand(ctx context.Context, prog CommandProgress) {
	if activity.IsActivity(ctx) {
		activity.RecordHeartbeat(ctx, prog)
	}
}

// earlierCommandPages bounds the search for an earlier attempt's command: 4 pages of 50, far
// more than a host gets between two attempts.
const earlierCommandPages = 4

// attemptKey names this activity's script across its attempts (workflow, run and activity
// id, and the script), for the comment of the commands it sends; "" outside an activity.
func attemptKey(ctx context.Context, script string) string {
	if !activity.IsActivity(ctx) {
		return ""
	}
	info := activity.GetInfo(ctx)
	sum := sha256.Sum256([]byte(info.WorkflowExecution.ID + "/" + info.WorkflowExecution.RunID + "/" + info.ActivityID + "/" + script))
	return "k=" + hex.EncodeToString(sum[:8])
}

// scriptKey names a script, so that a retry resumes a command only for the script it runs.
func scriptKey(commands []string) string {
	sum := sha256.Sum256([]byte(strings.Join(commands, "\n")))
	return hex.EncodeToString(sum[:8])
}

// earlierCommand finds the newest command an earlier attempt of this activity sent to
// instance (its comment carries key) among the host's latest earlierCommandPages pages of
// commands. (No InvokedAfter filter: a simulated cloud's clock is not the worker's.)
func (h *Hosts) earlierCommand(ctx context.Context, instance, key string) (CommandProgress, error) {
	pages := ssm.NewListCommandsPaginator(h.Clients.SSM, &ssm.ListCommandsInput{InstanceId: aws.String(instance)})
	for n := 0; pages.HasMorePages() && n < earlierCommandPages; n++ {
		page, err := pages.NextPage(ctx)
		if err != nil {
			return CommandProgress{}, cloudError("ListCommands", err)
		}
		for _, c := range page.Commands { // newest first
			if strings.HasSuffix(aws.ToString(c.Comment), "["+key+"]") {
				return CommandProgress{CommandID: aws.ToString(c.CommandId), InstanceID: instance}, nil
			}
		}
	}
	return CommandProgress{}, nil
}

// previousCommand returns the command a previous attempt of this activity sent to instance
// for script. A progress without a script is from a worker before scripts were named: taken
// as before.
func previousCommand(ctx context.Context, instance, script string) (CommandProgress, bool) {
	if !activity.IsActivity(ctx) || !activity.HasHeartbeatDetails(ctx) {
		return CommandProgress{}, false
	}
	var prev CommandProgress
	if err := activity.GetHeartbeatDetails(ctx, &prev); err != nil || prev.InstanceID != instance || prev.CommandID == "" {
		return CommandProgress{}, false
	}
	if prev.Script != "" && prev.Script != script {
		return CommandProgress{}, false
	}
	return prev, true
}

func (h *Hosts) invocation(ctx context.Context, p CommandProgress) (*ssm.GetCommandInvocationOutput, error) {
	return h.Clients.SSM.GetCommandInvocation(ctx, &ssm.GetCommandInvocationInput{
		CommandId:  aws.String(p.CommandID),
		InstanceId: aws.String(p.InstanceID),
	})
}

// commandFinished reports whether an invocation reached one of SSM's final states.
func commandFinished(s types.CommandInvocationStatus) bool {
	switch s {
	case types.CommandInvocationStatusSuccess, types.CommandInvocationStatusFailed,
		types.CommandInvocationStatusTimedOut, types.CommandInvocationStatusCancelled:
		return true
	}
	return false
}

func invocationResult(commandID, instance string, out *ssm.GetCommandInvocationOutput) CommandResult {
	return CommandResult{
		CommandID:  commandID,
		InstanceID: instance,
		Status:     string(out.Status),
		ExitCode:   int(out.ResponseCode),
		Stdout:     aws.ToString(out.StandardOutputContent),
		Stderr:     aws.ToString(out.StandardErrorContent),
		StartedAt:  ssmTime(out.ExecutionStartDateTime),
		EndedAt:    ssmTime(out.ExecutionEndDateTime),
	}
}

// ssmTime reads SSM's execution times ("2024-05-01T12:00:03.551Z"); zero when absent.
func ssmTime(s *string) time.Time {
	t, err := time.Parse(time.RFC3339Nano, aws.ToString(s))
	if err != nil {
		return time.Time{}
	}
	return t
}

// exitRule classifies one kind of non-zero exit of a command: by its exit code (0: any) and a
// phrase of its output ("": any).
type exitRule struct {
	exitCode  int
	phrase    string
	errType   string
	retryable bool
}

// classifyExit turns a finished command into the activity's error: nil on exit 0, the first
// rule that matches, else commandError's generic classification. Every error carries the
// CommandResult as its details.
func classifyExit(res CommandResult, what string, rules ...exitRule) error {
	if res.ExitCode == 0 {
		return nil
	}
	for _, r := range rules {
		if (r.exitCode != 0 && r.exitCode != res.ExitCode) || !strings.Contains(res.Stderr+res.Stdout, r.phrase) {
			continue
		}
		msg := fmt.Sprintf("%s on %s exited %d: %s", what, res.InstanceID, res.ExitCode, lastLine(res.Stderr))
		if r.retryable {
			return temporal.NewApplicationError(msg, r.errType, res)
		}
		return temporal.NewNonRetryableApplicationError(msg, r.errType, nil, res)
	}
	return commandError(res)
}

// commandError classifies a finished command by its exit code.
func commandError(res CommandResult) error {
	switch res.ExitCode {
	case 0:
		return nil
	case exitCommandMissing:
		return temporal.NewNonRetryableApplicationError(
			fmt.Sprintf("command not found on %s: %s", res.InstanceID, lastLine(res.Stderr)), ErrCommandNotFound, nil, res)
	default:
		return temporal.NewApplicationError(
			fmt.Sprintf("command on %s exited %d: %s", res.InstanceID, res.ExitCode, lastLine(res.Stderr)), ErrCommandFailed, res)
	}
}

func lastLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.LastIndexByte(s, '\n'); i >= 0 {
		s = s[i+1:]
	}
	return truncate(s, 200)
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}

// shellQuote quotes s for /bin/sh: every argument we put into a script goes through it, on
// top of the validation, so that no input can become a command.
func shellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

var (
	reDevice   = regexp.MustCompile(`^/dev/[A-Za-z0-9][A-Za-z0-9/_.-]*$`)
	rePath     = regexp.MustCompile(`^/[A-Za-z0-9/_.@+-]*$`)
	reName     = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9@._-]*$`)
	rePackage  = regexp.MustCompile(`^[a-z0-9][a-z0-9+.-]+$`)
	reNFSHosts = regexp.MustCompile(`^[A-Za-z0-9.*/:_-]+$`)
	reOptions  = regexp.MustCompile(`^[A-Za-z0-9_=,:./-]*$`)
)

func checkField(field, value string, re *regexp.Regexp) error {
	if !re.MatchString(value) {
		return invalidInput("%s %q is not valid", field, value)
	}
	if strings.Contains(value, "..") {
		return invalidInput("%s %q must not contain ..", field, value)
	}
	return nil
}

func checkPath(field, p string) error {
	if err := checkField(field, p, rePath); err != nil {
		return err
	}
	if path.Clean(p) != p {
		return invalidInput("%s %q is not a clean absolute path", field, p)
	}
	return nil
}

// ---------------------------------------------------------------------------------------
// DRBD.

// DRBDStatusInput asks for the DRBD state of one resource, or all when Resource is empty.
type DRBDStatusInput struct {
	InstanceID string
	Resource   string
}

// DRBDStatusOutput is the parsed `drbdadm status`.
type DRBDStatusOutput struct {
	Resources []DRBDResource
}

// DRBDStatus runs `drbdadm status` and parses it; output it cannot parse is a non-retryable
// UnexpectedOutput error.
func (h *Hosts) DRBDStatus(ctx context.Context, in DRBDStatusInput) (DRBDStatusOutput, error) {
	cmd := "drbdadm status"
	if in.Resource != "" {
		if err := checkField("Resource", in.Resource, reName); err != nil {
			return DRBDStatusOutput{}, err
		}
		cmd += " " + shellQuote(in.Resource)
	}
	res, err := h.RunCommand(ctx, RunCommandInput{InstanceID: in.InstanceID, Commands: []string{cmd}, Comment: "anyops drbd status"})
	if err != nil {
		return DRBDStatusOutput{}, err
	}
	resources, err := ParseDRBDStatus(res.Stdout)
	if err != nil {
		return DRBDStatusOutput{}, temporal.NewNonRetryableApplicationError(
			fmt.Sprintf("drbdadm status on %s: %v", in.InstanceID, err), ErrUnexpectedOutput, nil, res)
	}
	return DRBDStatusOutput{Resources: resources}, nil
}

// DRBDResource is one resource in DRBD 9's `drbdadm status`.
type DRBDResource struct {
	Name string
	Role string // Primary, Secondary, Unknown
	// Disk is the local disk state of the first volume: UpToDate, Inconsistent, Diskless, ...
	Disk    string
	Volumes []DRBDVolume
	Peers   []DRBDPeer
}

// DRBDVolume is the local state of one volume of a resource.
type DRBDVolume struct {
	Number int
	Disk   string
}

// DRBDPeer is one connection of a resource. Role, Replication, PeerDisk and Done summarize
// the first volume; PeerVolumes has them all.
type DRBDPeer struct {
	Name string
	Role string
	// Connection is Connected unless drbdadm says otherwise (it prints it only then):
	// Connecting, StandAlone, Disconnecting, ...
	Connection string
	// Replication is Established unless drbdadm says otherwise (SyncSource, SyncTarget,
	// PausedSyncS, ...); Off while not connected.
	Replication string
	PeerDisk    string
	Done        float64 // resync percent, when syncing
	PeerVolumes []DRBDPeerVolume
}

// DRBDPeerVolume is one volume's replication with one peer.
type DRBDPeerVolume struct {
	Number      int
	Replication string
	PeerDisk    string
	Done        float64
	// OutOfSyncKiB is what this side holds that the peer lacks (status --statistics).
	OutOfSyncKiB int64
}

// drbdContinuation is whether a status line starting with this token continues the item above
// it (drbdsetup wraps --verbose --statistics output at 80 columns): a statistic or a flag of a
// resource, a volume or a peer device.
func drbdContinuation(first string) bool {
	k, _, _ := strings.Cut(first, ":")
	switch k {
	case "write-ordering", "size", "read", "written", "al-writes", "bm-writes", "upper-pending", "lower-pending",
		"al-suspended", "blocked", "received", "sent", "out-of-sync", "pending", "unacked", "resync-suspended":
		return true
	}
	return false
}

// InSync reports whether the resource has an up-to-date local disk and every peer is
// connected with an up-to-date disk: a hot copy exists.
func (r DRBDResource) InSync() bool {
	if len(r.Peers) == 0 || len(r.Volumes) == 0 {
		return false
	}
	for _, v := range r.Volumes {
		if v.Disk != "UpToDate" {
			return false
		}
	}
	for _, p := range r.Peers {
		if p.Connection != "Connected" || len(p.PeerVolumes) == 0 {
			return false
		}
		for _, v := range p.PeerVolumes {
			if v.PeerDisk != "UpToDate" {
				return false
			}
		}
	}
	return true
}

// ParseDRBDStatus parses the output of DRBD 9's `drbdadm status`: resources separated by
// blank lines, each a line "<name> role:<role>", then at two spaces its volumes
// ("[volume:N] disk:<state>") and connections ("<peer> role:<role>" or
// "<peer> connection:<state>"), and at four spaces a connection's peer devices
// ("[volume:N] replication:<state> peer-disk:<state> [done:<percent>]"). Keys it does not
// know (quorum, suspended, blocked, statistics) are skipped.
func ParseDRBDStatus(out string) ([]DRBDResource, error) {
	var resources []DRBDResource
	var res *DRBDResource
	var peer *DRBDPeer
	finishPeer := func() {
		if res != nil && peer != nil {
			res.Peers = append(res.Peers, summarizePeer(*peer))
		}
		peer = nil
	}
	finish := func() {
		finishPeer()
		if res != nil {
			if len(res.Volumes) > 0 {
				res.Disk = res.Volumes[0].Disk
			}
			resources = append(resources, *res)
		}
		res = nil
	}
	for n, line := range strings.Split(out, "\n") {
		fields := strings.Fields(line)
		if len(fields) == 0 {
			continue // blank, or only whitespace of any kind
		}
		lineNo := n + 1
		indent := len(line) - len(strings.TrimLeft(line, " "))
		switch {
		case indent == 0:
			finish()
			if strings.Contains(fields[0], ":") {
				return nil, fmt.Errorf("line %d: resource line starts with %q, not a name", lineNo, fields[0])
			}
			res = &DRBDResource{Name: fields[0]}
			kv, err := keyValues(fields[1:], lineNo)
			if err != nil {
				return nil, err
			}
			res.Role = kv["role"]
		case res == nil:
			return nil, fmt.Errorf("line %d: indented line before any resource", lineNo)
		case drbdContinuation(fields[0]):
			// A wrapped line of --verbose --statistics output: more of the item above. Only
			// a peer device's out-of-sync is kept.
			kv, err := keyValues(fields, lineNo)
			if err != nil {
				return nil, err
			}
			if s, ok := kv["out-of-sync"]; ok && peer != nil && len(peer.PeerVolumes) > 0 {
				kib, err := strconv.ParseInt(s, 10, 64)
				if err != nil || kib < 0 {
					return nil, fmt.Errorf("line %d: out-of-sync:%s is not a number of KiB", lineNo, s)
				}
				peer.PeerVolumes[len(peer.PeerVolumes)-1].OutOfSyncKiB = kib
			}
		case indent < 4 && strings.Contains(fields[0], ":"):
			// A local volume.
			finishPeer()
			kv, err := keyValues(fields, lineNo)
			if err != nil {
				return nil, err
			}
			num, err := volumeNumber(kv, lineNo)
			if err != nil {
				return nil, err
			}
			res.Volumes = append(res.Volumes, DRBDVolume{Number: num, Disk: kv["disk"]})
		case indent < 4:
			// A connection to a peer.
			finishPeer()
			kv, err := keyValues(fields[1:], lineNo)
			if err != nil {
				return nil, err
			}
			peer = &DRBDPeer{Name: fields[0], Role: kv["role"], Connection: kv["connection"]}
			if peer.Connection == "" {
				peer.Connection = "Connected"
			}
		case peer == nil:
			return nil, fmt.Errorf("line %d: peer device line outside a connection", lineNo)
		default:
			kv, err := keyValues(fields, lineNo)
			if err != nil {
				return nil, err
			}
			num, err := volumeNumber(kv, lineNo)
			if err != nil {
				return nil, err
			}
			pv := DRBDPeerVolume{Number: num, Replication: kv["replication"], PeerDisk: kv["peer-disk"]}
			if s, ok := kv["out-of-sync"]; ok {
				kib, err := strconv.ParseInt(s, 10, 64)
				if err != nil || kib < 0 {
					return nil, fmt.Errorf("line %d: out-of-sync:%s is not a number of KiB", lineNo, s)
				}
				pv.OutOfSyncKiB = kib
			}
			if pv.Replication == "" {
				pv.Replication = defaultReplication(peer.Connection)
			}
			if s, ok := kv["done"]; ok {
				d, err := strconv.ParseFloat(s, 64)
				if err != nil || math.IsNaN(d) || d < 0 || d > 100 {
					return nil, fmt.Errorf("line %d: done:%s is not a percentage", lineNo, s)
				}
				pv.Done = d
			}
			peer.PeerVolumes = append(peer.PeerVolumes, pv)
		}
	}
	finish()
	return resources, nil
}

func defaultReplication(connection string) string {
	if connection == "Connected" {
		return "Established"
	}
	return "Off"
}

func summarizePeer(p DRBDPeer) DRBDPeer {
	if len(p.PeerVolumes) > 0 {
		v := p.PeerVolumes[0]
		p.Replication, p.PeerDisk, p.Done = v.Replication, v.PeerDisk, v.Done
	} else {
		p.Replication = defaultReplication(p.Connection)
	}
	return p
}

// keyValues reads "key:value" tokens; the last of a repeated key wins.
func keyValues(tokens []string, lineNo int) (map[string]string, error) {
	kv := make(map[string]string, len(tokens))
	for _, t := range tokens {
		k, v, ok := strings.Cut(t, ":")
		if !ok || k == "" {
			return nil, fmt.Errorf("line %d: %q is not key:value", lineNo, t)
		}
		kv[k] = v
	}
	return kv, nil
}

func volumeNumber(kv map[string]string, lineNo int) (int, error) {
	s, ok := kv["volume"]
	if !ok {
		return 0, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 0 || n > 65535 {
		return 0, fmt.Errorf("line %d: volume:%s is not a volume number", lineNo, s)
	}
	return n, nil
}

// FormatDRBDStatus writes resources in the form ParseDRBDStatus reads, with every value
// explicit; parsing it gives the same resources back.
func FormatDRBDStatus(resources []DRBDResource) string {
	var b strings.Builder
	for i, r := range resources {
		if i > 0 {
			b.WriteString("\n")
		}
		b.WriteString(r.Name)
		writeKV(&b, "role", r.Role)
		b.WriteString("\n")
		for _, v := range r.Volumes {
			fmt.Fprintf(&b, "  volume:%d", v.Number)
			writeKV(&b, "disk", v.Disk)
			b.WriteString("\n")
		}
		for _, p := range r.Peers {
			b.WriteString("  " + p.Name)
			writeKV(&b, "role", p.Role)
			writeKV(&b, "connection", p.Connection)
			b.WriteString("\n")
			for _, v := range p.PeerVolumes {
				fmt.Fprintf(&b, "    volume:%d", v.Number)
				writeKV(&b, "replication", v.Replication)
				writeKV(&b, "peer-disk", v.PeerDisk)
				if v.Done != 0 {
					writeKV(&b, "done", strconv.FormatFloat(v.Done, 'f', -1, 64))
				}
				if v.OutOfSyncKiB != 0 {
					writeKV(&b, "out-of-sync", strconv.FormatInt(v.OutOfSyncKiB, 10))
				}
				b.WriteString("\n")
			}
		}
	}
	return b.String()
}

func writeKV(b *strings.Builder, k, v string) {
	if v != "" {
		b.WriteString(" " + k + ":" + v)
	}
}

// ---------------------------------------------------------------------------------------
// Storage: RAID, file systems, NFS.

// AssembleRAIDInput assembles an md array from its member volumes.
type AssembleRAIDInput struct {
	InstanceID string
	Device     string   // e.g. /dev/md0
	Members    []string // e.g. /dev/xvdf /dev/xvdg; empty lets mdadm scan
}

// AssembleRAIDOutput says whether the array had to be assembled.
type AssembleRAIDOutput struct {
	AlreadyActive bool
	Result        CommandResult
}

// AssembleRAID assembles the array unless it is already active.
func (h *Hosts) AssembleRAID(ctx context.Context, in AssembleRAIDInput) (AssembleRAIDOutput, error) {
	if err := checkField("Device", in.Device, reDevice); err != nil {
		return AssembleRAIDOutput{}, err
	}
	members := ""
	for _, m := range in.Members {
		if err := checkField("Members", m, reDevice); err != nil {
			return AssembleRAIDOutput{}, err
		}
		members += " " + shellQuote(m)
	}
	if members == "" {
		members = " --scan"
	}
	dev := shellQuote(in.Device)
	res, err := h.RunCommand(ctx, RunCommandInput{InstanceID: in.InstanceID, Comment: "anyops assemble raid", Commands: []string{
		"mdadm --detail " + dev + " >/dev/null 2>&1 && echo already-active && exit 0",
		"mdadm --assemble " + dev + members,
	}})
	if err != nil {
		return AssembleRAIDOutput{}, err
	}
	return AssembleRAIDOutput{AlreadyActive: strings.Contains(res.Stdout, "already-active"), Result: res}, nil
}

// FsckInput checks (and with Repair, repairs) the file system on an unmounted device.
type FsckInput struct {
	InstanceID string
	Device     string
	Repair     bool
}

// FsckOutput reads fsck's exit code.
type FsckOutput struct {
	Clean      bool // nothing wrong
	Corrected  bool // errors were found and repaired
	ErrorsLeft bool // errors remain (with Repair false: errors were found)
	Result     CommandResult
}

// Fsck runs fsck on an unmounted device; a mounted one is a non-retryable DeviceMounted
// error (no retry unmounts it: the workflow must).
// Errors left on the file system are a finding in the output, not an activity error: the
// workflow decides (restore from the backup, build a new server).
func (h *Hosts) Fsck(ctx context.Context, in FsckInput) (FsckOutput, error) {
	if err := checkField("Device", in.Device, reDevice); err != nil {
		return FsckOutput{}, err
	}
	dev := shellQuote(in.Device)
	mode := "-n"
	if in.Repair {
		mode = "-y"
	}
	res, err := h.run(ctx, RunCommandInput{InstanceID: in.InstanceID, Comment: "anyops fsck", Commands: []string{
		"mount | grep -q -F " + shellQuote(in.Device+" on ") + " && exit " + strconv.Itoa(exitDeviceMounted),
		"fsck " + mode + " " + dev,
	}})
	if err != nil {
		return FsckOutput{}, err
	}
	out := FsckOutput{Result: res}
	switch code := res.ExitCode; {
	case code == exitDeviceMounted:
		return FsckOutput{}, temporal.NewNonRetryableApplicationError(in.Device+" is mounted", ErrDeviceMounted, nil, res)
	case code == 0:
		out.Clean = true
	case code == exitCommandMissing:
		return FsckOutput{}, commandError(res)
	case code&^3 == 0: // 1 corrected, 2 corrected and the host should reboot
		out.Corrected = true
	case code&^3 == 4: // 4: errors left uncorrected, possibly with some corrected
		out.Corrected = code&3 != 0
		out.ErrorsLeft = true
	default: // 8 operational error, 16 usage, 32 cancelled, 128 library error
		return FsckOutput{}, commandError(res)
	}
	return out, nil
}

// MountInput mounts a device.
type MountInput struct {
	InstanceID string
	Device     string
	MountPoint string
	FSType     string // empty lets mount detect it
	Options    string // e.g. noatime,nodev
}

// Mount mounts the device; the same device already mounted there is success, another device
// mounted there a non-retryable MountpointBusy error.
func (h *Hosts) Mount(ctx context.Context, in MountInput) (CommandResult, error) {
	if err := checkField("Device", in.Device, reDevice); err != nil {
		return CommandResult{}, err
	}
	if err := checkPath("MountPoint", in.MountPoint); err != nil {
		return CommandResult{}, err
	}
	if err := checkField("Options", in.Options, reOptions); err != nil {
		return CommandResult{}, err
	}
	mount := "mount"
	if in.FSType != "" {
		if err := checkField("FSType", in.FSType, reName); err != nil {
			return CommandResult{}, err
		}
		mount += " -t " + shellQuote(in.FSType)
	}
	if in.Options != "" {
		mount += " -o " + shellQuote(in.Options)
	}
	dev, mp := shellQuote(in.Device), shellQuote(in.MountPoint)
	res, err := h.run(ctx, RunCommandInput{InstanceID: in.InstanceID, Comment: "anyops mount", Commands: []string{
		// `mount` lists "DEVICE on DIR type ...": our device already there is success.
		"mount | grep -q -F " + shellQuote(in.Device+" on "+in.MountPoint+" type ") + " && exit 0",
		"mountpoint -q " + mp + " && exit " + strconv.Itoa(exitMountpointBusy),
		"mkdir -p " + mp + " 2>/dev/null",
		mount + " " + dev + " " + mp,
	}})
	if err != nil {
		return res, err
	}
	return res, classifyExit(res, "mount "+in.Device, mountFailures...)
}

// mountFailures: mount(8) exits 32 for every failure; its message says which.
var mountFailures = []exitRule{
	{exitMountpointBusy, "", ErrMountpointBusy, false},
	{32, "does not exist", ErrDeviceMissing, true},
	{32, "wrong medium type", ErrMountFailed, false}, // a DRBD device that is not Primary
	{32, "bad superblock", ErrMountFailed, false},
	{32, "already mounted", ErrMountFailed, false},
}

// UmountInput unmounts a mount point.
type UmountInput struct {
	InstanceID string
	MountPoint string
}

// Umount unmounts the mount point; nothing mounted there is success.
func (h *Hosts) Umount(ctx context.Context, in UmountInput) (CommandResult, error) {
	if err := checkPath("MountPoint", in.MountPoint); err != nil {
		return CommandResult{}, err
	}
	mp := shellQuote(in.MountPoint)
	res, err := h.run(ctx, RunCommandInput{InstanceID: in.InstanceID, Comment: "anyops umount", Commands: []string{
		"mountpoint -q " + mp + " || exit 0",
		"umount " + mp,
	}})
	if err != nil {
		return res, err
	}
	// Busy is retried: processes close their files. An NFS export keeps it busy until the
	// workflow unexports; the type tells it so when the retries run out.
	return res, classifyExit(res, "umount "+in.MountPoint, exitRule{32, "busy", ErrTargetBusy, true})
}

// NFSExportInput names one export: a path to a set of clients.
type NFSExportInput struct {
	InstanceID string
	Path       string
	Clients    string // e.g. 10.0.0.0/16 or *
	Options    string // e.g. rw,sync,no_subtree_check; used by ExportNFS
}

func (in NFSExportInput) check() error {
	if err := checkPath("Path", in.Path); err != nil {
		return err
	}
	if err := checkField("Clients", in.Clients, reNFSHosts); err != nil {
		return err
	}
	return checkField("Options", in.Options, reOptions)
}

// ExportNFS exports a path; exportfs replaces an existing export of the same path and
// clients, so a retry is harmless.
func (h *Hosts) ExportNFS(ctx context.Context, in NFSExportInput) (CommandResult, error) {
	if err := in.check(); err != nil {
		return CommandResult{}, err
	}
	cmd := "exportfs"
	if in.Options != "" {
		cmd += " -o " + shellQuote(in.Options)
	}
	res, err := h.run(ctx, RunCommandInput{InstanceID: in.InstanceID, Comment: "anyops export nfs", Commands: []string{
		cmd + " " + shellQuote(in.Clients+":"+in.Path),
	}})
	if err != nil {
		return res, err
	}
	return res, classifyExit(res, "exportfs "+in.Path, exitRule{0, "Failed to stat", ErrExportPathMissing, false})
}

// UnexportNFS withdraws an export; an export that is not there is success.
func (h *Hosts) UnexportNFS(ctx context.Context, in NFSExportInput) (CommandResult, error) {
	if err := in.check(); err != nil {
		return CommandResult{}, err
	}
	res, err := h.run(ctx, RunCommandInput{InstanceID: in.InstanceID, Comment: "anyops unexport nfs", Commands: []string{
		"exportfs -u " + shellQuote(in.Clients+":"+in.Path),
	}})
	if err != nil {
		return res, err
	}
	if res.ExitCode != 0 && strings.Contains(res.Stderr, "Could not find") {
		return res, nil
	}
	return res, commandError(res)
}

// ---------------------------------------------------------------------------------------
// Services and packages.

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
