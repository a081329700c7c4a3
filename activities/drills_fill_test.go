package activities

import (
	"context"
	"testing"

	"github.com/anyops/anyops"
)

// TestDrillFillVolumeWritesOnlyWhatIsMissing: a drill's fill step finds its volume by tag and
// leaves it holding the GiB asked for; carried out again (a retry after a lost answer) it
// writes nothing more, and a smaller fill after a bigger one writes nothing.
func TestDrillFillVolumeWritesOnlyWhatIsMissing(t *testing.T) {
	s := newSimCloud(t)
	v := call[Volume](t, s.e.env, s.cloud.CreateVolume, CreateVolumeInput{Step: "dropbox", Zone: zoneA, SizeGiB: 100, Tags: map[string]string{"Name": "drill-9-file/dropbox"}})
	endpoint := s.cloud.Clients.EC2.Options().BaseEndpoint
	d := &Drills{Clients: s.cloud.Clients, Sim: NewSimControl(*endpoint)}
	const gib = float64(1 << 30)
	for i, tc := range []struct {
		fill, want float64
	}{{5, 5}, {5, 5}, {2, 5}, {8, 8}} {
		got, err := d.FillVolume(context.Background(), anyops.DrillFill{VolumeID: "tag:Name=drill-9-file/dropbox", GiB: tc.fill})
		if err != nil {
			t.Fatal(err)
		}
		if w := float64(got.WrittenBytes) / gib; w < tc.want-0.01 || w > tc.want+0.01 || got.VolumeID != v.ID {
			t.Fatalf("fill %d of %g GiB: %s holds %.2f GiB, want %g on %s", i+1, tc.fill, got.VolumeID, w, tc.want, v.ID)
		}
	}
	if _, err := d.FillVolume(context.Background(), anyops.DrillFill{VolumeID: "tag:Name=no-such", GiB: 1}); err == nil {
		t.Fatal("a fill of no volume was accepted")
	}
}
