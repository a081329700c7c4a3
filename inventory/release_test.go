package inventory

import (
	"context"
	"testing"
	"time"

	"github.com/anyops/anyops"
)

// TestClassifyVolume: an operator's classification of a volume the fleet does not know is
// recorded with an audit event, replaced by a second one, and bad input changes nothing.
func TestClassifyVolume(t *testing.T) {
	forEachBackend(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		_, err := s.ClassifyVolume(ctx, VolumeClassification{VolumeID: "vol-0123", Kind: "scratch", Criticality: anyops.Critical, ClassifiedBy: "api:ops"})
		wantCode(t, err, anyops.EINVALID)
		_, err = s.ClassifyVolume(ctx, VolumeClassification{VolumeID: "vol-0123", Kind: anyops.VolumeLogs, Criticality: anyops.Critical})
		wantCode(t, err, anyops.EINVALID)
		if got, _ := s.Classifications(ctx, []string{"vol-0123"}); len(got) != 0 {
			t.Fatalf("refused input recorded %+v", got)
		}
		if _, err := s.ClassifyVolume(ctx, VolumeClassification{VolumeID: "vol-0123", Kind: anyops.VolumeLogs, Criticality: anyops.Critical, ClassifiedBy: "api:ops", Reason: "attached by hand in 2014"}); err != nil {
			t.Fatal(err)
		}
		if _, err := s.ClassifyVolume(ctx, VolumeClassification{VolumeID: "vol-0123", Kind: anyops.VolumeDropbox, Criticality: anyops.Deferrable, ClassifiedBy: "api:lead"}); err != nil {
			t.Fatal(err)
		}
		got, err := s.Classifications(ctx, []string{"vol-0123", "vol-other"})
		if err != nil || len(got) != 1 || got["vol-0123"].Kind != anyops.VolumeDropbox || got["vol-0123"].ClassifiedBy != "api:lead" {
			t.Fatalf("classifications: %+v %v", got, err)
		}
		events, _, err := s.ListAudit(ctx, Page{})
		if err != nil || len(events) != 2 || events[0].Action != "volume.classify" || events[0].Subject != "vol-0123" {
			t.Fatalf("audit: %+v %v", events, err)
		}
	})
}

// TestRecordSnapshotRates: a full snapshot measures the rate of the volume's snapshots, the
// incremental ones after it how fast its data changes; the same snapshot twice counts once.
func TestRecordSnapshotRates(t *testing.T) {
	forEachBackend(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		t0 := time.Date(2014, 7, 15, 9, 0, 0, 0, time.UTC)
		const mib = 1 << 20
		full := SnapshotSample{VolumeID: "vol-logs", SnapshotID: "snap-1", Started: t0, Completed: t0.Add(100 * time.Second), Full: true, FullBytes: 4000 * mib}
		for range 2 {
			r, err := s.RecordSnapshot(ctx, full)
			if err != nil || r.Snapshots != 1 || r.SnapshotBytesSec != 40*mib {
				t.Fatalf("after the full snapshot: %+v %v", r, err)
			}
		}
		// 50 s at 40 MiB/s = 2000 MiB changed in the 1000 s since the first started: 2 MiB/s.
		incr := SnapshotSample{VolumeID: "vol-logs", SnapshotID: "snap-2", Started: t0.Add(1000 * time.Second), Completed: t0.Add(1050 * time.Second)}
		r, err := s.RecordSnapshot(ctx, incr)
		if err != nil || r.Snapshots != 2 || r.ChangeBytesSec != 2*mib || r.LastSnapshotID != "snap-2" {
			t.Fatalf("after the incremental: %+v %v", r, err)
		}
		rates, err := s.VolumeRates(ctx, []string{"vol-logs"})
		if err != nil || rates["vol-logs"].ChangeBytesSec != 2*mib {
			t.Fatalf("rates: %+v %v", rates, err)
		}
		_, err = s.RecordSnapshot(ctx, SnapshotSample{VolumeID: "vol-logs", SnapshotID: "snap-3", Started: t0, Completed: t0})
		wantCode(t, err, anyops.EINVALID)
	})
}
