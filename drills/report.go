package drills

import (
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/anyops/anyops"
	"github.com/anyops/anyops/cloudsim"
	"github.com/anyops/anyops/inventory"
)

// Report is a drill's report.
type Report = anyops.DrillReport

// ReportInput is everything a drill's report is computed from.
type ReportInput struct {
	Drill    string   `json:"drill"`
	Scenario string   `json:"scenario"`
	Cluster  string   `json:"cluster"`
	Listed   []string `json:"listed,omitempty"` // the scenario's `report:` functions
	Goals    map[string]float64
	// Armed is when the scenario was loaded, Origin the fault the report counts from, End when
	// the drill stopped waiting: simulated times.
	Armed, Origin, End time.Time
	TimedOut           bool
	// Events are cloudsim's events from the drill's start (the types EventTypes names, of every
	// resource), oldest first.
	Events []cloudsim.Event
	// Resources are the cloud's instances and volumes with Anyops tags, terminated ones
	// included; ClusterStates the inventory's clusters' states when the drill stopped waiting.
	Resources     []Resource
	ClusterStates map[string]anyops.ClusterState
	Clock         Clock
	// Incidents are those opened on the drill's cluster, with their timelines.
	Incidents []inventory.Incident
	// Kinds maps workflow types to operation kinds (the kind registry's, which this package
	// cannot import: the workflows import the activities that import it).
	Kinds map[string]string `json:"kinds,omitempty"`
	// Recoveries are the workflows of the incidents; Operations those the drill started.
	Recoveries []Run
	Operations []Run
	// Overrides are the audited overrides of interlocks on the cluster's workflows.
	Overrides []Override
}

// Resource is one cloud resource with its tags.
type Resource struct {
	ID    string            `json:"id"`
	Type  string            `json:"type"` // instance or volume
	State string            `json:"state"`
	Tags  map[string]string `json:"tags"`
}

// Cluster is the resource's anyops:cluster tag.
func (r Resource) Cluster() string { return r.Tags[anyops.TagCluster] }

// Role is the resource's anyops:role tag.
func (r Resource) Role() anyops.Role { return anyops.Role(r.Tags[anyops.TagRole]) }

// Run is one workflow run a drill looked at: a recovery or an operation it started.
type Run struct {
	WorkflowID string          `json:"workflow_id"`
	RunID      string          `json:"run_id"`
	Type       string          `json:"type"`
	State      string          `json:"state"`
	Started    time.Time       `json:"started"`
	Closed     *time.Time      `json:"closed,omitempty"`
	Result     json.RawMessage `json:"result,omitempty"`
	// Status is the run's last answer to the Status query (workflows.Status), as JSON.
	Status json.RawMessage `json:"status,omitempty"`
	// Busy are the real-time intervals in which an activity, a timer or a child workflow's
	// own activity or timer of this run was running (control_plane_seconds).
	Busy []Interval `json:"busy,omitempty"`
}

// Interval is a span of real time.
type Interval struct {
	From time.Time `json:"from"`
	To   time.Time `json:"to"`
}

// Override is an audited override of an interlock.
type Override struct {
	Interlock string    `json:"interlock"`
	Subject   string    `json:"subject"`
	At        time.Time `json:"at"`
}

// EventTypes are the prefixes of the cloudsim event types a drill collects: everything the
// report reads, nothing of the SSM traffic.
var EventTypes = []string{"fault.", "scenario.", "clock.", "instance.", "volume.", "snapshot.", "drbd.", "md.",
	"nfs.", "data.", "route53.", "host.mount", "host.umount", "host.bootstrap", "cloudwatch.", "sns."}

// Compute computes a drill's report.
func Compute(in ReportInput) (Report, error) {
	members := clusterMembers(in.Resources, in.Cluster)
	r := Report{
		Drill: in.Drill, Scenario: in.Scenario, Cluster: in.Cluster, Origin: in.Origin, TimedOut: in.TimedOut,
		Violations: []anyops.DrillViolation{}, Duplicates: []anyops.DrillDuplicate{}, Recoveries: []anyops.DrillRecovery{},
		Goals: map[string]anyops.DrillGoal{}, Timeline: []anyops.DrillEvent{},
	}
	events := slices.Clone(in.Events)
	sort.SliceStable(events, func(i, j int) bool { return events[i].Seq < events[j].Seq })

	rtoAt, ok := recoveryPoint(events, members, in.Origin, in.End)
	if ok {
		r.Recovered = true
		r.RTOSeconds = seconds(rtoAt.Sub(in.Origin))
	}
	until := in.End
	if r.Recovered {
		until = rtoAt
	}
	r.Speed = in.Clock.MaxSpeed(in.Origin, until)

	drbd := replayDRBD(events, members, in.Armed, in.End, in.Overrides)
	r.NoHotBackupSeconds = round(drbd.noHotBackup.Seconds())
	r.HotBackupAtEnd = drbd.hotAtEnd
	r.Violations = append(r.Violations, drbd.violations...)
	r.Violations = append(r.Violations, attachViolations(events, in.Armed, in.End)...)
	r.Violations = append(r.Violations, terminatedClusters(events, in.Resources, in.ClusterStates, in.Armed, in.End)...)
	for i := range r.Violations {
		r.Violations[i].OffsetSeconds = round(r.Violations[i].At.Sub(in.Origin).Seconds())
	}
	sort.SliceStable(r.Violations, func(i, j int) bool { return r.Violations[i].At.Before(r.Violations[j].At) })
	r.InterlockViolations = len(r.Violations)
	r.LostBytes = lostBytes(events, members, in.Armed, in.End)
	r.Duplicates = duplicates(in.Resources, in.Cluster)
	for _, d := range r.Duplicates {
		r.DuplicateResources += len(d.IDs) - 1
	}

	r.Recoveries, r.Winner = recoveries(in)
	if d, ok := detection(in); ok {
		r.DetectSeconds = seconds(d)
	}
	r.ControlPlaneSeconds = round(controlPlane(in.Recoveries, in.Clock, until).Seconds())
	r.Timeline = timeline(in, events, members)

	var kinds []string
	for _, op := range in.Operations {
		kinds = append(kinds, in.Kinds[op.Type])
	}
	for _, name := range extensionsFor(in.Scenario, in.Listed, kinds) {
		ext := extensions[name]
		extra, err := ext.Func(in, r)
		if err != nil {
			return r, fmt.Errorf("report function %s: %w", name, err)
		}
		for k, v := range extra {
			if !slices.Contains(ext.Keys, k) {
				return r, fmt.Errorf("report function %s added %q, which it does not declare", name, k)
			}
			if slices.Contains(anyops.DrillReportKeys, k) {
				return r, fmt.Errorf("report function %s added %q, a base key", name, k)
			}
			if r.Extra == nil {
				r.Extra = map[string]any{}
			}
			if _, dup := r.Extra[k]; dup {
				return r, fmt.Errorf("report function %s added %q, which another one added", name, k)
			}
			r.Extra[k] = v
		}
	}
	r.Goals = goals(in.Goals, r)
	return r, nil
}

// GoalKeys are the keys a scenario may set goals on: the base report's numeric keys and the
// numeric keys of the report functions that apply to it.
func GoalKeys(sc anyops.DrillScenario) []string {
	keys := slices.Clone(NumericReportKeys)
	var kinds []string
	for _, st := range sc.Steps {
		if st.Operation != nil {
			kinds = append(kinds, st.Operation.Kind)
		}
	}
	for _, n := range extensionsFor(sc.Name, sc.Report, kinds) {
		keys = append(keys, extensions[n].Numeric...)
	}
	return keys
}

// goals checks the scenario's claims.
func goals(bounds map[string]float64, r Report) map[string]anyops.DrillGoal {
	out := map[string]anyops.DrillGoal{}
	if len(bounds) == 0 {
		return out
	}
	b, _ := json.Marshal(r)
	var all map[string]any
	_ = json.Unmarshal(b, &all)
	for k, bound := range bounds {
		g := anyops.DrillGoal{Bound: bound}
		if v, ok := number(all[k]); ok {
			g.Value = &v
			g.Met = v <= bound
		}
		out[k] = g
	}
	return out
}

// members is the set of the cluster's resources (its spare's standby cluster included) by id.
type members map[string]Resource

func clusterMembers(all []Resource, cluster string) members {
	m := members{}
	for _, r := range all {
		if c := r.Cluster(); c == cluster || c == cluster+"-standby" {
			m[r.ID] = r
		}
	}
	return m
}

// has reports whether an event concerns the cluster: its resource, or an instance or volume
// its data names, is one of the cluster's.
func (m members) has(ev cloudsim.Event) bool {
	if _, ok := m[ev.Resource]; ok {
		return true
	}
	for _, k := range []string{"client", "server", "instance", "volume"} {
		if s, ok := ev.Data[k].(string); ok {
			if _, ok := m[s]; ok {
				return true
			}
		}
	}
	return false
}

// clients are the cluster's web, console and task instances.
func (m members) isClient(id string) bool {
	r, ok := m[id]
	if !ok || r.Type != "instance" {
		return false
	}
	switch r.Role() {
	case anyops.RoleWeb, anyops.RoleConsole, anyops.RoleTask:
		return true
	}
	return false
}

// recoveryPoint is the moment, in [origin, end], from which as many clients of the cluster as
// served at the origin have every NFS mount serving again: the last time their count rose to
// that number. ok is false when the count is below it at end, or no client served at the
// origin (nothing to measure).
func recoveryPoint(events []cloudsim.Event, m members, origin, end time.Time) (time.Time, bool) {
	mounts := map[string]map[string]bool{} // client -> mount point -> serving
	healthy := func() int {
		n := 0
		for _, ms := range mounts {
			if len(ms) == 0 {
				continue
			}
			ok := true
			for _, serving := range ms {
				ok = ok && serving
			}
			if ok {
				n++
			}
		}
		return n
	}
	apply := func(ev cloudsim.Event) {
		client, _ := ev.Data["client"].(string)
		mount, _ := ev.Data["mount"].(string)
		if client == "" || mount == "" || !m.isClient(client) {
			return
		}
		if mounts[client] == nil {
			mounts[client] = map[string]bool{}
		}
		switch ev.Type {
		case "nfs.client.serving":
			mounts[client][mount] = true
		case "nfs.client.stale":
			mounts[client][mount] = false
		case "nfs.client.unmounted":
			delete(mounts[client], mount)
		}
	}
	i := 0
	for ; i < len(events) && events[i].Time.Before(origin); i++ {
		if strings.HasPrefix(events[i].Type, "nfs.client.") {
			apply(events[i])
		}
	}
	required := healthy()
	if required == 0 {
		return time.Time{}, false
	}
	at, below := origin, false
	for ; i < len(events) && !events[i].Time.After(end); i++ {
		if !strings.HasPrefix(events[i].Type, "nfs.client.") {
			continue
		}
		apply(events[i])
		switch n := healthy(); {
		case n < required:
			below = true
		case below:
			below, at = false, events[i].Time
		}
	}
	if below {
		return time.Time{}, false
	}
	return at, true
}

// lostBytes sums the cluster's data.lost events in the window.
func lostBytes(events []cloudsim.Event, m members, from, to time.Time) int64 {
	var n int64
	for _, ev := range events {
		if ev.Type != "data.lost" || ev.Time.Before(from) || ev.Time.After(to) || !m.has(ev) {
			continue
		}
		if b, ok := number(ev.Data["bytes"]); ok {
			n += int64(b)
		}
	}
	return n
}

// recoveries are the incidents with their workflows; winner is the failover's.
func recoveries(in ReportInput) ([]anyops.DrillRecovery, string) {
	runs := map[string]Run{}
	for _, r := range in.Recoveries {
		runs[r.WorkflowID] = r
	}
	out := []anyops.DrillRecovery{}
	winner := ""
	for _, inc := range in.Incidents {
		rec := anyops.DrillRecovery{IncidentID: inc.ID, WorkflowID: inc.WorkflowID,
			OpenedOffsetSeconds: round(in.Clock.ToSim(inc.CreatedAt).Sub(in.Origin).Seconds())}
		if run, ok := runs[inc.WorkflowID]; ok {
			rec.Kind, rec.State = in.Kinds[run.Type], run.State
			rec.Winner = resultWinner(run.Result)
			if run.Closed != nil {
				rec.ClosedOffsetSeconds = seconds(in.Clock.ToSim(*run.Closed).Sub(in.Origin))
			}
			if winner == "" {
				winner = rec.Winner // only a failover's result names a winner
			}
		}
		out = append(out, rec)
	}
	return out, winner
}

// resultWinner reads the `winner` of a recovery workflow's result.
func resultWinner(result json.RawMessage) string {
	var r struct {
		Winner string `json:"winner"`
	}
	if len(result) == 0 || json.Unmarshal(result, &r) != nil {
		return ""
	}
	return r.Winner
}

// detection is origin → the first incident on the cluster opened since then (by when its
// record was created, mapped to simulated time).
func detection(in ReportInput) (time.Duration, bool) {
	var first time.Time
	for _, inc := range in.Incidents {
		at := in.Clock.ToSim(inc.CreatedAt)
		if at.Before(in.Origin.Add(-time.Second)) {
			continue // opened before the fault: not its detection
		}
		if first.IsZero() || at.Before(first) {
			first = at
		}
	}
	if first.IsZero() {
		return 0, false
	}
	return max(first.Sub(in.Origin), 0), true
}

// seconds is d in seconds, rounded to a tenth, as a pointer for the optional keys.
func seconds(d time.Duration) *float64 {
	s := round(d.Seconds())
	return &s
}

func round(s float64) float64 { return math.Round(s*10) / 10 }

// RecoveryPoint is recoveryPoint over the cluster's resources: when, in [origin, end], every
// client of the cluster that served at the origin serves again, and whether that happened.
func RecoveryPoint(events []cloudsim.Event, resources []Resource, cluster string, origin, end time.Time) (time.Time, bool) {
	return recoveryPoint(events, clusterMembers(resources, cluster), origin, end)
}
