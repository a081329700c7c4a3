package workflows

import (
	"fmt"
	"slices"

	"go.temporal.io/sdk/workflow"

	"github.com/anyops/anyops"
	"github.com/anyops/anyops/activities"
)

// replacementServer is the spare of the zone, or a server built for the failover. A server
// being built is returned once it has been built, or — with its build still bootstrapping,
// the future build — once it runs and no other way can serve any more.
func (w *failover) replacementServer(ctx workflow.Context) (activities.ServerInfo, string, workflow.Future, error) {
	const way = anyops.WayReplace
	var host string
	if spare, ok, err := w.claimSpare(ctx); err != nil {
		return activities.ServerInfo{}, "", nil, err
	} else if ok {
		w.setBranch(way, StepRunning, "taking the warm spare "+spare.Name, 0.3)
		// A spare is bootstrapped when it is built: its NFS service answers. One that does not is
		// bootstrapped now.
		var probe activities.HealthProbeOutput
		if err := workflow.ExecuteActivity(w.hostCtx(ctx), recHosts.HealthProbe, activities.HealthProbeInput{InstanceID: spare.InstanceID, URL: "http://localhost:2049/"}).Get(ctx, &probe); err != nil {
			return spare, "", nil, err
		}
		if !probe.Healthy {
			if err := workflow.ExecuteActivity(workflow.WithActivityOptions(ctx, w.timing.longHostOptions(w.timing.BuildTimeout)), recHosts.Bootstrap,
				activities.BootstrapInput{InstanceID: spare.InstanceID, Role: anyops.RoleFile, Timeout: w.timing.onHost(w.timing.BuildTimeout)}).Get(ctx, nil); err != nil {
				return spare, "", nil, err
			}
		}
		if err := workflow.ExecuteActivity(w.hostCtx(ctx), recHosts.HostName, activities.InstanceRef{InstanceID: spare.InstanceID}).Get(ctx, &host); err != nil {
			return spare, "", nil, err
		}
		return spare, host, nil, nil
	}
	name := replacementName(w.primary.Name, w.scope)
	w.setBranch(way, StepRunning, "building "+name+" (a new file server: about 20 minutes, most of it bootstrap)", 0.1)
	w.branchETA(ctx, way, w.timing.BuildTimeout*20/45) // a build takes about 20 of its 45-minute bound
	planned := activities.PlannedServer{Name: name, Role: anyops.RoleFile, Zone: w.primary.Zone, Cluster: w.primary.Cluster, InstanceType: w.primary.InstanceType}
	info := func(b BuiltServer) activities.ServerInfo {
		return activities.ServerInfo{Name: name, Role: anyops.RoleFile, Zone: planned.Zone, Cluster: planned.Cluster, InstanceID: b.InstanceID,
			InstanceType: planned.InstanceType, PrivateIP: b.PrivateIP, State: anyops.ServerRunning}
	}
	build := workflow.ExecuteChildWorkflow(workflow.WithChildOptions(ctx, workflow.ChildWorkflowOptions{
		WorkflowID: BuildServerWorkflowID(name), WorkflowExecutionTimeout: w.timing.BuildTimeout + w.timing.WaitTimeout,
	}), BuildServerWorkflowType, BuildServerInput{Scope: w.scope, Server: planned, ImageID: w.policy.ImageID, Timing: w.in.Timing,
		NotifyWorkflowID: workflow.GetInfo(ctx).WorkflowExecution.ID})
	var running BuiltServer
	gotRunning := false
	sel := workflow.NewSelector(ctx)
	sel.AddReceive(workflow.GetSignalChannel(ctx, SignalServerRunning), func(c workflow.ReceiveChannel, _ bool) {
		c.Receive(ctx, &running)
		gotRunning = true
	})
	sel.AddFuture(build, func(workflow.Future) {})
	sel.Select(ctx)
	if err := ctx.Err(); err != nil {
		return activities.ServerInfo{Name: name}, "", nil, err
	}
	if gotRunning && !build.IsReady() {
		w.setBranch(way, StepRunning, name+" runs and bootstraps; it takes the data over early once no other way can serve", 0.5)
		if err := workflow.Await(ctx, func() bool { return build.IsReady() || w.lostTo(way) || w.othersCannotServe(way) }); err != nil {
			return info(running), running.Hostname, nil, err
		}
		if !build.IsReady() {
			return info(running), running.Hostname, build, nil
		}
	}
	var built BuiltServer
	if err := build.Get(ctx, &built); err != nil {
		return activities.ServerInfo{Name: name}, "", nil, err
	}
	return info(built), built.Hostname, nil, nil
}

// claimSpare claims the first of the zone's warm spares no other failover has claimed: the
// inventory moves it into the failed server's cluster (only one claim of a spare succeeds)
// and its cluster tag follows. The spare claimed is w.claimed.
func (w *failover) claimSpare(ctx workflow.Context) (activities.ServerInfo, bool, error) {
	for _, spare := range w.spares {
		var ok bool
		if err := workflow.ExecuteActivity(w.callCtx(ctx), recInv.MoveServer, activities.MoveServerInput{Server: spare.Name, From: spare.Cluster, To: w.primary.Cluster}).Get(ctx, &ok); err != nil {
			return spare, false, err
		}
		if !ok {
			continue // another failover took it
		}
		if err := workflow.ExecuteActivity(w.callCtx(ctx), recCloud.TagResource, activities.TagResourceInput{ResourceID: spare.InstanceID,
			Tags: map[string]string{anyops.TagCluster: w.primary.Cluster}}).Get(ctx, nil); err != nil {
			return spare, false, err
		}
		w.claimed = &spare
		w.event(ctx, "claimed the warm spare %s (of %s)", spare.Name, spare.Cluster)
		taken := spare
		taken.Cluster = w.primary.Cluster
		return taken, true, nil
	}
	return activities.ServerInfo{}, false, nil
}

// releaseSpare gives a claimed spare that did not serve back to its standby cluster.
func (w *failover) releaseSpare(ctx workflow.Context) {
	if w.claimed == nil {
		return
	}
	spare := *w.claimed
	dctx, _ := workflow.NewDisconnectedContext(ctx)
	var ok bool
	if err := workflow.ExecuteActivity(w.callCtx(dctx), recInv.MoveServer, activities.MoveServerInput{Server: spare.Name, From: w.primary.Cluster, To: spare.Cluster}).Get(dctx, &ok); err != nil || !ok {
		w.tracker.Event(fmt.Sprintf("could not give the spare %s back to %s: %v", spare.Name, spare.Cluster, err))
		return
	}
	_ = workflow.ExecuteActivity(w.callCtx(dctx), recCloud.TagResource, activities.TagResourceInput{ResourceID: spare.InstanceID,
		Tags: map[string]string{anyops.TagCluster: spare.Cluster}}).Get(dctx, nil)
	w.tracker.Event(fmt.Sprintf("the spare %s is back in %s", spare.Name, spare.Cluster))
	w.claimed = nil
}

// cleanUpReplacement terminates a server the failover built and does not keep (a spare it
// took is left as it was). It holds no data: TerminateUnused refuses otherwise.
func (w *failover) cleanUpReplacement(ctx workflow.Context, srv activities.ServerInfo) {
	if srv.InstanceID == "" || slices.ContainsFunc(w.spares, func(s activities.ServerInfo) bool { return s.Name == srv.Name }) { // a spare is never terminated
		return
	}
	dctx, _ := workflow.NewDisconnectedContext(ctx)
	if err := workflow.ExecuteActivity(w.callCtx(dctx), recCloud.TerminateUnused, activities.TerminateUnusedInput{InstanceID: srv.InstanceID}).Get(dctx, nil); err != nil {
		w.tracker.Event(fmt.Sprintf("could not terminate %s (%s): %v", srv.Name, srv.InstanceID, err))
		return
	}
	w.tracker.Event(fmt.Sprintf("terminated %s, built by the replace way and not kept", srv.Name))
}
