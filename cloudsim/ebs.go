// EBS as a world model: what each volume type delivers (sizes, IOPS, throughput), what is
// written on a volume and what changed since its last snapshot (the write model of
// writes.go feeds it), how big and how long a snapshot is (the first is full, later ones
// incremental by changed blocks), and how a volume created from a snapshot loads its blocks
// lazily from S3 until it is hydrated. The wire protocol is in ec2_volumes.go and
// ec2_snapshots.go; docs/cloudsim.md documents every number here.

package cloudsim

import (
	"fmt"
	"math"
	"time"

	"github.com/anyops/anyops"
)

// The volume types, their sizes, IOPS and throughput are AWS's published figures, kept in the
// root package (anyops.VolumeTypeSpecs, anyops.VolumeThroughput) where the control plane reads
// them too.

func ebsType(vtype string) (anyops.VolumeTypeSpec, bool) {
	t, ok := anyops.VolumeTypeSpecs[anyops.VolumeType(vtype)]
	return t, ok
}

// Rates of the snapshot service and of lazy loading, cloudsim's own numbers (AWS does not
// publish them): a snapshot moves its blocks at the source volume's throughput up to
// snapshotMaxRate; a block of a volume restored from a snapshot that is read before it was
// loaded comes from S3 at lazyLoadRate, unless the volume was created with a provisioned
// initialization rate (VolumeInitializationRate, 100–300 MiB/s), which loads every block in
// the background at that rate.
const (
	snapshotMaxRate = 250 * mb
	lazyLoadRate    = 40 * mb
	minInitRate     = 100
	maxInitRate     = 300
	modsPerDay      = anyops.ModificationsPerDay
	fsckReadShare   = 0.01
)

func defaultIops(vtype string, size int32) int32 {
	return anyops.DefaultVolumeIops(anyops.VolumeType(vtype), size)
}

// checkVolumeSpec is AWS's validation of a volume's type, size, IOPS and throughput, shared by
// CreateVolume and ModifyVolume.
func checkVolumeSpec(vtype string, size, iops, throughput int32) *apiError {
	t, ok := ebsType(vtype)
	if !ok {
		return errInvalidParameter(fmt.Sprintf("Value (%s) for parameter volumeType is invalid. Valid values: standard, gp2, gp3, io1, io2, st1, sc1.", vtype))
	}
	if size < t.MinSize || size > t.MaxSize {
		return errInvalidParameter(fmt.Sprintf("Volume of %d GiB is out of range for %s volumes (%d-%d GiB).", size, vtype, t.MinSize, t.MaxSize))
	}
	if t.MaxIops == 0 {
		if iops != 0 && iops != defaultIops(vtype, size) {
			return errCode("InvalidParameterCombination", "The parameter iops is not supported for %s volumes.", vtype)
		}
	} else {
		if iops < t.MinIops || iops > t.MaxIops {
			return errInvalidParameter(fmt.Sprintf("Volume iops of %d is out of range for %s volumes (%d-%d).", iops, vtype, t.MinIops, t.MaxIops))
		}
		if vtype != "gp3" || iops > 3000 {
			if iops > t.IopsPerGiB*size {
				return errInvalidParameter(fmt.Sprintf("Iops to volume size ratio of %.1f is too high; maximum is %d.", float64(iops)/float64(size), t.IopsPerGiB))
			}
		}
	}
	if throughput != 0 {
		if vtype != "gp3" {
			return errCode("InvalidParameterCombination", "The parameter throughput is only supported for gp3 volumes.")
		}
		if throughput < anyops.GP3BaseThroughput || throughput > anyops.GP3MaxThroughput {
			return errInvalidParameter(fmt.Sprintf("Throughput of %d MiB/s is out of range (%d-%d).", throughput, anyops.GP3BaseThroughput, anyops.GP3MaxThroughput))
		}
		if float64(throughput) > 0.25*float64(iops) {
			return errInvalidParameter(fmt.Sprintf("Throughput of %d MiB/s is too high for %d IOPS; the maximum is 0.25 MiB/s per IOPS.", throughput, iops))
		}
	}
	return nil
}

func throughputOf(vtype string, size, iops, throughput int32) float64 {
	return anyops.VolumeThroughput(anyops.VolumeType(vtype), size, iops, throughput)
}

// throughput is what the volume delivers now. While a modification is being applied
// (modifying, optimizing) AWS guarantees only something between the old and the new
// configuration: the lower of the two.
func (s *Sim) throughput(v *volume) float64 {
	now := throughputOf(v.Type, v.SizeGiB, v.Iops, v.Throughput)
	if m := s.st.Mods[v.ID]; m != nil && m.State != "completed" {
		return min(now, throughputOf(m.OriginalType, m.OriginalSize, m.OriginalIops, m.OriginalThroughput))
	}
	return now
}

// written records bytes the platform wrote on a volume: its written blocks grow (up to its
// size) and so do the blocks changed since its last snapshot. A write lands on a block,
// loaded or not: a block written whole needs nothing from S3.
func (v *volume) written(bytes float64) {
	v.readAll(bytes) // as many blocks still in S3 as a read would have loaded are written over
	size := float64(v.SizeGiB) * gib
	v.Written = min(v.Written+bytes, size)
	v.Changed = min(v.Changed+bytes, size)
}

// snapshotBytes is what a snapshot taken now moves: every written block the first time, the
// blocks changed since the previous snapshot of the chain after that.
func (v *volume) snapshotBytes() (bytes float64, full bool) {
	if v.LastSnapshot == "" {
		return v.Written, true
	}
	return v.Changed, false
}

// readRate is the rate at which a full read of the volume runs now (a snapshot's reads, a
// DRBD resync or online verify from it): its throughput for loaded blocks, lazyLoadRate for
// blocks still in S3, blended by how much of its data is still to load.
func (s *Sim) readRate(v *volume) float64 {
	tp := s.throughput(v)
	if v.Unhydrated <= 0 || v.Written <= 0 {
		return tp
	}
	f := min(v.Unhydrated/v.Written, 1)
	fetch := min(max(lazyLoadRate, v.InitRate), tp)
	return 1 / ((1-f)/tp + f/fetch)
}

// readAll records a full read of bytes of the volume's data: the blocks read from S3 on the
// way are loaded now.
func (v *volume) readAll(bytes float64) {
	if v.Unhydrated <= 0 || v.Written <= 0 {
		return
	}
	v.Unhydrated = max(v.Unhydrated-bytes*min(v.Unhydrated/v.Written, 1), 0)
}

// readTime is how long reading bytes of the volume's data takes now, at readRate.
func (s *Sim) readTime(v *volume, bytes float64) time.Duration {
	rate := s.readRate(v)
	if rate <= 0 || bytes <= 0 {
		return 0
	}
	return time.Duration(bytes / rate * float64(time.Second))
}

// advanceEBS moves the volumes' background work from from to to: a provisioned
// initialization loads blocks at its rate until the volume is hydrated.
func (s *Sim) advanceEBS(from, to time.Time) {
	dt := to.Sub(from).Seconds()
	if dt <= 0 {
		return
	}
	for _, id := range sortedKeys(s.st.Volumes) {
		v := s.st.Volumes[id]
		if v.Unhydrated <= 0 || v.InitRate <= 0 || v.State == "creating" {
			continue
		}
		left := v.Unhydrated - v.InitRate*dt
		if left <= 0 {
			at := to.Add(-time.Duration(-left / v.InitRate * float64(time.Second))).Truncate(time.Millisecond)
			v.Unhydrated = 0
			s.event(at, "volume.initialized", v.ID, "volume %s initialized: every block of snapshot %s loaded", v.ID, v.SnapshotID)
		} else {
			v.Unhydrated = left
		}
		s.markDirty()
	}
}

// restoreFromSnapshot gives a new volume what its snapshot holds: its content, its written
// blocks — all of them still in S3 until read or initialized — and the snapshot chain, so
// that a snapshot of the new volume is incremental to it, as EBS makes it.
func (v *volume) restoreFromSnapshot(sn *snapshot, initRate float64) {
	v.Data = sn.Data.clone()
	v.Written = min(sn.FullBytes, float64(v.SizeGiB)*gib)
	v.Unhydrated = v.Written
	v.InitRate = initRate
	v.LastSnapshot = sn.ID
}

// modsInWindow counts the modifications of a volume started in the 24 hours before now, and
// says when the oldest of them leaves that window.
func (v *volume) modsInWindow(now time.Time) (n int, freeAt time.Time) {
	for _, t := range v.ModStarts {
		if now.Sub(t) < 24*time.Hour {
			n++
			if freeAt.IsZero() || t.Add(24*time.Hour).Before(freeAt) {
				freeAt = t.Add(24 * time.Hour)
			}
		}
	}
	return n, freeAt
}

// optimizeDuration is how long the optimizing phase of a modification to size GiB takes:
// EBS re-lays the volume's blocks, at optimizeRate of its new size.
func optimizeDuration(size int32) time.Duration {
	return time.Duration(math.Ceil(float64(size)*gib/optimizeRate)) * time.Second
}
