package inventory

import (
	"context"
	"time"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"

	"github.com/anyops/anyops"
)

// InTx runs fn with a store whose reads and writes are one transaction: committed when fn
// returns nil, rolled back when it returns an error. The store's own multi-statement writes
// nest inside it as savepoints. A database out of reach at BEGIN or COMMIT is EUNAVAILABLE,
// as for every other call of the store.
func (s *Store) InTx(ctx context.Context, fn func(tx *Store) error) error {
	err := s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		return fn(&Store{db: tx, driver: s.driver})
	})
	if err != nil && anyops.ErrorCode(err) != anyops.EUNAVAILABLE && connectionLost(err) {
		return unavailable(err, "transaction")
	}
	return err
}

// reconcileRow is the one row of table reconciles per reconciled thing ("fleet").
type reconcileRow struct {
	Name       string    `gorm:"column:name;primaryKey"`
	Generation int64     `gorm:"column:generation"`
	Result     string    `gorm:"column:result"`
	AppliedAt  time.Time `gorm:"column:applied_at"`
}

func (reconcileRow) TableName() string { return "reconciles" }

// Reconcile is the newest picture of the cloud a reconcile applied.
type Reconcile struct {
	DescribedAt time.Time // when that picture was taken
	Result      []byte    // what applying it did, as the reconciler recorded it (JSON)
}

// ClaimReconcile starts applying a picture of the cloud of name described at describedAt. Call
// it first inside InTx: it locks the reconcile's row until the transaction ends, so that
// reconciles apply one at a time. It claims (true) when the picture is newer than the newest
// applied; otherwise it returns that newest one — the same picture when a retry comes back
// after its first attempt committed, a newer one when this picture is stale.
func (s *Store) ClaimReconcile(ctx context.Context, name string, describedAt time.Time) (bool, Reconcile, error) {
	if err := required("reconcile name", name); err != nil {
		return false, Reconcile{}, err
	}
	gen := describedAt.UnixNano()
	db := s.db.WithContext(ctx)
	err := db.Clauses(clause.OnConflict{DoNothing: true}).
		Create(&reconcileRow{Name: name, Generation: 0, Result: "{}", AppliedAt: now()}).Error
	if err != nil {
		return false, Reconcile{}, dbError(err, "claim reconcile "+quote(name))
	}
	// The conditional update takes the row lock (PostgreSQL; SQLite's transactions take the
	// database's at BEGIN) and re-reads the generation once it has it.
	res := db.Model(&reconcileRow{}).Where("name = ? AND generation < ?", name, gen).
		Updates(map[string]any{"generation": gen, "applied_at": now()})
	if res.Error != nil {
		return false, Reconcile{}, dbError(res.Error, "claim reconcile "+quote(name))
	}
	if res.RowsAffected == 1 {
		return true, Reconcile{}, nil
	}
	var row reconcileRow
	if err := db.Where("name = ?", name).Take(&row).Error; err != nil {
		return false, Reconcile{}, dbError(err, "reconcile "+quote(name))
	}
	return false, Reconcile{DescribedAt: time.Unix(0, row.Generation).UTC(), Result: []byte(row.Result)}, nil
}

// RecordReconcile stores what applying the claimed picture did, in the claiming transaction.
func (s *Store) RecordReconcile(ctx context.Context, name string, result []byte) error {
	err := s.db.WithContext(ctx).Model(&reconcileRow{}).Where("name = ?", name).Update("result", string(result)).Error
	return dbError(err, "record reconcile "+quote(name))
}
