package activities

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	historypb "go.temporal.io/api/history/v1"
	"go.temporal.io/api/serviceerror"

	"github.com/anyops/anyops"
	"github.com/anyops/anyops/drills"
	"github.com/anyops/anyops/inventory"
)

// DrillReportInput is what the drill workflow knows of its run; the activity gathers the rest
// (events, resources, incidents, the recoveries' results, statuses and histories, overrides).
type DrillReportInput struct {
	DrillID  int64              `json:"drill_id"`
	Scenario string             `json:"scenario"`
	Cluster  string             `json:"cluster"`
	Listed   []string           `json:"listed,omitempty"`
	Goals    map[string]float64 `json:"goals,omitempty"`
	Armed    time.Time          `json:"armed"`
	Origin   time.Time          `json:"origin"`
	End      time.Time          `json:"end"`
	TimedOut bool               `json:"timed_out"`
	// Anchor is a reading of cloudsim's clock taken when the drill stopped waiting.
	Anchor drills.ClockAnchor `json:"anchor"`
	// Kinds maps workflow types to operation kinds (workflows.Kinds).
	Kinds map[string]string `json:"kinds"`
	// Operations are the workflows the drill's operation steps started.
	Operations []WorkflowRef `json:"operations,omitempty"`
	// StartedAt is when the drill began (real time): audit events before it are not its.
	StartedAt time.Time `json:"started_at"`
}

// WorkflowRef names one workflow run.
type WorkflowRef struct {
	WorkflowID string `json:"workflow_id"`
	RunID      string `json:"run_id"`
}

// Report gathers what a drill's report is computed from and computes it (drills.Compute).
// It only reads, so a retry computes the same report again.
func (d *Drills) Report(ctx context.Context, in DrillReportInput) (anyops.DrillReport, error) {
	events, err := d.events(ctx, in.DrillID)
	if err != nil {
		return anyops.DrillReport{}, err
	}
	resources, err := d.resources(ctx, in.Cluster)
	if err != nil {
		return anyops.DrillReport{}, err
	}
	if in.Cluster != inventory.DemoCluster { // a drill on live has them already
		live, err := (&Cloud{Clients: d.Clients}).DescribeFleet(ctx, DescribeFleetInput{Tags: map[string]string{anyops.TagCluster: inventory.DemoCluster}})
		if err != nil {
			return anyops.DrillReport{}, err
		}
		for _, i := range live.Instances {
			resources = append(resources, drills.Resource{ID: i.ID, Type: "instance", State: i.State, Tags: i.Tags})
		}
	}
	states := map[string]anyops.ClusterState{}
	for _, c := range []string{in.Cluster, StandbyClusterOf(in.Cluster), inventory.DemoCluster} {
		if cl, err := d.Store.GetCluster(ctx, c); err == nil {
			states[c] = cl.State
		} else if anyops.ErrorCode(err) != anyops.ENOTFOUND {
			return anyops.DrillReport{}, classify(err)
		}
	}
	incidents, err := d.incidents(ctx, in.Cluster, true)
	if err != nil {
		return anyops.DrillReport{}, err
	}
	ri := drills.ReportInput{
		Drill: anyops.DrillWorkflowID(in.DrillID), Scenario: in.Scenario, Cluster: in.Cluster, Listed: in.Listed, Goals: in.Goals,
		Armed: in.Armed, Origin: in.Origin, End: in.End, TimedOut: in.TimedOut,
		Events: events, Resources: resources, ClusterStates: states, Clock: drills.NewClock(in.Anchor, events),
		Incidents: incidents, Kinds: in.Kinds,
	}
	var recoveryIDs []string
	for _, inc := range incidents {
		if inc.RunID == "" {
			continue
		}
		run, err := d.run(ctx, WorkflowRef{WorkflowID: inc.WorkflowID, RunID: inc.RunID})
		if err != nil {
			return anyops.DrillReport{}, err
		}
		ri.Recoveries = append(ri.Recoveries, run)
		recoveryIDs = append(recoveryIDs, inc.WorkflowID)
	}
	for _, ref := range in.Operations {
		run, err := d.run(ctx, ref)
		if err != nil {
			return anyops.DrillReport{}, err
		}
		ri.Operations = append(ri.Operations, run)
	}
	if ri.Overrides, err = AuditedOverrides(ctx, d.Store, in.StartedAt, in.Cluster, recoveryIDs); err != nil {
		return anyops.DrillReport{}, err
	}
	r, err := drills.Compute(ri)
	if err != nil {
		return r, invalidInput("%v", err)
	}
	return r, nil
}

// run describes one workflow run for the report: its type and state, its result or its
// Status, and the busy intervals of its history and its children's.
func (d *Drills) run(ctx context.Context, ref WorkflowRef) (drills.Run, error) {
	desc, err := d.Temporal.DescribeWorkflowExecution(ctx, ref.WorkflowID, ref.RunID)
	if err != nil {
		return drills.Run{}, fmt.Errorf("describe %s: %w", ref.WorkflowID, err)
	}
	info := desc.GetWorkflowExecutionInfo()
	r := drills.Run{WorkflowID: ref.WorkflowID, RunID: info.GetExecution().GetRunId(), Type: info.GetType().GetName(),
		State:   strings.ToLower(strings.TrimPrefix(info.GetStatus().String(), "WORKFLOW_EXECUTION_STATUS_")),
		Started: info.GetStartTime().AsTime()}
	if info.GetCloseTime() != nil {
		t := info.GetCloseTime().AsTime()
		r.Closed = &t
	}
	if info.GetStatus() == enumspb.WORKFLOW_EXECUTION_STATUS_COMPLETED {
		var result json.RawMessage
		if err := d.Temporal.GetWorkflow(ctx, ref.WorkflowID, r.RunID).Get(ctx, &result); err == nil {
			r.Result = result
		}
	}
	if v, err := d.Temporal.QueryWorkflow(ctx, ref.WorkflowID, r.RunID, statusQuery); err == nil {
		var raw json.RawMessage
		if v.Get(&raw) == nil {
			r.Status = raw
		}
	}
	if r.Busy, err = d.busy(ctx, ref.WorkflowID, r.RunID, 0); err != nil {
		return r, err
	}
	return r, nil
}

// statusQuery is the query every workflow answers with its Status (workflows.StatusQuery,
// which this package cannot import).
const statusQuery = "Status"

// maxChildDepth bounds how deep busy follows child workflows.
const maxChildDepth = 4

// busy reads a run's history: an activity is busy from its start to its end (from its
// schedule when it took more than one attempt: the attempts before failed on the cloud and
// waited their backoff), a timer from its start to its firing or cancellation, a child
// workflow as its own history says. What is still open counts as busy until now (the control
// plane is not blamed for it).
func (d *Drills) busy(ctx context.Context, id, runID string, depth int) ([]drills.Interval, error) {
	now := time.Now()
	type open struct{ at time.Time }
	activities, timers := map[int64]*open{}, map[int64]*open{}
	scheduled := map[int64]time.Time{}
	var out []drills.Interval
	var children []WorkflowRef
	it := d.Temporal.GetWorkflowHistory(ctx, id, runID, false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	for it.HasNext() {
		ev, err := it.Next()
		if err != nil {
			var gone *serviceerror.NotFound
			if errors.As(err, &gone) {
				return out, nil // past retention: nothing to add
			}
			return nil, fmt.Errorf("history of %s: %w", id, err)
		}
		at := ev.GetEventTime().AsTime()
		switch ev.GetEventType() {
		case enumspb.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
			scheduled[ev.GetEventId()] = at
		case enumspb.EVENT_TYPE_ACTIVITY_TASK_STARTED:
			a := ev.GetActivityTaskStartedEventAttributes()
			from := at
			if a.GetAttempt() > 1 {
				// Earlier attempts failed on the cloud (not ready yet, throttled) and waited out
				// their backoff: the activity's time, from its schedule, not the control plane's.
				if s, ok := scheduled[a.GetScheduledEventId()]; ok {
					from = s
				}
			}
			activities[a.GetScheduledEventId()] = &open{from}
		case enumspb.EVENT_TYPE_ACTIVITY_TASK_COMPLETED, enumspb.EVENT_TYPE_ACTIVITY_TASK_FAILED,
			enumspb.EVENT_TYPE_ACTIVITY_TASK_TIMED_OUT, enumspb.EVENT_TYPE_ACTIVITY_TASK_CANCELED:
			sid := activityScheduledID(ev)
			if o := activities[sid]; o != nil {
				out = append(out, drills.Interval{From: o.at, To: at})
			}
			delete(activities, sid)
			delete(scheduled, sid)
		case enumspb.EVENT_TYPE_TIMER_STARTED:
			timers[ev.GetEventId()] = &open{at}
		case enumspb.EVENT_TYPE_TIMER_FIRED:
			sid := ev.GetTimerFiredEventAttributes().GetStartedEventId()
			if o := timers[sid]; o != nil {
				out = append(out, drills.Interval{From: o.at, To: at})
			}
			delete(timers, sid)
		case enumspb.EVENT_TYPE_TIMER_CANCELED:
			sid := ev.GetTimerCanceledEventAttributes().GetStartedEventId()
			if o := timers[sid]; o != nil {
				out = append(out, drills.Interval{From: o.at, To: at})
			}
			delete(timers, sid)
		case enumspb.EVENT_TYPE_CHILD_WORKFLOW_EXECUTION_STARTED:
			a := ev.GetChildWorkflowExecutionStartedEventAttributes()
			children = append(children, WorkflowRef{WorkflowID: a.GetWorkflowExecution().GetWorkflowId(), RunID: a.GetWorkflowExecution().GetRunId()})
		}
	}
	// A pending activity's ActivityTaskStarted is written only when it ends: it is busy from
	// its schedule.
	for _, at := range scheduled {
		out = append(out, drills.Interval{From: at, To: now})
	}
	for _, o := range activities {
		out = append(out, drills.Interval{From: o.at, To: now})
	}
	for _, o := range timers {
		out = append(out, drills.Interval{From: o.at, To: now})
	}
	if depth < maxChildDepth {
		for _, c := range children {
			b, err := d.busy(ctx, c.WorkflowID, c.RunID, depth+1)
			if err != nil {
				return nil, err
			}
			out = append(out, b...)
		}
	}
	return out, nil
}

func activityScheduledID(ev *historypb.HistoryEvent) int64 {
	switch ev.GetEventType() {
	case enumspb.EVENT_TYPE_ACTIVITY_TASK_COMPLETED:
		return ev.GetActivityTaskCompletedEventAttributes().GetScheduledEventId()
	case enumspb.EVENT_TYPE_ACTIVITY_TASK_FAILED:
		return ev.GetActivityTaskFailedEventAttributes().GetScheduledEventId()
	case enumspb.EVENT_TYPE_ACTIVITY_TASK_TIMED_OUT:
		return ev.GetActivityTaskTimedOutEventAttributes().GetScheduledEventId()
	case enumspb.EVENT_TYPE_ACTIVITY_TASK_CANCELED:
		return ev.GetActivityTaskCanceledEventAttributes().GetScheduledEventId()
	}
	return 0
}

// AuditedOverrides are the audited overrides of interlocks since a time on a cluster's
// recoveries (workflowIDs) or servers: audit events whose action names an override, with the
// interlock in their summary. A drill's report reads them from the drill's start.
func AuditedOverrides(ctx context.Context, store *inventory.Store, since time.Time, cluster string, workflowIDs []string) ([]drills.Override, error) {
	var out []drills.Override
	cursor := ""
	for {
		page, next, err := store.ListAudit(ctx, inventory.Page{Limit: 500, Cursor: cursor})
		if err != nil {
			return nil, classify(err)
		}
		for _, e := range page {
			if e.CreatedAt.Before(since) {
				return out, nil
			}
			if !strings.Contains(e.Action, "override") {
				continue
			}
			ours := strings.Contains(e.Subject, cluster+"-") || e.Subject == cluster
			for _, id := range workflowIDs {
				ours = ours || e.Subject == id
			}
			if !ours {
				continue
			}
			interlock, _ := e.Summary["interlock"].(string)
			out = append(out, drills.Override{Interlock: interlock, Subject: e.Subject, At: e.CreatedAt})
		}
		if next == "" {
			return out, nil
		}
		cursor = next
	}
}
