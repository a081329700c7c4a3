package workflows

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/anyops/anyops"
	"github.com/anyops/anyops/activities"
)

// What the three recovery workflows share: the alarm intake starts them by kind with
// {"server", "incident_id"} (alarms.Rules), under the business key of the server, so a second
// alarm for the same fault joins the running one. Each takes a timing policy whose defaults
// are production values and a policy of its own.

// Operation kinds of the recoveries, as alarms.Rules names them.
const (
	KindFailover      = "failover"
	KindBackupRebuild = "backup-rebuild"
	KindServerReplace = "replace"
)

// Workflow types of the recoveries.
const (
	FailoverWorkflowType      = "FileServerFailover"
	BackupRebuildWorkflowType = "BackupRebuild"
	ServerReplaceWorkflowType = "ServerReplace"
)

// RecoveryTiming is every duration a recovery workflow waits on. Zero fields take production
// defaults; drills and tests shrink them with Scaled to match cloudsim's speed.
type RecoveryTiming struct {
	// PollInterval, HeartbeatTimeout, CallTimeout and WaitTimeout as for fleet workflows,
	// except that PollInterval defaults to DefaultRecoveryPollInterval: a failover looks often.
	FleetTiming
	// StopTimeout is how long a graceful stop of a failed instance may take before the stop is
	// forced (default 2m: a stop on failed hardware can hang for an hour).
	StopTimeout time.Duration `json:"stop_timeout,omitempty"`
	// BootTimeout bounds a start: running, status checks passed, SSM answering (default 10m).
	BootTimeout time.Duration `json:"boot_timeout,omitempty"`
	// BuildTimeout bounds building a new server, bootstrap included (default 45m).
	BuildTimeout time.Duration `json:"build_timeout,omitempty"`
	// SyncTimeout bounds a resync or a snapshot until the new copy is UpToDate (default 48h).
	SyncTimeout time.Duration `json:"sync_timeout,omitempty"`
	// DNSTimeout bounds waiting for a Route 53 change to be INSYNC (default 10m).
	DNSTimeout time.Duration `json:"dns_timeout,omitempty"`
	// ClientTimeout bounds remounting one client and checking it reads and writes (default 2m).
	ClientTimeout time.Duration `json:"client_timeout,omitempty"`
	// Speed is the speed factor the policy was scaled by (Scaled; 0 or 1: real time). What a
	// host runs is bounded in the host's own clock, which a simulated cloud runs that much
	// faster: onHost turns a bound of the workflow's back into the host's.
	Speed float64 `json:"speed,omitempty"`
}

// Production defaults of RecoveryTiming.
const (
	DefaultRecoveryPollInterval = 5 * time.Second
	DefaultStopTimeout          = 2 * time.Minute
	DefaultBootTimeout          = 10 * time.Minute
	DefaultBuildTimeout         = 45 * time.Minute
	DefaultSyncTimeout          = 48 * time.Hour
	DefaultDNSTimeout           = 10 * time.Minute
	DefaultClientTimeout        = 2 * time.Minute
)

// recoveryDurations names the policy's own durations, for defaults, validation and scaling.
func (t *RecoveryTiming) recoveryDurations() []struct {
	name string
	d    *time.Duration
	def  time.Duration
} {
	return []struct {
		name string
		d    *time.Duration
		def  time.Duration
	}{
		{"stop_timeout", &t.StopTimeout, DefaultStopTimeout},
		{"boot_timeout", &t.BootTimeout, DefaultBootTimeout},
		{"build_timeout", &t.BuildTimeout, DefaultBuildTimeout},
		{"sync_timeout", &t.SyncTimeout, DefaultSyncTimeout},
		{"dns_timeout", &t.DNSTimeout, DefaultDNSTimeout},
		{"client_timeout", &t.ClientTimeout, DefaultClientTimeout},
	}
}

func (t RecoveryTiming) withDefaults() RecoveryTiming {
	if t.PollInterval <= 0 {
		t.PollInterval = DefaultRecoveryPollInterval
	}
	t.FleetTiming = t.FleetTiming.withDefaults()
	for _, f := range t.recoveryDurations() {
		if *f.d <= 0 {
			*f.d = f.def
		}
	}
	return t
}

func (t RecoveryTiming) validate() error {
	if err := t.FleetTiming.validate(); err != nil {
		return err
	}
	if t.Speed < 0 || t.Speed > 100000 {
		return anyops.Errorf(anyops.EINVALID, "timing.speed must be between 0 and 100000, got %v", t.Speed)
	}
	for _, f := range t.recoveryDurations() {
		if *f.d < 0 || *f.d > 7*24*time.Hour {
			return anyops.Errorf(anyops.EINVALID, "timing.%s must be between 0 (the default) and 168h in nanoseconds, got %d", f.name, int64(*f.d))
		}
	}
	return nil
}

// retryPolicy is how the recoveries' activities are retried: the first retry after a poll
// interval (at most a second), backing off to six of them (at most 30 s) — in cloudsim's time
// as in production's.
func (t RecoveryTiming) retryPolicy() *temporal.RetryPolicy {
	return &temporal.RetryPolicy{
		InitialInterval:    min(time.Second, t.PollInterval),
		BackoffCoefficient: 2,
		MaximumInterval:    min(30*time.Second, max(6*t.PollInterval, 10*time.Millisecond)),
		MaximumAttempts:    20,
	}
}

// callOptions, waitOptions and hostOptions are FleetTiming's with the recoveries' retries.
func (t RecoveryTiming) callOptions() workflow.ActivityOptions {
	o := t.FleetTiming.callOptions()
	o.RetryPolicy = t.retryPolicy()
	return o
}

func (t RecoveryTiming) waitOptions() workflow.ActivityOptions {
	o := t.FleetTiming.waitOptions()
	o.RetryPolicy = t.retryPolicy()
	return o
}

func (t RecoveryTiming) hostOptions() workflow.ActivityOptions {
	o := t.FleetTiming.hostOptions()
	o.RetryPolicy = t.retryPolicy()
	return o
}

// onHost is a bound of the workflow's clock in the clock of the hosts (simulated, under a
// scaled policy): the timeout a host command is given.
func (t RecoveryTiming) onHost(d time.Duration) time.Duration {
	if t.Speed > 1 {
		return time.Duration(float64(d) * t.Speed)
	}
	return d
}

// minScaledTimeout is the least a scaled bound keeps: real calls to the cloud and the
// control plane's own latency do not shrink with the simulation's speed.
const minScaledTimeout = 30 * time.Second

// Scaled returns the policy for a simulated cloud running speed times faster than real time
// (cloudsim's speed factor): what the workflow waits on in real time — its poll interval, the
// time before it forces a stop, the bounds of waits — shrinks by the factor; the bounds keep at
// least minScaledTimeout. A single call's timeout and the heartbeat timeout are real time and
// stay as they are.
func (t RecoveryTiming) Scaled(speed float64) RecoveryTiming {
	t = t.withDefaults()
	if speed <= 1 {
		return t
	}
	t.Speed = speed
	scale := func(d time.Duration, floor time.Duration) time.Duration {
		return max(time.Duration(float64(d)/speed), floor)
	}
	t.PollInterval = scale(t.PollInterval, 10*time.Millisecond)
	t.WaitTimeout = scale(t.WaitTimeout, minScaledTimeout)
	for _, f := range t.recoveryDurations() {
		floor := minScaledTimeout
		if f.name == "stop_timeout" {
			floor = 0 // a policy, not a bound: at speed 60 a 2 minute stop waits 2 s
		}
		*f.d = scale(*f.d, floor)
	}
	return t
}

// RecoveryRequest is what every recovery input has: the failed server, the incident the alarm
// opened, and who asked.
type RecoveryRequest struct {
	// Server is the failed server's inventory name.
	Server string `json:"server"`
	// IncidentID is the incident the alarm intake opened (0: started by hand, no incident).
	IncidentID int64 `json:"incident_id,omitempty"`
	// RequestedBy is set by the API (or the intake, "alarm:<source>") from who asked.
	RequestedBy string `json:"requested_by,omitempty"`
}

// reServerName is what an inventory server name looks like: the demo's live-file, a drill's
// drill-3-backup.
var reServerName = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,62}$`)

func (in *RecoveryRequest) prepare(actor string) (temporal.SearchAttributes, error) {
	if err := setRequestedBy(&in.RequestedBy, actor); err != nil {
		return temporal.SearchAttributes{}, err
	}
	if !reServerName.MatchString(in.Server) {
		return temporal.SearchAttributes{}, anyops.Errorf(anyops.EINVALID,
			"server %q is not a server name (lower-case letters, digits and dashes, at most 63)", in.Server)
	}
	if in.IncidentID < 0 {
		return temporal.SearchAttributes{}, anyops.Errorf(anyops.EINVALID, "incident_id must not be negative")
	}
	updates := []temporal.SearchAttributeUpdate{SearchServer.ValueSet(in.Server)}
	if in.IncidentID > 0 {
		updates = append(updates, SearchIncident.ValueSet(incidentKey(in.IncidentID)))
	}
	return temporal.NewSearchAttributes(updates...), nil
}

// prepareRecovery is what the three recoveries' Prepare share: the request checked (and its
// search attributes), then checks of the input's own fields (extra, in order), its timing and
// its policy; the workflow id is workflowID of the server.
func prepareRecovery(req *RecoveryRequest, actor string, timing RecoveryTiming, policy interface{ validate() error },
	workflowID func(server string) string, extra ...func() error) (string, temporal.SearchAttributes, error) {
	attrs, err := req.prepare(actor)
	if err != nil {
		return "", temporal.SearchAttributes{}, err
	}
	for _, check := range append(extra, timing.validate, policy.validate) {
		if err := check(); err != nil {
			return "", temporal.SearchAttributes{}, err
		}
	}
	return workflowID(req.Server), attrs, nil
}

// incidentKey is how an incident is named in the Incident search attribute.
func incidentKey(id int64) string { return fmt.Sprintf("%d", id) }

// FailoverPolicy is how a failover decides; the zero value is the production policy: race all
// three ways, cut over without waiting for a human, keep useful losers.
type FailoverPolicy struct {
	// ApproveCutover makes the failover wait for the approve update before it grants the
	// cutover to the first way ready to serve.
	ApproveCutover bool `json:"approve_cutover,omitempty"`
	// Ways are the ways to race; empty: every one (anyops.RecoveryWays).
	Ways []anyops.RecoveryWay `json:"ways,omitempty"`
	// Losers is what becomes of the ways that lost (default anyops.LosersKeep).
	Losers anyops.LoserPolicy `json:"losers,omitempty"`
	// NoWarmSpare makes the replace way build a new server even when the zone has a spare.
	NoWarmSpare bool `json:"no_warm_spare,omitempty"`
	// Seed is how a new backup gets its first copy (default anyops.SeedAuto).
	Seed anyops.SeedPolicy `json:"seed,omitempty"`
	// ImageID is the image of new servers; DemoImageID when empty.
	ImageID string `json:"image_id,omitempty"`
}

func (p FailoverPolicy) withDefaults() FailoverPolicy {
	if len(p.Ways) == 0 {
		p.Ways = append([]anyops.RecoveryWay(nil), anyops.RecoveryWays...)
	}
	if p.Losers == "" {
		p.Losers = anyops.LosersKeep
	}
	if p.Seed == "" {
		p.Seed = anyops.SeedAuto
	}
	if p.ImageID == "" {
		p.ImageID = DemoImageID
	}
	return p
}

func (p FailoverPolicy) validate() error {
	for i, w := range p.Ways {
		if _, err := anyops.Parse("policy.ways", string(w), anyops.RecoveryWays); err != nil {
			return err
		}
		if slices.Contains(p.Ways[:i], w) {
			return anyops.Errorf(anyops.EINVALID, "policy.ways names %s twice", w)
		}
	}
	if p.Losers != "" {
		if _, err := anyops.Parse("policy.losers", string(p.Losers), anyops.LoserPolicies); err != nil {
			return err
		}
	}
	if err := validateSeed(p.Seed); err != nil {
		return err
	}
	return validateImageID(p.ImageID)
}

// FailoverInput starts FileServerFailover: the body of POST /v1/operations/failover, and what
// the alarm intake sends for an alarm on a file server.
type FailoverInput struct {
	RecoveryRequest
	Timing RecoveryTiming `json:"timing,omitempty"`
	Policy FailoverPolicy `json:"policy,omitempty"`
}

func prepareFailover(in *FailoverInput, actor string) (string, temporal.SearchAttributes, error) {
	return prepareRecovery(&in.RecoveryRequest, actor, in.Timing, in.Policy, anyops.FailoverWorkflowID)
}

// RebuildPolicy is how a backup is rebuilt.
type RebuildPolicy struct {
	// Seed is how the new backup gets its first copy (default anyops.SeedAuto).
	Seed anyops.SeedPolicy `json:"seed,omitempty"`
	// ImageID is the image of the new backup server; DemoImageID when empty.
	ImageID string `json:"image_id,omitempty"`
}

func (p RebuildPolicy) withDefaults() RebuildPolicy {
	if p.Seed == "" {
		p.Seed = anyops.SeedAuto
	}
	if p.ImageID == "" {
		p.ImageID = DemoImageID
	}
	return p
}

func (p RebuildPolicy) validate() error {
	if err := validateSeed(p.Seed); err != nil {
		return err
	}
	return validateImageID(p.ImageID)
}

// BackupRebuildInput starts BackupRebuild: an alarm on a backup server.
type BackupRebuildInput struct {
	RecoveryRequest
	Timing RecoveryTiming `json:"timing,omitempty"`
	Policy RebuildPolicy  `json:"policy,omitempty"`
	// Onto is a server to make the backup (a failover's server kept for it); empty: the
	// zone's warm spare, or a new server.
	Onto string `json:"onto,omitempty"`
}

func prepareBackupRebuild(in *BackupRebuildInput, actor string) (string, temporal.SearchAttributes, error) {
	return prepareRecovery(&in.RecoveryRequest, actor, in.Timing, in.Policy, anyops.BackupRebuildWorkflowID, func() error {
		if in.Onto != "" && !reServerName.MatchString(in.Onto) {
			return anyops.Errorf(anyops.EINVALID, "onto %q is not a server name", in.Onto)
		}
		return nil
	})
}

// ReplacePolicy is how a web, console or task server is replaced.
type ReplacePolicy struct {
	// MarkConsolesLost ends the consoles of a lost console host as lost instead of moving the
	// registered users' consoles to another host.
	MarkConsolesLost bool `json:"mark_consoles_lost,omitempty"`
	// ImageID is the image of the new server; DemoImageID when empty.
	ImageID string `json:"image_id,omitempty"`
}

func (p ReplacePolicy) withDefaults() ReplacePolicy {
	if p.ImageID == "" {
		p.ImageID = DemoImageID
	}
	return p
}

func (p ReplacePolicy) validate() error { return validateImageID(p.ImageID) }

// validateSeed and validateImageID check the policy fields the recoveries share; empty is the
// default.
func validateSeed(seed anyops.SeedPolicy) error {
	if seed == "" {
		return nil
	}
	_, err := anyops.Parse("policy.seed", string(seed), anyops.SeedPolicies)
	return err
}

func validateImageID(id string) error {
	if len(id) > 128 {
		return anyops.Errorf(anyops.EINVALID, "policy.image_id is longer than 128 bytes")
	}
	return nil
}

// ServerReplaceInput starts ServerReplace: an alarm on a web, console or task server.
type ServerReplaceInput struct {
	RecoveryRequest
	Timing RecoveryTiming `json:"timing,omitempty"`
	Policy ReplacePolicy  `json:"policy,omitempty"`
}

func prepareServerReplace(in *ServerReplaceInput, actor string) (string, temporal.SearchAttributes, error) {
	return prepareRecovery(&in.RecoveryRequest, actor, in.Timing, in.Policy, anyops.ServerReplaceWorkflowID)
}

// recoveryActs are the activity groups recovery workflows call, by method value of nil
// pointers: the worker registers the real ones.
var (
	recInv   *activities.Inventory
	recCloud *activities.Cloud
	recHosts *activities.Hosts
)

// noteIncident appends a line to the incident's timeline (when there is an incident); a
// failure to write it is logged, not fatal: the recovery matters more than its record.
func noteIncident(ctx workflow.Context, timing RecoveryTiming, incidentID int64, message string) {
	appendIncident(ctx, timing, incidentID, activities.IncidentEventWorkflow, message)
}

// resolveIncident resolves the incident with a last line, when the recovery is the one the
// alarm started: a recovery run as another's child (BackupRebuild under a failover) leaves
// the incident to its parent, which has not ended.
func resolveIncident(ctx workflow.Context, timing RecoveryTiming, incidentID int64, message string) {
	if workflow.GetInfo(ctx).ParentWorkflowExecution != nil {
		noteIncident(ctx, timing, incidentID, message)
		return
	}
	appendIncident(ctx, timing, incidentID, activities.IncidentEventResolved, message)
}

func appendIncident(ctx workflow.Context, timing RecoveryTiming, incidentID int64, kind, message string) {
	if incidentID <= 0 {
		return
	}
	actx := workflow.WithActivityOptions(ctx, timing.callOptions())
	err := workflow.ExecuteActivity(actx, recInv.NoteIncident, activities.IncidentNote{
		IncidentID: incidentID, Kind: kind, Message: message, At: workflow.Now(ctx),
	}).Get(ctx, nil)
	if err != nil {
		workflow.GetLogger(ctx).Warn("could not note on the incident", "incident", incidentID, "kind", kind, "message", message, "err", err)
	}
}

// interlocks is a recovery's side of its safety interlocks: what they hold up (Status's
// Blocked), the overrides people gave through the override update (validated: only for an
// interlock holding something up now, with who and why; audited before it takes effect), and
// waiting for one.
type interlocks struct {
	tracker   *Tracker
	timing    RecoveryTiming
	subject   string // the workflow id, the audit's subject
	incident  int64
	overrides map[anyops.Interlock]DecisionInput
	// given are the overrides given, worded for the result.
	given []string
}

func newInterlocks(tracker *Tracker, timing RecoveryTiming, subject string, incident int64) *interlocks {
	return &interlocks{tracker: tracker, timing: timing, subject: subject, incident: incident, overrides: map[anyops.Interlock]DecisionInput{}}
}

// register sets the override update's handler and validator.
func (l *interlocks) register(ctx workflow.Context) error {
	return workflow.SetUpdateHandlerWithOptions(ctx, UpdateOverride, func(ctx workflow.Context, d DecisionInput) (DecisionResult, error) {
		lock := anyops.Interlock(d.Interlock)
		what := ""
		for _, b := range l.tracker.status.Blocked {
			if b.Interlock == d.Interlock {
				what = b.What
			}
		}
		if err := workflow.ExecuteActivity(workflow.WithActivityOptions(ctx, l.timing.callOptions()), recInv.RecordAudit, activities.AuditRecord{
			Actor: d.By, Action: "override", Subject: l.subject,
			Summary: map[string]any{"interlock": d.Interlock, "reason": d.Reason, "held_up": what, "incident": l.incident},
		}).Get(ctx, nil); err != nil {
			return DecisionResult{}, err
		}
		l.overrides[lock] = d
		l.given = append(l.given, fmt.Sprintf("%s by %s: %s", lock, d.By, d.Reason))
		msg := fmt.Sprintf("interlock %s overridden by %s: %s (it held up %s)", lock, d.By, d.Reason, what)
		l.tracker.Event(msg)
		noteIncident(ctx, l.timing, l.incident, msg)
		return DecisionResult{Decision: UpdateOverride, Message: "interlock " + d.Interlock + " passed for what it held up"}, nil
	}, workflow.UpdateHandlerOptions{Validator: func(ctx workflow.Context, d DecisionInput) error {
		return refuseOverride(d, l.tracker.Blocking)
	}})
}

// await shows that lock holds up what, and waits for its override, or until done says to stop
// waiting (nil override, no error then).
func (l *interlocks) await(ctx workflow.Context, lock anyops.Interlock, what string, done func() bool) (*activities.Override, error) {
	l.tracker.Block(string(lock), what)
	msg := fmt.Sprintf("interlock %s holds up %s; only an override passes it", lock, what)
	l.tracker.Event(msg)
	noteIncident(ctx, l.timing, l.incident, msg)
	defer l.tracker.Unblock(string(lock))
	if err := workflow.Await(ctx, func() bool {
		_, ok := l.overrides[lock]
		return ok || (done != nil && done())
	}); err != nil {
		return nil, err
	}
	d, ok := l.overrides[lock]
	if !ok {
		return nil, nil
	}
	return &activities.Override{By: d.By, Reason: d.Reason, Interlock: lock}, nil
}

// pass runs an activity that an interlock may refuse: on a refusal it waits for the override
// of that interlock and runs it again with it. An interlock refusing even with its override
// (DRBD itself refusing a second Primary) is the error.
func (l *interlocks) pass(ctx workflow.Context, what string, run func(*activities.Override) error) error {
	var ov *activities.Override
	for {
		err := run(ov)
		lock, ok := activities.InterlockOf(err)
		if !ok || (ov != nil && ov.Interlock == lock) {
			return err
		}
		var app *temporal.ApplicationError
		errors.As(err, &app)
		if ov, err = l.await(ctx, lock, what+": "+app.Message(), nil); err != nil {
			return err
		}
	}
}

// replacementSuffix is the suffix replacementName adds: four hex digits.
var replacementSuffix = regexp.MustCompile(`-[0-9a-f]{4}$`)

// replacementName names the server that replaces another: its name (without an earlier
// replacement's suffix) and four hex digits of the operation's scope, the same on every retry
// and replay, another for another incident.
func replacementName(server, scope string) string {
	sum := sha256.Sum256([]byte(server + "\x00" + scope))
	base := replacementSuffix.ReplaceAllString(server, "")
	return truncateName(base, 63-5) + "-" + hex.EncodeToString(sum[:])[:4]
}

func truncateName(s string, n int) string {
	if len(s) > n {
		return strings.TrimRight(s[:n], "-")
	}
	return s
}
