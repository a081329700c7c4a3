package inventory

import (
	"context"
	"errors"
	"fmt"
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
		ev := IncidentEvent{IncidentID: inc.ID, Kind: IncidentEventOpened, Message: inc.Title, At: inc.OpenedAt}
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
	return s.AddIncidentEvent(ctx, IncidentEvent{IncidentID: incidentID, Kind: kind, Message: message, At: at})
}

// AddIncidentEvent adds an event with its source to an incident's timeline; At zero means
// now, and the kind "resolved" also resolves the incident. An alarm event (kind alarm or
// alarm-resolved) whose source and delivery id the incident has recorded already is ECONFLICT
// and adds nothing: the caller records it as a redelivery instead.
func (s *Store) AddIncidentEvent(ctx context.Context, ev IncidentEvent) (IncidentEvent, error) {
	if err := required("incident event kind", ev.Kind); err != nil {
		return IncidentEvent{}, err
	}
	if ev.At.IsZero() {
		ev.At = now()
	}
	ev.ID, ev.At = 0, normTime(ev.At)
	err := s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		var inc Incident
		if err := tx.Where("id = ?", ev.IncidentID).Take(&inc).Error; err != nil {
			return err
		}
		if err := tx.Create(&ev).Error; err != nil {
			return err
		}
		if ev.Kind == IncidentEventResolved && inc.State == IncidentOpen {
			return tx.Model(&Incident{}).Where("id = ?", ev.IncidentID).Updates(map[string]any{
				"state": IncidentResolved, "resolved_at": ev.At, "updated_at": now(),
			}).Error
		}
		return nil
	})
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return IncidentEvent{}, anyops.Errorf(anyops.ENOTFOUND, "incident %d: not found", ev.IncidentID)
	}
	if isUnique(err) {
		return IncidentEvent{}, anyops.Errorf(anyops.ECONFLICT, "incident %d: delivery %s of %s is recorded already", ev.IncidentID, quote(ev.DeliveryID), ev.Source)
	}
	if err != nil {
		return IncidentEvent{}, dbError(err, "append incident event")
	}
	return ev, nil
}

// OpenOrJoinIncident returns the open incident whose recovery workflow is inc.WorkflowID, and
// opens inc when there is none; opened says which. Callers racing for one workflow id get one
// incident: the unique index on open incidents lets one insert win, and the others read it.
func (s *Store) OpenOrJoinIncident(ctx context.Context, inc Incident) (got Incident, opened bool, err error) {
	if err := required("incident workflow id", inc.WorkflowID); err != nil {
		return Incident{}, false, err
	}
	for attempt := 0; attempt < 3; attempt++ {
		if got, err = s.OpenIncidentOf(ctx, inc.WorkflowID); anyops.ErrorCode(err) != anyops.ENOTFOUND {
			return got, false, err
		}
		got, err = s.OpenIncident(ctx, inc)
		if anyops.ErrorCode(err) != anyops.ECONFLICT {
			return got, err == nil, err
		}
		// Another caller opened it between our read and our insert; read theirs. (Resolved in
		// between too: open ours on the next attempt.)
	}
	return Incident{}, false, fmt.Errorf("open or join the incident of %s: %w", inc.WorkflowID, err)
}

// OpenIncidentOf returns the open incident whose recovery workflow is workflowID, without its
// timeline; ENOTFOUND when there is none.
func (s *Store) OpenIncidentOf(ctx context.Context, workflowID string) (Incident, error) {
	var inc Incident
	err := s.db.WithContext(ctx).Where("workflow_id = ? AND state = ?", workflowID, IncidentOpen).Take(&inc).Error
	return inc, dbError(err, "open incident of "+quote(workflowID))
}

// IncidentOfDelivery returns the newest incident about server whose timeline holds the alarm
// delivery (source and delivery id, as an alarm or alarm-resolved event), open or resolved,
// without its timeline; ENOTFOUND when none does. A delivery is one alarm: seen again after
// its incident was resolved, it is that fault's, not a new one.
func (s *Store) IncidentOfDelivery(ctx context.Context, server, source, deliveryID string) (Incident, error) {
	var inc Incident
	err := s.db.WithContext(ctx).Where("server = ? AND id IN (?)", server,
		s.db.Model(&IncidentEvent{}).Select("incident_id").Where("source = ? AND delivery_id = ? AND delivery_id <> '' AND kind IN ?",
			source, deliveryID, []string{IncidentEventAlarm, IncidentEventAlarmResolved})).
		Order("id DESC").Take(&inc).Error
	return inc, dbError(err, fmt.Sprintf("incident of delivery %s of %s", quote(deliveryID), source))
}

// LinkIncidentRun records the run of the incident's workflow that it started or joined. The
// first link stays: linking again, with any run, changes nothing. It returns the incident as
// it is now, and whether this call made the link.
func (s *Store) LinkIncidentRun(ctx context.Context, incidentID int64, runID string) (Incident, bool, error) {
	if err := required("run id", runID); err != nil {
		return Incident{}, false, err
	}
	res := s.db.WithContext(ctx).Model(&Incident{}).Where("id = ? AND run_id = ''", incidentID).
		Updates(map[string]any{"run_id": runID, "updated_at": now()})
	if res.Error != nil {
		return Incident{}, false, dbError(res.Error, "link incident run")
	}
	var inc Incident
	err := s.db.WithContext(ctx).Where("id = ?", incidentID).Take(&inc).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return inc, false, anyops.Errorf(anyops.ENOTFOUND, "incident %d: not found", incidentID)
	}
	return inc, res.RowsAffected == 1, dbError(err, "link incident run")
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

// IncidentFilter selects incidents; State "" matches both, Cluster and Server "" any.
type IncidentFilter struct {
	State   IncidentState
	Cluster string
	Server  string
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
	q = whereSet(q, "server", f.Server)
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
