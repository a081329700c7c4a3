package integration

import (
	"context"
	"fmt"
	"strings"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	historypb "go.temporal.io/api/history/v1"
	"go.temporal.io/api/workflowservice/v1"
)

// logHistories writes, for a failed run, the story of each of its workflows: the events that
// say what happened (activities and local activities with their failures, timers, signals,
// children, the end), so that a run that went wrong under a fault can be read afterwards
// without its world, which the test's cleanup removes.
func (w *chaosWorld) logHistories() {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	resp, err := w.tc.ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{PageSize: 20})
	if err != nil {
		w.t.Logf("histories: %v", err)
		return
	}
	for _, e := range resp.GetExecutions() {
		id, runID := e.GetExecution().GetWorkflowId(), e.GetExecution().GetRunId()
		var lines []string
		scheduled := map[int64]string{}
		it := w.tc.GetWorkflowHistory(ctx, id, runID, false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
		for it.HasNext() {
			ev, err := it.Next()
			if err != nil {
				lines = append(lines, "  (history cut short: "+err.Error()+")")
				break
			}
			if line := storyLine(ev, scheduled); line != "" {
				lines = append(lines, fmt.Sprintf("  %4d %s %s", ev.GetEventId(), ev.GetEventTime().AsTime().Format("15:04:05.000"), line))
			}
		}
		const keep = 60
		if len(lines) > keep {
			lines = append([]string{fmt.Sprintf("  … %d events before", len(lines)-keep)}, lines[len(lines)-keep:]...)
		}
		w.t.Logf("history of %s (%s, %s):\n%s", id, e.GetType().GetName(), e.GetStatus(), strings.Join(lines, "\n"))
	}
}

// storyLine is one event of the story, or "" for the bookkeeping between (workflow tasks).
func storyLine(ev *historypb.HistoryEvent, scheduled map[int64]string) string {
	failure := func(msg string) string { return lastBytes([]byte(msg), 300) }
	switch {
	case ev.GetActivityTaskScheduledEventAttributes() != nil:
		name := ev.GetActivityTaskScheduledEventAttributes().GetActivityType().GetName()
		scheduled[ev.GetEventId()] = name
		return "scheduled " + name
	case ev.GetActivityTaskCompletedEventAttributes() != nil:
		return "completed " + scheduled[ev.GetActivityTaskCompletedEventAttributes().GetScheduledEventId()]
	case ev.GetActivityTaskFailedEventAttributes() != nil:
		a := ev.GetActivityTaskFailedEventAttributes()
		return "failed " + scheduled[a.GetScheduledEventId()] + ": " + failure(a.GetFailure().GetMessage())
	case ev.GetActivityTaskTimedOutEventAttributes() != nil:
		a := ev.GetActivityTaskTimedOutEventAttributes()
		return "timed out " + scheduled[a.GetScheduledEventId()] + ": " + failure(a.GetFailure().GetMessage())
	case ev.GetMarkerRecordedEventAttributes() != nil:
		a := ev.GetMarkerRecordedEventAttributes()
		line := "marker " + a.GetMarkerName()
		if f := a.GetFailure(); f != nil {
			line += " failed: " + failure(f.GetMessage())
		}
		return line
	case ev.GetWorkflowTaskFailedEventAttributes() != nil:
		return "workflow task failed: " + failure(ev.GetWorkflowTaskFailedEventAttributes().GetFailure().GetMessage())
	case ev.GetWorkflowTaskTimedOutEventAttributes() != nil:
		return "workflow task timed out"
	case ev.GetTimerStartedEventAttributes() != nil:
		return "timer " + ev.GetTimerStartedEventAttributes().GetStartToFireTimeout().AsDuration().String()
	case ev.GetWorkflowExecutionSignaledEventAttributes() != nil:
		return "signal " + ev.GetWorkflowExecutionSignaledEventAttributes().GetSignalName()
	case ev.GetStartChildWorkflowExecutionInitiatedEventAttributes() != nil:
		return "child " + ev.GetStartChildWorkflowExecutionInitiatedEventAttributes().GetWorkflowId()
	case ev.GetWorkflowExecutionFailedEventAttributes() != nil:
		return "workflow failed: " + failure(ev.GetWorkflowExecutionFailedEventAttributes().GetFailure().GetMessage())
	case ev.GetWorkflowExecutionCompletedEventAttributes() != nil:
		return "workflow completed"
	case ev.GetWorkflowExecutionContinuedAsNewEventAttributes() != nil:
		return "continued as new"
	}
	return ""
}
