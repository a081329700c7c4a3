package workflows

import (
	"time"

	"go.temporal.io/sdk/temporal"

	"github.com/anyops/anyops"
	"github.com/anyops/anyops/activities"
)

// FleetPatch's input, result and their validation; the workflow is in fleet_patch.go.

// KindPatch is the operation kind of FleetPatch.
const KindPatch = "patch"

// FleetPatch's defaults.
const (
	DefaultPatchConcurrency     = "25%"
	DefaultPatchMaxErrors       = "0"
	DefaultMaxRoleDownPercent   = 50
	DefaultCanaryCount          = 1
	DefaultPatchApprovalTimeout = 24 * time.Hour
	DefaultUserCheckInterval    = 10 * time.Second
	// userChecksHeartbeat bounds the users' checks' heartbeat timeout: they heartbeat every
	// second, and their cancellation at the rollout's end arrives within 80% of it.
	userChecksHeartbeat        = 5 * time.Second
	patchAttempts              = 3 // tries of one host step before the server counts as failed
	maxCanaryCount             = 100
	platformCertificateName    = "platform"
	patchStepPlan              = "plan"
	patchStepCanary            = "canary"
	patchStepApproval          = "approval"
	patchStepRollout           = "rollout"
	patchStepCertificate       = "rotate-certificate"
	patchStepNotices           = "notify-owners"
	patchNothingRestartedShort = "nothing restarted"
)

// PatchCanary is the first batch: CanaryCount servers (default 1), then, with Approve, a
// pause until an operator approves (the approve update) or aborts.
type PatchCanary struct {
	Count   int  `json:"count,omitempty"`
	Approve bool `json:"approve,omitempty"`
}

// PatchTiming is FleetPatch's timing policy: the fleet timing of its calls and waits, and how
// long it waits for an approval before it gives up (aborts).
type PatchTiming struct {
	FleetTiming
	ApprovalTimeout time.Duration `json:"approval_timeout,omitempty"`
	// UserCheckInterval is how often the users' health checks (WatchUsers) probe the servers
	// in rotation; default 10 s.
	UserCheckInterval time.Duration `json:"user_check_interval,omitempty"`
}

// FleetPatchInput is the body of POST /v1/operations/patch.
type FleetPatchInput struct {
	Advisory anyops.Advisory    `json:"advisory"`
	Target   anyops.PatchTarget `json:"target,omitempty"`
	// MaxConcurrency and MaxErrors are SSM Run Command's: a count ("2") or a percentage of the
	// targets ("25%"). More errors than MaxErrors stop the rollout: servers running finish,
	// nothing new starts.
	MaxConcurrency string `json:"max_concurrency,omitempty"`
	MaxErrors      string `json:"max_errors,omitempty"`
	// MaxRoleDownPercent bounds the share of a role's servers out of rotation at once
	// (default 50); never the whole role.
	MaxRoleDownPercent int         `json:"max_role_down_percent,omitempty"`
	Canary             PatchCanary `json:"canary,omitempty"`
	// WatchUsers runs the users' health checks from the plan to the end of the rollout: every
	// Timing.UserCheckInterval, every web and console server of the target's clusters and
	// zones that is in rotation (running, not drained) gets its service's health probe, as a
	// user's request would reach it; a failed probe of a server that was in rotation before
	// and after it is a user error (UserErrors). They count, they do not stop the rollout.
	WatchUsers bool        `json:"watch_users,omitempty"`
	Timing     PatchTiming `json:"timing,omitempty"`
	// RequestedBy is set by the API from the authenticated caller.
	RequestedBy string `json:"requested_by,omitempty"`
}

// FleetPatchResult is the rollout's outcome: its figures, every server's report (also in the
// inventory: GET /v1/patches/{advisory}) and the certificate's rotation.
type FleetPatchResult struct {
	anyops.PatchSummary
	Servers     []activities.PatchServerReport      `json:"servers"`
	Certificate *activities.RotateCertificateOutput `json:"certificate,omitempty"`
}

// patchPlan is the validated, defaulted form of an input.
type patchPlan struct {
	concurrency  anyops.Rate
	maxErrors    anyops.Rate
	roleDownPct  int
	canaryCount  int
	approvalWait time.Duration
	userInterval time.Duration
}

func (in *FleetPatchInput) check() (patchPlan, error) {
	var p patchPlan
	if err := in.Advisory.Validate(); err != nil {
		return p, err
	}
	if err := in.Target.Validate(); err != nil {
		return p, err
	}
	if in.MaxConcurrency == "" {
		in.MaxConcurrency = DefaultPatchConcurrency
	}
	if in.MaxErrors == "" {
		in.MaxErrors = DefaultPatchMaxErrors
	}
	var err error
	if p.concurrency, err = anyops.ParseRate("max_concurrency", in.MaxConcurrency, false); err != nil {
		return p, err
	}
	if p.maxErrors, err = anyops.ParseRate("max_errors", in.MaxErrors, true); err != nil {
		return p, err
	}
	if in.MaxRoleDownPercent < 0 || in.MaxRoleDownPercent > 100 {
		return p, anyops.Errorf(anyops.EINVALID, "max_role_down_percent must be 1 to 100 (0: the default %d)", DefaultMaxRoleDownPercent)
	}
	if p.roleDownPct = in.MaxRoleDownPercent; p.roleDownPct == 0 {
		p.roleDownPct = DefaultMaxRoleDownPercent
	}
	if in.Canary.Count < 0 || in.Canary.Count > maxCanaryCount {
		return p, anyops.Errorf(anyops.EINVALID, "canary.count must be 0 to %d (0: the default %d)", maxCanaryCount, DefaultCanaryCount)
	}
	if p.canaryCount = in.Canary.Count; p.canaryCount == 0 {
		p.canaryCount = DefaultCanaryCount
	}
	if err := in.Timing.validate(); err != nil {
		return p, err
	}
	if in.Timing.ApprovalTimeout < 0 || in.Timing.ApprovalTimeout > 30*24*time.Hour {
		return p, anyops.Errorf(anyops.EINVALID, "timing.approval_timeout must be between 0 (the default 24h) and 30 days in nanoseconds")
	}
	if p.approvalWait = in.Timing.ApprovalTimeout; p.approvalWait == 0 {
		p.approvalWait = DefaultPatchApprovalTimeout
	}
	if in.Timing.UserCheckInterval < 0 || in.Timing.UserCheckInterval > time.Hour {
		return p, anyops.Errorf(anyops.EINVALID, "timing.user_check_interval must be between 0 (the default 10s) and 1h in nanoseconds")
	}
	if p.userInterval = in.Timing.UserCheckInterval; p.userInterval == 0 {
		p.userInterval = DefaultUserCheckInterval
	}
	return p, nil
}

func preparePatch(in *FleetPatchInput, actor string) (string, temporal.SearchAttributes, error) {
	if err := setRequestedBy(&in.RequestedBy, actor); err != nil {
		return "", temporal.SearchAttributes{}, err
	}
	if _, err := in.check(); err != nil {
		return "", temporal.SearchAttributes{}, err
	}
	return anyops.PatchWorkflowID(in.Advisory.ID), temporal.NewSearchAttributes(), nil
}
