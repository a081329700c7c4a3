package testenv

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	historypb "go.temporal.io/api/history/v1"
	"go.temporal.io/sdk/client"
	"google.golang.org/protobuf/encoding/protojson"
)

// RecordHistoriesEnv, set to 1 (`make record-histories`), makes RecordHistory write the
// histories of the workflows the tests run into HistoriesDir, for the replay tests.
const RecordHistoriesEnv = "ANYOPS_RECORD_HISTORIES"

// Recording says whether this run records workflow histories.
func Recording() bool { return os.Getenv(RecordHistoriesEnv) == "1" }

// HistoriesDir is where recorded workflow histories live: workflows/testdata/histories, one
// JSON file per workflow and path, in the format of `temporal workflow show --output json`.
func HistoriesDir() string { return filepath.Join(RepoRoot(), "workflows", "testdata", "histories") }

// RecordHistory writes the full history of the latest run of workflowID, which must have
// closed, to HistoriesDir/name.json when Recording; otherwise it does nothing.
func RecordHistory(t testing.TB, tc client.Client, workflowID, name string) {
	t.Helper()
	if !Recording() {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	iter := tc.GetWorkflowHistory(ctx, workflowID, "", false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	history := &historypb.History{}
	for iter.HasNext() {
		event, err := iter.Next()
		if err != nil {
			t.Fatalf("record history of %s: %v", workflowID, err)
		}
		history.Events = append(history.Events, event)
	}
	if n := len(history.Events); n == 0 || !closing(history.Events[n-1].GetEventType()) {
		t.Fatalf("record history of %s: the workflow has not closed", workflowID)
	}
	data, err := protojson.MarshalOptions{Multiline: true, Indent: "  "}.Marshal(history)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(HistoriesDir(), 0o755); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(HistoriesDir(), name+".json")
	if err := os.WriteFile(path, append(data, '\n'), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("recorded %d events of %s in %s", len(history.Events), workflowID, path)
}

// closing says whether an event ends a run.
func closing(t enumspb.EventType) bool {
	switch t {
	case enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED, enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_FAILED,
		enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_CANCELED, enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_TERMINATED,
		enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_TIMED_OUT, enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_CONTINUED_AS_NEW:
		return true
	}
	return false
}
