package inventory

import (
	"context"
	"time"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"

	"github.com/anyops/anyops"
)

// VolumeClassification is what an operator said a volume is, where the fleet's tags do not:
// a release's plan blocks on a volume it cannot classify until someone does.
type VolumeClassification struct {
	VolumeID     string             `gorm:"column:volume_id;primaryKey" json:"volume_id"`
	Kind         anyops.VolumeKind  `gorm:"column:kind" json:"kind"`
	Criticality  anyops.Criticality `gorm:"column:criticality" json:"criticality"`
	ClassifiedBy string             `gorm:"column:classified_by" json:"classified_by"`
	Reason       string             `gorm:"column:reason" json:"reason,omitempty"`
	CreatedAt    time.Time          `gorm:"column:created_at" json:"created_at"`
	UpdatedAt    time.Time          `gorm:"column:updated_at" json:"updated_at"`
}

// VolumeRate is what a volume's snapshots measured: the rate its snapshots move data at, the
// rate its data changes between snapshots, and its latest snapshot.
type VolumeRate struct {
	VolumeID         string     `gorm:"column:volume_id;primaryKey" json:"volume_id"`
	SnapshotBytesSec float64    `gorm:"column:snapshot_bytes_sec" json:"snapshot_bytes_sec"`
	ChangeBytesSec   float64    `gorm:"column:change_bytes_sec" json:"change_bytes_sec"`
	Snapshots        int        `gorm:"column:snapshots" json:"snapshots"`
	LastSnapshotID   string     `gorm:"column:last_snapshot_id" json:"last_snapshot_id,omitempty"`
	LastSnapshotAt   *time.Time `gorm:"column:last_snapshot_at" json:"last_snapshot_at,omitempty"`
	LastFullBytes    int64      `gorm:"column:last_full_bytes" json:"last_full_bytes"`
	CreatedAt        time.Time  `gorm:"column:created_at" json:"created_at"`
	UpdatedAt        time.Time  `gorm:"column:updated_at" json:"updated_at"`
}

// ClassifyVolume records a volume's kind and criticality and who said so, with an audit event,
// in one transaction. Classifying it again replaces what was said.
func (s *Store) ClassifyVolume(ctx context.Context, c VolumeClassification) (VolumeClassification, error) {
	if err := firstError(required("volume_id", c.VolumeID), required("classified_by", c.ClassifiedBy)); err != nil {
		return VolumeClassification{}, err
	}
	if _, err := anyops.Parse("kind", string(c.Kind), anyops.VolumeKinds); err != nil {
		return VolumeClassification{}, err
	}
	if _, err := anyops.Parse("criticality", string(c.Criticality), anyops.Criticalities); err != nil {
		return VolumeClassification{}, err
	}
	t := now()
	c.CreatedAt, c.UpdatedAt = t, t
	err := s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		if err := tx.Clauses(clause.OnConflict{
			Columns:   []clause.Column{{Name: "volume_id"}},
			DoUpdates: clause.AssignmentColumns([]string{"kind", "criticality", "classified_by", "reason", "updated_at"}),
		}).Create(&c).Error; err != nil {
			return err
		}
		return tx.Create(&AuditEvent{Actor: c.ClassifiedBy, Action: "volume.classify", Subject: c.VolumeID,
			Summary: map[string]any{"kind": c.Kind, "criticality": c.Criticality, "reason": c.Reason}}).Error
	})
	if err != nil {
		return VolumeClassification{}, dbError(err, "classify volume "+c.VolumeID)
	}
	return c, nil
}

// Classifications returns the classifications of the volumes asked for that have one.
func (s *Store) Classifications(ctx context.Context, volumeIDs []string) (map[string]VolumeClassification, error) {
	out := map[string]VolumeClassification{}
	if len(volumeIDs) == 0 {
		return out, nil
	}
	var rows []VolumeClassification
	if err := s.db.WithContext(ctx).Where("volume_id IN ?", volumeIDs).Find(&rows).Error; err != nil {
		return nil, dbError(err, "classifications")
	}
	for _, r := range rows {
		out[r.VolumeID] = r
	}
	return out, nil
}

// SnapshotSample is one completed snapshot of a volume, as a release saw it.
type SnapshotSample struct {
	VolumeID, SnapshotID string
	Started, Completed   time.Time
	// Full: the first of its chain, which moved every written block (FullBytes); else an
	// incremental one, which moved what changed since the previous.
	Full      bool
	FullBytes int64
}

// RecordSnapshot folds a completed snapshot into the volume's measured rates: a full one
// measures the rate snapshots of it move data at (its written bytes over its duration); an
// incremental one, at that rate, how much changed since the previous snapshot, and so how fast
// its data changes. Each is a running mean of the samples. The same snapshot again changes
// nothing (a retried activity).
func (s *Store) RecordSnapshot(ctx context.Context, sm SnapshotSample) (VolumeRate, error) {
	if err := firstError(required("volume_id", sm.VolumeID), required("snapshot_id", sm.SnapshotID)); err != nil {
		return VolumeRate{}, err
	}
	if !sm.Completed.After(sm.Started) {
		return VolumeRate{}, anyops.Errorf(anyops.EINVALID, "snapshot %s completed at %s, not after it started at %s", sm.SnapshotID, sm.Completed, sm.Started)
	}
	var out VolumeRate
	err := s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		var r VolumeRate
		err := tx.Where("volume_id = ?", sm.VolumeID).Take(&r).Error
		switch {
		case err == gorm.ErrRecordNotFound:
			r = VolumeRate{VolumeID: sm.VolumeID, CreatedAt: now()}
		case err != nil:
			return err
		case r.LastSnapshotID == sm.SnapshotID:
			out = r
			return nil
		}
		dur := sm.Completed.Sub(sm.Started).Seconds()
		mean := func(old float64, n int, sample float64) float64 { return (old*float64(n) + sample) / float64(n+1) }
		switch {
		case sm.Full && sm.FullBytes > 0:
			r.SnapshotBytesSec = mean(r.SnapshotBytesSec, r.Snapshots, float64(sm.FullBytes)/dur)
			r.LastFullBytes = sm.FullBytes
		case !sm.Full && r.SnapshotBytesSec > 0 && r.LastSnapshotAt != nil && sm.Started.After(*r.LastSnapshotAt):
			changed := dur * r.SnapshotBytesSec
			r.ChangeBytesSec = mean(r.ChangeBytesSec, max(r.Snapshots-1, 0), changed/sm.Started.Sub(*r.LastSnapshotAt).Seconds())
		}
		if sm.FullBytes > 0 {
			r.LastFullBytes = sm.FullBytes
		}
		started := normTime(sm.Started)
		r.Snapshots++
		r.LastSnapshotID, r.LastSnapshotAt, r.UpdatedAt = sm.SnapshotID, &started, now()
		out = r
		return tx.Save(&r).Error
	})
	if err != nil {
		return VolumeRate{}, dbError(err, "record snapshot of "+sm.VolumeID)
	}
	return out, nil
}

// VolumeRates returns the measured rates of the volumes asked for that have any.
func (s *Store) VolumeRates(ctx context.Context, volumeIDs []string) (map[string]VolumeRate, error) {
	out := map[string]VolumeRate{}
	if len(volumeIDs) == 0 {
		return out, nil
	}
	var rows []VolumeRate
	if err := s.db.WithContext(ctx).Where("volume_id IN ?", volumeIDs).Find(&rows).Error; err != nil {
		return nil, dbError(err, "volume rates")
	}
	for _, r := range rows {
		out[r.VolumeID] = r
	}
	return out, nil
}
