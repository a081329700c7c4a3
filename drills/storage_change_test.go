package drills

import (
	"encoding/json"
	"testing"
	"time"
)

// TestStorageChangeReport proves change_no_hot_backup_seconds counts only the change (from
// arming to the change's end, or the origin while it still runs) and only the time a resource
// had no hot copy: a change that keeps the pair in sync scores 0; the July 2014 change (the
// backup's disks made anew, disconnected and resyncing from 30 s before the failure) scores the
// 30 s to the origin; a disconnect after the change ended is not the change's. The change's
// way, new backup and duration (simulated: 12 real seconds at speed 10) come from its run.
func TestStorageChangeReport(t *testing.T) {
	real0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC) // the clock's anchor: sim t0
	change := func(closedAt *time.Time, result string) Run {
		return Run{WorkflowID: "storage-change/drill-1-backup", Type: "StorageChange", State: "Completed", Started: real0.Add(-6 * time.Second),
			Closed: closedAt, Result: json.RawMessage(result)}
	}
	in := func(l *log, op Run) ReportInput {
		r := input(l, time.Hour)
		r.Scenario, r.Operations = "storage-change-then-failure", []Run{op}
		r.Kinds = map[string]string{"StorageChange": kindStorageChange}
		r.Goals = map[string]float64{"change_no_hot_backup_seconds": 0}
		return r
	}
	july := func() *log {
		l := built()
		l.drbd(-30*time.Second, "disconnected", "i-b", "drill-1-r0", "lost its peer").drbd(-30*time.Second, "disconnected", "i-f", "drill-1-r0", "lost its peer")
		l.drbd(-30*time.Second, "create-md", "i-b", "drill-1-r0", "meta data created")
		return l
	}
	done := real0.Add(6 * time.Second) // sim t0+1m: after the origin
	early := real0.Add(-4 * time.Second)
	result := `{"way":"seed","new_server":"drill-1-backup-ab12","file_server":"drill-1-file","volumes":{}}`
	for _, c := range []struct {
		name     string
		log      *log
		op       Run
		want     float64
		wantSecs any
	}{
		{"hot throughout", built(), change(nil, ""), 0, nil},
		{"july: resyncing before the failure", july(), change(&done, result), 30, 120.0},
		{"cold only after the change ended", july(), change(&early, result), 0, 20.0},
	} {
		t.Run(c.name, func(t *testing.T) {
			r, err := Compute(in(c.log, c.op))
			if err != nil {
				t.Fatal(err)
			}
			if got := r.Extra["change_no_hot_backup_seconds"]; got != c.want {
				t.Errorf("change_no_hot_backup_seconds = %v, want %v", got, c.want)
			}
			if got := r.Extra["change_seconds"]; got != c.wantSecs {
				t.Errorf("change_seconds = %v, want %v", got, c.wantSecs)
			}
			if met := r.Goals["change_no_hot_backup_seconds"].Met; met != (c.want == 0) {
				t.Errorf("goal met %v at %v", met, c.want)
			}
			if c.op.Result != nil && len(c.op.Result) > 0 && (r.Extra["change_way"] != "seed" || r.Extra["change_new_backup"] != "drill-1-backup-ab12") {
				t.Errorf("way %v, new backup %v", r.Extra["change_way"], r.Extra["change_new_backup"])
			}
		})
	}
	if _, err := storageChangeReport(input(built(), time.Hour), Report{}); err == nil {
		t.Error("a drill that started no storage change reported its keys")
	}
}

// TestConnectedOnceConnectsBothSides: cloudsim tells a DRBD connection once, on the side that
// made it (the build's log above has it on both); the pair is hot from then, so a drill that
// breaks nothing before its origin has no time without a hot copy there.
func TestConnectedOnceConnectsBothSides(t *testing.T) {
	l := &log{}
	l.drbd(-20*time.Minute, "create-md", "i-b", "drill-1-r0", "meta data created").drbd(-20*time.Minute, "create-md", "i-f", "drill-1-r0", "meta data created")
	l.drbd(-20*time.Minute, "up", "i-b", "drill-1-r0", "up on ip-b (disk Inconsistent)")
	l.drbd(-19*time.Minute, "up", "i-f", "drill-1-r0", "up on ip-f (disk Inconsistent)")
	l.drbd(-19*time.Minute, "connected", "i-f", "drill-1-r0", "on ip-f connected to ip-b")
	l.drbd(-18*time.Minute, "new-current-uuid", "i-f", "drill-1-r0", "on ip-f and its peer UpToDate without an initial sync")
	l.drbd(-18*time.Minute, "primary", "i-f", "drill-1-r0", "is Primary on ip-f (force=false)")
	r, err := Compute(input(l, time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	if r.NoHotBackupSeconds != 0 || !r.HotBackupAtEnd {
		t.Errorf("no_hot_backup_seconds %v, hot at end %v: want 0 and hot", r.NoHotBackupSeconds, r.HotBackupAtEnd)
	}
}
