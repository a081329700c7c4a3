package workflows

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"github.com/anyops/anyops"
	"github.com/anyops/anyops/internal/temporaldev"
)

// TestDecodeStrict proves that request bodies are decoded strictly: anything but one JSON
// object of known fields is EINVALID, and an empty body is {}.
func TestDecodeStrict(t *testing.T) {
	type input struct {
		Reason string `json:"reason"`
		Count  int    `json:"count"`
	}
	tests := []struct {
		name, body string
		want       input
		wantErr    string // substring of the message; "" means success
	}{
		{"empty body is {}", "", input{}, ""},
		{"whitespace body is {}", " \n\t", input{}, ""},
		{"known fields", `{"reason":"why","count":2}`, input{Reason: "why", Count: 2}, ""},
		{"unknown field", `{"reasn":"typo"}`, input{}, `unknown field "reasn"`},
		{"malformed", `{"reason":`, input{}, "truncated JSON"},
		{"syntax error", `{"reason" "x"}`, input{}, "malformed JSON at byte"},
		{"wrong type", `{"count":"two"}`, input{}, `field "count": got string, expected a number`},
		{"array instead of object", `[1]`, input{}, "expected a JSON object, got array"},
		{"trailing data", `{} {}`, input{}, "unexpected data after the JSON value"},
		{"trailing garbage", `{}x`, input{}, "unexpected data after the JSON value"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got input
			err := DecodeStrict([]byte(tt.body), &got)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("DecodeStrict(%q) = %v, want success", tt.body, err)
				}
				if got != tt.want {
					t.Fatalf("DecodeStrict(%q) decoded %+v, want %+v", tt.body, got, tt.want)
				}
				return
			}
			if anyops.ErrorCode(err) != anyops.EINVALID || !strings.Contains(anyops.ErrorMessage(err), tt.wantErr) {
				t.Fatalf("DecodeStrict(%q) = %v, want EINVALID containing %q", tt.body, err, tt.wantErr)
			}
		})
	}
}

// prepareCase is one request body for a kind's Prepare and what it must give.
type prepareCase struct {
	name, body string
	wantErr    string         // a substring of the EINVALID message; "" means accepted
	wantInput  func(any) bool // for an accepted body, what else its input must hold; nil: nothing
}

// checkPrepare runs the cases through the kind's Prepare as actor "api:operator": an accepted
// body must start the kind's one workflow, wantID, with the actor as its requested_by; a
// refused one must be EINVALID and say why.
func checkPrepare(t *testing.T, kindName, wantID string, cases []prepareCase) {
	t.Helper()
	kind, ok := LookupKind(kindName)
	if !ok {
		t.Fatalf("%s is not registered", kindName)
	}
	for _, tt := range cases {
		t.Run(tt.name, func(t *testing.T) {
			start, err := kind.Prepare([]byte(tt.body), "api:operator")
			if tt.wantErr != "" {
				if anyops.ErrorCode(err) != anyops.EINVALID || !strings.Contains(anyops.ErrorMessage(err), tt.wantErr) {
					t.Fatalf("Prepare(%s) = %v, want EINVALID containing %q", tt.body, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("Prepare(%s) = %v, want it accepted", tt.body, err)
			}
			// requested_by is what the API and the workflow see of the actor, whatever the input type.
			var actor struct {
				RequestedBy string `json:"requested_by"`
			}
			if b, err := json.Marshal(start.Input); err != nil || json.Unmarshal(b, &actor) != nil {
				t.Fatalf("input %+v does not round-trip through JSON: %v", start.Input, err)
			}
			if start.ID != wantID || actor.RequestedBy != "api:operator" {
				t.Fatalf("Prepare(%s) = id %q input %+v, want id %q requested by api:operator", tt.body, start.ID, start.Input, wantID)
			}
			if tt.wantInput != nil && !tt.wantInput(start.Input) {
				t.Fatalf("Prepare(%s) gave input %+v", tt.body, start.Input)
			}
		})
	}
}

// TestFleetAuditPrepare proves the fleet-audit kind's input rules: the business key is always
// "fleet-audit", the actor comes from the server, and bad bodies are EINVALID.
func TestFleetAuditPrepare(t *testing.T) {
	reason := func(want string) func(any) bool {
		return func(in any) bool { return in.(FleetAuditInput).Reason == want }
	}
	checkPrepare(t, KindFleetAudit, FleetAuditWorkflowID, []prepareCase{
		{"empty body", "", "", reason("")},
		{"with reason", `{"reason":"weekly check"}`, "", reason("weekly check")},
		{"requested_by is the server's", `{"requested_by":"mallory"}`, "requested_by is set by the server", nil},
		{"reason too long", `{"reason":"` + strings.Repeat("x", maxReasonLen+1) + `"}`, "reason is longer than", nil},
		{"unknown field", `{"zone":"us-east-1a"}`, `unknown field "zone"`, nil},
	})
}

// TestKindRegistry proves the registry is consistent: names and workflow types are unique and
// resolvable both ways, every kind has a workflow, a known task queue and a prepare function.
func TestKindRegistry(t *testing.T) {
	names, types := map[string]bool{}, map[string]bool{}
	for _, k := range Kinds() {
		if names[k.Name] || types[k.WorkflowType] {
			t.Errorf("kind %q or workflow type %q registered twice", k.Name, k.WorkflowType)
		}
		names[k.Name], types[k.WorkflowType] = true, true
		if k.Workflow == nil || k.prepare == nil {
			t.Errorf("kind %q lacks a workflow or a prepare function", k.Name)
		}
		if k.TaskQueue != TaskQueueControl && k.TaskQueue != TaskQueueConsoles {
			t.Errorf("kind %q has unknown task queue %q", k.Name, k.TaskQueue)
		}
		if got, ok := KindOfWorkflowType(k.WorkflowType); !ok || got.Name != k.Name {
			t.Errorf("KindOfWorkflowType(%q) = %q, %v", k.WorkflowType, got.Name, ok)
		}
	}
	if _, ok := LookupKind("no-such-kind"); ok {
		t.Error("LookupKind found a kind that is not registered")
	}
	if !slices.Equal(KindNames(), slices.Collect(func(yield func(string) bool) {
		for _, k := range Kinds() {
			if !yield(k.Name) {
				return
			}
		}
	})) {
		t.Error("KindNames disagrees with Kinds")
	}
}

// TestSearchAttributesMatchDevServer proves the keys workflows upsert are the ones the dev
// server is started with: a key it does not know fails the upsert at run time.
func TestSearchAttributesMatchDevServer(t *testing.T) {
	var got []string
	for _, k := range []interface{ GetName() string }{SearchCluster, SearchZone, SearchServer, SearchIncident, SearchConsole} {
		got = append(got, k.GetName())
	}
	if !slices.Equal(got, temporaldev.SearchAttributes) {
		t.Fatalf("search attribute keys %v, dev server has %v", got, temporaldev.SearchAttributes)
	}
}
