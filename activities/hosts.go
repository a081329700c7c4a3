package activities

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
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
