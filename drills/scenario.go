// Package drills is the drill runner's pure part (docs/drills.md): scenario files — parsed,
// validated, with {{cluster}} replaced — the scenarios that ship, and the report computed
// from cloudsim's event log, the incidents and the recovery workflows' histories, with the
// report functions other drills add. It does no I/O: the Drills activities feed it.
package drills

import (
	"bytes"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path"
	"regexp"
	"slices"
	"sort"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/anyops/anyops"
	"github.com/anyops/anyops/cloudsim"
)

// Bounds and defaults of a scenario.
const (
	MaxScenarioBytes = 64 << 10
	MaxSteps         = 100
	MaxStepAt        = 72 * time.Hour
	MinSpeed         = 0.1
	MaxSpeed         = 10000
	DefaultSpeed     = 10
	MinTimeout       = time.Minute
	MaxTimeout       = 168 * time.Hour
	DefaultTimeout   = 2 * time.Hour
	MaxIncidents     = 20
	maxCommandLines  = 50
	maxCommandLine   = 4096
	// FileScenario is the name of a scenario given as a file rather than by name.
	FileScenario = "file"
	// ClusterPlaceholder stands for the drill's cluster in a scenario file.
	ClusterPlaceholder = "{{cluster}}"
)

//go:embed scenarios/*.yaml
var shipped embed.FS

// ScenarioInfo describes a scenario that ships.
type ScenarioInfo struct {
	Name        string             `json:"name"`
	Description string             `json:"description"`
	Speed       float64            `json:"speed"`
	Timeout     string             `json:"timeout"`
	Goals       map[string]float64 `json:"goals,omitempty"`
}

// Scenarios lists the scenarios that ship, by name.
func Scenarios() []ScenarioInfo {
	entries, err := shipped.ReadDir("scenarios")
	if err != nil {
		panic("drills: embedded scenarios missing: " + err.Error())
	}
	var out []ScenarioInfo
	for _, e := range entries {
		name := strings.TrimSuffix(e.Name(), ".yaml")
		src, _ := Shipped(name)
		sc, err := ParseScenario(name, src, "drill-0", nil)
		if err != nil {
			panic(fmt.Sprintf("drills: shipped scenario %s is invalid: %v", name, err))
		}
		out = append(out, ScenarioInfo{Name: name, Description: sc.Description, Speed: sc.Speed, Timeout: sc.Timeout.String(), Goals: sc.Goals})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// Shipped returns the source of a scenario that ships.
func Shipped(name string) ([]byte, bool) {
	if !reScenarioName.MatchString(name) {
		return nil, false
	}
	b, err := shipped.ReadFile(path.Join("scenarios", name+".yaml"))
	return b, err == nil
}

var reScenarioName = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,62}$`)

// ScenarioNames lists the names of the scenarios that ship.
func ScenarioNames() []string {
	var names []string
	for _, s := range Scenarios() {
		names = append(names, s.Name)
	}
	return names
}

// scenarioFile is the object form of a scenario file.
type scenarioFile struct {
	Description string             `json:"description"`
	Speed       *float64           `json:"speed"`
	Timeout     *string            `json:"timeout"`
	Spare       bool               `json:"spare"`
	Cluster     string             `json:"cluster"`
	Incidents   *int               `json:"incidents"`
	Goals       map[string]float64 `json:"goals"`
	Report      []string           `json:"report"`
	Steps       []stepFile         `json:"steps"`
}

type stepFile struct {
	At        *string           `json:"at"`
	Origin    bool              `json:"origin"`
	Fault     json.RawMessage   `json:"fault"`
	Operation *operationFile    `json:"operation"`
	Command   *commandFileStep  `json:"command"`
	Fill      *anyops.DrillFill `json:"fill"`
}

type operationFile struct {
	Kind  string          `json:"kind"`
	Input json.RawMessage `json:"input"`
}

type commandFileStep struct {
	InstanceID string   `json:"instance_id"`
	Run        []string `json:"run"`
}

// reClusterName is what a drill's cluster (or live) is called.
var reClusterName = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,62}$`)

// OperationCheck validates an operation step's kind and input as the API would
// (workflows.CheckDrillOperation: the kind's own Prepare); it returns a message for the client.
type OperationCheck func(kind string, input json.RawMessage) error

// ParseScenario reads a scenario file — a cloudsim scenario (a YAML or JSON list of {at,
// fault}) or the object form of docs/drills.md — with {{cluster}} standing for cluster, and
// validates all of it: one bad step and nothing runs. name is the shipped scenario's name, or
// FileScenario. checkOp validates operation steps (nil: only their shape). Errors are
// *anyops.Error with code EINVALID naming the problem.
func ParseScenario(name string, src []byte, cluster string, checkOp OperationCheck) (anyops.DrillScenario, error) {
	bad := func(format string, args ...any) (anyops.DrillScenario, error) {
		return anyops.DrillScenario{}, anyops.Errorf(anyops.EINVALID, "scenario %s: "+format, append([]any{name}, args...)...)
	}
	if !reClusterName.MatchString(cluster) {
		return bad("cluster %q is not a cluster name", cluster)
	}
	if len(src) > MaxScenarioBytes {
		return bad("the file is larger than %d bytes", MaxScenarioBytes)
	}
	text := strings.ReplaceAll(string(src), ClusterPlaceholder, cluster)
	if i := strings.Index(text, "{{"); i >= 0 {
		end := min(len(text), i+30)
		return bad("unknown placeholder near %q: only %s is replaced", text[i:end], ClusterPlaceholder)
	}
	doc, err := toJSON([]byte(text))
	if err != nil {
		return bad("%v", err)
	}
	var f scenarioFile
	if doc[0] == '[' {
		var steps []stepFile
		if err := decodeStrict(doc, &steps); err != nil {
			return bad("a list must hold {at, fault} steps: %v", err)
		}
		f.Steps = steps
	} else if err := decodeStrict(doc, &f); err != nil {
		return bad("%v", err)
	}
	sc := anyops.DrillScenario{Name: name, Description: strings.TrimSpace(f.Description), Spare: f.Spare, Cluster: f.Cluster,
		Goals: f.Goals, Report: f.Report, Speed: DefaultSpeed, Timeout: DefaultTimeout}
	if len(sc.Description) > 300 || strings.ContainsAny(sc.Description, "\n\r") {
		return bad("description must be one line of at most 300 bytes")
	}
	if f.Speed != nil {
		if *f.Speed < MinSpeed || *f.Speed > MaxSpeed {
			return bad("speed must be between %g and %g, got %g", float64(MinSpeed), float64(MaxSpeed), *f.Speed)
		}
		sc.Speed = *f.Speed
	}
	if f.Timeout != nil {
		d, err := time.ParseDuration(*f.Timeout)
		if err != nil || d < MinTimeout || d > MaxTimeout {
			return bad("timeout %q must be a duration between %s and %s", *f.Timeout, MinTimeout, MaxTimeout)
		}
		sc.Timeout = d
	}
	switch f.Cluster {
	case "":
	case "live":
		if f.Spare {
			return bad("spare builds a spare beside the drill's own cluster; a scenario on live builds nothing")
		}
	default:
		return bad("cluster must be empty (the drill builds its own) or live (the demo fleet), got %q", f.Cluster)
	}
	if len(f.Steps) == 0 || len(f.Steps) > MaxSteps {
		return bad("needs 1 to %d steps, got %d", MaxSteps, len(f.Steps))
	}
	var faults []map[string]any
	origin, hardware := -1, map[string]bool{}
	for i, st := range f.Steps {
		step, err := parseStep(st, checkOp)
		if err != nil {
			return bad("step %d: %v", i+1, err)
		}
		if st.Origin {
			if origin >= 0 {
				return bad("step %d: only one step may be the origin (step %d is)", i+1, origin+1)
			}
			origin = i
		}
		if step.Fault != nil {
			var fault struct {
				Type       string `json:"type"`
				InstanceID string `json:"instance_id"`
			}
			_ = json.Unmarshal(step.Fault, &fault)
			if fault.Type == cloudsim.FaultHardwareFailure {
				hardware[fault.InstanceID] = true
			}
			faults = append(faults, map[string]any{"at": step.At.String(), "fault": step.Fault})
		}
		sc.Steps = append(sc.Steps, step)
	}
	if len(faults) > 0 {
		if err := validateFaults(faults); err != nil {
			return bad("%v", err)
		}
	}
	if origin < 0 {
		origin = defaultOrigin(sc.Steps)
	}
	sc.Origin = origin
	sc.Incidents = len(hardware)
	if f.Incidents != nil {
		if *f.Incidents < 0 || *f.Incidents > MaxIncidents {
			return bad("incidents must be between 0 and %d", MaxIncidents)
		}
		sc.Incidents = *f.Incidents
	}
	for _, r := range sc.Report {
		if _, ok := extensions[r]; !ok || strings.HasPrefix(r, kindPrefix) {
			return bad("report function %q is not registered; registered: %s", r, strings.Join(ExtensionNames(), ", "))
		}
	}
	goalKeys := GoalKeys(sc)
	for k := range sc.Goals {
		if !slices.Contains(goalKeys, k) {
			return bad("goal %q is not a numeric report key: %s", k, strings.Join(goalKeys, ", "))
		}
	}
	return sc, nil
}

// parseStep validates one step.
func parseStep(st stepFile, checkOp OperationCheck) (anyops.DrillStep, error) {
	if st.At == nil {
		return anyops.DrillStep{}, errors.New("at is required (a duration such as 0s, 90s or 20m)")
	}
	at, err := time.ParseDuration(*st.At)
	if err != nil || at < 0 || at > MaxStepAt {
		return anyops.DrillStep{}, fmt.Errorf("at %q must be a duration between 0s and %s", *st.At, MaxStepAt)
	}
	step := anyops.DrillStep{At: at}
	n := 0
	if len(st.Fault) > 0 && string(st.Fault) != "null" {
		n++
		if st.Fault[0] != '{' {
			return step, errors.New("fault must be an object")
		}
		step.Fault = st.Fault
	}
	if st.Operation != nil {
		n++
		op, err := parseOperation(*st.Operation, checkOp)
		if err != nil {
			return step, err
		}
		step.Operation = &op
	}
	if st.Command != nil {
		n++
		cmd, err := parseCommand(*st.Command)
		if err != nil {
			return step, err
		}
		step.Command = &cmd
	}
	if st.Fill != nil {
		n++
		if err := checkFill(*st.Fill); err != nil {
			return step, err
		}
		step.Fill = st.Fill
	}
	if n != 1 {
		return step, errors.New("needs exactly one of fault, operation, command and fill")
	}
	return step, nil
}

// parseOperation checks the operation's kind and input.
func parseOperation(o operationFile, checkOp OperationCheck) (anyops.DrillOperation, error) {
	if !reScenarioName.MatchString(o.Kind) {
		return anyops.DrillOperation{}, fmt.Errorf("operation kind %q is not a kind's name", o.Kind)
	}
	input := o.Input
	if len(input) == 0 || string(input) == "null" {
		input = json.RawMessage("{}")
	}
	if input[0] != '{' {
		return anyops.DrillOperation{}, fmt.Errorf("operation %s: input must be an object", o.Kind)
	}
	if checkOp != nil {
		if err := checkOp(o.Kind, input); err != nil {
			return anyops.DrillOperation{}, fmt.Errorf("operation %s: %s", o.Kind, anyops.ErrorMessage(err))
		}
	}
	return anyops.DrillOperation{Kind: o.Kind, Input: input}, nil
}

// MaxFillGiB bounds a fill step: cloudsim's own bound.
const MaxFillGiB = 65536

// checkFill validates a fill step: a volume id or tag selector, and a size in GiB.
func checkFill(f anyops.DrillFill) error {
	if !strings.HasPrefix(f.VolumeID, "vol-") && !strings.HasPrefix(f.VolumeID, "tag:") || len(f.VolumeID) > 256 {
		return errors.New("fill needs volume_id (a volume id or tag:Key=Value)")
	}
	if !(f.GiB > 0 && f.GiB <= MaxFillGiB) {
		return fmt.Errorf("fill needs gib above 0 and at most %d", MaxFillGiB)
	}
	return nil
}

// DrillActor is who the operations a drill starts are requested by.
const DrillActor = "drill"

func parseCommand(c commandFileStep) (anyops.DrillCommand, error) {
	if c.InstanceID == "" {
		return anyops.DrillCommand{}, errors.New("command needs instance_id (an instance id or tag:Key=Value)")
	}
	if err := checkInstanceRef(c.InstanceID); err != nil {
		return anyops.DrillCommand{}, err
	}
	if len(c.Run) == 0 || len(c.Run) > maxCommandLines {
		return anyops.DrillCommand{}, fmt.Errorf("command needs 1 to %d lines in run", maxCommandLines)
	}
	for _, l := range c.Run {
		if l == "" || len(l) > maxCommandLine || strings.ContainsAny(l, "\x00\n\r") {
			return anyops.DrillCommand{}, fmt.Errorf("command lines must be 1 to %d bytes, each on one line", maxCommandLine)
		}
	}
	return anyops.DrillCommand{InstanceID: c.InstanceID, Run: c.Run}, nil
}

var (
	reInstanceID = regexp.MustCompile(`^i-[0-9a-f]{8,17}$`)
	reTagRef     = regexp.MustCompile(`^tag:[A-Za-z0-9:_.@+/-]{1,128}=[A-Za-z0-9:_.@+/ -]{1,256}$`)
)

// checkInstanceRef accepts an instance id or tag:Key=Value.
func checkInstanceRef(s string) error {
	if reInstanceID.MatchString(s) || reTagRef.MatchString(s) {
		return nil
	}
	return fmt.Errorf("instance_id %q is neither an instance id nor tag:Key=Value", s)
}

// validateFaults has cloudsim itself check the fault steps: a throw-away simulation loads
// them as the drill's cloudsim will, so the rules live in one place.
func validateFaults(faults []map[string]any) error {
	doc, err := json.Marshal(faults)
	if err != nil {
		return err
	}
	sim, err := cloudsim.New(cloudsim.Config{})
	if err != nil {
		return err
	}
	defer sim.Close()
	if _, err := sim.LoadScenario(doc); err != nil {
		return fmt.Errorf("faults: %w", err)
	}
	return nil
}

// defaultOrigin is the first hardware-failure or zone-outage fault, else the first step.
func defaultOrigin(steps []anyops.DrillStep) int {
	for i, s := range steps {
		var f struct {
			Type string `json:"type"`
		}
		if s.Fault != nil && json.Unmarshal(s.Fault, &f) == nil && (f.Type == cloudsim.FaultHardwareFailure || f.Type == cloudsim.FaultZoneOutage) {
			return i
		}
	}
	return 0
}

// toJSON turns a YAML or JSON document into JSON (YAML is a superset of JSON, but a JSON
// document is decoded as JSON so its numbers and errors stay JSON's).
func toJSON(data []byte) ([]byte, error) {
	trimmed := bytes.TrimSpace(data)
	if len(trimmed) == 0 {
		return nil, errors.New("the file is empty")
	}
	if trimmed[0] == '[' || trimmed[0] == '{' {
		return trimmed, nil
	}
	var v any
	if err := yaml.Unmarshal(data, &v); err != nil {
		return nil, fmt.Errorf("neither JSON nor YAML: %v", err)
	}
	j, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("the YAML holds what JSON cannot: %v", err)
	}
	if len(j) == 0 || (j[0] != '[' && j[0] != '{') {
		return nil, errors.New("a scenario is a list of steps or an object with steps")
	}
	return j, nil
}

// decodeStrict decodes one JSON value, refusing unknown fields and trailing data.
func decodeStrict(doc []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(doc))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("%s", strings.TrimPrefix(err.Error(), "json: "))
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return errors.New("unexpected data after the scenario")
	}
	return nil
}
