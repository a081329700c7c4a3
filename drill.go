package anyops

import (
	"encoding/json"
	"fmt"
	"time"
)

// The vocabulary of drills (docs/drills.md): a drill replays an outage on a throw-away cluster
// in cloudsim and reports from its event log in simulated time.

// DrillState is where a drill is.
type DrillState string

const (
	DrillRunning   DrillState = "running"
	DrillCompleted DrillState = "completed" // it ran and reported (whatever the report says)
	DrillFailed    DrillState = "failed"    // it could not run to a report
	DrillCanceled  DrillState = "canceled"
)

// DrillStates lists every DrillState; the inventory's CHECK is tested against it.
var DrillStates = []DrillState{DrillRunning, DrillCompleted, DrillFailed, DrillCanceled}

// DrillWorkflowID is the business key of drill n; DrillCluster names the cluster it builds.
func DrillWorkflowID(n int64) string { return fmt.Sprintf("drill/%d", n) }
func DrillCluster(n int64) string    { return fmt.Sprintf("drill-%d", n) }

// DrillScenario is a scenario file as the drill runs it: parsed, validated and with
// {{cluster}} replaced (drills.ParseScenario).
type DrillScenario struct {
	// Name is the shipped scenario's name, or "file" for one given as a file.
	Name        string `json:"name"`
	Description string `json:"description,omitempty"`
	// Speed is cloudsim's speed from arming to recovery.
	Speed float64 `json:"speed"`
	// Timeout is how long (simulated time) the drill waits for the outcome after its last step.
	Timeout time.Duration `json:"timeout"`
	// Spare builds the drill's cluster with a warm spare in its zone.
	Spare bool `json:"spare,omitempty"`
	// Cluster is "live" for a scenario that works on the demo fleet (nothing is built or torn
	// down); "" for a cluster of the drill's own.
	Cluster string `json:"cluster,omitempty"`
	// Incidents is how many incidents the drill waits for.
	Incidents int `json:"incidents"`
	// Goals are the report's claims: a report key and its bound (at most).
	Goals map[string]float64 `json:"goals,omitempty"`
	// Report names extra report functions (drills/extensions.go).
	Report []string    `json:"report,omitempty"`
	Steps  []DrillStep `json:"steps"`
	// Origin is the index in Steps of the step the report counts from.
	Origin int `json:"origin"`
}

// DrillStep is one step of a scenario: exactly one of Fault, Operation and Command.
type DrillStep struct {
	// At is when the step happens, simulated time from arming.
	At time.Duration `json:"at"`
	// Fault is a cloudsim fault (docs/cloudsim.md), as JSON.
	Fault json.RawMessage `json:"fault,omitempty"`
	// Operation is an operation the drill starts as a child workflow.
	Operation *DrillOperation `json:"operation,omitempty"`
	// Command is a script the drill runs on a host through SSM.
	Command *DrillCommand `json:"command,omitempty"`
	// Fill gives a volume the data it held before the story began (cloudsim's
	// /_sim/volumes/{id}/fill).
	Fill *DrillFill `json:"fill,omitempty"`
}

// DrillFill makes a volume hold at least GiB written: what months of use left on it (a full
// Dropbox whose snapshot crawls, a logs volume of 90 minutes' snapshot). VolumeID is an id or
// "tag:Key=Value". At least, not more: a step carried out again writes nothing more.
type DrillFill struct {
	VolumeID string  `json:"volume_id"`
	GiB      float64 `json:"gib"`
}

// DrillOperation is an operation of a registered kind with its input (the API's body).
type DrillOperation struct {
	Kind  string          `json:"kind"`
	Input json.RawMessage `json:"input,omitempty"`
}

// DrillCommand is a script for one host: InstanceID is an id or "tag:Key=Value".
type DrillCommand struct {
	InstanceID string   `json:"instance_id"`
	Run        []string `json:"run"`
}

// Kind words what a step does, for logs and the timeline.
func (s DrillStep) Kind() string {
	switch {
	case s.Operation != nil:
		return "operation " + s.Operation.Kind
	case s.Command != nil:
		return "command on " + s.Command.InstanceID
	case s.Fill != nil:
		return "fill of " + s.Fill.VolumeID
	}
	var f struct {
		Type string `json:"type"`
	}
	_ = json.Unmarshal(s.Fault, &f)
	return "fault " + f.Type
}

// DrillReport is what a drill measured: the object `anyops drill run --json` prints. Its keys
// are stable (drills.TestReportKeysAreStable); report functions of scenarios and operation
// kinds add theirs in Extra, which is marshalled beside them.
type DrillReport struct {
	Drill    string    `json:"drill"`
	Scenario string    `json:"scenario"`
	Cluster  string    `json:"cluster"`
	Speed    float64   `json:"speed"`
	Origin   time.Time `json:"origin"`
	// RTOSeconds is origin → every client reads and writes its home again; nil when that did
	// not happen while the drill waited.
	RTOSeconds *float64 `json:"rto_seconds"`
	Recovered  bool     `json:"recovered"`
	// DetectSeconds is origin → the first incident on the cluster; nil when none opened.
	DetectSeconds       *float64         `json:"detect_seconds"`
	NoHotBackupSeconds  float64          `json:"no_hot_backup_seconds"`
	HotBackupAtEnd      bool             `json:"hot_backup_at_end"`
	LostBytes           int64            `json:"lost_bytes"`
	InterlockViolations int              `json:"interlock_violations"`
	Violations          []DrillViolation `json:"violations"`
	DuplicateResources  int              `json:"duplicate_resources"`
	Duplicates          []DrillDuplicate `json:"duplicates"`
	// Winner is the way that won the failover, "" when no failover ran.
	Winner              string               `json:"winner"`
	Recoveries          []DrillRecovery      `json:"recoveries"`
	ControlPlaneSeconds float64              `json:"control_plane_seconds"`
	TimedOut            bool                 `json:"timed_out"`
	Goals               map[string]DrillGoal `json:"goals"`
	Timeline            []DrillEvent         `json:"timeline"`
	// Extra holds the keys report functions added.
	Extra map[string]any `json:"-"`
}

// DrillViolation is one broken interlock.
type DrillViolation struct {
	At            time.Time `json:"at"`
	OffsetSeconds float64   `json:"offset_seconds"`
	Kind          string    `json:"kind"`
	Resource      string    `json:"resource"`
	Message       string    `json:"message"`
}

// Kinds of DrillViolation.
const (
	ViolationSplitBrain            = "split-brain"
	ViolationTwoPrimaries          = "two-primaries"
	ViolationUnsafePromotion       = "unsafe-promotion"
	ViolationDoubleAttach          = "double-attach"
	ViolationLiveClusterTerminated = "live-cluster-terminated"
)

// DrillDuplicate is a set of cloud resources that share business tags.
type DrillDuplicate struct {
	Type string            `json:"type"` // instance or volume
	IDs  []string          `json:"ids"`
	Tags map[string]string `json:"tags"`
}

// DrillRecovery is one incident of the drill's cluster and the workflow that handled it.
type DrillRecovery struct {
	IncidentID          int64    `json:"incident_id"`
	WorkflowID          string   `json:"workflow_id"`
	Kind                string   `json:"kind"`
	State               string   `json:"state"`
	Winner              string   `json:"winner,omitempty"`
	OpenedOffsetSeconds float64  `json:"opened_offset_seconds"`
	ClosedOffsetSeconds *float64 `json:"closed_offset_seconds"`
}

// DrillGoal is one claim of the scenario checked against the report: Value at most Bound.
type DrillGoal struct {
	Bound float64  `json:"bound"`
	Value *float64 `json:"value"`
	Met   bool     `json:"met"`
}

// DrillEvent is one line of a drill's timeline, in simulated time.
type DrillEvent struct {
	OffsetSeconds float64   `json:"offset_seconds"`
	At            time.Time `json:"at"`
	// Source is cloud (cloudsim's event log), incident (an incident's timeline) or workflow
	// (a recovery workflow's step).
	Source   string `json:"source"`
	Type     string `json:"type"`
	Resource string `json:"resource,omitempty"`
	Message  string `json:"message"`
}

// Sources of DrillEvent.
const (
	DrillSourceCloud    = "cloud"
	DrillSourceIncident = "incident"
	DrillSourceWorkflow = "workflow"
)

// drillReportFields is DrillReport without its methods, so MarshalJSON can use the default
// encoding for the fixed keys.
type drillReportFields DrillReport

// MarshalJSON writes the fixed keys and then Extra's.
func (r DrillReport) MarshalJSON() ([]byte, error) {
	base, err := json.Marshal(drillReportFields(r))
	if err != nil || len(r.Extra) == 0 {
		return base, err
	}
	var all map[string]json.RawMessage
	if err := json.Unmarshal(base, &all); err != nil {
		return nil, err
	}
	for k, v := range r.Extra {
		if _, taken := all[k]; taken {
			return nil, fmt.Errorf("drill report: extra key %q is a base key", k)
		}
		b, err := json.Marshal(v)
		if err != nil {
			return nil, fmt.Errorf("drill report: extra key %q: %w", k, err)
		}
		all[k] = b
	}
	return json.Marshal(all)
}

// UnmarshalJSON reads the fixed keys and keeps any other in Extra.
func (r *DrillReport) UnmarshalJSON(b []byte) error {
	var f drillReportFields
	if err := json.Unmarshal(b, &f); err != nil {
		return err
	}
	var all map[string]json.RawMessage
	if err := json.Unmarshal(b, &all); err != nil {
		return err
	}
	for _, k := range DrillReportKeys {
		delete(all, k)
	}
	*r = DrillReport(f)
	if len(all) > 0 {
		r.Extra = map[string]any{}
		for k, v := range all {
			var x any
			if err := json.Unmarshal(v, &x); err != nil {
				return err
			}
			r.Extra[k] = x
		}
	}
	return nil
}

// DrillReportKeys are the fixed keys of a drill's report, in the order it prints them.
var DrillReportKeys = []string{"drill", "scenario", "cluster", "speed", "origin", "rto_seconds", "recovered",
	"detect_seconds", "no_hot_backup_seconds", "hot_backup_at_end", "lost_bytes", "interlock_violations", "violations",
	"duplicate_resources", "duplicates", "winner", "recoveries", "control_plane_seconds", "timed_out", "goals", "timeline"}
