package workflows

import (
	"fmt"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/anyops/anyops"
	"github.com/anyops/anyops/activities"
)

// KindNFSWatch is the operation kind of NFSWatch.
const KindNFSWatch = "nfs-watch"

// NFSWatchWorkflowType is the registered name of NFSWatch.
const NFSWatchWorkflowType = "NFSWatch"

// NFSWatchWorkflowID is the business key of a file server's watch: one per server.
func NFSWatchWorkflowID(server string) string { return "nfs-watch/" + server }

// NFSWatchTiming is every duration and count NFSWatch works with; defaults are production
// values, and dev scales them by cloudsim's speed.
type NFSWatchTiming struct {
	// Interval is the time from the start of one probe round to the next.
	Interval time.Duration `json:"interval,omitempty"`
	// ProbeTimeout is how long a client's write to its mount may take before it counts as
	// hung: timeout(1) on the host, in the host's time (simulated under cloudsim).
	ProbeTimeout time.Duration `json:"probe_timeout,omitempty"`
	// FailuresToAlarm consecutive failed rounds raise the alarm.
	FailuresToAlarm int `json:"failures_to_alarm,omitempty"`
	// Clients is how many clients of the cluster probe each round.
	Clients int `json:"clients,omitempty"`
	// RoundsPerRun bounds one run's history: the watch continues as new after as many rounds.
	RoundsPerRun int `json:"rounds_per_run,omitempty"`
}

// DefaultNFSWatchTiming: a round every 10 s, a probe given 5 s, the alarm after three failed
// rounds: a dead file server is detected within about 35 s, before CloudWatch's two 1-minute
// evaluation periods and before the 2-minute fleet sync.
func DefaultNFSWatchTiming() NFSWatchTiming {
	return NFSWatchTiming{Interval: 10 * time.Second, ProbeTimeout: 5 * time.Second, FailuresToAlarm: 3, Clients: 2, RoundsPerRun: 300}
}

// withDefaults fills zero fields from DefaultNFSWatchTiming.
func (t NFSWatchTiming) withDefaults() NFSWatchTiming {
	d := DefaultNFSWatchTiming()
	t.Interval = orDefault(t.Interval, d.Interval)
	t.ProbeTimeout = orDefault(t.ProbeTimeout, d.ProbeTimeout)
	t.FailuresToAlarm = orDefault(t.FailuresToAlarm, d.FailuresToAlarm)
	t.Clients = orDefault(t.Clients, d.Clients)
	t.RoundsPerRun = orDefault(t.RoundsPerRun, d.RoundsPerRun)
	return t
}

// Scaled shrinks the interval, a timer of the workflow's, by a simulated-time speed factor
// (cloudsim's): at speed 60 a 10 s interval is 10 simulated seconds, about 167 ms. The probe
// timeout is left as it is: timeout(1) runs on the host, whose clock is simulated already.
func (t NFSWatchTiming) Scaled(speed float64) NFSWatchTiming {
	t = t.withDefaults()
	if speed > 1 {
		t.Interval = time.Duration(float64(t.Interval) / speed)
	}
	return t
}

func (t NFSWatchTiming) validate() error {
	if t.Interval < 0 || t.ProbeTimeout < 0 || t.FailuresToAlarm < 0 || t.Clients < 0 || t.RoundsPerRun < 0 {
		return anyops.Errorf(anyops.EINVALID, "timing: durations and counts must not be negative")
	}
	return nil
}

// NFSWatchInput starts a file server's watch.
type NFSWatchInput struct {
	Server string         `json:"server"`
	Timing NFSWatchTiming `json:"timing,omitempty"`
	// Carry is the state a continued run takes over; nil on the first run.
	Carry *NFSWatchState `json:"carry,omitempty"`
}

// NFSWatchState is what the watch tracks, carried across continue-as-new.
type NFSWatchState struct {
	Rounds   int `json:"rounds"`   // rounds since the watch began, all runs
	Failures int `json:"failures"` // consecutive failed rounds
	// FailingSince is when the current streak of failed rounds began; its time names the
	// alarm's delivery, so a retried raise is the same delivery.
	FailingSince time.Time `json:"failing_since,omitempty"`
	// Raised: the firing alarm of the current streak was raised; a healthy round then
	// raises the resolved one.
	Raised bool `json:"raised,omitempty"`
	// Alarms counts the firing alarms raised, all runs.
	Alarms int `json:"alarms"`
}

// NFSWatchResult is how a watch ended: its server stopped being a file server to watch.
type NFSWatchResult struct {
	Reason string `json:"reason"`
	Rounds int    `json:"rounds"`
	Alarms int    `json:"alarms"`
}

func prepareNFSWatch(in *NFSWatchInput, _ string) (string, temporal.SearchAttributes, error) {
	if in.Server == "" {
		return "", temporal.SearchAttributes{}, anyops.Errorf(anyops.EINVALID, "server is required")
	}
	if in.Carry != nil {
		return "", temporal.SearchAttributes{}, anyops.Errorf(anyops.EINVALID, "carry is set by the workflow, not the request")
	}
	if err := in.Timing.validate(); err != nil {
		return "", temporal.SearchAttributes{}, err
	}
	return NFSWatchWorkflowID(in.Server), temporal.NewSearchAttributes(SearchServer.ValueSet(in.Server)), nil
}

// StartNFSWatch starts server's NFS watch as a child workflow that outlives its parent (it is
// an entity workflow under its own business key): what a workflow that makes a file server —
// a fleet sync, a cluster build, a failover — calls. While a watch of that server runs, the
// start is refused: the future's GetChildWorkflowExecution fails with
// *temporal.ChildWorkflowExecutionAlreadyStartedError.
func StartNFSWatch(ctx workflow.Context, server string, timing NFSWatchTiming) workflow.ChildWorkflowFuture {
	childCtx := workflow.WithChildOptions(ctx, workflow.ChildWorkflowOptions{
		WorkflowID:            NFSWatchWorkflowID(server),
		TaskQueue:             TaskQueueControl,
		WorkflowIDReusePolicy: enumspb.WORKFLOW_ID_REUSE_POLICY_ALLOW_DUPLICATE,
		ParentClosePolicy:     enumspb.PARENT_CLOSE_POLICY_ABANDON,
		TypedSearchAttributes: temporal.NewSearchAttributes(SearchServer.ValueSet(server)),
	})
	return workflow.ExecuteChildWorkflow(childCtx, NFSWatchWorkflowType, NFSWatchInput{Server: server, Timing: timing})
}

const stepWatch = "watch"

// nfsWatchAlarmName is the name of the probe's alarms (their source is anyops.AlarmProbe).
const nfsWatchAlarmName = "nfs-watch"

// NFSWatch is a file server's own fast probe, so that detection waits neither for
// CloudWatch's evaluation periods nor for the fleet sync: an entity workflow (one per file
// server, NFSWatchWorkflowID) that every Interval has a few of the cluster's clients write to
// their mount of the file service and read it back (Hosts.CheckMount, through SSM, each call
// bounded by ProbeTimeout). A round fails when some client answered about this server and
// none could write and read; a round where no client answered about it (SSM cannot reach
// them, they have no mount, or their mount talks to another server) counts neither way. After FailuresToAlarm failed
// rounds in a row it raises a firing alarm (source probe) through the same intake as SNS and
// Alertmanager (Alarms.RaiseAlarm), once per streak; the first healthy round after raises the
// resolved one. It ends when its server is no longer a running file server in the inventory,
// and continues as new every RoundsPerRun rounds.
func NFSWatch(ctx workflow.Context, in NFSWatchInput) (NFSWatchResult, error) {
	tracker, err := NewTracker(ctx, stepWatch)
	if err != nil {
		return NFSWatchResult{}, err
	}
	timing := in.Timing.withDefaults()
	st := NFSWatchState{}
	if in.Carry != nil {
		st = *in.Carry
	}
	var (
		inv    *activities.Inventory
		hosts  *activities.Hosts
		alarms *activities.Alarms
	)
	invCtx := workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout: 30 * time.Second,
		RetryPolicy:         &temporal.RetryPolicy{InitialInterval: time.Second, MaximumInterval: 30 * time.Second},
	})
	// One attempt per probe: a probe that cannot run this round is simply not counted; the
	// next round is the retry.
	probeCtx := workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout: timing.ProbeTimeout + time.Minute,
		HeartbeatTimeout:    timing.ProbeTimeout + 30*time.Second,
		RetryPolicy:         &temporal.RetryPolicy{MaximumAttempts: 1},
	})
	tracker.Start(stepWatch, "watching "+in.Server)
	for run := 0; ; run++ {
		if run >= timing.RoundsPerRun || workflow.GetInfo(ctx).GetContinueAsNewSuggested() {
			next := in
			next.Carry = &st
			return NFSWatchResult{}, workflow.NewContinueAsNewError(ctx, NFSWatchWorkflowType, next)
		}
		roundStart := workflow.Now(ctx)
		var target activities.NFSWatchTarget
		if err := workflow.ExecuteActivity(invCtx, inv.NFSWatchTarget, activities.NFSWatchTargetInput{Server: in.Server, MaxClients: timing.Clients}).Get(ctx, &target); err != nil {
			return NFSWatchResult{}, err
		}
		if !target.Watch {
			tracker.Done(stepWatch, target.Reason)
			tracker.Finish("watch ended: " + target.Reason)
			return NFSWatchResult{Reason: target.Reason, Rounds: st.Rounds, Alarms: st.Alarms}, nil
		}
		st.Rounds++
		futures := make([]workflow.Future, len(target.Clients))
		for i, client := range target.Clients {
			futures[i] = workflow.ExecuteActivity(probeCtx, hosts.CheckMount, activities.CheckMountInput{InstanceID: client, Timeout: timing.ProbeTimeout})
		}
		serving, failing, detail := 0, 0, ""
		for i, f := range futures {
			var out activities.MountHealth
			switch err := f.Get(ctx, &out); {
			case err != nil, !out.Mounted:
				continue // an unreachable client, or one without the mount: no answer
			case target.PrivateIP != "" && out.Mount.Server != "" && out.Mount.Server != target.PrivateIP:
				continue // its mount talks to another server: no answer about this one
			case out.Serving:
				serving++
			default:
				failing++
				detail = fmt.Sprintf("%s: %s", target.Clients[i], out.Detail)
			}
		}
		switch {
		case serving > 0:
			if st.Raised {
				raise(ctx, invCtx, alarms, in.Server, st, anyops.AlarmResolved, fmt.Sprintf("%d of %d clients write to their mount again", serving, len(target.Clients)))
			}
			st.Failures, st.Raised, st.FailingSince = 0, false, time.Time{}
			tracker.Start(stepWatch, fmt.Sprintf("round %d: %s serves (%d of %d clients wrote)", st.Rounds, in.Server, serving, len(target.Clients)))
		case failing > 0:
			if st.Failures == 0 {
				st.FailingSince = roundStart
			}
			st.Failures++
			tracker.Start(stepWatch, fmt.Sprintf("round %d: %s failed %d round(s) in a row (%s)", st.Rounds, in.Server, st.Failures, detail))
			if st.Failures >= timing.FailuresToAlarm && !st.Raised {
				reason := fmt.Sprintf("no client could write to its NFS mount for %d rounds (%s)", st.Failures, detail)
				raise(ctx, invCtx, alarms, in.Server, st, anyops.AlarmFiring, reason)
				st.Raised = true
				st.Alarms++
			}
		default:
			tracker.Start(stepWatch, fmt.Sprintf("round %d: no client of %s answered; not counted", st.Rounds, in.Server))
		}
		if err := workflow.Sleep(ctx, max(timing.Interval-workflow.Now(ctx).Sub(roundStart), time.Millisecond)); err != nil {
			return NFSWatchResult{}, err
		}
	}
}

// raise hands the probe's alarm to the intake. The delivery id names the watch, the streak
// (its start) and the state, so a retried raise is one delivery and every streak a new one.
// The activity retries while the database or Temporal is down; an alarm the intake refuses for
// good (the server has left the inventory) is logged, and the watch goes on.
func raise(ctx, actCtx workflow.Context, alarms *activities.Alarms, server string, st NFSWatchState, state anyops.AlarmState, reason string) {
	a := anyops.Alarm{
		Source: anyops.AlarmProbe, State: state, Server: server, Name: nfsWatchAlarmName, Check: "nfs", Reason: reason,
		DeliveryID: fmt.Sprintf("%s@%s/%s", NFSWatchWorkflowID(server), st.FailingSince.UTC().Format(time.RFC3339Nano), state),
		At:         workflow.Now(ctx),
	}
	var out anyops.AlarmOutcome
	if err := workflow.ExecuteActivity(actCtx, alarms.RaiseAlarm, a).Get(ctx, &out); err != nil {
		workflow.GetLogger(ctx).Error("NFS probe alarm refused", "server", server, "state", state, "err", err)
		return
	}
	workflow.GetLogger(ctx).Info("NFS probe alarm raised", "server", server, "state", state, "action", out.Action, "workflow_id", out.WorkflowID)
}
