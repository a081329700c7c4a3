package anyops

import (
	"strings"
	"testing"
)

// TestVolumeThroughput pins each type's rate to AWS's published figures: what a snapshot, a
// resync or a read of a volume of that type runs at, for cloudsim and the release planner alike.
func TestVolumeThroughput(t *testing.T) {
	cases := []struct {
		vtype            VolumeType
		size, iops, tput int32
		wantMiBps        float64
	}{
		{VolumeStandard, 200, 0, 0, 40},
		{VolumeGP2, 100, 0, 0, 128}, // 300 IOPS × 256 KiB = 75, at least 128
		{VolumeGP2, 500, 0, 0, 250}, // 1500 IOPS × 256 KiB = 375, at most 250
		{VolumeGP3, 500, 3000, 0, 125},
		{VolumeGP3, 500, 16000, 1000, 1000},
		{VolumeIO1, 500, 2000, 0, 500},
		{VolumeIO1, 500, 64000, 0, 1000},
		{VolumeIO2, 4000, 64000, 0, 4000},
		{VolumeST1, 2048, 0, 0, 80},  // 40 MiB/s per TiB
		{VolumeSC1, 125, 0, 0, 1.46}, // 12 MiB/s per TiB: under 1% of 100 GiB in 10 minutes
		{VolumeST1, 16384, 0, 0, 500},
	}
	for _, c := range cases {
		got := VolumeThroughput(c.vtype, c.size, c.iops, c.tput) / (1 << 20)
		if got < c.wantMiBps-0.01 || got > c.wantMiBps+0.01 {
			t.Errorf("%s %d GiB %d IOPS %d MiB/s: %.2f MiB/s, want %.2f", c.vtype, c.size, c.iops, c.tput, got, c.wantMiBps)
		}
	}
}

// TestVolumeSpecAndInPlace: the checks a storage change makes before it asks the cloud, by
// AWS's rules — what a type takes, and what Elastic Volumes can do in place.
func TestVolumeSpecAndInPlace(t *testing.T) {
	bad := []struct {
		spec VolumeSpec
		want string
	}{
		{VolumeSpec{Type: "ssd", SizeGiB: 10}, "not one of"},
		{VolumeSpec{Type: VolumeStandard, SizeGiB: 2000}, "1 to 1024 GiB"},
		{VolumeSpec{Type: VolumeSC1, SizeGiB: 100}, "125 to 16384 GiB"},
		{VolumeSpec{Type: VolumeGP2, SizeGiB: 100, Iops: 3000}, "IOPS cannot be set"},
		{VolumeSpec{Type: VolumeIO1, SizeGiB: 10, Iops: 5000}, "per GiB"},
		{VolumeSpec{Type: VolumeIO1, SizeGiB: 500, Throughput: 500}, "only on gp3"},
	}
	for _, c := range bad {
		if err := c.spec.Check(); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%+v: %v, want an error saying %q", c.spec, err, c.want)
		}
	}
	if err := (VolumeSpec{Type: VolumeGP3, SizeGiB: 500, Iops: 6000, Throughput: 500}).Check(); err != nil {
		t.Errorf("a valid gp3 spec: %v", err)
	}
	inPlace := []struct {
		from, to VolumeSpec
		ok       bool
	}{
		{VolumeSpec{Type: VolumeGP2, SizeGiB: 500}, VolumeSpec{Type: VolumeGP3, SizeGiB: 500}, true},
		{VolumeSpec{Type: VolumeGP2, SizeGiB: 500}, VolumeSpec{Type: VolumeGP2, SizeGiB: 600}, true},
		{VolumeSpec{Type: VolumeStandard, SizeGiB: 500}, VolumeSpec{Type: VolumeGP3, SizeGiB: 500}, false}, // July 2014: magnetic to SSD
		{VolumeSpec{Type: VolumeGP3, SizeGiB: 500}, VolumeSpec{Type: VolumeStandard, SizeGiB: 500}, false},
		{VolumeSpec{Type: VolumeGP3, SizeGiB: 500}, VolumeSpec{Type: VolumeGP3, SizeGiB: 400}, false},
	}
	for _, c := range inPlace {
		if ok, why := InPlace(c.from, c.to); ok != c.ok || ok == (why != "") {
			t.Errorf("%+v → %+v: in place %v (%q), want %v", c.from, c.to, ok, why, c.ok)
		}
	}
}
