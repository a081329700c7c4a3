package workflows

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/anyops/anyops"
	"github.com/anyops/anyops/activities"
)

// ErrRolloutStopped is the error type of a rollout that ended early (errors past max errors,
// an abort); its result is still in the inventory and the workflow's Status.
const ErrRolloutStopped = "RolloutStopped"

// patchRun is one FleetPatch run's state.
type patchRun struct {
	in        FleetPatchInput
	plan      patchPlan
	tracker   *Tracker
	servers   []activities.PatchTargetServer
	roleSizes map[anyops.Role]int
	reports   map[string]activities.PatchServerReport

	concurrency, maxErrors int
	inFlight, errors       int
	down                   map[anyops.Role]int
	maxDownPct             int
	stopReason             string
	stopped, aborted       bool
	awaitingApproval       bool
	approved               bool
	approvedBy             string

	// What the users' health checks (WatchUsers) found.
	userChecks, userErrors int
	userErrorList          []string
}

// FleetPatch patches the fleet for an advisory (patch/<advisory>), in the Heartbleed
// response's order: per server, check before (versions and the active check of the running
// service), `apt-get update` and the upgrade of the advisory's packages, then — drained, so
// a console host admits no new console and a web server takes no requests — the restart of
// the role's services (where none links the library, nothing, and the report says so),
// then check after (versions, active check, service health), back in rotation, and the
// result recorded. Servers go a canary batch first (with an optional pause for approval),
// then the rest, at most MaxConcurrency at once and at most MaxRoleDownPercent of a role out
// of rotation at once (never a whole role). Errors past MaxErrors stop it: running servers
// finish, nothing new starts, and the report says why. A server SSM cannot reach is an error,
// reported as unreachable. When the flaw exposed keys (Advisory.KeysExposed) and the whole
// fleet is fixed, the platform's certificate is rotated and the owners of custom-domain
// apps on the exposed servers are told through the notices outbox.
func FleetPatch(ctx workflow.Context, in FleetPatchInput) (FleetPatchResult, error) {
	defer decisionsAnswered(ctx)
	tracker, err := NewTracker(ctx, patchStepPlan, patchStepCanary, patchStepApproval, patchStepRollout, patchStepCertificate, patchStepNotices)
	if err != nil {
		return FleetPatchResult{}, err
	}
	plan, err := in.check()
	if err != nil {
		return FleetPatchResult{}, temporal.NewNonRetryableApplicationError(err.Error(), anyops.EINVALID, err)
	}
	r := &patchRun{in: in, plan: plan, tracker: tracker, reports: map[string]activities.PatchServerReport{}, down: map[anyops.Role]int{}}
	if err := r.decisions(ctx); err != nil {
		return FleetPatchResult{}, err
	}
	timing := in.Timing.withDefaults()
	callCtx := workflow.WithActivityOptions(ctx, timing.callOptions())
	var inv *activities.Inventory
	adv := in.Advisory

	tracker.Start(patchStepPlan, "listing the target servers")
	var targets activities.PatchPlan
	if err := workflow.ExecuteActivity(callCtx, inv.PlanPatch, in.Target).Get(ctx, &targets); err != nil {
		tracker.Fail(patchStepPlan, err)
		return FleetPatchResult{}, err
	}
	r.servers, r.roleSizes = targets.Servers, targets.RoleSizes
	n := len(r.servers)
	r.concurrency, r.maxErrors = plan.concurrency.Of(n, true), plan.maxErrors.Of(n, false)
	canary := min(plan.canaryCount, n)
	records := make([]activities.PatchServerReport, n)
	for i, s := range r.servers {
		records[i] = activities.PatchServerReport{Server: s.Name, Role: s.Role, Seq: i, Canary: i < canary}
		r.reports[s.Name] = records[i]
	}
	info := workflow.GetInfo(ctx)
	rollout := activities.PatchRolloutRecord{Advisory: adv.ID, WorkflowID: info.WorkflowExecution.ID, RunID: info.WorkflowExecution.RunID,
		MaxErrors: r.maxErrors, RequestedBy: in.RequestedBy, Spec: activities.PatchSpec{Advisory: adv, Target: in.Target,
			MaxConcurrency: in.MaxConcurrency, MaxErrors: in.MaxErrors, MaxRoleDownPercent: plan.roleDownPct,
			CanaryCount: canary, CanaryApproval: in.Canary.Approve}}
	if err := workflow.ExecuteActivity(callCtx, inv.StartPatchRollout, activities.StartPatchRolloutInput{Rollout: rollout, Servers: records}).Get(ctx, nil); err != nil {
		tracker.Fail(patchStepPlan, err)
		return FleetPatchResult{}, err
	}
	waitUsers := func(workflow.Context) error { return nil }
	if in.WatchUsers {
		waitUsers = r.watchUsers(ctx)
	}
	tracker.Done(patchStepPlan, fmt.Sprintf("%d servers; %d at once, max errors %d, at most %d%% of a role down; canary %d", n, r.concurrency, r.maxErrors, plan.roleDownPct, canary))

	tracker.Start(patchStepCanary, fmt.Sprintf("patching the canary: %s", serverNames(r.servers[:canary])))
	r.rollOut(ctx, r.servers[:canary])
	if r.stopped || r.aborted {
		tracker.Fail(patchStepCanary, errors.New(r.stopReason))
	} else {
		tracker.Done(patchStepCanary, r.progress())
	}

	if !r.stopped && !r.aborted && in.Canary.Approve && canary < n {
		tracker.Start(patchStepApproval, "waiting for an operator to approve (approve) or abort the rollout")
		r.awaitingApproval = true
		_ = workflow.ExecuteActivity(callCtx, inv.SetPatchRolloutState, activities.PatchRolloutStateInput{Advisory: adv.ID, State: anyops.RolloutAwaitingApproval, Errors: r.errors}).Get(ctx, nil)
		ok, err := workflow.AwaitWithTimeout(ctx, plan.approvalWait, func() bool { return r.approved || r.aborted })
		r.awaitingApproval = false
		switch {
		case err != nil:
			return FleetPatchResult{}, err
		case !ok:
			r.aborted, r.stopReason = true, fmt.Sprintf("no approval within %s", plan.approvalWait)
		}
		if r.aborted {
			tracker.Fail(patchStepApproval, errors.New(r.stopReason))
		} else {
			tracker.Done(patchStepApproval, "approved by "+r.approvedBy)
			_ = workflow.ExecuteActivity(callCtx, inv.SetPatchRolloutState, activities.PatchRolloutStateInput{Advisory: adv.ID, State: anyops.RolloutRunning, Errors: r.errors}).Get(ctx, nil)
		}
	} else {
		tracker.Skip(patchStepApproval, "no approval asked")
	}

	if !r.stopped && !r.aborted {
		tracker.Start(patchStepRollout, fmt.Sprintf("patching %d servers", n-canary))
		r.rollOut(ctx, r.servers[canary:])
		if r.stopped || r.aborted {
			tracker.Fail(patchStepRollout, errors.New(r.stopReason))
		} else {
			tracker.Done(patchStepRollout, r.progress())
		}
	} else {
		tracker.Skip(patchStepRollout, "not started: "+r.stopReason)
	}

	res := r.result()
	if err := workflow.ExecuteActivity(callCtx, inv.SetPatchRolloutState, activities.PatchRolloutStateInput{
		Advisory: adv.ID, State: res.State, Errors: r.errors, Reason: r.stopReason}).Get(ctx, nil); err != nil {
		return res, err
	}
	// The final state ends the users' checks.
	if err := waitUsers(ctx); err != nil {
		return res, fmt.Errorf("the users' health checks: %w", err)
	}
	res.UserChecks, res.UserErrors, res.UserErrorList = r.userChecks, r.userErrors, r.userErrorList
	res.Servers = r.ordered()
	if res.State != anyops.RolloutCompleted || !adv.KeysExposed || res.VulnerableAfter > 0 {
		why := "the advisory exposes no keys"
		switch {
		case res.State != anyops.RolloutCompleted:
			why = "the rollout did not complete: " + r.stopReason
		case res.VulnerableAfter > 0:
			why = fmt.Sprintf("%d servers are still vulnerable: a new key would be exposed too", res.VulnerableAfter)
		}
		tracker.Skip(patchStepCertificate, why)
		tracker.Skip(patchStepNotices, why)
		if res.State != anyops.RolloutCompleted {
			tracker.status.Phase, tracker.status.Message = PhaseFailed, string(res.State)+": "+r.stopReason
			return res, temporal.NewNonRetryableApplicationError(fmt.Sprintf("patch %s %s: %s", adv.ID, res.State, r.stopReason), ErrRolloutStopped, nil, res)
		}
		tracker.Finish(r.progress())
		return res, nil
	}
	if err := r.afterFix(ctx, timing, &res); err != nil {
		return res, err
	}
	tracker.Finish(fmt.Sprintf("%s; certificate rotated: %v; %d notices sent", r.progress(), res.Certificate != nil && res.Certificate.Rotated, res.NoticesSent))
	return res, nil
}

// decisions registers the approve and abort updates. approve is accepted only while the
// rollout waits after its canary; abort while it runs: nothing new starts, running servers
// finish.
func (r *patchRun) decisions(ctx workflow.Context) error {
	if err := workflow.SetUpdateHandlerWithOptions(ctx, UpdateApprove, func(ctx workflow.Context, d DecisionInput) (string, error) {
		r.approved, r.approvedBy = true, d.By
		return "approved: the rollout goes on past the canary", nil
	}, workflow.UpdateHandlerOptions{Validator: func(ctx workflow.Context, d DecisionInput) error {
		if !r.awaitingApproval {
			return refused("the rollout is not waiting for an approval")
		}
		return nil
	}}); err != nil {
		return err
	}
	return workflow.SetUpdateHandlerWithOptions(ctx, UpdateAbort, func(ctx workflow.Context, d DecisionInput) (string, error) {
		r.aborted = true
		r.stopReason = fmt.Sprintf("aborted by %s: %s", d.By, d.Reason)
		return "aborted: nothing new starts; servers being patched finish", nil
	}, workflow.UpdateHandlerOptions{Validator: func(ctx workflow.Context, d DecisionInput) error {
		// A rollout keeps no abort of its own (aborted is a flag): a second abort is refused
		// as stopping already, with the reason of the first.
		return refuseAbort("rollout", d, nil, func() error {
			if r.aborted || r.stopped {
				return refused("the rollout is already stopping: %s", r.stopReason)
			}
			return nil
		})
	}})
}

// roleLimit is how many servers of a role may be out of rotation at once: the role-down share
// of its size, at least one, and never all of a role of two or more. A role of one server
// cannot be taken out at all (0).
func (r *patchRun) roleLimit(role anyops.Role) int {
	size := r.roleSizes[role]
	if size <= 1 {
		return 0
	}
	return max(1, min(size-1, size*r.plan.roleDownPct/100))
}

// takesOut says whether patching a server of the role takes it out of rotation (its service
// restarts).
func (r *patchRun) takesOut(role anyops.Role) bool { return len(r.in.Advisory.Restart[role]) > 0 }

// rollOut patches servers: as many at once as the concurrency allows and their roles' limits
// leave room for, in order; a server whose role has no room waits for one of its role to
// finish while later ones of other roles go ahead. It returns when every server has finished
// or the rollout stopped and the running ones finished.
func (r *patchRun) rollOut(ctx workflow.Context, servers []activities.PatchTargetServer) {
	pending := slices.Clone(servers)
	sel := workflow.NewSelector(ctx)
	for {
		for i := 0; i < len(pending) && r.inFlight < r.concurrency && !r.stopped && !r.aborted; {
			s := pending[i]
			if r.takesOut(s.Role) && r.roleLimit(s.Role) == 0 {
				r.finish(ctx, s, r.blocked(ctx, s))
				pending = slices.Delete(pending, i, i+1)
				continue
			}
			if r.takesOut(s.Role) && r.down[s.Role] >= r.roleLimit(s.Role) {
				i++
				continue
			}
			pending = slices.Delete(pending, i, i+1)
			r.inFlight++
			if r.takesOut(s.Role) {
				r.down[s.Role]++
				r.maxDownPct = max(r.maxDownPct, r.down[s.Role]*100/r.roleSizes[s.Role])
			}
			f, set := workflow.NewFuture(ctx)
			workflow.Go(ctx, func(gctx workflow.Context) { set.Set(r.patchServer(gctx, s), nil) })
			sel.AddFuture(f, func(f workflow.Future) {
				var rep activities.PatchServerReport
				_ = f.Get(ctx, &rep)
				r.inFlight--
				if r.takesOut(s.Role) {
					r.down[s.Role]--
				}
				r.finish(ctx, s, rep)
			})
		}
		if r.inFlight == 0 {
			return
		}
		sel.Select(ctx)
	}
}

// finish counts a server's outcome and stops the rollout once errors pass max errors.
func (r *patchRun) finish(ctx workflow.Context, s activities.PatchTargetServer, rep activities.PatchServerReport) {
	r.reports[s.Name] = rep
	if rep.Outcome.IsError() {
		r.errors++
		if r.errors > r.maxErrors && !r.stopped {
			r.stopped = true
			if r.stopReason == "" {
				r.stopReason = fmt.Sprintf("%d errors, more than max errors %d (last: %s %s)", r.errors, r.maxErrors, s.Name, rep.Outcome)
			}
		}
	}
	r.tracker.status.Message = r.progress()
	r.tracker.status.Updated = workflow.Now(ctx)
}

func (r *patchRun) blocked(ctx workflow.Context, s activities.PatchTargetServer) activities.PatchServerReport {
	rep := r.reports[s.Name]
	rep.Advisory, rep.Outcome = r.in.Advisory.ID, anyops.PatchBlocked
	rep.Message = fmt.Sprintf("not patched: restarting %s takes its whole role %s down (1 server); patch it by hand in a window",
		strings.Join(r.in.Advisory.Restart[s.Role], ", "), s.Role)
	r.record(ctx, rep)
	return rep
}

// record writes a server's report to the inventory; a report that cannot be written is
// logged and the rollout goes on (the workflow's result has it too).
func (r *patchRun) record(ctx workflow.Context, rep activities.PatchServerReport) {
	var inv *activities.Inventory
	opts := r.in.Timing.withDefaults().callOptions()
	if err := workflow.ExecuteActivity(workflow.WithActivityOptions(ctx, opts), inv.RecordPatchServer, rep).Get(ctx, nil); err != nil {
		workflow.GetLogger(ctx).Error("patch report not recorded", "server", rep.Server, "err", err)
	}
}

// patchServer runs the procedure on one server and returns its report.
func (r *patchRun) patchServer(ctx workflow.Context, s activities.PatchTargetServer) activities.PatchServerReport {
	adv := r.in.Advisory
	timing := r.in.Timing.withDefaults()
	hostOpts := timing.hostOptions()
	hostOpts.RetryPolicy.MaximumAttempts = patchAttempts
	hostCtx := workflow.WithActivityOptions(ctx, hostOpts)
	callCtx := workflow.WithActivityOptions(ctx, timing.callOptions())
	var (
		hosts *activities.Hosts
		inv   *activities.Inventory
	)
	started := workflow.Now(ctx)
	rep := r.reports[s.Name]
	rep.Advisory, rep.Outcome, rep.StartedAt, rep.Restarted = adv.ID, anyops.PatchRunning, &started, []string{}
	r.record(ctx, rep)
	end := func(outcome anyops.PatchOutcome, msg string) activities.PatchServerReport {
		t := workflow.Now(ctx)
		rep.Outcome, rep.Message, rep.FinishedAt = outcome, msg, &t
		r.record(ctx, rep)
		return rep
	}
	failed := func(step string, err error) activities.PatchServerReport {
		var app *temporal.ApplicationError
		if errors.As(err, &app) && app.Type() == activities.ErrHostUnreachable {
			return end(anyops.PatchUnreachable, fmt.Sprintf("%s: SSM cannot reach %s: %s", step, s.InstanceID, app.Message()))
		}
		return end(anyops.PatchFailed, fmt.Sprintf("%s: %s", step, errorText(err)))
	}
	if s.InstanceID == "" {
		return end(anyops.PatchUnreachable, "the inventory has no instance for it")
	}
	var packages []string
	for _, p := range adv.Packages {
		packages = append(packages, p.Name)
	}
	check := activities.CheckPatchInput{InstanceID: s.InstanceID, Packages: packages, Check: adv.Check.Kind, Endpoint: adv.Check.Endpoints[s.Role]}
	var before anyops.ServerCheck
	if err := workflow.ExecuteActivity(hostCtx, hosts.CheckPatch, check).Get(ctx, &before); err != nil {
		return failed("check before", err)
	}
	rep.Before = &before
	if before.Fixed(adv) {
		return end(anyops.PatchAlreadyFixed, "fixed versions installed and the active check clean: nothing to do")
	}
	var up activities.UpgradePackageOutput
	if err := workflow.ExecuteActivity(hostCtx, hosts.UpgradePackage, activities.UpgradePackageInput{InstanceID: s.InstanceID, Packages: packages}).Get(ctx, &up); err != nil {
		return failed("apt-get", err)
	}
	services := adv.Restart[s.Role]
	note := ""
	if len(services) == 0 {
		note = fmt.Sprintf("%s: the advisory names no service of role %s that links the fixed library", patchNothingRestartedShort, s.Role)
	} else {
		reason := fmt.Sprintf("patch %s: restarting %s", adv.ID, strings.Join(services, ", "))
		if err := workflow.ExecuteActivity(callCtx, inv.DrainServer, activities.DrainInput{Server: s.Name, Drain: true, Reason: reason, By: workflow.GetInfo(ctx).WorkflowExecution.ID}).Get(ctx, nil); err != nil {
			return failed("drain", err)
		}
		for _, svc := range services {
			if err := workflow.ExecuteActivity(hostCtx, hosts.RestartService, activities.ServiceInput{InstanceID: s.InstanceID, Service: svc}).Get(ctx, nil); err != nil {
				return failed("restart "+svc+" (left drained)", err)
			}
			rep.Restarted = append(rep.Restarted, svc)
		}
	}
	var after anyops.ServerCheck
	if err := workflow.ExecuteActivity(hostCtx, hosts.CheckPatch, check).Get(ctx, &after); err != nil {
		return failed("check after", err)
	}
	rep.After = &after
	if url := anyops.ServiceHealthURL(s.Role); len(services) > 0 && url != "" {
		var probe activities.HealthProbeOutput
		if err := workflow.ExecuteActivity(hostCtx, hosts.HealthProbe, activities.HealthProbeInput{InstanceID: s.InstanceID, URL: url}).Get(ctx, &probe); err != nil {
			return failed("health probe", err)
		}
		rep.After.Healthy = &probe.Healthy
		if !probe.Healthy {
			return end(anyops.PatchFailed, fmt.Sprintf("%s unhealthy after the restart (%s); left drained", url, probe.Detail))
		}
	}
	if !after.Fixed(adv) {
		why := "still vulnerable: " + after.Detail
		if out := after.Outdated(adv); len(out) > 0 {
			why = "still outdated: " + strings.Join(out, ", ")
		}
		return end(anyops.PatchFailed, why+" (left drained)")
	}
	if len(services) > 0 {
		if err := workflow.ExecuteActivity(callCtx, inv.DrainServer, activities.DrainInput{Server: s.Name}).Get(ctx, nil); err != nil {
			return failed("undrain", err)
		}
	}
	msg := "verified fixed"
	if note != "" {
		msg += "; " + note
	} else {
		msg += "; restarted " + strings.Join(rep.Restarted, ", ")
	}
	return end(anyops.PatchPatched, msg)
}

// errorText is an activity error's own message, without the wrappers Temporal adds.
func errorText(err error) string {
	var app *temporal.ApplicationError
	if errors.As(err, &app) {
		return app.Message()
	}
	return err.Error()
}

func serverNames(servers []activities.PatchTargetServer) string {
	var out []string
	for _, s := range servers {
		out = append(out, s.Name)
	}
	if len(out) == 0 {
		return "none"
	}
	return strings.Join(out, ", ")
}

// watchUsers starts the users' health checks (UserChecks.WatchUsers, one activity that runs
// its rounds every plan.userInterval until the rollout's state is final in the inventory) and
// returns the function that waits for them, once that state is written, and takes their
// counts.
func (r *patchRun) watchUsers(ctx workflow.Context) (wait func(workflow.Context) error) {
	var users *activities.UserChecks
	target := anyops.PatchTarget{Clusters: r.in.Target.Clusters, Zones: r.in.Target.Zones}
	for _, role := range anyops.Roles {
		if anyops.ServiceHealthURL(role) != "" {
			target.Roles = append(target.Roles, role)
		}
	}
	f := workflow.ExecuteActivity(workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout: 30 * 24 * time.Hour, HeartbeatTimeout: userChecksHeartbeat,
		RetryPolicy: &temporal.RetryPolicy{InitialInterval: time.Second, MaximumInterval: time.Minute},
	}), users.WatchUsers, activities.WatchUsersInput{Advisory: r.in.Advisory.ID, Target: target, Interval: r.plan.userInterval})
	return func(ctx workflow.Context) error {
		var seen activities.UsersWatched
		if err := f.Get(ctx, &seen); err != nil {
			return err
		}
		r.userChecks, r.userErrors, r.userErrorList = seen.Checks, seen.Errors, seen.List
		return nil
	}
}

// ordered is the reports in plan order.
func (r *patchRun) ordered() []activities.PatchServerReport {
	out := make([]activities.PatchServerReport, 0, len(r.servers))
	for _, s := range r.servers {
		rep := r.reports[s.Name]
		if rep.Outcome == anyops.PatchPending || rep.Outcome == "" {
			rep.Outcome = anyops.PatchNotStarted
			rep.Message = "not started: " + r.stopReason
		}
		rep.Advisory = r.in.Advisory.ID
		out = append(out, rep)
	}
	return out
}

func (r *patchRun) progress() string {
	counts := map[anyops.PatchOutcome]int{}
	for _, rep := range r.reports {
		counts[rep.Outcome]++
	}
	var parts []string
	for _, o := range anyops.PatchOutcomes {
		if counts[o] > 0 {
			parts = append(parts, fmt.Sprintf("%s %d", o, counts[o]))
		}
	}
	s := strings.Join(parts, ", ") + fmt.Sprintf("; errors %d of max %d", r.errors, r.maxErrors)
	if r.stopReason != "" {
		s += "; stopped: " + r.stopReason
	}
	return s
}

func (r *patchRun) result() FleetPatchResult {
	res := FleetPatchResult{PatchSummary: anyops.PatchSummary{Advisory: r.in.Advisory.ID, State: anyops.RolloutCompleted, Errors: r.errors, MaxErrors: r.maxErrors,
		StopReason: r.stopReason, Outcomes: map[string]int{}, MaxRoleDownPercent: r.maxDownPct,
		UserChecks: r.userChecks, UserErrors: r.userErrors, UserErrorList: r.userErrorList}}
	switch {
	case r.aborted:
		res.State = anyops.RolloutAborted
	case r.stopped:
		res.State = anyops.RolloutStopped
	}
	for _, rep := range r.ordered() {
		res.Outcomes[string(rep.Outcome)]++
		if rep.Before != nil && rep.Before.Check == anyops.CheckVulnerable {
			res.VulnerableBefore++
		}
		last := rep.Before
		if rep.After != nil {
			last = rep.After
		}
		switch {
		case last != nil && last.Check == anyops.CheckVulnerable:
			res.VulnerableAfter++
		case last == nil && r.in.Advisory.Check.Endpoints[rep.Role] != "":
			res.VulnerableAfter++ // never checked: nobody showed it fixed
		}
	}
	return res
}

// afterFix rotates the platform's certificate and tells the owners of custom-domain apps on
// the servers that were vulnerable.
func (r *patchRun) afterFix(ctx workflow.Context, timing FleetTiming, res *FleetPatchResult) error {
	adv := r.in.Advisory
	var (
		certs   *activities.Certificates
		inv     *activities.Inventory
		notices *activities.Notices
	)
	long := timing.waitOptions()
	longCtx := workflow.WithActivityOptions(ctx, long)
	callCtx := workflow.WithActivityOptions(ctx, timing.callOptions())

	r.tracker.Start(patchStepCertificate, "a new key and CSR for the platform's certificate")
	var cert activities.RotateCertificateOutput
	if err := workflow.ExecuteActivity(longCtx, certs.RotateCertificate, activities.RotateCertificateInput{
		Name: platformCertificateName, RotationKey: adv.ID, Reason: "keyCompromise"}).Get(ctx, &cert); err != nil {
		r.tracker.Fail(patchStepCertificate, err)
		return err
	}
	res.Certificate = &cert
	r.tracker.Done(patchStepCertificate, cert.Message)

	var exposed []string
	for _, rep := range res.Servers {
		if rep.Before != nil && rep.Before.Check == anyops.CheckVulnerable {
			exposed = append(exposed, rep.Server)
		}
	}
	r.tracker.Start(patchStepNotices, fmt.Sprintf("telling the owners of custom-domain apps on %d exposed servers", len(exposed)))
	var decided activities.DecideNoticesOutput
	if err := workflow.ExecuteActivity(callCtx, inv.DecideNotices, activities.DecideNoticesInput{Advisory: adv, Exposed: exposed, Actor: workflow.GetInfo(ctx).WorkflowExecution.ID}).Get(ctx, &decided); err != nil {
		r.tracker.Fail(patchStepNotices, err)
		return err
	}
	res.NoticesQueued = len(decided.Notices)
	var sent activities.SendNoticesOutput
	if err := workflow.ExecuteActivity(longCtx, notices.SendNotices, activities.SendNoticesInput{Advisory: adv.ID}).Get(ctx, &sent); err != nil {
		r.tracker.Fail(patchStepNotices, err)
		return err
	}
	res.NoticesSent = sent.Sent + sent.SentBefore
	msg := fmt.Sprintf("%d owners told (%d now, %d before)", res.NoticesSent, sent.Sent, sent.SentBefore)
	if sent.Waiting > 0 {
		msg += fmt.Sprintf("; %d wait in the outbox: the worker has no SMTP server", sent.Waiting)
	}
	r.tracker.Done(patchStepNotices, msg)
	return nil
}
