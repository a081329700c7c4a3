package drills

import (
	"encoding/json"
	"fmt"
)

// The keys of storage-change-then-failure (docs/drills.md): the storage change's own figures
// — its way, its state, its duration in simulated time — and the time during the change (from
// arming to the change's end or the origin, whichever is first) that some resource of the
// file server had no hot copy: the July 2014 storage change left the backup resyncing from
// empty, a change done right leaves it hot throughout.
var storageChangeKeys = []string{"change_no_hot_backup_seconds", "change_seconds", "change_state", "change_way", "change_new_backup"}

var storageChangeNumeric = []string{"change_no_hot_backup_seconds", "change_seconds"}

// kindStorageChange is the operation kind of StorageChange (workflows.KindStorageChange).
const kindStorageChange = "storage-change"

func storageChangeReport(in ReportInput, _ Report) (map[string]any, error) {
	op, err := in.operationOf(kindStorageChange)
	if err != nil {
		return nil, err
	}
	out := map[string]any{"change_state": op.State, "change_way": "", "change_new_backup": "", "change_seconds": nil}
	end := in.Origin
	if op.Closed != nil {
		closed := in.Clock.ToSim(*op.Closed)
		out["change_seconds"] = round(closed.Sub(in.Clock.ToSim(op.Started)).Seconds())
		if closed.Before(end) {
			end = closed
		}
	}
	members := clusterMembers(in.Resources, in.Cluster)
	d := replayDRBD(in.Events, members, in.Armed, end, in.Overrides)
	out["change_no_hot_backup_seconds"] = round(d.noHotBackup.Seconds())
	if len(op.Result) > 0 && string(op.Result) != "null" {
		var res struct {
			Way       string `json:"way"`
			NewServer string `json:"new_server"`
		}
		if err := json.Unmarshal(op.Result, &res); err != nil {
			return nil, fmt.Errorf("the %s operation's result: %w", kindStorageChange, err)
		}
		out["change_way"], out["change_new_backup"] = res.Way, res.NewServer
	}
	return out, nil
}
