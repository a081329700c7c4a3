package anyops

import (
	"fmt"
	"slices"
)

// VolumeType is an EBS volume type.
type VolumeType string

const (
	VolumeStandard VolumeType = "standard" // previous-generation magnetic
	VolumeGP2      VolumeType = "gp2"
	VolumeGP3      VolumeType = "gp3"
	VolumeIO1      VolumeType = "io1"
	VolumeIO2      VolumeType = "io2"
	VolumeST1      VolumeType = "st1"
	VolumeSC1      VolumeType = "sc1"
)

// VolumeTypes lists every VolumeType.
var VolumeTypes = []VolumeType{VolumeStandard, VolumeGP2, VolumeGP3, VolumeIO1, VolumeIO2, VolumeST1, VolumeSC1}

// VolumeTypeSpec is what AWS documents of a volume type (2026): the sizes it takes, the IOPS
// that can be provisioned and the most per GiB (0: the type takes no Iops), and whether
// Elastic Volumes (ModifyVolume) can change it or change a volume to it — the
// previous-generation magnetic type they cannot: snapshot it and create a volume of the new
// type from the snapshot.
type VolumeTypeSpec struct {
	MinSize, MaxSize             int32
	MinIops, MaxIops, IopsPerGiB int32
	Modifiable                   bool
}

// VolumeTypeSpecs holds the spec of every VolumeType.
var VolumeTypeSpecs = map[VolumeType]VolumeTypeSpec{
	VolumeStandard: {MinSize: 1, MaxSize: 1024},
	VolumeGP2:      {MinSize: 1, MaxSize: 16384, Modifiable: true},
	VolumeGP3:      {MinSize: 1, MaxSize: 65536, MinIops: 3000, MaxIops: 80000, IopsPerGiB: 500, Modifiable: true},
	VolumeIO1:      {MinSize: 4, MaxSize: 16384, MinIops: 100, MaxIops: 64000, IopsPerGiB: 50, Modifiable: true},
	VolumeIO2:      {MinSize: 4, MaxSize: 65536, MinIops: 100, MaxIops: 256000, IopsPerGiB: 1000, Modifiable: true},
	VolumeST1:      {MinSize: 125, MaxSize: 16384, Modifiable: true},
	VolumeSC1:      {MinSize: 125, MaxSize: 16384, Modifiable: true},
}

// gp3's throughput: 125 MiB/s baseline, up to 2000 MiB/s.
const (
	GP3BaseThroughput = 125
	GP3MaxThroughput  = 2000
)

// ModificationsPerDay is how many modifications Elastic Volumes allow a volume in a rolling
// 24 hours, each after the previous one completed.
const ModificationsPerDay = 4

// DefaultVolumeIops is the IOPS a volume of the type gets when none is asked for: gp3's, io1's
// and io2's 3000; gp2's 3 per GiB (at least 100, at most 16000), which it reports but does not
// take; none for the others.
func DefaultVolumeIops(t VolumeType, sizeGiB int32) int32 {
	switch t {
	case VolumeGP3, VolumeIO1, VolumeIO2:
		return 3000
	case VolumeGP2:
		return min(max(3*sizeGiB, 100), 16000)
	}
	return 0
}

// VolumeThroughput is what a volume of this type, size, IOPS and (gp3) provisioned throughput
// delivers to a long sequential read or write, in bytes per second, by AWS's published
// figures: magnetic 40 MiB/s (the low end of its 40–90); gp2 256 KiB per IOPS at 3 IOPS per
// GiB, 128 to 250 MiB/s; gp3 what is provisioned (125 MiB/s baseline); io1 and io2 256 KiB
// per IOPS up to 1000 and 4000 MiB/s; st1 and sc1 their baselines of 40 and 12 MiB/s per TiB,
// up to 500 and 192 MiB/s. It is what a snapshot of the volume, a DRBD resync to or from it or
// a read of it can run at.
func VolumeThroughput(t VolumeType, sizeGiB, iops, throughputMiBps int32) float64 {
	const mib = 1 << 20
	perTiB := func(rate, most float64) float64 { return min(rate*float64(sizeGiB)/1024, most) * mib }
	switch t {
	case VolumeStandard:
		return 40 * mib
	case VolumeGP2:
		return min(max(float64(DefaultVolumeIops(VolumeGP2, sizeGiB))/4, 128), 250) * mib
	case VolumeGP3:
		return float64(max(throughputMiBps, GP3BaseThroughput)) * mib
	case VolumeIO1:
		return min(float64(iops)/4, 1000) * mib
	case VolumeIO2:
		return min(float64(iops)/4, 4000) * mib
	case VolumeST1:
		return perTiB(40, 500)
	case VolumeSC1:
		return perTiB(12, 192)
	}
	return 40 * mib
}

// VolumeSpec is a volume's configuration: type, size and, where the type takes them, IOPS and
// throughput (0: the type's default).
type VolumeSpec struct {
	Type       VolumeType `json:"type"`
	SizeGiB    int32      `json:"size_gib"`
	Iops       int32      `json:"iops,omitempty"`
	Throughput int32      `json:"throughput,omitempty"` // MiB/s, gp3 only
}

// Check says why the spec is not one AWS takes, or nil.
func (v VolumeSpec) Check() error {
	t, ok := VolumeTypeSpecs[v.Type]
	if !ok {
		return Errorf(EINVALID, "volume type %q is not one of %v", v.Type, VolumeTypes)
	}
	if v.SizeGiB < t.MinSize || v.SizeGiB > t.MaxSize {
		return Errorf(EINVALID, "a %s volume has %d to %d GiB, not %d", v.Type, t.MinSize, t.MaxSize, v.SizeGiB)
	}
	if v.Iops != 0 && (t.MaxIops == 0 || v.Iops < t.MinIops || v.Iops > t.MaxIops) {
		if t.MaxIops == 0 {
			return Errorf(EINVALID, "IOPS cannot be set on a %s volume", v.Type)
		}
		return Errorf(EINVALID, "a %s volume takes %d to %d IOPS, not %d", v.Type, t.MinIops, t.MaxIops, v.Iops)
	}
	if v.Iops > 3000 && v.Iops > t.IopsPerGiB*v.SizeGiB {
		return Errorf(EINVALID, "%d IOPS on %d GiB is more than the %d per GiB a %s volume takes", v.Iops, v.SizeGiB, t.IopsPerGiB, v.Type)
	}
	if v.Throughput != 0 && (v.Type != VolumeGP3 || v.Throughput < GP3BaseThroughput || v.Throughput > GP3MaxThroughput) {
		return Errorf(EINVALID, "throughput is set only on gp3 volumes, %d to %d MiB/s", GP3BaseThroughput, GP3MaxThroughput)
	}
	return nil
}

// InPlace says whether Elastic Volumes can turn a volume of spec from into spec to while it
// stays attached (ModifyVolume), and if not why: a magnetic volume on either side, a smaller
// size. (The rolling limit of ModificationsPerDay is the cloud's to say, at the time.)
func InPlace(from, to VolumeSpec) (bool, string) {
	switch {
	case !VolumeTypeSpecs[from.Type].Modifiable:
		return false, fmt.Sprintf("a %s (magnetic) volume cannot be modified", from.Type)
	case !VolumeTypeSpecs[to.Type].Modifiable:
		return false, fmt.Sprintf("no volume can be modified to %s (magnetic)", to.Type)
	case to.SizeGiB < from.SizeGiB:
		return false, fmt.Sprintf("a volume only grows (%d GiB to %d GiB)", from.SizeGiB, to.SizeGiB)
	}
	return true, ""
}

// ParseVolumeType validates a volume type.
func ParseVolumeType(s string) (VolumeType, error) {
	if slices.Contains(VolumeTypes, VolumeType(s)) {
		return VolumeType(s), nil
	}
	return "", Errorf(EINVALID, "volume type %q is not one of %v", s, VolumeTypes)
}
