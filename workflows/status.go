package workflows

import (
	"fmt"
	"slices"
	"time"

	"go.temporal.io/sdk/workflow"
)

// StatusQuery is the name of the query every Anyops workflow answers with its Status, so the
// API and the Temporal UI show progress the same way for every kind of operation.
const StatusQuery = "Status"

// StepState is where one step of a workflow is.
type StepState string

const (
	StepPending StepState = "pending"
	StepRunning StepState = "running"
	StepDone    StepState = "done"
	StepFailed  StepState = "failed"
	StepSkipped StepState = "skipped"
)

// Step is one named stage of a workflow, as shown to operators.
type Step struct {
	Name     string     `json:"name"`
	State    StepState  `json:"state"`
	Message  string     `json:"message,omitempty"`
	Started  *time.Time `json:"started,omitempty"`
	Finished *time.Time `json:"finished,omitempty"`
}

// Status is the answer of the Status query: the shared progress convention of all workflows.
type Status struct {
	// Phase is the name of the step running now, or "done"/"failed" at the end.
	Phase   string `json:"phase"`
	Message string `json:"message,omitempty"`
	// Progress is the share of steps finished, 0..1.
	Progress float64    `json:"progress"`
	Steps    []Step     `json:"steps"`
	ETA      *time.Time `json:"eta,omitempty"`
	Updated  time.Time  `json:"updated"`
	// Branches are the ways a workflow races, each with its progress (a failover's promote,
	// repair and replace); empty for workflows that race none.
	Branches []Branch `json:"branches,omitempty"`
	// Timeline is what happened, oldest first: decisions, the commit, the fence, the cutover.
	Timeline []TimelineEntry `json:"timeline,omitempty"`
	// Blocked lists the interlocks holding the workflow up now: each passes only with the
	// override update naming it.
	Blocked []Blocked `json:"blocked,omitempty"`
	// Redundancy is whether the data has a hot copy, and since when it has none.
	Redundancy *Redundancy `json:"redundancy,omitempty"`
}

// Branch is one way of a race, as Status shows it.
type Branch struct {
	Name     string     `json:"name"`
	State    StepState  `json:"state"`
	Message  string     `json:"message,omitempty"`
	Progress float64    `json:"progress"`
	ETA      *time.Time `json:"eta,omitempty"`
	// Outcome is how the branch ended in the race: won, lost, kept (as a backup or a spare),
	// cancelled, failed.
	Outcome  string     `json:"outcome,omitempty"`
	Started  *time.Time `json:"started,omitempty"`
	Finished *time.Time `json:"finished,omitempty"`
}

// TimelineEntry is one thing that happened.
type TimelineEntry struct {
	At      time.Time `json:"at"`
	Message string    `json:"message"`
}

// Blocked is an interlock that holds something up.
type Blocked struct {
	Interlock string    `json:"interlock"`
	What      string    `json:"what"`
	Since     time.Time `json:"since"`
}

// cloudSeconds is a span of the workflow's clock in the cloud's seconds.
func (r Redundancy) cloudSeconds(d time.Duration) float64 {
	return d.Seconds() * max(r.Speed, 1)
}

// Redundancy says whether the served data has a hot copy.
type Redundancy struct {
	HotBackup bool `json:"hot_backup"`
	// Backup is the server holding the hot copy, when there is one.
	Backup string `json:"backup,omitempty"`
	// NoHotBackupSince is when the data last lost its hot copy (as far as the workflow
	// knows: at the latest, when the failed server's checks began to fail); RestoredAt when it
	// got one again.
	NoHotBackupSince *time.Time `json:"no_hot_backup_since,omitempty"`
	RestoredAt       *time.Time `json:"restored_at,omitempty"`
	// NoHotBackupSeconds is the time without a hot copy so far (or in all, once restored), in
	// the cloud's clock: the workflow's seconds times Speed, the speed of a simulated cloud the
	// timing policy was scaled for (0 or 1: real time).
	NoHotBackupSeconds float64 `json:"no_hot_backup_seconds"`
	Speed              float64 `json:"speed,omitempty"`
	Message            string  `json:"message,omitempty"`
}

// Summary is the status in one line, for a person: the steps finished out of all, and the
// phase with its message ("3/8 steps done; wait-instances-running: waiting for the instances
// to run").
func (s Status) Summary() string {
	done := 0
	for _, st := range s.Steps {
		if st.State == StepDone || st.State == StepSkipped {
			done++
		}
	}
	line := fmt.Sprintf("%d/%d steps done; %s", done, len(s.Steps), s.Phase)
	if s.Message != "" {
		line += ": " + s.Message
	}
	return line
}

// Phases a workflow reports once no step is running.
const (
	PhaseStarting = "starting"
	PhaseDone     = "done"
	PhaseFailed   = "failed"
)

// Tracker keeps a workflow's Status and answers the Status query with it. Create it first
// thing in the workflow, so a query never finds the handler missing.
type Tracker struct {
	ctx    workflow.Context
	status Status
}

// NewTracker registers the Status query handler for the workflow and lists its steps, all
// pending.
func NewTracker(ctx workflow.Context, steps ...string) (*Tracker, error) {
	t := &Tracker{ctx: ctx, status: Status{Phase: PhaseStarting, Steps: make([]Step, len(steps)), Updated: workflow.Now(ctx)}}
	for i, name := range steps {
		t.status.Steps[i] = Step{Name: name, State: StepPending}
	}
	if err := workflow.SetQueryHandler(ctx, StatusQuery, t.Status); err != nil {
		return nil, err
	}
	return t, nil
}

// Status returns a copy of the current status (the query handler).
func (t *Tracker) Status() (Status, error) {
	s := t.status
	s.Steps = append([]Step(nil), t.status.Steps...)
	s.Branches = append([]Branch(nil), t.status.Branches...)
	s.Timeline = append([]TimelineEntry(nil), t.status.Timeline...)
	s.Blocked = append([]Blocked(nil), t.status.Blocked...)
	if t.status.Redundancy != nil {
		r := *t.status.Redundancy
		if r.HotBackup == false && r.NoHotBackupSince != nil && r.RestoredAt == nil {
			r.NoHotBackupSeconds = r.cloudSeconds(workflow.Now(t.ctx).Sub(*r.NoHotBackupSince))
		}
		s.Redundancy = &r
	}
	return s, nil
}

// Event adds an entry to the timeline, now.
func (t *Tracker) Event(message string) {
	t.status.Timeline = append(t.status.Timeline, TimelineEntry{At: workflow.Now(t.ctx), Message: message})
	t.status.Updated = workflow.Now(t.ctx)
}

// Branch changes the named branch (appended the first time), as Status shows it.
func (t *Tracker) Branch(name string, change func(*Branch)) {
	i := slices.IndexFunc(t.status.Branches, func(b Branch) bool { return b.Name == name })
	if i < 0 {
		t.status.Branches = append(t.status.Branches, Branch{Name: name, State: StepPending})
		i = len(t.status.Branches) - 1
	}
	b := &t.status.Branches[i]
	change(b)
	now := workflow.Now(t.ctx)
	if b.State == StepRunning && b.Started == nil {
		b.Started = &now
	}
	if (b.State == StepDone || b.State == StepFailed || b.State == StepSkipped) && b.Finished == nil {
		b.Finished = &now
	}
	t.status.Updated = now
}

// Block records that an interlock holds something up; Unblock that it no longer does.
func (t *Tracker) Block(interlock, what string) {
	t.Unblock(interlock)
	t.status.Blocked = append(t.status.Blocked, Blocked{Interlock: interlock, What: what, Since: workflow.Now(t.ctx)})
}

// Unblock drops the interlock from Blocked.
func (t *Tracker) Unblock(interlock string) {
	t.status.Blocked = slices.DeleteFunc(t.status.Blocked, func(b Blocked) bool { return b.Interlock == interlock })
}

// Blocking says whether the interlock holds something up now.
func (t *Tracker) Blocking(interlock string) bool {
	return slices.ContainsFunc(t.status.Blocked, func(b Blocked) bool { return b.Interlock == interlock })
}

// SetRedundancy records whether the data has a hot copy.
func (t *Tracker) SetRedundancy(r Redundancy) {
	if r.RestoredAt != nil && r.NoHotBackupSince != nil {
		r.NoHotBackupSeconds = r.cloudSeconds(r.RestoredAt.Sub(*r.NoHotBackupSince))
	}
	t.status.Redundancy = &r
}

// Redundancy returns what SetRedundancy recorded (the zero value before).
func (t *Tracker) Redundancy() Redundancy {
	if t.status.Redundancy == nil {
		return Redundancy{}
	}
	return *t.status.Redundancy
}

// Start marks the step running and makes it the phase.
func (t *Tracker) Start(name, message string) {
	now := workflow.Now(t.ctx)
	t.set(name, func(s *Step) { s.State, s.Message, s.Started = StepRunning, message, &now })
	t.status.Phase, t.status.Message = name, message
}

// Done marks the step finished.
func (t *Tracker) Done(name, message string) {
	now := workflow.Now(t.ctx)
	t.set(name, func(s *Step) { s.State, s.Message, s.Finished = StepDone, message, &now })
}

// Skip marks the step skipped, with why.
func (t *Tracker) Skip(name, message string) {
	t.set(name, func(s *Step) { s.State, s.Message = StepSkipped, message })
}

// Fail marks the step failed and the workflow's phase failed, with the reason.
func (t *Tracker) Fail(name string, err error) {
	now := workflow.Now(t.ctx)
	t.set(name, func(s *Step) { s.State, s.Message, s.Finished = StepFailed, err.Error(), &now })
	t.status.Phase, t.status.Message = PhaseFailed, name+": "+err.Error()
}

// Finish sets the phase done with a closing message.
func (t *Tracker) Finish(message string) {
	t.status.Phase, t.status.Message, t.status.Progress = PhaseDone, message, 1
	t.status.ETA = nil
	t.status.Updated = workflow.Now(t.ctx)
}

// SetETA records when the workflow expects to finish; nil clears it.
func (t *Tracker) SetETA(eta *time.Time) { t.status.ETA = eta }

// set changes the named step. A step not declared up front is appended rather than lost, so
// a typo shows in the status instead of failing the workflow task.
func (t *Tracker) set(name string, change func(*Step)) {
	i := slices.IndexFunc(t.status.Steps, func(s Step) bool { return s.Name == name })
	if i < 0 {
		t.status.Steps = append(t.status.Steps, Step{Name: name, State: StepPending})
		i = len(t.status.Steps) - 1
	}
	change(&t.status.Steps[i])
	finished := 0
	for _, s := range t.status.Steps {
		if s.State == StepDone || s.State == StepSkipped {
			finished++
		}
	}
	if n := len(t.status.Steps); n > 0 {
		t.status.Progress = float64(finished) / float64(n)
	}
	t.status.Updated = workflow.Now(t.ctx)
}
