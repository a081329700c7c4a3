package workflows

import (
	"fmt"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/anyops/anyops"
	"github.com/anyops/anyops/activities"
)

// ServerReplace (replace/<server>) replaces a failed web, console or task server by a new one
// of its role. At once the failed server is marked impaired, so a console host is no longer
// offered to new consoles (only running hosts are), and each of its open consoles is told its
// host is lost (ConsoleSignalHostLost): a registered user's console moves to another host, an
// anonymous one (or every one, by the policy) ends lost. Then it fences the failed server (a
// forced stop), builds the replacement (BuildServer: launched, bootstrapped for the role),
// mounts the file service on it by name and checks it reads and writes, terminates the failed
// instance (never one holding a data volume: the only-copy interlock) and records both.
func ServerReplace(ctx workflow.Context, in ServerReplaceInput) (ServerReplaceResult, error) {
	defer decisionsAnswered(ctx)
	r := &replacement{in: in, timing: in.Timing.withDefaults(), policy: in.Policy.withDefaults(), scope: workflow.GetInfo(ctx).FirstRunID,
		res: ServerReplaceResult{Server: in.Server}}
	var err error
	if r.tracker, err = NewTracker(ctx, ServerReplaceSteps...); err != nil {
		return r.res, err
	}
	r.locks = newInterlocks(r.tracker, r.timing, anyops.ServerReplaceWorkflowID(in.Server), in.IncidentID)
	if err := r.locks.register(ctx); err != nil {
		return r.res, err
	}
	for _, step := range []struct {
		name string
		run  func(workflow.Context) error
	}{
		{stepAssess, r.assess}, {stepWithdraw, r.withdraw}, {stepFence, r.fence}, {stepReplacement, r.build},
		{stepMountHome, r.mount}, {stepRetire, r.retire}, {stepRecord, r.record},
	} {
		if err := step.run(ctx); err != nil {
			r.tracker.Fail(step.name, err)
			noteIncident(ctx, r.timing, in.IncidentID, fmt.Sprintf("replacement of %s failed at %s: %v", in.Server, step.name, err))
			return r.res, err
		}
	}
	r.res.Overrides = r.locks.given
	msg := fmt.Sprintf("%s replaces %s (%s); %d consoles told their host is lost", r.res.Replacement, in.Server, r.target.Server.Role, r.res.Consoles)
	r.tracker.Finish(msg)
	resolveIncident(ctx, r.timing, in.IncidentID, msg)
	return r.res, nil
}

// Steps of ServerReplace, as its Status shows them.
const (
	stepWithdraw    = "withdraw"
	stepReplacement = "build-replacement"
	stepMountHome   = "mount-file-service"
	stepRetire      = "retire"
)

// ServerReplaceSteps are ServerReplace's steps in order.
var ServerReplaceSteps = []string{stepAssess, stepWithdraw, stepFence, stepReplacement, stepMountHome, stepRetire, stepRecord}

// ServerReplaceResult is what a replacement did.
type ServerReplaceResult struct {
	Server string `json:"server"`
	// Replacement is the new server of the role, ReplacementID its instance.
	Replacement   string `json:"replacement"`
	ReplacementID string `json:"replacement_id"`
	// Consoles counts the open consoles of a console host that were told it is lost.
	Consoles int `json:"consoles"`
	// Mount is the server the replacement's mount of the file service reaches.
	Mount     string   `json:"mount,omitempty"`
	Overrides []string `json:"overrides,omitempty"`
}

// replacement is one run of ServerReplace.
type replacement struct {
	in      ServerReplaceInput
	timing  RecoveryTiming
	policy  ReplacePolicy
	scope   string
	tracker *Tracker
	locks   *interlocks
	res     ServerReplaceResult

	target activities.RecoveryTarget
	built  BuiltServer
}

func (r *replacement) callCtx(ctx workflow.Context) workflow.Context {
	return workflow.WithActivityOptions(ctx, r.timing.callOptions())
}

func (r *replacement) assess(ctx workflow.Context) error {
	r.tracker.Start(stepAssess, "reading "+r.in.Server+" from the inventory")
	noteIncident(ctx, r.timing, r.in.IncidentID, fmt.Sprintf("replacement of %s started (requested by %s)", r.in.Server, r.in.RequestedBy))
	if err := workflow.ExecuteActivity(r.callCtx(ctx), recInv.RecoveryTarget, activities.RecoveryTargetInput{Server: r.in.Server}).Get(ctx, &r.target); err != nil {
		return err
	}
	s := r.target.Server
	if !isClientRole(s.Role) {
		return temporal.NewNonRetryableApplicationError(fmt.Sprintf("%s is a %s server: only web, console and task servers are replaced this way", s.Name, s.Role), anyops.EINVALID, nil)
	}
	_ = workflow.UpsertTypedSearchAttributes(ctx, SearchCluster.ValueSet(s.Cluster), SearchZone.ValueSet(s.Zone))
	r.tracker.Done(stepAssess, fmt.Sprintf("%s: %s server of %s in %s (%s)", s.Name, s.Role, s.Cluster, s.Zone, s.InstanceID))
	return nil
}

// withdraw takes the failed server out of service at once: marked impaired (no new console is
// placed on it), and each of its open consoles told its host is lost.
func (r *replacement) withdraw(ctx workflow.Context) error {
	r.tracker.Start(stepWithdraw, "marking "+r.in.Server+" impaired")
	if err := workflow.ExecuteActivity(r.callCtx(ctx), recInv.SetServerState, activities.SetServerStateInput{Server: r.in.Server, State: anyops.ServerImpaired}).Get(ctx, nil); err != nil {
		return err
	}
	if r.target.Server.Role != anyops.RoleConsole {
		r.tracker.Done(stepWithdraw, r.in.Server+" marked impaired")
		return nil
	}
	var consoles []activities.ConsoleRef
	if err := workflow.ExecuteActivity(r.callCtx(ctx), sandboxActs.ConsolesOn, activities.ConsolesOnInput{Server: r.in.Server}).Get(ctx, &consoles); err != nil {
		return err
	}
	lost := HostLost{Server: r.in.Server, EndLost: r.policy.MarkConsolesLost}
	var signals []workflow.Future
	for _, c := range consoles {
		signals = append(signals, workflow.SignalExternalWorkflow(ctx, c.WorkflowID, "", ConsoleSignalHostLost, lost))
	}
	for i, f := range signals {
		// A console whose workflow has ended is no longer there to move.
		if err := f.Get(ctx, nil); err != nil {
			r.tracker.Event(fmt.Sprintf("console %s: %v", consoles[i].ID, err))
			continue
		}
		r.res.Consoles++
	}
	what := "moved to other hosts (anonymous ones end lost)"
	if lost.EndLost {
		what = "ended lost"
	}
	r.tracker.Done(stepWithdraw, fmt.Sprintf("%s no longer offered to new consoles; %d open consoles %s", r.in.Server, r.res.Consoles, what))
	return nil
}

// fence force-stops the failed server: it must not come back to serve beside its replacement.
func (r *replacement) fence(ctx workflow.Context) error {
	r.tracker.Start(stepFence, "force-stopping "+r.in.Server)
	var f activities.Fence
	if err := workflow.ExecuteActivity(r.callCtx(ctx), recCloud.FenceInstance, activities.FenceInput{InstanceID: r.target.Server.InstanceID}).Get(ctx, &f); err != nil {
		return err
	}
	r.tracker.Done(stepFence, fmt.Sprintf("%s %s after a forced stop", r.in.Server, f.State))
	return nil
}

// build builds the replacement, bootstrapped for the role.
func (r *replacement) build(ctx workflow.Context) error {
	s := r.target.Server
	name := replacementName(s.Name, r.scope)
	r.tracker.Start(stepReplacement, "building "+name)
	planned := activities.PlannedServer{Name: name, Role: s.Role, Zone: s.Zone, Cluster: s.Cluster, InstanceType: s.InstanceType}
	if err := workflow.ExecuteChildWorkflow(workflow.WithChildOptions(ctx, workflow.ChildWorkflowOptions{
		WorkflowID: BuildServerWorkflowID(name), WorkflowExecutionTimeout: r.timing.BuildTimeout + r.timing.WaitTimeout,
	}), BuildServerWorkflowType, BuildServerInput{Scope: r.scope, Server: planned, ImageID: r.policy.ImageID, Timing: r.in.Timing}).Get(ctx, &r.built); err != nil {
		return err
	}
	r.res.Replacement, r.res.ReplacementID = name, r.built.InstanceID
	r.tracker.Done(stepReplacement, fmt.Sprintf("%s (%s) built and bootstrapped as %s", name, r.built.InstanceID, s.Role))
	return nil
}

// mount mounts the file service on the replacement by its name and checks it reads and writes.
func (r *replacement) mount(ctx workflow.Context) error {
	source := anyops.FileServiceSource(r.target.Server.Cluster)
	r.tracker.Start(stepMountHome, "mounting "+source+" on "+r.res.Replacement)
	nfs := r.timing.longHostOptions(r.timing.ClientTimeout)
	nfs.RetryPolicy = r.timing.retryPolicy()
	var m activities.MountNFSOutput
	if err := workflow.ExecuteActivity(workflow.WithActivityOptions(ctx, nfs), recHosts.MountNFS, activities.MountNFSInput{
		InstanceID: r.built.InstanceID, Source: source, Timeout: r.timing.onHost(r.timing.ClientTimeout)}).Get(ctx, &m); err != nil {
		return err
	}
	var h activities.MountHealth
	if err := workflow.ExecuteActivity(workflow.WithActivityOptions(ctx, r.timing.hostOptions()), recHosts.CheckMount,
		activities.CheckMountInput{InstanceID: r.built.InstanceID}).Get(ctx, &h); err != nil {
		return err
	}
	if !h.Serving {
		return temporal.NewApplicationError(fmt.Sprintf("%s does not read and write %s: %s", r.res.Replacement, source, h.Detail), activities.ErrCommandFailed)
	}
	r.res.Mount = h.Mount.Server
	r.tracker.Done(stepMountHome, fmt.Sprintf("%s reads and writes %s (served by %s)", r.res.Replacement, source, h.Mount.Server))
	return nil
}

// retire terminates the failed instance, unless it holds a data volume (only-copy).
func (r *replacement) retire(ctx workflow.Context) error {
	r.tracker.Start(stepRetire, "terminating "+r.in.Server)
	if err := r.locks.pass(ctx, "terminate "+r.in.Server, func(ov *activities.Override) error {
		return workflow.ExecuteActivity(r.callCtx(ctx), recCloud.TerminateUnused, activities.TerminateUnusedInput{InstanceID: r.target.Server.InstanceID, Override: ov}).Get(ctx, nil)
	}); err != nil {
		return err
	}
	r.tracker.Done(stepRetire, r.in.Server+" terminated")
	return nil
}

// record writes the replacement running and the failed server terminated into the inventory.
func (r *replacement) record(ctx workflow.Context) error {
	r.tracker.Start(stepRecord, "recording "+r.res.Replacement)
	s := r.target.Server
	rec := activities.FleetRecord{Servers: []activities.ServerRecord{
		{PlannedServer: activities.PlannedServer{Name: r.res.Replacement, Role: s.Role, Zone: s.Zone, Cluster: s.Cluster, InstanceType: s.InstanceType},
			InstanceID: r.built.InstanceID, PrivateIP: r.built.PrivateIP, State: anyops.ServerRunning},
		{PlannedServer: activities.PlannedServer{Name: s.Name, Role: s.Role, Zone: s.Zone, Cluster: s.Cluster, InstanceType: s.InstanceType},
			InstanceID: s.InstanceID, PrivateIP: s.PrivateIP, State: anyops.ServerTerminated},
	}}
	if err := workflow.ExecuteActivity(r.callCtx(ctx), recInv.RecordFleet, rec).Get(ctx, nil); err != nil {
		return err
	}
	r.tracker.Done(stepRecord, fmt.Sprintf("%s running, %s terminated", r.res.Replacement, s.Name))
	return nil
}
