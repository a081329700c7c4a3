// Package workflows holds Anyops' Temporal workflows, one file per workflow, deterministic:
// every side effect is an activity, referred to by method value of a nil activities struct.
// kinds.go is the registry of operation kinds the API starts and the worker registers;
// status.go is the Status query every workflow answers.
package workflows

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"go.temporal.io/sdk/temporal"

	"github.com/anyops/anyops"
)

// Task queues. Workflows of a kind run on the kind's queue; every worker serves both, and a
// deployment may run workers dedicated to one (consoles scale with visitors, control does not).
const (
	TaskQueueControl  = "anyops-control"  // fleet operations: audits, failovers, migrations
	TaskQueueConsoles = "anyops-consoles" // console entity workflows
)

// Search attribute keys (keyword) that workflows upsert so ops can filter in the Temporal UI.
// Their names are those the dev server is started with (internal/temporaldev).
var (
	SearchCluster  = temporal.NewSearchAttributeKeyKeyword("Cluster")
	SearchZone     = temporal.NewSearchAttributeKeyKeyword("Zone")
	SearchServer   = temporal.NewSearchAttributeKeyKeyword("Server")
	SearchIncident = temporal.NewSearchAttributeKeyKeyword("Incident")
	SearchConsole  = temporal.NewSearchAttributeKeyKeyword("Console")
)

// Kind is one kind of operation the API can start: POST /v1/operations/{kind}. The worker
// registers Workflow under WorkflowType on TaskQueue for every kind, so adding an operation is
// one entry in the kinds list below.
type Kind struct {
	Name         string // the {kind} in the API path
	WorkflowType string
	TaskQueue    string
	Description  string
	// Workflow is the workflow function.
	Workflow any
	// ExecutionTimeout bounds the whole workflow; zero means unbounded (entity workflows).
	ExecutionTimeout time.Duration

	prepare func(body []byte, actor string) (Start, error)
}

// Start is what it takes to start one workflow of a kind.
type Start struct {
	// ID is the business key: a second start while one with this ID runs joins it.
	ID               string
	Input            any
	SearchAttributes temporal.SearchAttributes
}

// Prepare decodes and validates a request body for the kind (strictly: unknown fields are an
// error) and returns the start it asks for. actor is who asks, as the API authenticated them.
// Errors are *anyops.Error with code EINVALID.
func (k Kind) Prepare(body []byte, actor string) (Start, error) { return k.prepare(body, actor) }

// Spec describes a kind whose workflow takes input In.
type Spec[In any] struct {
	Name, WorkflowType, TaskQueue, Description string
	Workflow                                   any
	ExecutionTimeout                           time.Duration
	// Prepare validates the decoded input, completes it with what only the server knows (the
	// actor), and returns the business-key workflow ID and the search attributes to start with.
	Prepare func(in *In, actor string) (id string, attrs temporal.SearchAttributes, err error)
}

// Define turns a typed Spec into a Kind.
func Define[In any](s Spec[In]) Kind {
	return Kind{
		Name: s.Name, WorkflowType: s.WorkflowType, TaskQueue: s.TaskQueue, Description: s.Description,
		Workflow: s.Workflow, ExecutionTimeout: s.ExecutionTimeout,
		prepare: func(body []byte, actor string) (Start, error) {
			var in In
			if err := DecodeStrict(body, &in); err != nil {
				return Start{}, err
			}
			id, attrs, err := s.Prepare(&in, actor)
			if err != nil {
				return Start{}, err
			}
			return Start{ID: id, Input: in, SearchAttributes: attrs}, nil
		},
	}
}

// kinds is the registry of operations. Add a kind here.
var kinds = []Kind{
	Define(Spec[FleetAuditInput]{
		Name:             KindFleetAudit,
		WorkflowType:     "FleetAudit",
		TaskQueue:        TaskQueueControl,
		Description:      "Count the fleet from the inventory (servers by role and zone, volumes by kind, replicas by state) and record an audit event.",
		Workflow:         FleetAudit,
		ExecutionTimeout: 30 * time.Minute,
		Prepare:          prepareFleetAudit,
	}),
	Define(Spec[FleetSyncInput]{
		Name:             KindFleetSync,
		WorkflowType:     "FleetSync",
		TaskQueue:        TaskQueueControl,
		Description:      "Reconcile the inventory with the cloud (instances, volumes, status checks, DRBD) and record each drift as an audit event.",
		Workflow:         FleetSync,
		ExecutionTimeout: 30 * time.Minute,
		Prepare:          prepareFleetSync,
	}),
	Define(Spec[DemoFleetInput]{
		Name:             KindDemoFleet,
		WorkflowType:     "DemoFleet",
		TaskQueue:        TaskQueueControl,
		Description:      "Build the demo fleet in the cloud: instances, volumes and DRBD pairs, idempotently.",
		Workflow:         DemoFleet,
		ExecutionTimeout: 6 * time.Hour,
		Prepare:          prepareDemoFleet,
	}),
	Define(Spec[FleetPatchInput]{
		Name:             KindPatch,
		WorkflowType:     "FleetPatch",
		TaskQueue:        TaskQueueControl,
		Description:      "Patch the fleet for an advisory (id patch/<advisory>): check, upgrade, restart each role's service drained, verify with the active check, canary first, rate-controlled; then rotate the platform's certificate and tell custom-domain owners.",
		Workflow:         FleetPatch,
		ExecutionTimeout: 7 * 24 * time.Hour,
		Prepare:          preparePatch,
	}),
	Define(Spec[FailoverInput]{
		Name:             KindFailover,
		WorkflowType:     FailoverWorkflowType,
		TaskQueue:        TaskQueueControl,
		Description:      "Fail a file server over: promote its hot backup, repair it, or replace it, whichever serves first; fence the old primary, switch the clients, restore a hot backup.",
		Workflow:         FileServerFailover,
		ExecutionTimeout: 7 * 24 * time.Hour,
		Prepare:          prepareFailover,
	}),
	Define(Spec[BackupRebuildInput]{
		Name:             KindBackupRebuild,
		WorkflowType:     BackupRebuildWorkflowType,
		TaskQueue:        TaskQueueControl,
		Description:      "Replace a failed backup server by a new one, seeded from a snapshot of the file server's volumes or resynced, until every resource is UpToDate.",
		Workflow:         BackupRebuild,
		ExecutionTimeout: 7 * 24 * time.Hour,
		Prepare:          prepareBackupRebuild,
	}),
	Define(Spec[ServerReplaceInput]{
		Name:             KindServerReplace,
		WorkflowType:     ServerReplaceWorkflowType,
		TaskQueue:        TaskQueueControl,
		Description:      "Replace a failed web, console or task server by a new one of its role; a console host's consoles are moved or marked lost.",
		Workflow:         ServerReplace,
		ExecutionTimeout: 24 * time.Hour,
		Prepare:          prepareServerReplace,
	}),
	Define(Spec[StorageChangeInput]{
		Name:             KindStorageChange,
		WorkflowType:     StorageChangeWorkflowType,
		TaskQueue:        TaskQueueControl,
		Description:      "Change a backup's (or, in place, a file server's) DRBD volumes — type, size, IOPS, throughput, zone — never leaving the file server without a hot copy: Elastic Volumes in place where AWS allows it, else a new backup seeded from snapshots that resyncs only the delta before the old one leaves.",
		Workflow:         StorageChange,
		ExecutionTimeout: 7 * 24 * time.Hour,
		Prepare:          prepareStorageChange,
	}),
	Define(Spec[ReleaseInput]{
		Name:             KindRelease,
		WorkflowType:     ReleaseWorkflowType,
		TaskQueue:        TaskQueueControl,
		Description:      "Release a cluster: a new cluster built beside the live one (in its zone or another: a zone move) takes over its data. Plans every attached volume first (dry_run returns the plan), pre-stages, waits for the approval of the plan's hash, cuts over behind the no-copy-in-target interlock, rolls back on failed health checks, moves deferrable volumes after, keeps the old cluster as a standby for the retention period.",
		Workflow:         Release,
		ExecutionTimeout: 30 * 24 * time.Hour,
		Prepare:          prepareRelease,
	}),
	Define(Spec[NFSWatchInput]{
		Name:         KindNFSWatch,
		WorkflowType: NFSWatchWorkflowType,
		TaskQueue:    TaskQueueControl,
		Description:  "Watch a file server's NFS service: its clients write to their mounts every interval; failed rounds in a row raise a probe alarm through the alarm intake. Ends when the server is no longer a running file server; fleet-sync starts one per file server.",
		Workflow:     NFSWatch,
		Prepare:      prepareNFSWatch,
	}),
}

// setRequestedBy fills an input's RequestedBy with the authenticated actor; a request body
// that sets it itself is rejected. (An input rejected later is discarded whole.)
func setRequestedBy(field *string, actor string) error {
	if *field != "" {
		return anyops.Errorf(anyops.EINVALID, "requested_by is set by the server, not the request")
	}
	*field = actor
	return nil
}

// Kinds returns every registered kind, in registration order.
func Kinds() []Kind { return append([]Kind(nil), kinds...) }

// LookupKind returns the kind named name.
func LookupKind(name string) (Kind, bool) {
	for _, k := range kinds {
		if k.Name == name {
			return k, true
		}
	}
	return Kind{}, false
}

// KindOfWorkflowType returns the kind whose workflow type is t.
func KindOfWorkflowType(t string) (Kind, bool) {
	for _, k := range kinds {
		if k.WorkflowType == t {
			return k, true
		}
	}
	return Kind{}, false
}

// KindNames lists the names of every kind, for error messages and documentation.
func KindNames() []string {
	names := make([]string, len(kinds))
	for i, k := range kinds {
		names[i] = k.Name
	}
	return names
}

// DecodeStrict decodes one JSON value from body into v, rejecting unknown fields and trailing
// data. An empty body decodes as {}. Errors are *anyops.Error with code EINVALID and a message
// that names the problem.
func DecodeStrict(body []byte, v any) error {
	if len(bytes.Trim(body, jsonWhitespace)) == 0 {
		body = []byte("{}")
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return anyops.Errorf(anyops.EINVALID, "invalid JSON body: %s", DescribeJSONError(err))
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return anyops.Errorf(anyops.EINVALID, "invalid JSON body: unexpected data after the JSON value")
	}
	return nil
}

// jsonWhitespace is what JSON counts as whitespace (RFC 8259); bytes.TrimSpace would also
// drop \f and \v and so accept bodies no JSON parser does.
const jsonWhitespace = " \t\r\n"

// DescribeJSONError words a JSON decoding error for a client, without Go type names.
func DescribeJSONError(err error) string {
	var syntax *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syntax):
		return fmt.Sprintf("malformed JSON at byte %d", syntax.Offset)
	case errors.As(err, &typ):
		if typ.Field == "" {
			return fmt.Sprintf("expected a JSON object, got %s", typ.Value)
		}
		return fmt.Sprintf("field %q: got %s, expected %s", typ.Field, typ.Value, jsonTypeName(typ.Type.Kind().String()))
	case errors.Is(err, io.ErrUnexpectedEOF):
		return "truncated JSON"
	}
	return strings.TrimPrefix(err.Error(), "json: ")
}

func jsonTypeName(goKind string) string {
	switch {
	case goKind == "string":
		return "a string"
	case goKind == "bool":
		return "a boolean"
	case strings.HasPrefix(goKind, "int"), strings.HasPrefix(goKind, "uint"), strings.HasPrefix(goKind, "float"):
		return "a number"
	case goKind == "slice" || goKind == "array":
		return "an array"
	}
	return "an object"
}
