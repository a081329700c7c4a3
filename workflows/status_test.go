package workflows

import (
	"testing"
	"time"

	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/workflow"
)

// trackerWorkflow walks a Tracker through its life with timers in between, so the test can
// query the Status at each point.
func trackerWorkflow(ctx workflow.Context) error {
	tr, err := NewTracker(ctx, "one", "two", "three", "four")
	if err != nil {
		return err
	}
	_ = workflow.Sleep(ctx, time.Minute) // 1: all pending
	tr.Start("one", "doing one")
	_ = workflow.Sleep(ctx, time.Minute) // 2: one running
	tr.Done("one", "did one")
	tr.Start("two", "")
	tr.Done("two", "")
	_ = workflow.Sleep(ctx, time.Minute) // 3: half done
	tr.Start("undeclared", "typo'd step")
	_ = workflow.Sleep(ctx, time.Minute) // 4: the undeclared step is appended
	tr.Fail("undeclared", errBoom)
	_ = workflow.Sleep(ctx, time.Minute) // 5: failed
	tr.Finish("all good")
	return nil
}

var errBoom = &testError{"boom"}

type testError struct{ s string }

func (e *testError) Error() string { return e.s }

// TestTrackerStatus proves what the Status query answers at each point of a workflow: phase,
// message, progress as the share of finished steps, and steps appended when undeclared.
func TestTrackerStatus(t *testing.T) {
	var suite testsuite.WorkflowTestSuite
	env := suite.NewTestWorkflowEnvironment()
	env.RegisterWorkflow(trackerWorkflow)

	type want struct {
		phase, message string
		progress       float64
		steps          int
		stepStates     []StepState
	}
	checks := []want{
		{PhaseStarting, "", 0, 4, []StepState{StepPending, StepPending, StepPending, StepPending}},
		{"one", "doing one", 0, 4, []StepState{StepRunning, StepPending, StepPending, StepPending}},
		{"two", "", 0.5, 4, []StepState{StepDone, StepDone, StepPending, StepPending}},
		{"undeclared", "typo'd step", 0.4, 5, []StepState{StepDone, StepDone, StepPending, StepPending, StepRunning}},
		{PhaseFailed, "undeclared: boom", 0.4, 5, []StepState{StepDone, StepDone, StepPending, StepPending, StepFailed}},
	}
	for i, w := range checks {
		env.RegisterDelayedCallback(func() {
			v, err := env.QueryWorkflow(StatusQuery)
			if err != nil {
				t.Errorf("point %d: query: %v", i+1, err)
				return
			}
			var st Status
			if err := v.Get(&st); err != nil {
				t.Errorf("point %d: %v", i+1, err)
				return
			}
			if st.Phase != w.phase || st.Message != w.message || st.Progress != w.progress || len(st.Steps) != w.steps {
				t.Errorf("point %d: status phase %q message %q progress %v steps %d, want %q %q %v %d",
					i+1, st.Phase, st.Message, st.Progress, len(st.Steps), w.phase, w.message, w.progress, w.steps)
				return
			}
			for j, s := range st.Steps {
				if s.State != w.stepStates[j] {
					t.Errorf("point %d: step %s is %s, want %s", i+1, s.Name, s.State, w.stepStates[j])
				}
			}
		}, time.Duration(i)*time.Minute+30*time.Second)
	}
	env.ExecuteWorkflow(trackerWorkflow)
	if err := env.GetWorkflowError(); err != nil {
		t.Fatal(err)
	}
	v, _ := env.QueryWorkflow(StatusQuery)
	var st Status
	_ = v.Get(&st)
	if st.Phase != PhaseDone || st.Message != "all good" || st.Progress != 1 {
		t.Errorf("final status %+v, want done, all good, progress 1", st)
	}
}
