package alarms

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"

	"github.com/anyops/anyops"
	"github.com/anyops/anyops/internal/opstart"
	"github.com/anyops/anyops/inventory"
	"github.com/anyops/anyops/workflows"
)

// Intake is where every alarm goes, whatever its source: the API's SNS and Alertmanager
// endpoints call Raise, and so does the NFSWatch workflow's probe (through the RaiseAlarm
// activity). It resolves the server from the inventory, applies the Rules, records the alarm
// on the fault's one incident and starts or joins the recovery workflow under its business key.
// It never calls the cloud.
type Intake struct {
	Store    *inventory.Store
	Temporal client.Client
	Logger   *slog.Logger
	// TaskQueue overrides the kinds' task queue; tests give their own, so that no other
	// test's worker runs the recoveries they start.
	TaskQueue string
	// Speed is the speed factor of a simulated cloud (cloudsim's, in dev): the recoveries the
	// intake starts get their timing policy scaled by it. 0 or 1: production timing.
	Speed float64
}

// Bounds of the alarm fields the intake keeps.
const (
	maxDeliveryID = 512
	maxAlarmText  = 1000
)

// check validates an alarm from any source: EINVALID names what is wrong.
func check(a *anyops.Alarm) error {
	if !slices.Contains(anyops.AlarmSources, a.Source) {
		return anyops.Errorf(anyops.EINVALID, "alarm source %q is not one of %v", a.Source, anyops.AlarmSources)
	}
	if !slices.Contains(anyops.AlarmStates, a.State) {
		return anyops.Errorf(anyops.EINVALID, "alarm state %q is not one of %v", a.State, anyops.AlarmStates)
	}
	if a.DeliveryID == "" || len(a.DeliveryID) > maxDeliveryID {
		return anyops.Errorf(anyops.EINVALID, "alarm delivery id must be 1 to %d bytes", maxDeliveryID)
	}
	if a.Server == "" && a.InstanceID == "" {
		return anyops.Errorf(anyops.EINVALID, "the alarm names no server: give its name or its instance id")
	}
	for _, f := range []struct{ name, value string }{{"server", a.Server}, {"instance id", a.InstanceID}} {
		if f.value != "" {
			if err := anyops.CheckName(f.name, f.value); err != nil {
				return err
			}
		}
	}
	a.Name, a.Check, a.Reason = truncateText(a.Name, maxAlarmText), truncateText(a.Check, maxAlarmText), truncateText(a.Reason, maxAlarmText)
	return nil
}

// Raise takes one alarm. A firing alarm opens its fault's incident, or joins the open one,
// records the alarm on its timeline (a delivery seen before as a redelivery) and starts the
// recovery workflow under its business key, or joins the one running there; it never starts a
// second. The fault is the server's (faultOf): an open incident about the server, else the
// incident that recorded this delivery, else a recovery of any kind running on it, else the
// rule of its role — so an alarm that arrives after a failover has made its failed primary the
// new backup joins the failover, and does not rebuild that backup. Once the incident's recovery has ended, a firing alarm is only
// noted: an operator starts another by hand. A resolved alarm is noted on the fault's open
// incident, if there is one. Errors: EINVALID for a malformed alarm, ENOTFOUND for a server
// the inventory does not know; anything else is the database or Temporal (the caller's source
// retries).
func (in *Intake) Raise(ctx context.Context, a anyops.Alarm) (anyops.AlarmOutcome, error) {
	if err := check(&a); err != nil {
		return anyops.AlarmOutcome{}, err
	}
	srv, err := in.server(ctx, a)
	if err != nil {
		return anyops.AlarmOutcome{}, err
	}
	out := anyops.AlarmOutcome{Server: srv.Name}
	f, err := in.faultOf(ctx, srv, a)
	if err != nil {
		return out, err
	}
	if f.kind.Name == "" {
		out.Action, out.Message = anyops.AlarmIgnored, fmt.Sprintf("no rule for servers of role %s", srv.Role)
		return out, nil
	}
	kind := f.kind
	out.Kind, out.WorkflowID = kind.Name, f.workflowID
	actor := "alarm:" + string(a.Source)

	if a.State == anyops.AlarmResolved {
		return in.resolved(ctx, a, f, out)
	}
	if f.incident == nil {
		// No fault is open on the server: one an operation holds in planned maintenance
		// stopped serving on purpose.
		if sup, held, err := in.suppress(ctx, srv, a, out); held || err != nil {
			return sup, err
		}
	}
	inc, opened := inventory.Incident{}, false
	if f.incident != nil {
		// The incident found is used as it is, even if it is resolved meanwhile: then its run
		// has ended, and the alarm is noted on it rather than starting that recovery again.
		inc = *f.incident
	} else if inc, opened, err = in.Store.OpenOrJoinIncident(ctx, inventory.Incident{
		Title: f.rule.title(srv.Name), Cluster: srv.Cluster, Server: srv.Name, WorkflowID: out.WorkflowID, OpenedAt: a.At,
	}); err != nil {
		return out, err
	}
	out.IncidentID = inc.ID
	if out.Redelivery, err = in.note(ctx, inc.ID, a, inventory.IncidentEventAlarm); err != nil {
		return out, err
	}
	if inc.State != inventory.IncidentOpen {
		out.RunID, out.Action = inc.RunID, anyops.AlarmNoted
		out.Message = fmt.Sprintf("noted on incident %d, resolved: a delivery of its fault, which is over", inc.ID)
		return out, nil
	}
	if !opened && inc.RunID != "" {
		return in.joinLinked(ctx, inc, out)
	}
	start, err := kind.Prepare(in.recoveryInput(srv.Name, inc.ID), actor)
	if err != nil {
		return out, fmt.Errorf("recovery input of %s for %s: %w", kind.Name, srv.Name, err)
	}
	if start.ID != out.WorkflowID {
		return out, fmt.Errorf("operation kind %s names its business key after the incident: %q then %q", kind.Name, out.WorkflowID, start.ID)
	}
	// Temporal decides, atomically, whether this alarm starts the workflow or joins it.
	started, err := opstart.Start(ctx, in.Temporal, kind, start, in.TaskQueue)
	if err != nil {
		return out, fmt.Errorf("start %s: %w", start.ID, err)
	}
	out.Action, out.RunID = anyops.AlarmStarted, started.RunID
	if started.Joined {
		out.Action = anyops.AlarmJoined
	}
	_, linked, err := in.Store.LinkIncidentRun(ctx, inc.ID, out.RunID)
	if err != nil {
		return out, err
	}
	if linked {
		verb := "started"
		if out.Action == anyops.AlarmJoined {
			verb = "joined the running"
		}
		msg := fmt.Sprintf("%s %s %s (run %s) on the %s alarm", verb, kind.Name, out.WorkflowID, out.RunID, a.Source)
		if _, err := in.Store.AddIncidentEvent(ctx, inventory.IncidentEvent{IncidentID: inc.ID, Kind: inventory.IncidentEventWorkflow,
			Source: string(a.Source), Message: msg}); err != nil {
			return out, err
		}
	}
	out.Message = fmt.Sprintf("%s %s for incident %d", out.Action, out.WorkflowID, inc.ID)
	in.logger().Info("alarm", "source", a.Source, "delivery", a.DeliveryID, "server", srv.Name, "action", out.Action,
		"incident", inc.ID, "workflow_id", out.WorkflowID, "run_id", out.RunID, "redelivery", out.Redelivery)
	return out, nil
}

// suppress records a firing alarm about a server that the release of its cluster holds in
// planned maintenance (workflows.MemoMaintenance on the running release) as suppressed by that
// release, in the audit log (once per delivery), and starts nothing. held is false, and nothing
// recorded, when no running operation holds the server.
func (in *Intake) suppress(ctx context.Context, srv inventory.Server, a anyops.Alarm, out anyops.AlarmOutcome) (anyops.AlarmOutcome, bool, error) {
	holder := anyops.ReleaseWorkflowID(srv.Cluster)
	desc, err := in.Temporal.DescribeWorkflowExecution(ctx, holder, "")
	var gone *serviceerror.NotFound
	if errors.As(err, &gone) {
		return out, false, nil
	}
	if err != nil {
		return out, false, fmt.Errorf("describe %s: %w", holder, err)
	}
	info := desc.GetWorkflowExecutionInfo()
	if info.GetStatus() != enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING {
		return out, false, nil
	}
	held, err := workflows.MaintenanceHeld(info.GetMemo())
	if err != nil {
		return out, false, fmt.Errorf("the maintenance hold of %s: %w", holder, err)
	}
	if !slices.Contains(held, srv.Name) {
		return out, false, nil
	}
	key := fmt.Sprintf("alarm.suppressed/%s/%s", a.Source, a.DeliveryID)
	if _, err := in.Store.RecordAudit(ctx, inventory.AuditEvent{Actor: "alarm:" + string(a.Source), Action: "alarm.suppressed", Subject: holder,
		IdempotencyKey: &key, Summary: map[string]any{"server": srv.Name, "source": string(a.Source), "delivery_id": a.DeliveryID,
			"alarm": describe(a), "held_by": holder, "run_id": info.GetExecution().GetRunId()}}); err != nil {
		return out, true, err
	}
	out.Action, out.Kind, out.WorkflowID, out.RunID = anyops.AlarmSuppressed, "", holder, info.GetExecution().GetRunId()
	out.Message = fmt.Sprintf("%s is held in planned maintenance by %s: the alarm is recorded in the audit log, nothing started", srv.Name, holder)
	in.logger().Info("alarm suppressed", "source", a.Source, "delivery", a.DeliveryID, "server", srv.Name, "held_by", holder)
	return out, true, nil
}

// fault is what an alarm on a server belongs to: the recovery kind and business key of the
// server's fault, its open incident when there is one, and the rule whose title names a new
// incident. A zero kind: no rule for the server's role, and nothing under way on it.
type fault struct {
	kind       workflows.Kind
	workflowID string
	rule       Rule
	incident   *inventory.Incident
}

// faultOf finds the fault an alarm on srv belongs to. A server's role can change under a fault
// — a failover records its failed primary as the new backup at the cutover, while CloudWatch's
// alarm for that same failure may still be on its way — so the role is asked last:
//  1. an open incident about the server (the oldest, if a race left two): the alarm joins it;
//  2. the incident about the server that recorded this very delivery (SNS redelivers for up
//     to an hour, after a quick recovery may have resolved it): noted there as a redelivery;
//  3. a recovery of any kind of the Rules running on the server (an operator's, or a
//     failover's child), whose incident is opened or joined by its business key;
//  4. the rule of the server's role now: a new fault.
//
// A fault whose incident was resolved is over: a new alarm after that is a new fault (step 4).
func (in *Intake) faultOf(ctx context.Context, srv inventory.Server, a anyops.Alarm) (fault, error) {
	var recoveries []fault
	for _, name := range RecoveryKinds() {
		f, err := in.faultOfKind(name, srv)
		if err != nil {
			return fault{}, err
		}
		recoveries = append(recoveries, f)
	}
	open, _, err := in.Store.ListIncidents(ctx, inventory.IncidentFilter{State: inventory.IncidentOpen, Server: srv.Name,
		Page: inventory.Page{Limit: inventory.MaxLimit}})
	if err != nil {
		return fault{}, err
	}
	for i := len(open) - 1; i >= 0; i-- { // newest first: the oldest is last
		for _, f := range recoveries {
			if f.workflowID == open[i].WorkflowID {
				f.incident = &open[i]
				return f, nil
			}
		}
	}
	seen, err := in.Store.IncidentOfDelivery(ctx, srv.Name, string(a.Source), a.DeliveryID)
	if err != nil && anyops.ErrorCode(err) != anyops.ENOTFOUND {
		return fault{}, err
	}
	for _, f := range recoveries {
		if err == nil && f.workflowID == seen.WorkflowID {
			f.incident = &seen
			return f, nil
		}
	}
	for _, f := range recoveries {
		desc, err := in.Temporal.DescribeWorkflowExecution(ctx, f.workflowID, "")
		var gone *serviceerror.NotFound
		if errors.As(err, &gone) {
			continue
		}
		if err != nil {
			return fault{}, fmt.Errorf("describe %s: %w", f.workflowID, err)
		}
		if desc.GetWorkflowExecutionInfo().GetStatus() == enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING {
			return f, nil
		}
	}
	rule, ok := RuleFor(srv.Role)
	if !ok {
		return fault{}, nil
	}
	return in.faultOfKind(rule.Kind, srv)
}

// faultOfKind is the fault of a recovery kind on a server: the business key comes from the
// kind's own Prepare (the one place that names it); the incident's title from the rule of the
// server's role when that rule names this kind, else from the first rule that does.
func (in *Intake) faultOfKind(name string, srv inventory.Server) (fault, error) {
	kind, ok := workflows.LookupKind(name)
	if !ok {
		return fault{}, fmt.Errorf("the alarm rules name the operation kind %q, which is not registered", name)
	}
	probe, err := kind.Prepare(in.recoveryInput(srv.Name, 0), "alarm")
	if err != nil {
		return fault{}, fmt.Errorf("recovery input of %s for %s: %w", kind.Name, srv.Name, err)
	}
	rule, ok := RuleFor(srv.Role)
	if !ok || rule.Kind != name {
		rule, _ = ruleOfKind(name)
	}
	return fault{kind: kind, workflowID: probe.ID, rule: rule}, nil
}

// joinLinked answers an alarm for an incident whose recovery run is known: joined while it
// runs, noted once it has ended (nothing is started again for this incident).
func (in *Intake) joinLinked(ctx context.Context, inc inventory.Incident, out anyops.AlarmOutcome) (anyops.AlarmOutcome, error) {
	out.RunID = inc.RunID
	desc, err := in.Temporal.DescribeWorkflowExecution(ctx, inc.WorkflowID, inc.RunID)
	var gone *serviceerror.NotFound
	if errors.As(err, &gone) {
		// Past Temporal's retention: it ended long ago.
		out.Action = anyops.AlarmNoted
		out.Message = fmt.Sprintf("noted on incident %d; its recovery %s has ended and is no longer kept by Temporal", inc.ID, inc.WorkflowID)
		return out, nil
	}
	if err != nil {
		return out, fmt.Errorf("describe %s: %w", inc.WorkflowID, err)
	}
	status := desc.GetWorkflowExecutionInfo().GetStatus()
	if status == enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING {
		out.Action, out.Message = anyops.AlarmJoined, fmt.Sprintf("joined %s for incident %d", inc.WorkflowID, inc.ID)
		return out, nil
	}
	out.Action = anyops.AlarmNoted
	out.Message = fmt.Sprintf("noted on incident %d; its recovery %s has ended (%s) and is not started again: start one by hand if it is needed",
		inc.ID, inc.WorkflowID, strings.ToLower(strings.TrimPrefix(status.String(), "WORKFLOW_EXECUTION_STATUS_")))
	return out, nil
}

// resolved notes a resolved alarm on the fault's open incident.
func (in *Intake) resolved(ctx context.Context, a anyops.Alarm, f fault, out anyops.AlarmOutcome) (anyops.AlarmOutcome, error) {
	if f.incident != nil {
		return in.noteResolved(ctx, a, *f.incident, out)
	}
	inc, err := in.Store.OpenIncidentOf(ctx, out.WorkflowID)
	if anyops.ErrorCode(err) == anyops.ENOTFOUND {
		out.Action, out.Message = anyops.AlarmIgnored, fmt.Sprintf("no open incident for %s", out.WorkflowID)
		return out, nil
	}
	if err != nil {
		return out, err
	}
	return in.noteResolved(ctx, a, inc, out)
}

// noteResolved records a resolved alarm on its incident.
func (in *Intake) noteResolved(ctx context.Context, a anyops.Alarm, inc inventory.Incident, out anyops.AlarmOutcome) (anyops.AlarmOutcome, error) {
	var err error
	out.IncidentID, out.RunID = inc.ID, inc.RunID
	if out.Redelivery, err = in.note(ctx, inc.ID, a, inventory.IncidentEventAlarmResolved); err != nil {
		return out, err
	}
	out.Action, out.Message = anyops.AlarmNoted, fmt.Sprintf("noted on incident %d", inc.ID)
	return out, nil
}

// note records the alarm on the incident's timeline; a delivery the incident has already is
// recorded as a redelivery instead, and reported so.
func (in *Intake) note(ctx context.Context, incidentID int64, a anyops.Alarm, kind string) (redelivery bool, err error) {
	ev := inventory.IncidentEvent{IncidentID: incidentID, Kind: kind, Source: string(a.Source), DeliveryID: a.DeliveryID,
		Message: describe(a), At: a.At}
	_, err = in.Store.AddIncidentEvent(ctx, ev)
	if anyops.ErrorCode(err) != anyops.ECONFLICT {
		return false, err
	}
	ev.Kind, ev.Message, ev.At = inventory.IncidentEventRedelivered, "delivered again: "+ev.Message, time.Time{}
	_, err = in.Store.AddIncidentEvent(ctx, ev)
	return true, err
}

// describe words an alarm for the timeline.
func describe(a anyops.Alarm) string {
	what := map[anyops.AlarmSource]string{anyops.AlarmSNS: "CloudWatch alarm", anyops.AlarmAlertmanager: "Alertmanager alert", anyops.AlarmProbe: "probe"}[a.Source]
	s := fmt.Sprintf("%s %s %s", what, a.Name, a.State)
	if a.Check != "" {
		s += ": " + a.Check
	}
	if a.Reason != "" {
		s += " (" + a.Reason + ")"
	}
	return s
}

// server finds the alarm's server by name, else by instance id.
func (in *Intake) server(ctx context.Context, a anyops.Alarm) (inventory.Server, error) {
	if a.Server != "" {
		srv, err := in.Store.GetServer(ctx, a.Server)
		if anyops.ErrorCode(err) == anyops.ENOTFOUND {
			return srv, anyops.Errorf(anyops.ENOTFOUND, "the inventory has no server %s", a.Server)
		}
		return srv, err
	}
	srv, err := in.Store.GetServerByInstance(ctx, a.InstanceID)
	if anyops.ErrorCode(err) == anyops.ENOTFOUND {
		return srv, anyops.Errorf(anyops.ENOTFOUND, "the inventory has no server with instance id %s", a.InstanceID)
	}
	return srv, err
}

// recoveryInput is the body a recovery kind's Prepare takes (workflows.RecoveryRequest and its
// timing): the server, the incident that started it (0 while the business key alone is asked
// for), and the timing policy scaled by a simulated cloud's speed.
func (in *Intake) recoveryInput(server string, incidentID int64) []byte {
	body := map[string]any{"server": server, "incident_id": incidentID}
	if in.Speed > 1 {
		body["timing"] = workflows.RecoveryTiming{}.Scaled(in.Speed)
	}
	b, _ := json.Marshal(body)
	return b
}

func (in *Intake) logger() *slog.Logger {
	if in.Logger != nil {
		return in.Logger
	}
	return slog.Default()
}
