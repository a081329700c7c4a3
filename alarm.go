package anyops

import "time"

// AlarmSource is where an alarm came from. Every source feeds the same intake (package
// alarms), so an alarm is handled the same way whoever raised it.
type AlarmSource string

const (
	AlarmSNS          AlarmSource = "sns"          // a CloudWatch alarm delivered by an SNS subscription
	AlarmAlertmanager AlarmSource = "alertmanager" // a Prometheus Alertmanager webhook
	AlarmProbe        AlarmSource = "probe"        // our own NFS watch (the NFSWatch workflow)
)

// AlarmSources lists every AlarmSource.
var AlarmSources = []AlarmSource{AlarmSNS, AlarmAlertmanager, AlarmProbe}

// AlarmState is whether an alarm says something is wrong or that it is fine again.
type AlarmState string

const (
	AlarmFiring   AlarmState = "firing"   // CloudWatch ALARM, Alertmanager firing, probe failing
	AlarmResolved AlarmState = "resolved" // CloudWatch OK, Alertmanager resolved, probe healthy again
)

// AlarmStates lists every AlarmState.
var AlarmStates = []AlarmState{AlarmFiring, AlarmResolved}

// Alarm is one alarm about one server, as the intake takes it from any source.
type Alarm struct {
	Source AlarmSource `json:"source"`
	// DeliveryID names this delivery at its source, the same when the source delivers it again:
	// SNS's MessageId, Alertmanager's fingerprint with the alert's start and status, the
	// probe's watch, run and round. A delivery seen before is a redelivery.
	DeliveryID string     `json:"delivery_id"`
	State      AlarmState `json:"state"`
	// Server (the inventory's name) or InstanceID (EC2's) names the server; one is enough.
	Server     string `json:"server,omitempty"`
	InstanceID string `json:"instance_id,omitempty"`
	// Name is the alarm's name at its source (CloudWatch's AlarmName, Alertmanager's alertname).
	Name string `json:"name"`
	// Check is what failed: StatusCheckFailed_System, an alert's summary, "nfs".
	Check  string `json:"check,omitempty"`
	Reason string `json:"reason,omitempty"`
	// At is when the source saw the change; zero means when the intake took it.
	At time.Time `json:"at,omitempty"`
}

// AlarmAction is what the intake did with an alarm.
type AlarmAction string

const (
	AlarmStarted AlarmAction = "started" // opened an incident and started its recovery workflow
	AlarmJoined  AlarmAction = "joined"  // noted on the open incident; its recovery workflow runs on
	AlarmNoted   AlarmAction = "noted"   // noted on the open incident; nothing started (resolved, or the recovery has ended)
	AlarmIgnored AlarmAction = "ignored" // not about a fault we act on; nothing recorded
	// AlarmSuppressed: the server is held in planned maintenance by a running operation (a
	// release's window); recorded in the audit log against that operation, nothing started.
	AlarmSuppressed AlarmAction = "suppressed"
)

// AlarmOutcome is the intake's answer for one alarm.
type AlarmOutcome struct {
	Action     AlarmAction `json:"action"`
	Server     string      `json:"server,omitempty"`
	Kind       string      `json:"kind,omitempty"` // the recovery's operation kind
	IncidentID int64       `json:"incident_id,omitempty"`
	WorkflowID string      `json:"workflow_id,omitempty"`
	RunID      string      `json:"run_id,omitempty"`
	// Redelivery: the source had delivered this alarm before (the same DeliveryID).
	Redelivery bool   `json:"redelivery,omitempty"`
	Message    string `json:"message"`
}
