package workflows

import (
	"regexp"
	"strings"
	"time"

	"go.temporal.io/sdk/temporal"

	"github.com/anyops/anyops"
)

// Release's input (policy, timing), its result and their validation; the workflow is in
// release.go.

// KindRelease is the operation kind of Release.
const KindRelease = "release"

// ReleasePolicy is how a release decides; the zero value is the production policy.
type ReleasePolicy struct {
	// NoApproval cuts over without waiting for the approve update (drills, tests).
	NoApproval bool `json:"no_approval,omitempty"`
	// NoDeferred moves deferrable volumes before the cutover too, in the window.
	NoDeferred bool `json:"no_deferred,omitempty"`
	// Retention is how long the old cluster is kept as a standby (its volumes a further
	// copy) before it is retired and its servers terminated (default 7 days). Like every
	// duration of the policy it is the cloud's time: under a simulated cloud's speed
	// (ReleaseTiming.Speed) the worker waits speed times less.
	Retention time.Duration `json:"retention,omitempty"`
	// NoNewBackupSeed leaves the new cluster's backup to a full resync after the cutover
	// instead of seeding it from snapshots during the pre-stage (then the new cluster has no
	// hot copy for hours).
	NoNewBackupSeed bool `json:"no_new_backup_seed,omitempty"`
	// IncrementalInterval is how often the pre-stage takes an incremental snapshot of each
	// unreplicated critical volume while it waits for the approval (default 30m, the cloud's time).
	IncrementalInterval time.Duration `json:"incremental_interval,omitempty"`
	// InitRateMiBps is the initialization rate of volumes created from snapshots (default 300).
	InitRateMiBps int32  `json:"init_rate_mibps,omitempty"`
	ImageID       string `json:"image_id,omitempty"`
}

// Production defaults of ReleasePolicy.
const (
	DefaultRetention           = 7 * 24 * time.Hour
	DefaultIncrementalInterval = 30 * time.Minute
)

func (p ReleasePolicy) withDefaults() ReleasePolicy {
	if p.Retention <= 0 {
		p.Retention = DefaultRetention
	}
	if p.IncrementalInterval <= 0 {
		p.IncrementalInterval = DefaultIncrementalInterval
	}
	if p.InitRateMiBps == 0 {
		p.InitRateMiBps = DefaultSeedInitRate
	}
	if p.ImageID == "" {
		p.ImageID = DemoImageID
	}
	return p
}

// ReleaseTiming is every duration a release waits on: a recovery's, and its own.
type ReleaseTiming struct {
	RecoveryTiming
	// ApprovalTimeout bounds the wait for the approve update (default 7 days).
	ApprovalTimeout time.Duration `json:"approval_timeout,omitempty"`
	// ProgressInterval is how often the release looks at a running snapshot for its Status
	// (default 1m).
	ProgressInterval time.Duration `json:"progress_interval,omitempty"`
	// PlanInterval is how often it plans again while it waits (default 5m).
	PlanInterval time.Duration `json:"plan_interval,omitempty"`
	// Speed is the simulated cloud's speed the timing is scaled for (Scaled; 0 or 1: real
	// time): the downtime, the ETAs and the deferred volumes' times are reported in the
	// cloud's seconds, as the plan predicts them.
	Speed float64 `json:"speed,omitempty"`
}

// Production defaults of ReleaseTiming.
const (
	DefaultReleaseApprovalTimeout = 7 * 24 * time.Hour
	DefaultProgressInterval       = time.Minute
	DefaultPlanInterval           = 5 * time.Minute
)

func (t ReleaseTiming) withDefaults() ReleaseTiming {
	t.RecoveryTiming = t.RecoveryTiming.withDefaults()
	if t.ApprovalTimeout <= 0 {
		t.ApprovalTimeout = DefaultReleaseApprovalTimeout
	}
	if t.ProgressInterval <= 0 {
		t.ProgressInterval = DefaultProgressInterval
	}
	if t.PlanInterval <= 0 {
		t.PlanInterval = DefaultPlanInterval
	}
	return t
}

// Scaled returns the timing for a simulated cloud running speed times faster (RecoveryTiming.Scaled).
func (t ReleaseTiming) Scaled(speed float64) ReleaseTiming {
	t = t.withDefaults()
	t.RecoveryTiming = t.RecoveryTiming.Scaled(speed)
	if speed > 1 {
		t.Speed = speed
		t.ProgressInterval = max(time.Duration(float64(t.ProgressInterval)/speed), 10*time.Millisecond)
		t.PlanInterval = max(time.Duration(float64(t.PlanInterval)/speed), 10*time.Millisecond)
		t.ApprovalTimeout = max(time.Duration(float64(t.ApprovalTimeout)/speed), minScaledTimeout)
	}
	return t
}

func (t ReleaseTiming) validate() error {
	if err := t.RecoveryTiming.validate(); err != nil {
		return err
	}
	if t.Speed < 0 || t.Speed > 100000 {
		return anyops.Errorf(anyops.EINVALID, "timing.speed is 0 (real time) to 100000")
	}
	for name, d := range map[string]time.Duration{"approval_timeout": t.ApprovalTimeout, "progress_interval": t.ProgressInterval, "plan_interval": t.PlanInterval} {
		if d < 0 || d > 30*24*time.Hour {
			return anyops.Errorf(anyops.EINVALID, "timing.%s must be between 0 (the default) and 720h in nanoseconds", name)
		}
	}
	return nil
}

// ReleaseInput is the body of POST /v1/operations/release.
type ReleaseInput struct {
	// Cluster is the live cluster the release takes over from.
	Cluster string `json:"cluster"`
	// Version is the release; the new cluster is named after it unless NewCluster says.
	Version    string `json:"version"`
	NewCluster string `json:"new_cluster,omitempty"`
	// TargetZone is where the new cluster runs; "" is the live cluster's zone (a release that
	// is not a zone move).
	TargetZone string `json:"target_zone,omitempty"`
	// InstanceTypes of the new cluster's servers by role; a role not named keeps its type.
	InstanceTypes map[anyops.Role]string `json:"instance_types,omitempty"`
	Policy        ReleasePolicy          `json:"policy,omitempty"`
	Estimates     ReleaseEstimates       `json:"estimates,omitempty"`
	Timing        ReleaseTiming          `json:"timing,omitempty"`
	// DryRun plans and returns the plan, changing nothing.
	DryRun      bool   `json:"dry_run,omitempty"`
	RequestedBy string `json:"requested_by,omitempty"`
}

var reVersion = regexp.MustCompile(`^[0-9A-Za-z][0-9A-Za-z._-]{0,31}$`)

// newCluster is the new cluster's name: NewCluster, or <cluster>-<version with dots as dashes>.
func (in ReleaseInput) newCluster() string {
	if in.NewCluster != "" {
		return in.NewCluster
	}
	return in.Cluster + "-" + strings.ToLower(strings.NewReplacer(".", "-", "_", "-").Replace(in.Version))
}

func (in ReleaseInput) targetZone(zone string) string {
	if in.TargetZone != "" {
		return in.TargetZone
	}
	return zone
}

func (in ReleaseInput) validate() error {
	if !reServerName.MatchString(in.Cluster) {
		return anyops.Errorf(anyops.EINVALID, "cluster %q is not a cluster name", in.Cluster)
	}
	if !reVersion.MatchString(in.Version) {
		return anyops.Errorf(anyops.EINVALID, "version %q is not a release version (letters, digits, dots, dashes; at most 32)", in.Version)
	}
	if nc := in.newCluster(); !reServerName.MatchString(nc) || nc == in.Cluster || len(nc) > 40 {
		return anyops.Errorf(anyops.EINVALID, "new cluster %q is not a cluster name other than %s (at most 40 characters)", nc, in.Cluster)
	}
	if in.TargetZone != "" && !reZone.MatchString(in.TargetZone) {
		return anyops.Errorf(anyops.EINVALID, "target_zone %q is not an availability zone name", in.TargetZone)
	}
	for role, t := range in.InstanceTypes {
		if _, err := anyops.Parse("instance_types role", string(role), anyops.Roles); err != nil {
			return err
		}
		if t == "" || len(t) > 64 {
			return anyops.Errorf(anyops.EINVALID, "instance_types[%s] must be an instance type", role)
		}
	}
	if in.Policy.InitRateMiBps != 0 && (in.Policy.InitRateMiBps < 100 || in.Policy.InitRateMiBps > 300) {
		return anyops.Errorf(anyops.EINVALID, "policy.init_rate_mibps is 100 to 300")
	}
	if in.Policy.Retention < 0 || in.Policy.IncrementalInterval < 0 || len(in.Policy.ImageID) > 128 {
		return anyops.Errorf(anyops.EINVALID, "policy: durations must not be negative, image_id at most 128 bytes")
	}
	return in.Timing.validate()
}

func prepareRelease(in *ReleaseInput, actor string) (string, temporal.SearchAttributes, error) {
	if err := setRequestedBy(&in.RequestedBy, actor); err != nil {
		return "", temporal.SearchAttributes{}, err
	}
	if err := in.validate(); err != nil {
		return "", temporal.SearchAttributes{}, err
	}
	attrs := []temporal.SearchAttributeUpdate{SearchCluster.ValueSet(in.Cluster)}
	if in.TargetZone != "" {
		attrs = append(attrs, SearchZone.ValueSet(in.TargetZone))
	}
	id := anyops.ReleaseWorkflowID(in.Cluster)
	if in.DryRun {
		id = ReleasePlanWorkflowID(in.Cluster)
	}
	return id, temporal.NewSearchAttributes(attrs...), nil
}

// ReleaseResult is what a release did.
type ReleaseResult struct {
	// Outcome is dry-run, live (the new cluster serves), rolled-back (the old one serves
	// again) or aborted (before anything served from the new cluster).
	Outcome    string      `json:"outcome"`
	Plan       ReleasePlan `json:"plan"`
	NewCluster string      `json:"new_cluster,omitempty"`
	// Servers maps the new cluster's servers to their instances.
	Servers map[string]string `json:"servers,omitempty"`
	// FileServer is the server that serves at the end; Backup its hot copy.
	FileServer string `json:"file_server,omitempty"`
	Backup     string `json:"backup,omitempty"`
	// Volumes maps each old volume to its copy in the target zone.
	Volumes map[string]string `json:"volumes,omitempty"`
	// Deferred are the volumes moved after the cutover, with when they were attached.
	Deferred []DeferredVolume `json:"deferred,omitempty"`
	// MaintenanceAt is when the old cluster stopped serving, LiveAt when every client was
	// healthy on the new one: the downtime, which the plan predicted.
	MaintenanceAt            *time.Time `json:"maintenance_at,omitempty"`
	LiveAt                   *time.Time `json:"live_at,omitempty"`
	DowntimeSeconds          float64    `json:"downtime_seconds"`
	PredictedDowntimeSeconds float64    `json:"predicted_downtime_seconds"`
	// ETAErrorPercent is |actual - predicted| / actual of the downtime, in percent.
	ETAErrorPercent float64 `json:"eta_error_percent"`
	// RollbackReason says why a rolled-back release rolled back.
	RollbackReason string `json:"rollback_reason,omitempty"`
	// Overrides are the interlock overrides given, worded.
	Overrides []string `json:"overrides,omitempty"`
	// RetiredAt is when the old cluster was retired after its retention.
	RetiredAt *time.Time `json:"retired_at,omitempty"`
}

// DeferredVolume is a volume moved after the cutover.
type DeferredVolume struct {
	VolumeID         string     `json:"volume_id"`
	Kind             string     `json:"kind"`
	Target           string     `json:"target,omitempty"`
	CompletedAt      *time.Time `json:"completed_at,omitempty"`
	PredictedSeconds float64    `json:"predicted_seconds"`
	ActualSeconds    float64    `json:"actual_seconds"`
}

// Outcomes of a release.
const (
	ReleaseDryRun     = "dry-run"
	ReleaseLive       = "live"
	ReleaseRolledBack = "rolled-back"
	ReleaseAborted    = "aborted"
)
