package inventory

import (
	"context"
	"errors"
	"time"

	"gorm.io/gorm"

	"github.com/anyops/anyops"
)

// OpenIncident records a new open incident. OpenedAt defaults to now; the first timeline
// event ("opened", the title) is written with it.
func (s *Store) OpenIncident(ctx context.Context, inc Incident) (Incident, error) {
	if err := required("incident title", inc.Title); err != nil {
		return Incident{}, err
	}
	inc.ID = 0
	inc.State = IncidentOpen
	inc.ResolvedAt = nil
	if inc.OpenedAt.IsZero() {
		inc.OpenedAt = now()
	}
	inc.OpenedAt = normTime(inc.OpenedAt)
	err := s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		if err := tx.Create(&inc).Error; err != nil {
			return err
		}
		ev := IncidentEvent{IncidentID: inc.ID, Kind: "opened", Message: inc.Title, At: inc.OpenedAt}
		if err := tx.Create(&ev).Error; err != nil {
			return err
		}
		inc.Timeline = []IncidentEvent{ev}
		return nil
	})
	if err != nil {
		return Incident{}, dbError(err, "open incident")
	}
	return inc, nil
}

// AppendIncidentEvent adds an event to an incident's timeline. at zero means now. The kind
// "resolved" also resolves the incident.
func (s *Store) AppendIncidentEvent(ctx context.Context, incidentID int64, kind, message string, at time.Time) (IncidentEvent, error) {
	if err := required("incident event kind", kind); err != nil {
		return IncidentEvent{}, err
	}
	if at.IsZero() {
		at = now()
	}
	ev := IncidentEvent{IncidentID: incidentID, Kind: kind, Message: message, At: normTime(at)}
	err := s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		var inc Incident
		if err := tx.Where("id = ?", incidentID).Take(&inc).Error; err != nil {
			return err
		}
		if err := tx.Create(&ev).Error; err != nil {
			return err
		}
		if kind == "resolved" && inc.State == IncidentOpen {
			return tx.Model(&Incident{}).Where("id = ?", incidentID).Updates(map[string]any{
				"state": IncidentResolved, "resolved_at": ev.At, "updated_at": now(),
			}).Error
		}
		return nil
	})
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return IncidentEvent{}, anyops.Errorf(anyops.ENOTFOUND, "incident %d: not found", incidentID)
	}
	if err != nil {
		return IncidentEvent{}, dbError(err, "append incident event")
	}
	return ev, nil
}

// GetIncident returns an incident with its timeline, oldest event first.
func (s *Store) GetIncident(ctx context.Context, id int64) (Incident, error) {
	var inc Incident
	db := s.db.WithContext(ctx)
	if err := db.Where("id = ?", id).Take(&inc).Error; err != nil {
		if errors.Is(err, gorm.ErrRecordNotFound) {
			return inc, anyops.Errorf(anyops.ENOTFOUND, "incident %d: not found", id)
		}
		return inc, dbError(err, "get incident")
	}
	if err := db.Where("incident_id = ?", id).Order("at, id").Find(&inc.Timeline).Error; err != nil {
		return inc, dbError(err, "get incident timeline")
	}
	return inc, nil
}

// IncidentFilter selects incidents; State "" matches both.
type IncidentFilter struct {
	State   IncidentState
	Cluster string
	Page
}

// ListIncidents lists incidents newest first, without their timelines.
func (s *Store) ListIncidents(ctx context.Context, f IncidentFilter) ([]Incident, string, error) {
	if err := parseFilter("incident state", string(f.State), IncidentStates); err != nil {
		return nil, "", err
	}
	limit, err := f.limit()
	if err != nil {
		return nil, "", err
	}
	q := s.db.WithContext(ctx).Model(&Incident{})
	q = whereSet(q, "state", string(f.State))
	q = whereSet(q, "cluster", f.Cluster)
	if f.Cursor != "" {
		before, err := decodeIDCursor(f.Cursor)
		if err != nil {
			return nil, "", err
		}
		q = q.Where("id < ?", before)
	}
	var rows []Incident
	if err := q.Order("id DESC").Limit(limit + 1).Find(&rows).Error; err != nil {
		return nil, "", dbError(err, "list incidents")
	}
	return pageResult(rows, limit, func(i Incident) string { return itoa(i.ID) })
}
