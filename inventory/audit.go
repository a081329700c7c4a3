package inventory

import (
	"context"
	"strconv"

	"gorm.io/gorm"

	"github.com/anyops/anyops"
)

// RecordAudit appends an audit event and returns it with its id and time.
func (s *Store) RecordAudit(ctx context.Context, e AuditEvent) (AuditEvent, error) {
	if err := firstError(required("audit actor", e.Actor), required("audit action", e.Action)); err != nil {
		return AuditEvent{}, err
	}
	e.ID = 0
	if e.Summary == nil {
		e.Summary = map[string]any{}
	}
	if e.IdempotencyKey != nil {
		if first, err := s.auditByKey(ctx, *e.IdempotencyKey); err == nil {
			return first, nil
		} else if anyops.ErrorCode(err) != anyops.ENOTFOUND {
			return AuditEvent{}, err
		}
	}
	// In a transaction of its own (a savepoint inside InTx), so that a key another writer
	// recorded first does not abort an enclosing transaction on PostgreSQL.
	if err := s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error { return tx.Create(&e).Error }); err != nil {
		err = dbError(err, "record audit event")
		if e.IdempotencyKey != nil && anyops.ErrorCode(err) == anyops.ECONFLICT {
			return s.auditByKey(ctx, *e.IdempotencyKey) // a concurrent retry recorded it first
		}
		return AuditEvent{}, err
	}
	return e, nil
}

func (s *Store) auditByKey(ctx context.Context, key string) (AuditEvent, error) {
	var e AuditEvent
	err := s.db.WithContext(ctx).Where("idempotency_key = ?", key).Take(&e).Error
	return e, dbError(err, "audit event "+key)
}

// ListAudit lists audit events newest first.
func (s *Store) ListAudit(ctx context.Context, p Page) ([]AuditEvent, string, error) {
	limit, err := p.limit()
	if err != nil {
		return nil, "", err
	}
	q := s.db.WithContext(ctx).Model(&AuditEvent{})
	if p.Cursor != "" {
		before, err := decodeIDCursor(p.Cursor)
		if err != nil {
			return nil, "", err
		}
		q = q.Where("id < ?", before)
	}
	var rows []AuditEvent
	if err := q.Order("id DESC").Limit(limit + 1).Find(&rows).Error; err != nil {
		return nil, "", dbError(err, "list audit events")
	}
	return pageResult(rows, limit, func(e AuditEvent) string { return itoa(e.ID) })
}

// decodeIDCursor decodes a cursor whose key is a positive row id.
func decodeIDCursor(cursor string) (int64, error) {
	key, err := DecodeCursor(cursor)
	if err != nil {
		return 0, err
	}
	id, err := strconv.ParseInt(key, 10, 64)
	if err != nil || id <= 0 {
		return 0, anyops.Errorf(anyops.EINVALID, "cursor is malformed")
	}
	return id, nil
}

func itoa(id int64) string { return strconv.FormatInt(id, 10) }

// LatestAudit returns the newest audit event with the action; ENOTFOUND when there is none.
// Decisions recorded as audit events (the consoles kill switch) are read back with it, so
// every API replica sees the same decision.
func (s *Store) LatestAudit(ctx context.Context, action string) (AuditEvent, error) {
	var e AuditEvent
	err := s.db.WithContext(ctx).Where("action = ?", action).Order("id DESC").Take(&e).Error
	return e, dbError(err, "audit event "+quote(action))
}
