package inventory

import (
	"time"

	"github.com/anyops/anyops"
)

// The models below are the rows of the schema in migrations/. Column names are spelled out in
// gorm tags so that a renamed Go field cannot silently point at a column that does not exist.
// Optional references (a volume's attached server, a cluster's release, ...) are plain strings
// in Go, "" meaning none; the nullzero serializer stores "" as NULL so the foreign key allows it.

// Zone is an availability zone.
type Zone struct {
	Name      string    `gorm:"column:name;primaryKey" json:"name"`
	Region    string    `gorm:"column:region" json:"region"`
	CreatedAt time.Time `gorm:"column:created_at" json:"created_at"`
	UpdatedAt time.Time `gorm:"column:updated_at" json:"updated_at"`
}

// Release is a platform release; new releases run on new clusters.
type Release struct {
	Name      string    `gorm:"column:name;primaryKey" json:"name"`
	Notes     string    `gorm:"column:notes" json:"notes"`
	CreatedAt time.Time `gorm:"column:created_at" json:"created_at"`
	UpdatedAt time.Time `gorm:"column:updated_at" json:"updated_at"`
}

// Cluster is a set of servers in one zone that serves one release.
type Cluster struct {
	Name      string              `gorm:"column:name;primaryKey" json:"name"`
	Zone      string              `gorm:"column:zone" json:"zone"`
	State     anyops.ClusterState `gorm:"column:state" json:"state"`
	Release   string              `gorm:"column:release;serializer:nullzero" json:"release,omitempty"`
	CreatedAt time.Time           `gorm:"column:created_at" json:"created_at"`
	UpdatedAt time.Time           `gorm:"column:updated_at" json:"updated_at"`
}

// Server is one instance of a cluster.
type Server struct {
	Name         string             `gorm:"column:name;primaryKey" json:"name"`
	InstanceID   string             `gorm:"column:instance_id;serializer:nullzero" json:"instance_id,omitempty"`
	Role         anyops.Role        `gorm:"column:role" json:"role"`
	Zone         string             `gorm:"column:zone" json:"zone"`
	Cluster      string             `gorm:"column:cluster" json:"cluster"`
	State        anyops.ServerState `gorm:"column:state" json:"state"`
	InstanceType string             `gorm:"column:instance_type" json:"instance_type,omitempty"`
	PrivateIP    string             `gorm:"column:private_ip" json:"private_ip,omitempty"`
	// SandboxdURL is where the API reaches sandboxd on a console host.
	SandboxdURL string `gorm:"column:sandboxd_url" json:"sandboxd_url,omitempty"`
	// ImpairedSince is when the cloud first reported a failed status check; nil when healthy.
	ImpairedSince *time.Time `gorm:"column:impaired_since" json:"impaired_since,omitempty"`
	CreatedAt     time.Time  `gorm:"column:created_at" json:"created_at"`
	UpdatedAt     time.Time  `gorm:"column:updated_at" json:"updated_at"`
}

// Volume is an EBS volume.
type Volume struct {
	VolumeID    string             `gorm:"column:volume_id;primaryKey" json:"volume_id"`
	Kind        anyops.VolumeKind  `gorm:"column:kind" json:"kind"`
	Criticality anyops.Criticality `gorm:"column:criticality" json:"criticality"`
	SizeGiB     int                `gorm:"column:size_gib" json:"size_gib"`
	Zone        string             `gorm:"column:zone" json:"zone"`
	Cluster     string             `gorm:"column:cluster;serializer:nullzero" json:"cluster,omitempty"`
	State       anyops.VolumeState `gorm:"column:state" json:"state"`
	// Server and Device say where the volume is attached; both "" when it is not.
	Server string `gorm:"column:server;serializer:nullzero" json:"server,omitempty"`
	Device string `gorm:"column:device" json:"device,omitempty"`
	// RAIDGroup names the md array the volume belongs to on its server ("md0"), "" for none.
	RAIDGroup string    `gorm:"column:raid_group" json:"raid_group,omitempty"`
	CreatedAt time.Time `gorm:"column:created_at" json:"created_at"`
	UpdatedAt time.Time `gorm:"column:updated_at" json:"updated_at"`
}

// Replica is a DRBD resource mirroring one volume of a primary (file) server to one volume of
// a secondary (backup) server. The demo fleet has one resource per home volume.
type Replica struct {
	Name               string `gorm:"column:name;primaryKey" json:"name"` // DRBD resource name
	Cluster            string `gorm:"column:cluster" json:"cluster"`
	PrimaryServer      string `gorm:"column:primary_server" json:"primary_server"`
	SecondaryServer    string `gorm:"column:secondary_server" json:"secondary_server"`
	PrimaryVolume      string `gorm:"column:primary_volume" json:"primary_volume"`
	SecondaryVolume    string `gorm:"column:secondary_volume" json:"secondary_volume"`
	ConnectionState    string `gorm:"column:connection_state" json:"connection_state"`         // DRBD cstate: Connected, SyncSource, StandAlone, ...
	PrimaryDiskState   string `gorm:"column:primary_disk_state" json:"primary_disk_state"`     // DRBD dstate: UpToDate, ...
	SecondaryDiskState string `gorm:"column:secondary_disk_state" json:"secondary_disk_state"` // UpToDate, Inconsistent, Outdated, ...
	// SyncPercent is how much of the secondary is in sync, 0 to 100.
	SyncPercent float64             `gorm:"column:sync_percent" json:"sync_percent"`
	State       anyops.ReplicaState `gorm:"column:state" json:"state"`
	CreatedAt   time.Time           `gorm:"column:created_at" json:"created_at"`
	UpdatedAt   time.Time           `gorm:"column:updated_at" json:"updated_at"`
}

// IncidentState is whether an incident is still being handled.
type IncidentState string

const (
	IncidentOpen     IncidentState = "open"
	IncidentResolved IncidentState = "resolved"
)

// IncidentStates lists every IncidentState; the schema's CHECK is tested against it.
var IncidentStates = []IncidentState{IncidentOpen, IncidentResolved}

// Incident is something that went wrong, with the timeline of what was done about it.
type Incident struct {
	ID      int64         `gorm:"column:id;primaryKey" json:"id"`
	Title   string        `gorm:"column:title" json:"title"`
	State   IncidentState `gorm:"column:state" json:"state"`
	Cluster string        `gorm:"column:cluster;serializer:nullzero" json:"cluster,omitempty"`
	Server  string        `gorm:"column:server;serializer:nullzero" json:"server,omitempty"`
	// WorkflowID is the business key of the workflow that recovers from the incident's fault
	// (failover/<server>): while the incident is open no other open incident has it.
	WorkflowID string `gorm:"column:workflow_id" json:"workflow_id,omitempty"`
	// RunID is the run of that workflow the incident started or joined; "" until linked.
	RunID      string     `gorm:"column:run_id" json:"run_id,omitempty"`
	OpenedAt   time.Time  `gorm:"column:opened_at" json:"opened_at"`
	ResolvedAt *time.Time `gorm:"column:resolved_at" json:"resolved_at,omitempty"`
	CreatedAt  time.Time  `gorm:"column:created_at" json:"created_at"`
	UpdatedAt  time.Time  `gorm:"column:updated_at" json:"updated_at"`
	// Timeline is filled by GetIncident, oldest event first (lists leave it out).
	Timeline []IncidentEvent `gorm:"-" json:"timeline,omitempty"`
}

// Kinds of incident timeline events the control plane writes (others may add their own).
const (
	IncidentEventOpened   = "opened"
	IncidentEventResolved = "resolved" // also resolves the incident
	// IncidentEventAlarm is a firing alarm, IncidentEventAlarmResolved an alarm that says the
	// fault is gone (CloudWatch OK); both carry the alarm's Source and DeliveryID, unique per
	// incident. A delivery seen again is recorded as IncidentEventRedelivered.
	IncidentEventAlarm         = "alarm"
	IncidentEventAlarmResolved = "alarm-resolved"
	IncidentEventRedelivered   = "alarm-redelivered"
	// IncidentEventWorkflow says what became of the recovery workflow: started, joined, ended.
	IncidentEventWorkflow = "workflow"
)

// IncidentEvent is one entry of an incident's timeline.
type IncidentEvent struct {
	ID         int64  `gorm:"column:id;primaryKey" json:"id"`
	IncidentID int64  `gorm:"column:incident_id" json:"incident_id"`
	Kind       string `gorm:"column:kind" json:"kind"`
	// Source says who recorded it: an alarm source (sns, alertmanager, probe), a workflow.
	Source string `gorm:"column:source" json:"source,omitempty"`
	// DeliveryID is an alarm delivery's id at its source (SNS's MessageId).
	DeliveryID string    `gorm:"column:delivery_id" json:"delivery_id,omitempty"`
	Message    string    `gorm:"column:message" json:"message"`
	At         time.Time `gorm:"column:at" json:"at"`
	CreatedAt  time.Time `gorm:"column:created_at" json:"created_at"`
	UpdatedAt  time.Time `gorm:"column:updated_at" json:"updated_at"`
}

// AuditEvent records who did what: every human decision and every override of an interlock.
type AuditEvent struct {
	ID      int64  `gorm:"column:id;primaryKey" json:"id"`
	Actor   string `gorm:"column:actor" json:"actor"`
	Action  string `gorm:"column:action" json:"action"`
	Subject string `gorm:"column:subject" json:"subject"`
	// Summary holds the details, stored as JSON text.
	Summary map[string]any `gorm:"column:summary;serializer:json" json:"summary"`
	// IdempotencyKey, when set, makes recording the event again return the first record.
	IdempotencyKey *string   `gorm:"column:idempotency_key" json:"-"`
	CreatedAt      time.Time `gorm:"column:created_at" json:"created_at"`
	UpdatedAt      time.Time `gorm:"column:updated_at" json:"updated_at"`
}

// Image is a sandbox image version the console hosts have (sandboxd/images). A user stays
// pinned to the image they were created with, the default of the time, so that old web apps
// keep the package versions they were built on.
type Image struct {
	ID        int64     `gorm:"column:id;primaryKey" json:"id"`
	Name      string    `gorm:"column:name" json:"name"`
	Version   string    `gorm:"column:version" json:"version"`
	Default   bool      `gorm:"column:is_default" json:"default"` // new users get it; one at most
	CreatedAt time.Time `gorm:"column:created_at" json:"created_at"`
	UpdatedAt time.Time `gorm:"column:updated_at" json:"updated_at"`
}

// Ref is the image as sandboxd names it: "name:version".
func (i Image) Ref() string { return i.Name + ":" + i.Version }

// User is an account of the hosting platform.
type User struct {
	Name      string      `gorm:"column:name;primaryKey" json:"name"`
	UID       int         `gorm:"column:uid" json:"uid"`
	Plan      anyops.Plan `gorm:"column:plan" json:"plan"`
	Anonymous bool        `gorm:"column:anonymous" json:"anonymous"`
	ImageID   int64       `gorm:"column:image_id;serializer:nullzero" json:"image_id,omitempty"`
	CreatedAt time.Time   `gorm:"column:created_at" json:"created_at"`
	UpdatedAt time.Time   `gorm:"column:updated_at" json:"updated_at"`
	// Image is the pinned image, filled by the store's reads; nil when none is pinned.
	Image *Image `gorm:"-" json:"image,omitempty"`
}

// Sandbox is one isolated environment on a console host.
type Sandbox struct {
	ID        string              `gorm:"column:id;primaryKey" json:"id"`
	User      string              `gorm:"column:username" json:"user"`
	Server    string              `gorm:"column:server" json:"server"`
	ImageID   int64               `gorm:"column:image_id;serializer:nullzero" json:"image_id,omitempty"`
	State     anyops.SandboxState `gorm:"column:state" json:"state"`
	ConsoleID string              `gorm:"column:console_id" json:"console_id,omitempty"`
	EndedAt   *time.Time          `gorm:"column:ended_at" json:"ended_at,omitempty"`
	CreatedAt time.Time           `gorm:"column:created_at" json:"created_at"`
	UpdatedAt time.Time           `gorm:"column:updated_at" json:"updated_at"`
}

// Console is a browser console: a user's terminal in a sandbox, driven by a console workflow.
type Console struct {
	ID         string              `gorm:"column:id;primaryKey" json:"id"`
	User       string              `gorm:"column:username" json:"user"`
	Server     string              `gorm:"column:server;serializer:nullzero" json:"server,omitempty"`
	SandboxID  string              `gorm:"column:sandbox_id;serializer:nullzero" json:"sandbox_id,omitempty"`
	State      anyops.ConsoleState `gorm:"column:state" json:"state"`
	WorkflowID string              `gorm:"column:workflow_id" json:"workflow_id"`
	ExpiresAt  *time.Time          `gorm:"column:expires_at" json:"expires_at,omitempty"`
	CreatedAt  time.Time           `gorm:"column:created_at" json:"created_at"`
	UpdatedAt  time.Time           `gorm:"column:updated_at" json:"updated_at"`
}

// TableName methods pin the table names of the migrations instead of GORM's pluralisation.
func (Zone) TableName() string          { return "zones" }
func (Release) TableName() string       { return "releases" }
func (Cluster) TableName() string       { return "clusters" }
func (Server) TableName() string        { return "servers" }
func (Volume) TableName() string        { return "volumes" }
func (Replica) TableName() string       { return "replicas" }
func (Incident) TableName() string      { return "incidents" }
func (IncidentEvent) TableName() string { return "incident_events" }
func (AuditEvent) TableName() string    { return "audit_events" }
func (Image) TableName() string         { return "images" }
func (User) TableName() string          { return "users" }
func (Sandbox) TableName() string       { return "sandboxes" }
func (Console) TableName() string       { return "consoles" }
