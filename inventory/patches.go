package inventory

import (
	"context"
	"encoding/json"
	"reflect"
	"time"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"

	"github.com/anyops/anyops"
)

// PatchRollout is one fleet patch (FleetPatch) of one advisory: its state and, filled by
// GetPatchRollout, the report of every target server in plan order.
type PatchRollout struct {
	Advisory    string              `gorm:"column:advisory;primaryKey" json:"advisory"`
	WorkflowID  string              `gorm:"column:workflow_id" json:"workflow_id"`
	RunID       string              `gorm:"column:run_id" json:"run_id"`
	State       anyops.RolloutState `gorm:"column:state" json:"state"`
	Spec        PatchSpec           `gorm:"column:spec;serializer:json" json:"spec"`
	Errors      int                 `gorm:"column:errors" json:"errors"`
	MaxErrors   int                 `gorm:"column:max_errors" json:"max_errors"`
	StopReason  string              `gorm:"column:stop_reason" json:"stop_reason,omitempty"`
	RequestedBy string              `gorm:"column:requested_by" json:"requested_by,omitempty"`
	StartedAt   time.Time           `gorm:"column:started_at" json:"started_at"`
	FinishedAt  *time.Time          `gorm:"column:finished_at" json:"finished_at,omitempty"`
	CreatedAt   time.Time           `gorm:"column:created_at" json:"-"`
	UpdatedAt   time.Time           `gorm:"column:updated_at" json:"updated_at"`
	Servers     []PatchServer       `gorm:"-" json:"servers"`
}

// PatchSpec is what was asked of a rollout, as recorded with it.
type PatchSpec struct {
	Advisory           anyops.Advisory    `json:"advisory"`
	Target             anyops.PatchTarget `json:"target"`
	MaxConcurrency     string             `json:"max_concurrency"`
	MaxErrors          string             `json:"max_errors"`
	MaxRoleDownPercent int                `json:"max_role_down_percent"`
	CanaryCount        int                `json:"canary_count"`
	CanaryApproval     bool               `json:"canary_approval"`
}

// PatchServer is the report of one server of a rollout: what the check found before and
// after, what was restarted (and why nothing was), and when.
type PatchServer struct {
	Advisory   string              `gorm:"column:advisory;primaryKey" json:"advisory,omitempty"`
	Server     string              `gorm:"column:server;primaryKey" json:"server"`
	Role       anyops.Role         `gorm:"column:role" json:"role"`
	Seq        int                 `gorm:"column:seq" json:"seq"`
	Canary     bool                `gorm:"column:canary" json:"canary,omitempty"`
	Outcome    anyops.PatchOutcome `gorm:"column:outcome" json:"outcome"`
	Before     *anyops.ServerCheck `gorm:"column:before_check;serializer:json" json:"before,omitempty"`
	After      *anyops.ServerCheck `gorm:"column:after_check;serializer:json" json:"after,omitempty"`
	Restarted  []string            `gorm:"column:restarted;serializer:json" json:"restarted"`
	Message    string              `gorm:"column:message" json:"message,omitempty"`
	StartedAt  *time.Time          `gorm:"column:started_at" json:"started_at,omitempty"`
	FinishedAt *time.Time          `gorm:"column:finished_at" json:"finished_at,omitempty"`
	CreatedAt  time.Time           `gorm:"column:created_at" json:"-"`
	UpdatedAt  time.Time           `gorm:"column:updated_at" json:"updated_at"`
}

// ServerDrain takes a server out of rotation: a drained console host admits no new console,
// a drained web server gets no new requests. FleetPatch drains a server while its service
// restarts.
type ServerDrain struct {
	Server    string    `gorm:"column:server;primaryKey" json:"server"`
	Reason    string    `gorm:"column:reason" json:"reason"`
	DrainedBy string    `gorm:"column:drained_by" json:"drained_by,omitempty"`
	CreatedAt time.Time `gorm:"column:created_at" json:"since"`
	UpdatedAt time.Time `gorm:"column:updated_at" json:"-"`
}

func (PatchRollout) TableName() string { return "patch_rollouts" }
func (PatchServer) TableName() string  { return "patch_servers" }
func (ServerDrain) TableName() string  { return "server_drains" }

// StartPatchRollout records a rollout and its planned servers, all pending. The same run
// again (a retried activity) changes nothing; a new run of the same advisory starts the
// report afresh.
func (s *Store) StartPatchRollout(ctx context.Context, r PatchRollout, servers []PatchServer) (PatchRollout, error) {
	if err := firstError(required("advisory", r.Advisory), required("workflow id", r.WorkflowID)); err != nil {
		return PatchRollout{}, err
	}
	err := s.InTx(ctx, func(tx *Store) error {
		var old PatchRollout
		err := tx.db.WithContext(ctx).Clauses(clause.Locking{Strength: "UPDATE"}).Where("advisory = ?", r.Advisory).Take(&old).Error
		switch {
		case err == nil && old.RunID == r.RunID:
			r = old
			return nil
		case err == nil:
			if err := tx.db.WithContext(ctx).Where("advisory = ?", r.Advisory).Delete(&PatchServer{}).Error; err != nil {
				return err
			}
			if err := tx.db.WithContext(ctx).Delete(&old).Error; err != nil {
				return err
			}
		case err != gorm.ErrRecordNotFound:
			return err
		}
		r.State, r.StartedAt, r.FinishedAt = anyops.RolloutRunning, now(), nil
		if err := tx.db.WithContext(ctx).Create(&r).Error; err != nil {
			return err
		}
		for i := range servers {
			servers[i].Advisory, servers[i].Outcome = r.Advisory, anyops.PatchPending
			if servers[i].Restarted == nil {
				servers[i].Restarted = []string{}
			}
		}
		return createAll(tx.db.WithContext(ctx), servers)
	})
	return r, dbError(err, "start patch rollout "+quote(r.Advisory))
}

// RecordPatchServer writes one server's report (outcome, checks, restarts, times).
func (s *Store) RecordPatchServer(ctx context.Context, p PatchServer) error {
	if err := parseErr("patch outcome", string(p.Outcome), anyops.PatchOutcomes); err != nil {
		return err
	}
	if p.Restarted == nil {
		p.Restarted = []string{}
	}
	res := s.db.WithContext(ctx).Model(&PatchServer{}).Where("advisory = ? AND server = ?", p.Advisory, p.Server).Updates(map[string]any{
		"outcome": p.Outcome, "before_check": jsonText(p.Before), "after_check": jsonText(p.After), "restarted": jsonText(p.Restarted),
		"message": p.Message, "started_at": normTimePtr(p.StartedAt), "finished_at": normTimePtr(p.FinishedAt), "updated_at": now(),
	})
	if res.Error != nil {
		return dbError(res.Error, "record patch of "+quote(p.Server))
	}
	if res.RowsAffected == 0 {
		return anyops.Errorf(anyops.ENOTFOUND, "patch %s of server %s: not planned", p.Advisory, p.Server)
	}
	return nil
}

// SetPatchRolloutState records the rollout's state; a final state (completed, stopped,
// aborted) sets its end, and the servers still pending become not-started with the reason.
func (s *Store) SetPatchRolloutState(ctx context.Context, advisory string, state anyops.RolloutState, errors int, reason string) error {
	if err := parseErr("rollout state", string(state), anyops.RolloutStates); err != nil {
		return err
	}
	final := state != anyops.RolloutRunning && state != anyops.RolloutAwaitingApproval
	err := s.InTx(ctx, func(tx *Store) error {
		set := map[string]any{"state": state, "errors": errors, "stop_reason": reason, "updated_at": now()}
		if final {
			set["finished_at"] = now()
		}
		res := tx.db.WithContext(ctx).Model(&PatchRollout{}).Where("advisory = ?", advisory).Updates(set)
		if res.Error != nil {
			return res.Error
		}
		if res.RowsAffected == 0 {
			return anyops.Errorf(anyops.ENOTFOUND, "patch rollout %q: not found", advisory)
		}
		if !final {
			return nil
		}
		msg := "not started: " + reason
		if reason == "" {
			msg = "not started"
		}
		return tx.db.WithContext(ctx).Model(&PatchServer{}).Where("advisory = ? AND outcome = ?", advisory, anyops.PatchPending).
			Updates(map[string]any{"outcome": anyops.PatchNotStarted, "message": msg, "updated_at": now()}).Error
	})
	return dbError(err, "set patch rollout "+quote(advisory))
}

// GetPatchRollout returns a rollout with its servers in plan order.
func (s *Store) GetPatchRollout(ctx context.Context, advisory string) (PatchRollout, error) {
	var r PatchRollout
	if err := s.db.WithContext(ctx).Where("advisory = ?", advisory).Take(&r).Error; err != nil {
		return PatchRollout{}, dbError(err, "patch rollout "+quote(advisory))
	}
	if err := s.db.WithContext(ctx).Where("advisory = ?", advisory).Order("seq").Find(&r.Servers).Error; err != nil {
		return PatchRollout{}, dbError(err, "patch servers of "+quote(advisory))
	}
	return r, nil
}

// ListPatchRollouts lists rollouts by advisory id, without their servers.
func (s *Store) ListPatchRollouts(ctx context.Context, p Page) ([]PatchRollout, string, error) {
	return listPage[PatchRollout](s.db.WithContext(ctx).Model(&PatchRollout{}), p, "advisory",
		func(r PatchRollout) string { return r.Advisory }, "patch rollouts")
}

// DrainServer takes a server out of rotation with the reason; draining it again keeps the
// first record.
func (s *Store) DrainServer(ctx context.Context, server, reason, by string) error {
	if err := firstError(required("server", server), required("reason", reason)); err != nil {
		return err
	}
	d := ServerDrain{Server: server, Reason: reason, DrainedBy: by}
	err := s.db.WithContext(ctx).Clauses(clause.OnConflict{DoNothing: true}).Create(&d).Error
	return dbError(err, "drain server "+quote(server))
}

// UndrainServer puts a server back in rotation; one not drained is no change.
func (s *Store) UndrainServer(ctx context.Context, server string) error {
	return dbError(s.db.WithContext(ctx).Where("server = ?", server).Delete(&ServerDrain{}).Error, "undrain server "+quote(server))
}

// Drains returns the drained servers by name.
func (s *Store) Drains(ctx context.Context) (map[string]ServerDrain, error) {
	var rows []ServerDrain
	if err := s.db.WithContext(ctx).Find(&rows).Error; err != nil {
		return nil, dbError(err, "list drains")
	}
	out := make(map[string]ServerDrain, len(rows))
	for _, d := range rows {
		out[d.Server] = d
	}
	return out, nil
}

// jsonText is v as the JSON serializer stores it, "" for a nil pointer (read back as nil).
func jsonText(v any) string {
	if rv := reflect.ValueOf(v); v == nil || (rv.Kind() == reflect.Pointer && rv.IsNil()) {
		return ""
	}
	b, _ := json.Marshal(v)
	return string(b)
}
