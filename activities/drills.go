package activities

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"

	"github.com/anyops/anyops"
	"github.com/anyops/anyops/cloudsim"
	"github.com/anyops/anyops/drills"
	"github.com/anyops/anyops/inventory"
)

// Drills are the activities of the drill runner (docs/drills.md): cloudsim's clock and
// scenarios through its control API, the event log collected into the inventory, the outcome
// watched, the report gathered and computed. Register them only where a cloudsim runs.
type Drills struct {
	Store    *inventory.Store
	Clients  *Clients
	Temporal client.Client
	Sim      *SimControl
	// BaseSpeed is cloudsim's speed while no drill claims one (dev: cloudsim's --speed); 0
	// leaves the speed as it is then.
	BaseSpeed float64
}

// ErrNoCloudsim is the error of a drill activity on a worker without a cloudsim to drive.
const ErrNoCloudsim = "NoCloudsim"

func (d *Drills) sim() (*SimControl, error) {
	if d.Sim == nil || d.Sim.URL == "" {
		return nil, temporal.NewNonRetryableApplicationError("this worker has no cloudsim to drill on (--drill-cloudsim)", ErrNoCloudsim, nil)
	}
	return d.Sim, nil
}

// ClaimSpeedInput is the speed a drill needs cloudsim to run at now (0 releases its claim),
// and whether it needs the clock: its faults are playing, and no other drill's speed may
// then apply.
type ClaimSpeedInput struct {
	DrillID int64   `json:"drill_id"`
	Speed   float64 `json:"speed"`
	Clock   bool    `json:"clock,omitempty"`
}

// ClaimSpeedResult is the speed in force after the claim and, for a clock request, whether
// it was granted or which drill holds the clock.
type ClaimSpeedResult struct {
	Speed   float64 `json:"speed"`
	Granted bool    `json:"granted"`
	Holder  int64   `json:"holder,omitempty"`
}

// ClaimSpeed records the drill's claim and sets cloudsim's speed to the clock holder's claim,
// else the highest claim of the running drills, else BaseSpeed — in one transaction, so that
// concurrent claims apply in order. A clock request another drill's holding refuses is
// answered Granted false (the drill waits and asks again). Repeating a claim changes nothing.
func (d *Drills) ClaimSpeed(ctx context.Context, in ClaimSpeedInput) (ClaimSpeedResult, error) {
	sim, err := d.sim()
	if err != nil {
		return ClaimSpeedResult{}, err
	}
	var out ClaimSpeedResult
	err = d.Store.InTx(ctx, func(tx *inventory.Store) error {
		claim, err := tx.ClaimDrillSpeed(ctx, in.DrillID, in.Speed, in.Clock)
		if err != nil {
			return err
		}
		out.Granted, out.Holder = claim.Granted, claim.Holder
		target := claim.Speed
		if target == 0 {
			target = d.BaseSpeed
		}
		clock, err := sim.Clock(ctx)
		if err != nil {
			return err
		}
		out.Speed = clock.Speed
		if target > 0 && target != clock.Speed {
			if clock, err = sim.SetSpeed(ctx, target); err != nil {
				return err
			}
			out.Speed = clock.Speed
		}
		return nil
	})
	return out, classify(err)
}

// DrillClock is one reading of cloudsim's clock (drills.ClockAnchor), for the workflow.
type DrillClock = drills.ClockAnchor

// ReadClock reads cloudsim's clock with the real time of the reading: an anchor of the
// mapping between real and simulated time.
func (d *Drills) ReadClock(ctx context.Context) (DrillClock, error) {
	sim, err := d.sim()
	if err != nil {
		return DrillClock{}, err
	}
	before := time.Now()
	c, err := sim.Clock(ctx)
	if err != nil {
		return DrillClock{}, err
	}
	after := time.Now()
	return DrillClock{Real: before.Add(after.Sub(before) / 2).UTC(), Sim: c.Now, Speed: c.Speed}, nil
}

// PlanCluster is the cloud plan of a drill's cluster: the live cluster's shape, zone and
// release (activities.ClusterPlan). An activity, so the plan is recorded in the history.
func (d *Drills) PlanCluster(ctx context.Context, cluster string) (FleetPlan, error) {
	live, err := d.Store.GetCluster(ctx, inventory.DemoCluster)
	if err != nil {
		return FleetPlan{}, classify(err)
	}
	return ClusterPlan(cluster, live.Zone, live.Release), nil
}

// FirstEventSeq is where a drill's event collection starts: the newest event now.
func (d *Drills) FirstEventSeq(ctx context.Context) (int64, error) {
	sim, err := d.sim()
	if err != nil {
		return 0, err
	}
	return sim.LastEventSeq(ctx)
}

// CollectEventsInput names the drill and where its collection starts.
type CollectEventsInput struct {
	DrillID int64 `json:"drill_id"`
	FromSeq int64 `json:"from_seq"`
}

// CollectEventsResult is the newest event collected and how many this call added.
type CollectEventsResult struct {
	Last  int64 `json:"last"`
	Added int   `json:"added"`
}

// collectPage is how many events one read of cloudsim's log takes.
const collectPage = 1000

// CollectEvents copies the events the report reads (drills.EventTypes) from cloudsim's log into
// the inventory, from where the last collection stopped: cloudsim keeps only its newest 10000
// events, so a drill collects as it runs. Idempotent: an event is stored once.
func (d *Drills) CollectEvents(ctx context.Context, in CollectEventsInput) (CollectEventsResult, error) {
	sim, err := d.sim()
	if err != nil {
		return CollectEventsResult{}, err
	}
	since, err := d.Store.LastDrillEventSeq(ctx, in.DrillID)
	if err != nil {
		return CollectEventsResult{}, classify(err)
	}
	since = max(since, in.FromSeq)
	res := CollectEventsResult{Last: since}
	for {
		page, err := sim.EventPage(ctx, since, collectPage, drills.EventTypes)
		if err != nil {
			return res, err
		}
		if len(page) == 0 {
			return res, nil
		}
		seqs := make([]int64, len(page))
		raw := make([]json.RawMessage, len(page))
		for i, ev := range page {
			b, err := json.Marshal(ev)
			if err != nil {
				return res, err
			}
			seqs[i], raw[i] = ev.Seq, b
		}
		if err := d.Store.AddDrillEvents(ctx, in.DrillID, seqs, raw); err != nil {
			return res, classify(err)
		}
		since = page[len(page)-1].Seq
		res.Last, res.Added = since, res.Added+len(page)
		activity.RecordHeartbeat(ctx, res)
		if len(page) < collectPage {
			return res, nil
		}
	}
}

// events reads a drill's collected events.
func (d *Drills) events(ctx context.Context, id int64) ([]cloudsim.Event, error) {
	raw, err := d.Store.DrillEvents(ctx, id)
	if err != nil {
		return nil, classify(err)
	}
	out := make([]cloudsim.Event, 0, len(raw))
	for _, r := range raw {
		var ev cloudsim.Event
		if err := json.Unmarshal(r, &ev); err != nil {
			return nil, fmt.Errorf("a collected event is not cloudsim's JSON: %w", err)
		}
		out = append(out, ev)
	}
	return out, nil
}

// OutcomeInput asks how a drill's cluster is doing.
type OutcomeInput struct {
	DrillID int64     `json:"drill_id"`
	Cluster string    `json:"cluster"`
	Origin  time.Time `json:"origin"` // simulated
}

// Outcome is how the drill's cluster is doing now.
type Outcome struct {
	// Incidents opened on the cluster; Running of them have a recovery workflow not closed yet
	// (or none linked yet).
	Incidents int `json:"incidents"`
	Running   int `json:"running"`
	// Recovered is whether every client serves its home again (drills.RecoveryPoint).
	Recovered bool      `json:"recovered"`
	SimNow    time.Time `json:"sim_now"`
}

// Outcome reads the cluster's incidents and their workflows, and from the collected events
// whether its clients serve again. It only reads.
func (d *Drills) Outcome(ctx context.Context, in OutcomeInput) (Outcome, error) {
	sim, err := d.sim()
	if err != nil {
		return Outcome{}, err
	}
	var out Outcome
	incidents, err := d.incidents(ctx, in.Cluster, false)
	if err != nil {
		return out, err
	}
	out.Incidents = len(incidents)
	for _, inc := range incidents {
		if inc.RunID == "" {
			out.Running++
			continue
		}
		desc, err := d.Temporal.DescribeWorkflowExecution(ctx, inc.WorkflowID, inc.RunID)
		if err != nil {
			return out, fmt.Errorf("describe %s: %w", inc.WorkflowID, err)
		}
		if desc.GetWorkflowExecutionInfo().GetStatus() == enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING {
			out.Running++
		}
	}
	clock, err := sim.Clock(ctx)
	if err != nil {
		return out, err
	}
	out.SimNow = clock.Now
	events, err := d.events(ctx, in.DrillID)
	if err != nil {
		return out, err
	}
	resources, err := d.resources(ctx, in.Cluster)
	if err != nil {
		return out, err
	}
	_, out.Recovered = drills.RecoveryPoint(events, resources, in.Cluster, in.Origin, clock.Now)
	return out, nil
}

// incidents lists the cluster's incidents, with their timelines when asked.
func (d *Drills) incidents(ctx context.Context, cluster string, timelines bool) ([]inventory.Incident, error) {
	all, err := listAll(func(p inventory.Page) ([]inventory.Incident, string, error) {
		return d.Store.ListIncidents(ctx, inventory.IncidentFilter{Cluster: cluster, Page: p})
	})
	if err != nil {
		return nil, classify(err)
	}
	slices.SortFunc(all, func(a, b inventory.Incident) int { return int(a.ID - b.ID) })
	if timelines {
		for i := range all {
			full, err := d.Store.GetIncident(ctx, all[i].ID)
			if err != nil {
				return nil, classify(err)
			}
			all[i] = full
		}
	}
	return all, nil
}

func (d *Drills) resources(ctx context.Context, cluster string) ([]drills.Resource, error) {
	return ClusterResources(ctx, d.Clients, cluster)
}

// ClusterResources are the cloud's instances and volumes tagged with the cluster or its
// spare's standby cluster (terminated instances included, while EC2 still shows them): what
// a drill's report (and the chaos harness's interlock check) reads of the cloud.
func ClusterResources(ctx context.Context, clients *Clients, cluster string) ([]drills.Resource, error) {
	cloud := &Cloud{Clients: clients}
	var out []drills.Resource
	for _, c := range []string{cluster, StandbyClusterOf(cluster)} {
		f, err := cloud.DescribeFleet(ctx, DescribeFleetInput{Tags: map[string]string{anyops.TagCluster: c}})
		if err != nil {
			return nil, err
		}
		for _, i := range f.Instances {
			out = append(out, drills.Resource{ID: i.ID, Type: "instance", State: i.State, Tags: i.Tags})
		}
		for _, v := range f.Volumes {
			out = append(out, drills.Resource{ID: v.ID, Type: "volume", State: v.State, Tags: v.Tags})
		}
	}
	return out, nil
}

// EndWorkflowsInput names what of a drill may still run when it tears down.
type EndWorkflowsInput struct {
	// Cluster is the drill's own cluster, whose incidents' recoveries end; "" for a drill on
	// the demo fleet, whose recoveries are not the drill's to end.
	Cluster string `json:"cluster"`
	// Operations are the workflows the drill's operation steps started.
	Operations []WorkflowRef `json:"operations,omitempty"`
	// Grace is how long cancelled workflows get to wind down before they are terminated.
	Grace time.Duration `json:"grace"`
}

// EndWorkflows ends what still runs for a drill before its cluster goes: the recoveries of
// its incidents and its operations are asked to cancel (so they clean up after themselves),
// and those still running after Grace are terminated — nothing may go on building into a
// cluster that is being torn down. It returns the ids it cancelled. Repeating it is harmless.
// It heartbeats all along, its wait for the grace included.
func (d *Drills) EndWorkflows(ctx context.Context, in EndWorkflowsInput) ([]string, error) {
	defer heartbeatWhile(ctx, time.Second)()
	var incidents []inventory.Incident
	if in.Cluster != "" {
		var err error
		if incidents, err = d.incidents(ctx, in.Cluster, false); err != nil {
			return nil, err
		}
	}
	refs := slices.Clone(in.Operations)
	for _, inc := range incidents {
		if inc.RunID != "" {
			refs = append(refs, WorkflowRef{WorkflowID: inc.WorkflowID, RunID: inc.RunID})
		}
	}
	running := func(r WorkflowRef) (bool, error) {
		desc, err := d.Temporal.DescribeWorkflowExecution(ctx, r.WorkflowID, r.RunID)
		if err != nil {
			return false, fmt.Errorf("describe %s: %w", r.WorkflowID, err)
		}
		return desc.GetWorkflowExecutionInfo().GetStatus() == enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING, nil
	}
	var cancelled []string
	for _, r := range refs {
		if ok, err := running(r); err != nil {
			return cancelled, err
		} else if ok {
			if err := d.Temporal.CancelWorkflow(ctx, r.WorkflowID, r.RunID); err != nil {
				return cancelled, fmt.Errorf("cancel %s: %w", r.WorkflowID, err)
			}
			cancelled = append(cancelled, r.WorkflowID)
		}
	}
	deadline := time.Now().Add(in.Grace)
	for _, r := range refs {
		for {
			ok, err := running(r)
			if err != nil {
				return cancelled, err
			}
			if !ok {
				break
			}
			if time.Now().After(deadline) {
				if err := d.Temporal.TerminateWorkflow(ctx, r.WorkflowID, r.RunID, "drill teardown: its cluster is going"); err != nil {
					return cancelled, fmt.Errorf("terminate %s: %w", r.WorkflowID, err)
				}
				break
			}
			select {
			case <-ctx.Done():
				return cancelled, ctx.Err()
			case <-time.After(200 * time.Millisecond):
			}
		}
	}
	return cancelled, nil
}

// SetClusterTimeScale records the speed a drill's cluster runs at (docs/drills.md), for what
// the alarm path starts for it.
func (d *Drills) SetClusterTimeScale(ctx context.Context, cluster string, scale float64) error {
	return classify(d.Store.SetClusterTimeScale(ctx, cluster, scale))
}

// FinishDrillInput is how a drill ended.
type FinishDrillInput struct {
	DrillID int64               `json:"drill_id"`
	State   anyops.DrillState   `json:"state"`
	Report  *anyops.DrillReport `json:"report,omitempty"`
	Error   string              `json:"error,omitempty"`
}

// FinishDrill records a drill's end with its report and releases its speed claim (the speed
// falls back to the other drills' highest claim, or BaseSpeed).
func (d *Drills) FinishDrill(ctx context.Context, in FinishDrillInput) error {
	var report []byte
	if in.Report != nil {
		var err error
		if report, err = json.Marshal(in.Report); err != nil {
			return invalidInput("drill report: %v", err)
		}
	}
	if err := d.Store.FinishDrill(ctx, in.DrillID, in.State, report, in.Error); err != nil {
		return classify(err)
	}
	_, err := d.ClaimSpeed(ctx, ClaimSpeedInput{DrillID: in.DrillID})
	// (FinishDrill released the claim; this sets the speed the others' claims leave.)
	var app *temporal.ApplicationError
	if errors.As(err, &app) && app.Type() == ErrNoCloudsim {
		return nil
	}
	return err
}
