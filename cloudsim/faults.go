package cloudsim

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
	"golang.org/x/time/rate"
)

// Fault types, as POST /_sim/faults and scenario files name them.
const (
	FaultHardwareFailure = "hardware-failure"  // instance_id: system check impaired, stop hangs, SSM unreachable
	FaultCorruptBootDisk = "corrupt-boot-disk" // instance_id: after the next start the boot disk is corrupt
	FaultStuckSnapshot   = "stuck-snapshot"    // snapshot_id or volume_id: no progress
	FaultSlowSnapshot    = "slow-snapshot"     // snapshot_id or volume_id, factor: rate divided by factor
	FaultDRBDDisconnect  = "drbd-disconnect"   // instance_id, resource (empty: all): replication link down
	FaultThrottle        = "throttle"          // action (empty: all), count or rate: API throttling
	FaultZoneOutage      = "zone-outage"       // zone: instances impaired, no capacity, snapshots stall
	FaultAptFailure      = "apt-failure"       // instance_id: apt-get cannot reach the archive (exit 100)
)

// Fault is one injected fault. It stays active until deleted or resolved by the simulation
// (a hardware failure ends when the instance stops and moves to new hardware).
type Fault struct {
	ID         string    `json:"id,omitempty"`
	Type       string    `json:"type"`
	InstanceID string    `json:"instance_id,omitempty"`
	VolumeID   string    `json:"volume_id,omitempty"`
	SnapshotID string    `json:"snapshot_id,omitempty"`
	Resource   string    `json:"resource,omitempty"` // DRBD resource
	Zone       string    `json:"zone,omitempty"`
	Action     string    `json:"action,omitempty"`    // throttle: EC2 action or SSM operation; empty for all
	Factor     float64   `json:"factor,omitempty"`    // slow-snapshot: divide the rate by this (default 10)
	Count      int       `json:"count,omitempty"`     // throttle: reject this many requests, then end
	Rate       float64   `json:"rate,omitempty"`      // throttle: allow this many requests per real second
	Command    string    `json:"command,omitempty"`   // command-failure: the first words of the command
	ExitCode   int       `json:"exit_code,omitempty"` // command-failure: its exit code (default 1)
	Since      time.Time `json:"since,omitzero"`
}

func (f *Fault) target() string {
	for _, t := range []string{f.InstanceID, f.SnapshotID, f.VolumeID, f.Zone, f.Action} {
		if t != "" {
			return t
		}
	}
	return ""
}

type scheduledFault struct {
	At    time.Time `json:"at"`
	Fault Fault     `json:"fault"`
}

// validateFault checks a fault's shape without touching state, so a scenario is all or nothing.
func (s *Sim) validateFault(f *Fault) *apiError {
	bad := func(format string, args ...any) *apiError {
		return &apiError{Code: "invalid", Message: fmt.Sprintf(format, args...), Status: 400}
	}
	switch f.Type {
	case FaultHardwareFailure, FaultCorruptBootDisk:
		if f.InstanceID == "" {
			return bad("%s needs instance_id", f.Type)
		}
	case FaultStuckSnapshot, FaultSlowSnapshot:
		if (f.SnapshotID == "") == (f.VolumeID == "") {
			return bad("%s needs exactly one of snapshot_id and volume_id", f.Type)
		}
		if f.Factor < 0 {
			return bad("factor must be positive")
		}
	case FaultAptFailure:
		if f.InstanceID == "" {
			return bad("%s needs instance_id", f.Type)
		}
	case FaultDRBDDisconnect:
		if f.InstanceID == "" {
			return bad("%s needs instance_id (and optionally resource)", f.Type)
		}
	case FaultThrottle:
		if f.Count < 0 || f.Rate < 0 || (f.Count == 0 && f.Rate == 0) {
			return bad("throttle needs a positive count (requests to reject) or rate (requests per second allowed)")
		}
	case FaultCommandFailure:
		if msg := validateCommandFault(f); msg != "" {
			return bad("%s", msg)
		}
	case FaultZoneOutage:
		if !s.zone[f.Zone] {
			return bad("unknown zone %q; zones are %s", f.Zone, strings.Join(zoneNames(s.cfg.Region), ", "))
		}
	default:
		return bad("unknown fault type %q; known: %s", f.Type, strings.Join([]string{FaultHardwareFailure, FaultCorruptBootDisk,
			FaultStuckSnapshot, FaultSlowSnapshot, FaultDRBDDisconnect, FaultThrottle, FaultZoneOutage, FaultCommandFailure, FaultAptFailure}, ", "))
	}
	return nil
}

// applyFault validates f against the current state and makes it active at time at. Callers
// hold s.mu and have settled the world to at.
func (s *Sim) applyFault(at time.Time, f *Fault) *apiError {
	if aerr := s.validateFault(f); aerr != nil {
		return aerr
	}
	notFound := func(what, id string) *apiError {
		return &apiError{Code: "not_found", Message: fmt.Sprintf("%s %s does not exist", what, id), Status: 404}
	}
	if aerr := s.resolveSelectors(f); aerr != nil {
		return aerr
	}
	var in *instance
	if f.InstanceID != "" {
		var ok bool
		if in, ok = s.st.Instances[f.InstanceID]; !ok || in.State == stateTerminated {
			return notFound("instance", f.InstanceID)
		}
	}
	if f.VolumeID != "" {
		if _, ok := s.st.Volumes[f.VolumeID]; !ok {
			return notFound("volume", f.VolumeID)
		}
	}
	if f.SnapshotID != "" {
		if _, ok := s.st.Snapshots[f.SnapshotID]; !ok {
			return notFound("snapshot", f.SnapshotID)
		}
	}
	if f.Type == FaultSlowSnapshot && f.Factor == 0 {
		f.Factor = 10
	}
	s.st.Counter++
	f.ID = "fault-" + strconv.FormatUint(s.st.Counter, 10)
	f.Since = at
	s.st.Faults[f.ID] = f
	switch f.Type {
	case FaultHardwareFailure:
		in.HardwareFailedAt = at
	case FaultCorruptBootDisk:
		in.CorruptOnRestart = true
	}
	s.event(at, "fault."+f.Type, f.target(), "fault %s injected: %s %s", f.ID, f.Type, describeFault(f))
	s.reevaluate(at)
	return nil
}

// resolveSelectors turns instance_id or volume_id written as "tag:Key=Value" into the id of
// the resource carrying that tag when the fault fires, so scenario files can name servers
// before they exist.
func (s *Sim) resolveSelectors(f *Fault) *apiError {
	parse := func(sel string) (string, string, bool) {
		kv, ok := strings.CutPrefix(sel, "tag:")
		if !ok {
			return "", "", false
		}
		k, v, _ := strings.Cut(kv, "=")
		return k, v, true
	}
	if k, v, ok := parse(f.InstanceID); ok {
		for _, id := range sortedKeys(s.st.Instances) {
			if in := s.st.Instances[id]; in.State != stateTerminated {
				if got, has := in.Tags.get(k); has && got == v {
					f.InstanceID = id
					return nil
				}
			}
		}
		return &apiError{Code: "not_found", Message: fmt.Sprintf("no live instance tagged %s=%s", k, v), Status: 404}
	}
	if k, v, ok := parse(f.VolumeID); ok {
		for _, id := range sortedKeys(s.st.Volumes) {
			if got, has := s.st.Volumes[id].Tags.get(k); has && got == v {
				f.VolumeID = id
				return nil
			}
		}
		return &apiError{Code: "not_found", Message: fmt.Sprintf("no volume tagged %s=%s", k, v), Status: 404}
	}
	return nil
}

func describeFault(f *Fault) string {
	b, _ := json.Marshal(f)
	return string(b)
}

// deleteFault ends a fault by id, undoing what it set on resources.
func (s *Sim) deleteFault(at time.Time, id string) bool {
	f, ok := s.st.Faults[id]
	if !ok {
		return false
	}
	delete(s.st.Faults, id)
	delete(s.throttles, id)
	if in := s.st.Instances[f.InstanceID]; in != nil {
		switch f.Type {
		case FaultHardwareFailure:
			in.HardwareFailedAt = time.Time{}
		case FaultCorruptBootDisk:
			in.CorruptOnRestart = false
			in.BootFailedAt = time.Time{}
			if v := s.st.Volumes[in.RootVolume]; v != nil {
				v.Corrupt = false
			}
		}
	}
	s.event(at, "fault.cleared", f.target(), "fault %s (%s) cleared", id, f.Type)
	s.reevaluate(at)
	return true
}

// resolveFaults ends the faults of a type on an instance because the simulation healed them.
func (s *Sim) resolveFaults(at time.Time, typ, instanceID string) {
	for _, id := range sortedKeys(s.st.Faults) {
		if f := s.st.Faults[id]; f.Type == typ && f.InstanceID == instanceID {
			delete(s.st.Faults, id)
			s.event(at, "fault.resolved", instanceID, "fault %s (%s) resolved: instance %s moved to new hardware", id, typ, instanceID)
		}
	}
}

func (s *Sim) zoneDown(z string) bool { return !s.zoneDownSince(z).IsZero() }

func (s *Sim) zoneDownSince(z string) time.Time {
	for _, f := range s.st.Faults {
		if f.Type == FaultZoneOutage && f.Zone == z {
			return f.Since
		}
	}
	return time.Time{}
}

// snapshotRateFactor is what the active faults leave of a snapshot's normal rate.
func (s *Sim) snapshotRateFactor(sn *snapshot) float64 {
	factor := 1.0
	if sn.Zone != "" && s.zoneDown(sn.Zone) {
		return 0
	}
	for _, f := range s.st.Faults {
		hit := (f.SnapshotID != "" && f.SnapshotID == sn.ID) || (f.VolumeID != "" && f.VolumeID == sn.VolumeID && sn.SourceSnap == "")
		if !hit {
			continue
		}
		switch f.Type {
		case FaultStuckSnapshot:
			return 0
		case FaultSlowSnapshot:
			factor /= f.Factor
		}
	}
	return factor
}

// aptFailure is the apt-failure fault on an instance, nil when none.
func (s *Sim) aptFailure(id string) *Fault {
	for _, fid := range sortedKeys(s.st.Faults) {
		if f := s.st.Faults[fid]; f.Type == FaultAptFailure && f.InstanceID == id {
			return f
		}
	}
	return nil
}

// drbdDisconnected reports whether a drbd-disconnect fault cuts resource res on instance id.
func (s *Sim) drbdDisconnected(id, res string) bool {
	for _, f := range s.st.Faults {
		if f.Type == FaultDRBDDisconnect && f.InstanceID == id && (f.Resource == "" || f.Resource == res) {
			return true
		}
	}
	return false
}

// throttled applies throttle faults to one request: count faults reject and count down, rate
// faults allow so many requests per real second. code is the protocol's throttling error.
func (s *Sim) throttled(action, code string, now time.Time) *apiError {
	for _, id := range sortedKeys(s.st.Faults) {
		f := s.st.Faults[id]
		if f.Type != FaultThrottle || (f.Action != "" && f.Action != action) {
			continue
		}
		reject := false
		if f.Count > 0 {
			f.Count--
			reject = true
			if f.Count == 0 && f.Rate == 0 {
				delete(s.st.Faults, id)
				s.event(now, "fault.expired", f.target(), "fault %s (throttle) used up", id)
			}
			s.markDirty()
		} else if f.Rate > 0 {
			l := s.throttles[id]
			if l == nil {
				l = rate.NewLimiter(rate.Limit(f.Rate), max(1, int(f.Rate)))
				s.throttles[id] = l
			}
			reject = !l.Allow()
		}
		if reject {
			status := 400
			msg := "Rate exceeded"
			if code == "RequestLimitExceeded" {
				status, msg = 503, "Request limit exceeded."
			}
			return &apiError{Code: code, Message: msg, Status: status}
		}
	}
	return nil
}

// scenarioItem is one line of a scenario file: a fault and when, counted from the load.
type scenarioItem struct {
	At    string `json:"at"`
	Fault Fault  `json:"fault"`
}

// parseScenario reads a JSON or YAML list of {at, fault}. YAML goes through the same JSON
// decoding so both formats have one set of field names.
func parseScenario(data []byte) ([]scenarioItem, error) {
	trimmed := bytes.TrimSpace(data)
	if len(trimmed) == 0 {
		return nil, fmt.Errorf("empty scenario")
	}
	if trimmed[0] != '[' && trimmed[0] != '{' {
		var v any
		if err := yaml.Unmarshal(data, &v); err != nil {
			return nil, fmt.Errorf("scenario is neither JSON nor YAML: %w", err)
		}
		j, err := json.Marshal(v)
		if err != nil {
			return nil, fmt.Errorf("scenario: %w", err)
		}
		trimmed = j
	}
	var items []scenarioItem
	dec := json.NewDecoder(bytes.NewReader(trimmed))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&items); err != nil {
		return nil, fmt.Errorf("scenario must be a list of {at, fault}: %w", err)
	}
	return items, nil
}

// LoadScenario schedules a scenario's faults relative to simulated now. Every item is
// validated first: a bad scenario schedules nothing.
func (s *Sim) LoadScenario(data []byte) ([]Fault, error) {
	items, err := parseScenario(data)
	if err != nil {
		return nil, err
	}
	now := s.begin()
	defer s.mu.Unlock()
	var sched []*scheduledFault
	for i, it := range items {
		d, err := time.ParseDuration(it.At)
		if err != nil || d < 0 {
			return nil, fmt.Errorf("item %d: at %q is not a non-negative duration like 90s or 2h", i+1, it.At)
		}
		f := it.Fault
		if aerr := s.validateFault(&f); aerr != nil {
			return nil, fmt.Errorf("item %d: %s", i+1, aerr.Message)
		}
		sched = append(sched, &scheduledFault{At: now.Add(d), Fault: f})
	}
	var out []Fault
	for _, sf := range sched {
		s.st.Scheduled = append(s.st.Scheduled, sf)
		s.event(now, "scenario.scheduled", sf.Fault.target(), "%s scheduled for %s", sf.Fault.Type, sf.At.Format(time.RFC3339))
		out = append(out, sf.Fault)
	}
	s.settle(now) // items due at once fire now
	s.markDirty()
	return out, nil
}

// InjectFault makes a fault active now and returns it with its id.
func (s *Sim) InjectFault(f Fault) (Fault, error) {
	now := s.begin()
	defer s.mu.Unlock()
	f.ID = ""
	if aerr := s.applyFault(now, &f); aerr != nil {
		return Fault{}, aerr
	}
	s.markDirty()
	return f, nil
}
