package inventory

import (
	"context"
	"encoding/json"
	"errors"
	"time"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"

	"github.com/anyops/anyops"
)

// Drill is one drill run (docs/drills.md).
type Drill struct {
	ID       int64  `gorm:"column:id;primaryKey" json:"id"`
	Scenario string `gorm:"column:scenario" json:"scenario"`
	// Source is the scenario file as given (the shipped one's text, or the caller's file).
	Source     string            `gorm:"column:source" json:"-"`
	Cluster    string            `gorm:"column:cluster" json:"cluster"`
	WorkflowID string            `gorm:"column:workflow_id" json:"workflow_id"`
	RunID      string            `gorm:"column:run_id" json:"run_id,omitempty"`
	State      anyops.DrillState `gorm:"column:state" json:"state"`
	// Speed is the scenario's speed; ClaimedSpeed what the drill needs cloudsim to run at now.
	Speed        float64 `gorm:"column:speed" json:"speed"`
	ClaimedSpeed float64 `gorm:"column:claimed_speed" json:"claimed_speed"`
	// HoldsClock marks the drill whose faults are playing (ClaimDrillSpeed).
	HoldsClock  bool   `gorm:"column:holds_clock" json:"holds_clock"`
	RequestedBy string `gorm:"column:requested_by" json:"requested_by,omitempty"`
	// Report is the drill's report as JSON, "" until it has one.
	Report     string     `gorm:"column:report" json:"-"`
	Error      string     `gorm:"column:error" json:"error,omitempty"`
	FinishedAt *time.Time `gorm:"column:finished_at" json:"finished_at,omitempty"`
	CreatedAt  time.Time  `gorm:"column:created_at" json:"created_at"`
	UpdatedAt  time.Time  `gorm:"column:updated_at" json:"updated_at"`
}

func (Drill) TableName() string { return "drills" }

type drillEventRow struct {
	DrillID int64  `gorm:"column:drill_id;primaryKey"`
	Seq     int64  `gorm:"column:seq;primaryKey"`
	Event   string `gorm:"column:event"`
}

func (drillEventRow) TableName() string { return "drill_events" }

type clusterTimeScale struct {
	Cluster   string    `gorm:"column:cluster;primaryKey"`
	TimeScale float64   `gorm:"column:time_scale"`
	UpdatedAt time.Time `gorm:"column:updated_at"`
}

func (clusterTimeScale) TableName() string { return "cluster_time_scales" }

// CreateDrill records a new drill as running and names it: its id n gives its workflow
// (drill/<n>) and, unless d.Cluster is set (live), its cluster (drill-<n>).
func (s *Store) CreateDrill(ctx context.Context, d Drill) (Drill, error) {
	if err := firstError(required("drill scenario", d.Scenario)); err != nil {
		return Drill{}, err
	}
	if d.Speed <= 0 {
		return Drill{}, anyops.Errorf(anyops.EINVALID, "drill speed must be positive")
	}
	d.ID, d.State, d.ClaimedSpeed, d.Report, d.Error, d.FinishedAt = 0, anyops.DrillRunning, 0, "", "", nil
	named := d.Cluster != ""
	if !named {
		d.Cluster = "pending" // named below, once the id is known
	}
	err := s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		if err := tx.Create(&d).Error; err != nil {
			return err
		}
		d.WorkflowID = anyops.DrillWorkflowID(d.ID)
		if !named {
			d.Cluster = anyops.DrillCluster(d.ID)
		}
		return tx.Model(&d).Select("workflow_id", "cluster").Updates(&d).Error
	})
	return d, dbError(err, "create drill")
}

// GetDrill returns drill id, ENOTFOUND when absent.
func (s *Store) GetDrill(ctx context.Context, id int64) (Drill, error) {
	var d Drill
	err := s.db.WithContext(ctx).Where("id = ?", id).Take(&d).Error
	return d, dbError(err, "drill "+itoa(id))
}

// DrillFilter selects drills; State "" matches every state.
type DrillFilter struct {
	State anyops.DrillState
	Page
}

// ListDrills lists drills newest first.
func (s *Store) ListDrills(ctx context.Context, f DrillFilter) ([]Drill, string, error) {
	if err := parseFilter("drill state", string(f.State), anyops.DrillStates); err != nil {
		return nil, "", err
	}
	limit, err := f.limit()
	if err != nil {
		return nil, "", err
	}
	q := whereSet(s.db.WithContext(ctx).Model(&Drill{}), "state", string(f.State))
	if f.Cursor != "" {
		before, err := decodeIDCursor(f.Cursor)
		if err != nil {
			return nil, "", err
		}
		q = q.Where("id < ?", before)
	}
	var rows []Drill
	if err := q.Order("id DESC").Limit(limit + 1).Find(&rows).Error; err != nil {
		return nil, "", dbError(err, "list drills")
	}
	return pageResult(rows, limit, func(d Drill) string { return itoa(d.ID) })
}

// SetDrillRun records the workflow run a drill runs as.
func (s *Store) SetDrillRun(ctx context.Context, id int64, runID string) error {
	return s.updateDrill(ctx, id, map[string]any{"run_id": runID})
}

// FinishDrill records how a drill ended, with its report (nil: none) or error, and releases
// its speed claim. Finishing again overwrites: the workflow's last word wins.
func (s *Store) FinishDrill(ctx context.Context, id int64, state anyops.DrillState, report []byte, errText string) error {
	if state == anyops.DrillRunning {
		return anyops.Errorf(anyops.EINVALID, "a drill finishes completed, failed or canceled")
	}
	if _, err := anyops.Parse("drill state", string(state), anyops.DrillStates); err != nil {
		return err
	}
	if len(report) > 0 && !json.Valid(report) {
		return anyops.Errorf(anyops.EINVALID, "drill report is not JSON")
	}
	if len(errText) > maxDrillError {
		errText = errText[:maxDrillError]
	}
	at := now()
	return s.updateDrill(ctx, id, map[string]any{"state": state, "report": string(report), "error": errText,
		"claimed_speed": 0, "holds_clock": false, "finished_at": &at})
}

// SpeedClaim is the answer to a drill's claim.
type SpeedClaim struct {
	// Speed is the speed to set: the clock holder's claim, else the highest claim, else 0
	// (none: the base speed).
	Speed float64
	// Granted says whether the drill holds the clock, when it asked to.
	Granted bool
	// Holder is the drill that holds the clock (0: none).
	Holder int64
}

// ClaimDrillSpeed records the speed a running drill needs now (0: none) and whether it wants
// the clock: only one running drill holds it — the one whose faults are playing, whose
// measurements must not run at another drill's speed — and another's request is not granted
// (its claim then stays as it was). Without the clock a claim is a build's: the highest such
// claim is the speed while no drill holds the clock. Call it inside InTx with the change of
// the simulation's speed, so that concurrent claims apply in order.
func (s *Store) ClaimDrillSpeed(ctx context.Context, id int64, speed float64, clock bool) (SpeedClaim, error) {
	if speed < 0 {
		return SpeedClaim{}, anyops.Errorf(anyops.EINVALID, "a claimed speed must not be negative")
	}
	var out SpeedClaim
	// A savepoint of its own: the unique index refuses a second holder, which on PostgreSQL
	// would otherwise abort the enclosing transaction.
	err := s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		return tx.Model(&Drill{}).Where("id = ? AND state = ?", id, anyops.DrillRunning).
			Updates(map[string]any{"claimed_speed": speed, "holds_clock": clock, "updated_at": now()}).Error
	})
	switch {
	case err != nil && clock && isUnique(err):
	case err != nil:
		return out, dbError(err, "claim drill speed")
	default:
		out.Granted = clock
	}
	var rows []Drill
	if err := s.db.WithContext(ctx).Where("state = ?", anyops.DrillRunning).Find(&rows).Error; err != nil {
		return out, dbError(err, "drill speed claims")
	}
	for _, d := range rows {
		if d.HoldsClock {
			out.Holder, out.Speed = d.ID, d.ClaimedSpeed
			return out, nil
		}
		out.Speed = max(out.Speed, d.ClaimedSpeed)
	}
	return out, nil
}

// maxDrillError bounds the error text kept for a failed drill.
const maxDrillError = 4000

func (s *Store) updateDrill(ctx context.Context, id int64, fields map[string]any) error {
	fields["updated_at"] = now()
	res := s.db.WithContext(ctx).Model(&Drill{}).Where("id = ?", id).Updates(fields)
	if res.Error != nil {
		return dbError(res.Error, "update drill "+itoa(id))
	}
	if res.RowsAffected == 0 {
		return anyops.Errorf(anyops.ENOTFOUND, "drill %d not found", id)
	}
	return nil
}

// AddDrillEvents stores cloudsim events a drill collected (each as its JSON, by sequence
// number); an event stored already is left as it is, so a retried collection adds nothing twice.
func (s *Store) AddDrillEvents(ctx context.Context, id int64, seqs []int64, events []json.RawMessage) error {
	if len(seqs) != len(events) {
		return errors.New("add drill events: one sequence number per event")
	}
	if len(events) == 0 {
		return nil
	}
	rows := make([]drillEventRow, len(events))
	for i := range events {
		rows[i] = drillEventRow{DrillID: id, Seq: seqs[i], Event: string(events[i])}
	}
	err := s.db.WithContext(ctx).Clauses(clause.OnConflict{DoNothing: true}).CreateInBatches(rows, 200).Error
	return dbError(err, "add drill events")
}

// DrillEvents returns a drill's collected events in sequence order, and LastDrillEventSeq
// the highest sequence number among them (0 for none).
func (s *Store) DrillEvents(ctx context.Context, id int64) ([]json.RawMessage, error) {
	var rows []drillEventRow
	if err := s.db.WithContext(ctx).Where("drill_id = ?", id).Order("seq").Find(&rows).Error; err != nil {
		return nil, dbError(err, "drill events")
	}
	out := make([]json.RawMessage, len(rows))
	for i, r := range rows {
		out[i] = json.RawMessage(r.Event)
	}
	return out, nil
}

func (s *Store) LastDrillEventSeq(ctx context.Context, id int64) (int64, error) {
	var last struct{ Seq int64 }
	err := s.db.WithContext(ctx).Model(&drillEventRow{}).Select("COALESCE(MAX(seq), 0) AS seq").Where("drill_id = ?", id).Scan(&last).Error
	return last.Seq, dbError(err, "drill events")
}

// SetClusterTimeScale records the speed a cluster's simulated time runs at (docs/drills.md):
// what starts workflows for the cluster scales their timing by it. The cluster must exist.
func (s *Store) SetClusterTimeScale(ctx context.Context, cluster string, scale float64) error {
	if scale <= 0 {
		return anyops.Errorf(anyops.EINVALID, "a time scale must be positive")
	}
	if _, err := s.GetCluster(ctx, cluster); err != nil {
		return err
	}
	row := clusterTimeScale{Cluster: cluster, TimeScale: scale, UpdatedAt: now()}
	err := s.db.WithContext(ctx).Clauses(clause.OnConflict{Columns: []clause.Column{{Name: "cluster"}},
		DoUpdates: clause.AssignmentColumns([]string{"time_scale", "updated_at"})}).Create(&row).Error
	return dbError(err, "cluster time scale")
}

// ClusterTimeScale is the speed a cluster's simulated time runs at; 0 when none is recorded
// (production timing).
func (s *Store) ClusterTimeScale(ctx context.Context, cluster string) (float64, error) {
	var rows []clusterTimeScale
	if err := s.db.WithContext(ctx).Where("cluster = ?", cluster).Limit(1).Find(&rows).Error; err != nil {
		return 0, dbError(err, "cluster time scale")
	}
	if len(rows) == 0 {
		return 0, nil
	}
	return rows[0].TimeScale, nil
}

// RetireClusterRows marks a torn-down cluster in the inventory, in one transaction: the
// cluster retired, its servers terminated, its volumes deleted (and detached), its replicas
// and its time scale removed. The rows stay as the record of what was there; a later fleet
// sync finds the cloud agreeing. The cluster must be retired already (RetireCluster), so a
// live cluster's rows are never marked gone.
func (s *Store) RetireClusterRows(ctx context.Context, cluster string) error {
	err := s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		var c Cluster
		if err := tx.Where("name = ?", cluster).Take(&c).Error; err != nil {
			return err
		}
		if c.State != anyops.ClusterRetired {
			return anyops.Errorf(anyops.ECONFLICT, "cluster %s is %s, not retired: its rows stay", cluster, c.State)
		}
		stamp := now()
		if err := tx.Where("cluster = ?", cluster).Delete(&Replica{}).Error; err != nil {
			return err
		}
		if err := tx.Model(&Server{}).Where("cluster = ? AND state <> ?", cluster, anyops.ServerTerminated).
			Updates(map[string]any{"state": anyops.ServerTerminated, "impaired_since": nil, "updated_at": stamp}).Error; err != nil {
			return err
		}
		if err := tx.Model(&Volume{}).Where("cluster = ? AND state <> ?", cluster, anyops.VolumeDeleted).
			Updates(map[string]any{"state": anyops.VolumeDeleted, "server": nil, "device": "", "updated_at": stamp}).Error; err != nil {
			return err
		}
		return tx.Where("cluster = ?", cluster).Delete(&clusterTimeScale{}).Error
	})
	return dbError(err, "retire the rows of cluster "+quote(cluster))
}

// RetireCluster marks a cluster retired, the first step of tearing it down (what makes
// terminating its instances allowed). Retiring the demo fleet's live cluster is refused: no
// drill or tool may tear it down.
func (s *Store) RetireCluster(ctx context.Context, cluster string) error {
	if cluster == DemoCluster {
		return anyops.Errorf(anyops.EFORBIDDEN, "cluster %s serves the platform: it is never retired by a teardown", cluster)
	}
	res := s.db.WithContext(ctx).Model(&Cluster{}).Where("name = ?", cluster).
		Updates(map[string]any{"state": anyops.ClusterRetired, "updated_at": now()})
	if res.Error != nil {
		return dbError(res.Error, "retire cluster "+quote(cluster))
	}
	if res.RowsAffected == 0 {
		return anyops.Errorf(anyops.ENOTFOUND, "cluster %s not found", cluster)
	}
	return nil
}
