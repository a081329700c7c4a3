package drills

import (
	"slices"
	"testing"
	"time"

	"github.com/anyops/anyops"
)

// storageChangeCluster is drill-1 with a new backup i-n being built beside the old one, i-b:
// three nodes of one resource, in a mesh.
func storageChangeCluster() []Resource {
	return append(cluster(),
		Resource{ID: "i-n", Type: "instance", State: "running", Tags: map[string]string{"Name": "drill-1-backup2", anyops.TagCluster: "drill-1", anyops.TagRole: string(anyops.RoleBackup)}},
		Resource{ID: "vol-n0", Type: "volume", State: "in-use", Tags: map[string]string{"Name": "drill-1-backup2/home0", anyops.TagCluster: "drill-1", anyops.TagDRBDResource: "drill-1-r0"}})
}

// link logs a drbd.* event about inst's connection to peer, with the peer structured as
// cloudsim logs it.
func (l *log) link(offset time.Duration, typ, inst, peer string) *log {
	return l.at(offset, "drbd."+typ, inst, "drbd drill-1-r0 on "+inst+" "+typ+" "+peer, map[string]any{"resource": "drill-1-r0", "peer": peer})
}

// pairedLog is the file server and the old backup in sync, with their connection logged with
// its peer, and the new backup's disk up (seeded from a snapshot, Inconsistent until synced).
func pairedLog() *log {
	l := &log{}
	for _, i := range []string{"i-f", "i-b"} {
		l.drbd(-20*time.Minute, "create-md", i, "drill-1-r0", "meta data created")
		l.drbd(-20*time.Minute, "up", i, "drill-1-r0", "up on "+i)
	}
	l.link(-19*time.Minute, "connected", "i-f", "i-b")
	l.drbd(-19*time.Minute, "new-current-uuid", "i-f", "drill-1-r0", "UpToDate without an initial sync")
	l.drbd(-19*time.Minute, "primary", "i-f", "drill-1-r0", "is Primary on ip-f (force=false)")
	l.drbd(0, "create-md", "i-n", "drill-1-r0", "meta data created").drbd(0, "up", "i-n", "drill-1-r0", "up on i-n")
	return l
}

// TestNoHotCopies proves the replay behind "never zero hot copies during a storage change"
// and change_no_hot_backup_seconds, on hand-built event logs of a three-node change: a change
// that syncs the new backup before the old one leaves has no gap; one that takes the old
// backup out first has the gap until the new one is UpToDate, also when both happen in the
// same instant in the wrong order; a connection the old backup loses to the new one (not to
// the Primary) is no gap, which needs the events' peers; an audited override of the
// no-uptodate-peer interlock allows a gap.
func TestNoHotCopies(t *testing.T) {
	newSynced := func(l *log, at time.Duration) *log {
		return l.link(at-20*time.Second, "connected", "i-n", "i-f").link(at-20*time.Second, "resync-started", "i-n", "i-f").link(at, "synced", "i-n", "i-f")
	}
	oldLeaves := func(l *log, at time.Duration) *log {
		l.link(at, "disconnected", "i-f", "i-b").link(at, "disconnected", "i-b", "i-f")
		return l.drbd(at, "down", "i-b", "drill-1-r0", "down on i-b").at(at, "instance.stopping", "i-b", "i-b stopping", nil)
	}
	from, to := t0.Add(-time.Minute), t0.Add(10*time.Minute)
	for _, c := range []struct {
		name      string
		log       *log
		overrides []Override
		want      []NoHotCopy
	}{
		{name: "done right: the new backup UpToDate before the old one leaves", log: oldLeaves(newSynced(pairedLog(), time.Minute), 2*time.Minute)},
		{name: "july 2014: the old backup out 30 s before the new one is UpToDate", log: newSynced(oldLeaves(pairedLog(), time.Minute), 90*time.Second),
			want: []NoHotCopy{{From: t0.Add(time.Minute), To: t0.Add(90 * time.Second), Resources: []string{"drill-1-r0"}}}},
		{name: "the old backup out in the instant before the new one is UpToDate", log: newSynced(oldLeaves(pairedLog(), time.Minute), time.Minute),
			want: []NoHotCopy{{From: t0.Add(time.Minute), To: t0.Add(time.Minute), Resources: []string{"drill-1-r0"}}}},
		{name: "the old backup loses the new one, not the Primary", log: newSynced(pairedLog().link(10*time.Second, "connected", "i-b", "i-n").link(20*time.Second, "disconnected", "i-b", "i-n"), time.Minute)},
		{name: "a gap under an audited override", log: newSynced(oldLeaves(pairedLog(), time.Minute), 90*time.Second),
			overrides: []Override{{Interlock: string(anyops.InterlockNoUpToDatePeer), Subject: "storage-change/drill-1-backup"}}},
	} {
		t.Run(c.name, func(t *testing.T) {
			got := NoHotCopies(c.log.events, storageChangeCluster(), "drill-1", from, to, c.overrides)
			if !slices.EqualFunc(got, c.want, func(a, b NoHotCopy) bool {
				return a.From.Equal(b.From) && a.To.Equal(b.To) && slices.Equal(a.Resources, b.Resources)
			}) {
				t.Errorf("NoHotCopies = %v, want %v", got, c.want)
			}
			// change_no_hot_backup_seconds is the same replay's sum.
			d := replayDRBD(c.log.events, clusterMembers(storageChangeCluster(), "drill-1"), from, to, nil)
			var sum time.Duration
			for _, g := range d.gaps {
				sum += g.To.Sub(g.From)
			}
			if d.noHotBackup != sum {
				t.Errorf("noHotBackup %s, its gaps sum to %s", d.noHotBackup, sum)
			}
		})
	}
}
