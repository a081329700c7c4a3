package workflows

import (
	"errors"
	"fmt"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/anyops/anyops"
	"github.com/anyops/anyops/activities"
	"github.com/anyops/anyops/sandboxd/wire"
)

// Console phases.
const (
	consolePhaseOpening = "opening"
	consolePhaseOpen    = "open"
	consolePhaseClosing = "closing"
	consolePhaseClosed  = "closed"
	consolePhaseLost    = "lost"
)

// Steps of ConsoleLifecycle, as its Status shows them.
const (
	stepPlace   = "place"
	stepCreate  = "create-sandbox"
	stepServe   = "serve"
	stepDestroy = "destroy-sandbox"
)

// SandboxIDFor is the sandbox id of a console's generation-th sandbox: derived from the
// console so that CreateSandbox retries find the sandbox an earlier attempt made.
func SandboxIDFor(consoleID string, generation int) string {
	return fmt.Sprintf("%s-%d", consoleID, generation)
}

// ConsoleLifecycle is the entity workflow of one console (id console/<id>): it places the
// sandbox on the least loaded host, serves the console's life (keepalives, idle timeout, max
// lifetime, host checks) and destroys the sandbox when it ends. A lost host ends an anonymous
// console; a registered user's console gets a new sandbox on another host (their home lives
// on the file servers, not the host). It continues as new before its history grows long.
func ConsoleLifecycle(ctx workflow.Context, in ConsoleInput) (ConsoleResult, error) {
	in.Timing = in.Timing.withDefaults(in.Plan)
	w := &consoleRun{in: in}
	if in.Carry != nil {
		w.st = *in.Carry
		w.lostHost, w.st.LostHost = w.st.LostHost, nil
	} else {
		now := workflow.Now(ctx)
		w.st = ConsoleState{StartedAt: now, LastActive: now}
	}
	var err error
	if w.tracker, err = NewTracker(ctx, stepPlace, stepCreate, stepServe, stepDestroy); err != nil {
		return ConsoleResult{}, err
	}
	if err := w.registerHandlers(ctx); err != nil {
		return ConsoleResult{}, err
	}

	if w.st.SandboxID == "" {
		if err := w.place(ctx, nil); err != nil {
			w.openErr = err
			return w.finish(ctx, ConsoleEndLost)
		}
	} else {
		w.phase = consolePhaseOpen
		w.tracker.Done(stepPlace, w.st.Server)
		w.tracker.Done(stepCreate, w.st.SandboxID)
		w.tracker.Start(stepServe, fmt.Sprintf("serving on %s (run %d)", w.st.Server, w.st.Runs+1))
	}

	reason, canContinue := w.serve(ctx)
	if canContinue {
		return ConsoleResult{}, w.continueAsNew(ctx)
	}
	return w.finish(ctx, reason)
}

type consoleRun struct {
	in      ConsoleInput
	st      ConsoleState
	phase   string
	ending  string
	openErr error
	tracker *Tracker

	attach, detach, keepalive, closeCh, hostLostCh workflow.ReceiveChannel
	// lostHost is a HostLost signal for the console's current host, not yet acted on.
	lostHost *HostLost
}

func (w *consoleRun) expiresAt() time.Time { return w.st.StartedAt.Add(w.in.Timing.MaxLifetime) }

func (w *consoleRun) view() ConsoleView {
	return ConsoleView{Phase: w.phase, ConsoleState: w.st, ExpiresAt: w.expiresAt(), EndReason: w.ending}
}

func (w *consoleRun) registerHandlers(ctx workflow.Context) error {
	w.phase = consolePhaseOpening
	if err := workflow.SetQueryHandler(ctx, ConsoleQuery, func() (ConsoleView, error) { return w.view(), nil }); err != nil {
		return err
	}
	err := workflow.SetUpdateHandler(ctx, ConsoleUpdateOpen, func(ctx workflow.Context) (ConsoleOpened, error) {
		if err := workflow.Await(ctx, func() bool { return w.phase != consolePhaseOpening || w.openErr != nil }); err != nil {
			return ConsoleOpened{}, err
		}
		if w.openErr != nil {
			var app *temporal.ApplicationError
			if errors.As(w.openErr, &app) && app.Type() == activities.ErrTypeNoHost {
				return ConsoleOpened{}, temporal.NewApplicationError("no console host has a free slot", anyops.EUNAVAILABLE)
			}
			return ConsoleOpened{}, temporal.NewApplicationError("the console's sandbox could not be created: "+w.openErr.Error(), anyops.EINTERNAL)
		}
		if w.phase != consolePhaseOpen {
			return ConsoleOpened{}, temporal.NewApplicationError("the console is "+w.phase, anyops.ECONFLICT)
		}
		return ConsoleOpened{ConsoleID: w.in.ConsoleID, Server: w.st.Server, SandboxdURL: w.st.SandboxdURL,
			SandboxID: w.st.SandboxID, ExpiresAt: w.expiresAt(), KeepaliveInterval: w.in.Timing.KeepaliveInterval}, nil
	})
	if err != nil {
		return err
	}
	w.attach = workflow.GetSignalChannel(ctx, ConsoleSignalAttach)
	w.detach = workflow.GetSignalChannel(ctx, ConsoleSignalDetach)
	w.keepalive = workflow.GetSignalChannel(ctx, ConsoleSignalKeepalive)
	w.closeCh = workflow.GetSignalChannel(ctx, ConsoleSignalClose)
	w.hostLostCh = workflow.GetSignalChannel(ctx, ConsoleSignalHostLost)
	return nil
}

// Activity options of the console's steps. Quick calls (placement, host checks, inventory
// marks) are local activities: they run in the worker that runs the workflow, without a
// round trip through a task queue, and leave one marker event instead of three in the history.
var (
	// A local activity's ScheduleToCloseTimeout, unset, is its StartToCloseTimeout: every
	// attempt would have to fit in 30 s, and a database restart outlasts that. A mark rides
	// out a few minutes of the inventory being unavailable.
	consoleInventoryOptions = workflow.LocalActivityOptions{
		ScheduleToCloseTimeout: 5 * time.Minute,
		StartToCloseTimeout:    30 * time.Second,
		RetryPolicy:            &temporal.RetryPolicy{InitialInterval: 500 * time.Millisecond, BackoffCoefficient: 2, MaximumInterval: 30 * time.Second, MaximumAttempts: 20},
	}
	consolePlaceOptions = workflow.LocalActivityOptions{
		StartToCloseTimeout: 30 * time.Second,
		RetryPolicy:         &temporal.RetryPolicy{InitialInterval: 500 * time.Millisecond, BackoffCoefficient: 2, MaximumInterval: 5 * time.Second, MaximumAttempts: 3},
	}
	// A host check is one attempt: no answer is itself the answer the workflow counts.
	consoleCheckOptions = workflow.LocalActivityOptions{
		StartToCloseTimeout: 20 * time.Second,
		RetryPolicy:         &temporal.RetryPolicy{MaximumAttempts: 1},
	}
	consoleCreateOptions = workflow.ActivityOptions{
		StartToCloseTimeout: 2 * time.Minute, // the first sandbox of a host assembles its image
		// CreateSandbox heartbeats while sandboxd works: an attempt whose worker died is
		// retried within seconds, not after the whole StartToClose (the console's Open waits).
		HeartbeatTimeout: consoleSandboxdHeartbeat,
		RetryPolicy:      &temporal.RetryPolicy{InitialInterval: 500 * time.Millisecond, BackoffCoefficient: 2, MaximumInterval: 5 * time.Second, MaximumAttempts: 3},
	}
	// Destroying is retried until the sandbox is gone (MaximumAttempts 0 is unlimited).
	// DestroySandbox heartbeats while sandboxd works, as CreateSandbox does: an attempt whose
	// worker died is retried after the heartbeat timeout, not the whole StartToClose.
	consoleDestroyOptions = workflow.ActivityOptions{
		StartToCloseTimeout: 30 * time.Second,
		HeartbeatTimeout:    consoleSandboxdHeartbeat,
		RetryPolicy:         &temporal.RetryPolicy{InitialInterval: time.Second, BackoffCoefficient: 2, MaximumInterval: time.Minute, MaximumAttempts: 0},
	}
	// While a lost host's lease runs out, its sandbox is destroyed if the host answers: one
	// attempt per round.
	consoleFenceDestroyOptions = workflow.ActivityOptions{
		StartToCloseTimeout: 15 * time.Second,
		HeartbeatTimeout:    consoleSandboxdHeartbeat,
		RetryPolicy:         &temporal.RetryPolicy{MaximumAttempts: 1},
	}
	// A sandbox on a lost host is destroyed if the host answers soon; else its lease ends it.
	consoleLostDestroyOptions = workflow.ActivityOptions{
		StartToCloseTimeout: 15 * time.Second,
		HeartbeatTimeout:    consoleSandboxdHeartbeat,
		RetryPolicy:         &temporal.RetryPolicy{InitialInterval: time.Second, BackoffCoefficient: 2, MaximumInterval: 10 * time.Second, MaximumAttempts: 3},
	}
)

// consoleSandboxdHeartbeat is the heartbeat timeout of the calls to sandboxd that heartbeat
// while it works (CreateSandbox, DestroySandbox: every second).
const consoleSandboxdHeartbeat = 10 * time.Second

var sandboxActs *activities.Sandboxes

// place picks a host (not one of exclude) and creates the console's next sandbox there.
func (w *consoleRun) place(ctx workflow.Context, exclude []string) error {
	w.tracker.Start(stepPlace, "choosing the least loaded console host")
	var host activities.Host
	if err := workflow.ExecuteLocalActivity(workflow.WithLocalActivityOptions(ctx, consolePlaceOptions), sandboxActs.PickHost,
		activities.PickHostInput{Exclude: exclude}).Get(ctx, &host); err != nil {
		w.tracker.Fail(stepPlace, err)
		return err
	}
	w.tracker.Done(stepPlace, fmt.Sprintf("%s (%d of %d slots free)", host.Server, host.Free, host.Slots))

	gen := w.st.Generation + 1
	id := SandboxIDFor(w.in.ConsoleID, gen)
	w.tracker.Start(stepCreate, "creating sandbox "+id+" on "+host.Server)
	req := wire.CreateRequest{
		ID: id, User: w.in.User, UID: w.in.UID, Plan: w.in.Plan, Image: w.in.Image,
		Command: w.in.Command, Network: w.in.Network,
		// sandboxd's own timers back the workflow's up; a little later so the workflow's fire first.
		IdleTimeout: wire.Duration(w.in.Timing.IdleTimeout + w.in.Timing.HostCheckInterval),
		MaxLifetime: wire.Duration(max(w.expiresAt().Sub(workflow.Now(ctx))+w.in.Timing.HostCheckInterval, time.Second)),
		// The host checks renew it; a host cut off from them ends the sandbox by itself.
		Lease: wire.Duration(w.in.Timing.SandboxLease),
	}
	if plan := anyops.PlanLimits(w.in.Plan); time.Duration(req.IdleTimeout) > plan.IdleTimeout {
		req.IdleTimeout = 0 // the plan's
	}
	if plan := anyops.PlanLimits(w.in.Plan); time.Duration(req.MaxLifetime) > plan.MaxLifetime {
		req.MaxLifetime = 0
	}
	var sb wire.Sandbox
	if err := workflow.ExecuteActivity(workflow.WithActivityOptions(ctx, consoleCreateOptions), sandboxActs.CreateSandbox,
		activities.CreateSandboxInput{SandboxdURL: host.SandboxdURL, Request: req}).Get(ctx, &sb); err != nil {
		w.tracker.Fail(stepCreate, err)
		return err
	}
	w.st.Generation, w.st.Server, w.st.SandboxdURL, w.st.SandboxID = gen, host.Server, host.SandboxdURL, sb.ID
	w.st.Unanswered, w.st.Clients = 0, 0
	now := workflow.Now(ctx)
	w.st.LastActive, w.st.NextCheck = now, now.Add(w.in.Timing.HostCheckInterval)
	_ = workflow.UpsertTypedSearchAttributes(ctx, SearchServer.ValueSet(host.Server))

	expires := w.expiresAt()
	if err := w.mark(ctx, activities.MarkConsoleInput{ConsoleID: w.in.ConsoleID, State: anyops.ConsoleOpen,
		Server: host.Server, SandboxID: sb.ID, User: w.in.User, ExpiresAt: &expires}); err != nil {
		// The sandbox exists but the inventory cannot say so: give it back rather than leak it.
		w.tracker.Fail(stepCreate, err)
		w.destroy(ctx, consoleDestroyOptions)
		return err
	}
	w.tracker.Done(stepCreate, sb.ID+" on "+host.Server)
	w.phase = consolePhaseOpen
	w.tracker.Start(stepServe, "serving on "+host.Server)
	return nil
}

func (w *consoleRun) mark(ctx workflow.Context, in activities.MarkConsoleInput) error {
	return workflow.ExecuteLocalActivity(workflow.WithLocalActivityOptions(ctx, consoleInventoryOptions), sandboxActs.MarkConsole, in).Get(ctx, nil)
}

func (w *consoleRun) destroy(ctx workflow.Context, opts workflow.ActivityOptions) error {
	if w.st.SandboxID == "" {
		return nil
	}
	return workflow.ExecuteActivity(workflow.WithActivityOptions(ctx, opts), sandboxActs.DestroySandbox,
		activities.SandboxRef{SandboxdURL: w.st.SandboxdURL, SandboxID: w.st.SandboxID}).Get(ctx, nil)
}

// serve runs the console until it ends (returning why) or until its history should be cut
// short (returning canContinue).
func (w *consoleRun) serve(ctx workflow.Context) (reason string, canContinue bool) {
	for {
		now := workflow.Now(ctx)
		wake := w.st.NextCheck
		if t := w.expiresAt(); t.Before(wake) {
			wake = t
		}
		idleAt := w.st.LastActive.Add(w.in.Timing.IdleTimeout)
		if w.st.Clients == 0 && idleAt.Before(wake) {
			wake = idleAt
		}
		timerCtx, cancelTimer := workflow.WithCancel(ctx)
		sel := workflow.NewSelector(ctx)
		sel.AddFuture(workflow.NewTimer(timerCtx, max(wake.Sub(now), time.Millisecond)), func(workflow.Future) {})
		w.addSignals(ctx, sel)
		sel.AddReceive(ctx.Done(), func(workflow.ReceiveChannel, bool) { w.ending = ConsoleEndCancelled })
		sel.Select(ctx)
		cancelTimer()
		if w.ending != "" {
			return w.ending, false
		}
		if lost := w.lostHost; lost != nil {
			w.lostHost = nil
			if lost.EndLost {
				_ = w.mark(ctx, activities.MarkConsoleInput{ConsoleID: w.in.ConsoleID, State: anyops.ConsoleOpen, SandboxID: w.st.SandboxID, SandboxState: anyops.SandboxLost})
				return ConsoleEndLost, false
			}
			if reason := w.hostLost(ctx, true); reason != "" {
				return reason, false
			}
			continue
		}

		now = workflow.Now(ctx)
		switch {
		case !now.Before(w.expiresAt()):
			return ConsoleEndMaxLifetime, false
		case w.st.Clients == 0 && !now.Before(w.st.LastActive.Add(w.in.Timing.IdleTimeout)):
			return ConsoleEndIdle, false
		case !now.Before(w.st.NextCheck):
			if reason := w.checkHost(ctx); reason != "" {
				return reason, false
			}
		}

		info := workflow.GetInfo(ctx)
		if info.GetContinueAsNewSuggested() || info.GetCurrentHistoryLength() >= w.in.Timing.HistoryLimit {
			return "", true
		}
	}
}

func (w *consoleRun) addSignals(ctx workflow.Context, sel workflow.Selector) {
	sel.AddReceive(w.attach, func(c workflow.ReceiveChannel, _ bool) {
		c.Receive(ctx, nil)
		w.st.Clients++
		w.st.LastActive = workflow.Now(ctx)
	})
	sel.AddReceive(w.detach, func(c workflow.ReceiveChannel, _ bool) {
		c.Receive(ctx, nil)
		if w.st.Clients > 0 {
			w.st.Clients--
		}
		w.st.LastActive = workflow.Now(ctx)
	})
	sel.AddReceive(w.keepalive, func(c workflow.ReceiveChannel, _ bool) {
		c.Receive(ctx, nil)
		w.st.LastActive = workflow.Now(ctx)
	})
	sel.AddReceive(w.closeCh, func(c workflow.ReceiveChannel, _ bool) {
		c.Receive(ctx, nil)
		w.ending = ConsoleEndClosed
	})
	sel.AddReceive(w.hostLostCh, func(c workflow.ReceiveChannel, _ bool) {
		var lost HostLost
		c.Receive(ctx, &lost)
		// A signal about a host the console has already left is old news.
		if lost.Server == w.st.Server {
			w.lostHost = &lost
		}
	})
}

// checkHost asks sandboxd about the sandbox and returns why the console ends, or "".
func (w *consoleRun) checkHost(ctx workflow.Context) string {
	var h activities.SandboxHealth
	err := workflow.ExecuteLocalActivity(workflow.WithLocalActivityOptions(ctx, consoleCheckOptions), sandboxActs.SandboxStatus,
		activities.SandboxRef{SandboxdURL: w.st.SandboxdURL, SandboxID: w.st.SandboxID, TokenTTL: w.in.Timing.CheckTokenTTL}).Get(ctx, &h)
	now := workflow.Now(ctx)
	w.st.NextCheck = now.Add(w.in.Timing.HostCheckInterval)
	if err != nil {
		// The check itself failed (no worker took it in time): no news of the host. It may
		// still have sent its request, with a token good for CheckTokenTTL.
		h = activities.SandboxHealth{Health: activities.SandboxHealthUnreachable, Detail: err.Error(),
			TokenExpires: now.Add(w.in.Timing.CheckTokenTTL + time.Second)}
	}
	if h.TokenExpires.After(w.st.CheckTokens) {
		w.st.CheckTokens = h.TokenExpires
	}
	if h.Health == activities.SandboxHealthExited && h.EndReason == wire.EndLeaseExpired {
		// The host missed enough checks for the sandbox to end itself: the console is as good
		// as on a lost host, with the old sandbox known to be gone.
		return w.hostLost(ctx, false)
	}
	switch h.Health {
	case activities.SandboxHealthRunning:
		w.st.Unanswered = 0
		// sandboxd counts the clients attached to it directly: the truth the signals approximate.
		w.st.Clients = h.Clients
		if h.Clients > 0 {
			w.st.LastActive = now
		}
		return ""
	case activities.SandboxHealthExited:
		return consoleEndOf(h.EndReason)
	case activities.SandboxHealthGone:
		return ConsoleEndExited
	}
	w.st.Unanswered++
	w.tracker.Start(stepServe, fmt.Sprintf("host %s did not answer %d time(s): %s", w.st.Server, w.st.Unanswered, h.Detail))
	if w.st.Unanswered < w.in.Timing.HostLostAfter {
		return ""
	}
	return w.hostLost(ctx, true)
}

// consoleEndOf is why the console ends when sandboxd ended its sandbox: sandboxd's idle and
// lifetime timers back the workflow's up, and fire first when the control plane was away
// (a Temporal restart, every worker down) as the workflow's came due; the console then ends
// for that reason, not as if its shell had exited.
func consoleEndOf(sandboxEnd string) string {
	switch sandboxEnd {
	case wire.EndIdleTimeout:
		return ConsoleEndIdle
	case wire.EndMaxLifetime:
		return ConsoleEndMaxLifetime
	}
	return ConsoleEndExited
}

// hostLost records the console's sandbox lost and ends an anonymous console; a registered
// user's console moves to another host once the old sandbox is certainly gone (fence), so
// that no two sandboxes ever share one user. unreachable says the host did not answer (it is
// then excluded from placement, and its sandbox may still be running).
func (w *consoleRun) hostLost(ctx workflow.Context, unreachable bool) string {
	lostServer, lostSandbox := w.st.Server, w.st.SandboxID
	_ = w.mark(ctx, activities.MarkConsoleInput{ConsoleID: w.in.ConsoleID, State: anyops.ConsoleOpen, SandboxID: lostSandbox, SandboxState: anyops.SandboxLost})
	if w.in.Anonymous {
		return ConsoleEndLost
	}
	var exclude []string
	if unreachable {
		exclude = []string{lostServer}
		w.fence(ctx)
	}
	// A registered user's files live on the file servers: a sandbox elsewhere sees the same home.
	w.phase = consolePhaseOpening
	if err := w.place(ctx, exclude); err != nil {
		w.st.Server, w.st.SandboxID = lostServer, lostSandbox
		return ConsoleEndLost
	}
	return ""
}

// fence returns once the sandbox on the unreachable host is certainly gone: the host answered
// a delete, or the newest check token has expired and the lease it could have renewed has run
// out since (plus the clocks' margin), so the sandbox has ended itself. Until then it tries
// the delete once per host check interval.
func (w *consoleRun) fence(ctx workflow.Context) {
	t := w.in.Timing
	until := w.st.CheckTokens.Add(t.SandboxLease + t.ClockMargin)
	w.tracker.Start(stepServe, fmt.Sprintf("host %s lost: waiting until %s for sandbox %s to end before moving the console",
		w.st.Server, until.UTC().Format(time.RFC3339), w.st.SandboxID))
	for {
		if err := w.destroy(ctx, consoleFenceDestroyOptions); err == nil {
			return // the host answered: the old sandbox is gone now
		}
		now := workflow.Now(ctx)
		if !now.Before(until) || ctx.Err() != nil {
			return
		}
		_ = workflow.Sleep(ctx, min(t.HostCheckInterval, until.Sub(now)))
	}
}

// continueAsNew hands the console's state to a fresh run once no handler is mid-flight;
// signals already delivered are applied first so none is lost.
func (w *consoleRun) continueAsNew(ctx workflow.Context) error {
	for w.attach.ReceiveAsync(nil) {
		w.st.Clients++
	}
	for w.detach.ReceiveAsync(nil) {
		w.st.Clients = max(w.st.Clients-1, 0)
	}
	for w.keepalive.ReceiveAsync(nil) {
		w.st.LastActive = workflow.Now(ctx)
	}
	var lost HostLost
	for w.hostLostCh.ReceiveAsync(&lost) {
		if lost.Server == w.st.Server {
			w.lostHost = &lost
		}
	}
	if err := workflow.Await(ctx, func() bool { return workflow.AllHandlersFinished(ctx) }); err != nil {
		return err
	}
	next := w.in
	st := w.st
	st.Runs++
	st.LostHost = w.lostHost
	next.Carry = &st
	if w.closeCh.ReceiveAsync(nil) {
		// A close that arrived while handing over: finish here instead.
		_, err := w.finish(ctx, ConsoleEndClosed)
		return err
	}
	return workflow.NewContinueAsNewError(ctx, ConsoleLifecycle, next)
}

// finish ends the console: its sandbox is destroyed (retried until gone, unless its host is
// lost), the inventory is updated and an anonymous user is removed.
func (w *consoleRun) finish(ctx workflow.Context, reason string) (ConsoleResult, error) {
	w.ending = reason
	// Cleanup must run even when the workflow was cancelled.
	ctx, _ = workflow.NewDisconnectedContext(ctx)
	w.tracker.Done(stepServe, reason)
	state, sbState, opts := anyops.ConsoleClosed, anyops.SandboxEnded, consoleDestroyOptions
	if reason == ConsoleEndLost {
		state, sbState, opts = anyops.ConsoleLost, anyops.SandboxLost, consoleLostDestroyOptions
		w.phase = consolePhaseLost
	} else {
		w.phase = consolePhaseClosing
	}
	var errs []error
	w.tracker.Start(stepDestroy, "destroying sandbox "+w.st.SandboxID)
	if err := w.destroy(ctx, opts); err != nil {
		if reason != ConsoleEndLost {
			errs = append(errs, err)
		}
		w.tracker.Done(stepDestroy, "left to sandboxd's restart policy: "+err.Error())
	} else {
		w.tracker.Done(stepDestroy, "gone")
	}
	if err := w.mark(ctx, activities.MarkConsoleInput{ConsoleID: w.in.ConsoleID, State: state, SandboxID: w.st.SandboxID, SandboxState: sbState}); err != nil {
		errs = append(errs, err)
	}
	if w.in.Anonymous {
		err := workflow.ExecuteLocalActivity(workflow.WithLocalActivityOptions(ctx, consoleInventoryOptions), sandboxActs.DeleteAnonymousUser, w.in.User).Get(ctx, nil)
		if err != nil {
			errs = append(errs, err)
		}
	}
	if w.phase == consolePhaseClosing {
		w.phase = consolePhaseClosed
	}
	// Let a pending Open update answer (with the console's end) before the workflow closes.
	_ = workflow.Await(ctx, func() bool { return workflow.AllHandlersFinished(ctx) })
	if err := errors.Join(errs...); err != nil {
		w.tracker.Fail(stepDestroy, err)
		return ConsoleResult{EndReason: reason, SandboxID: w.st.SandboxID}, err
	}
	w.tracker.Finish("console " + reason)
	return ConsoleResult{EndReason: reason, SandboxID: w.st.SandboxID}, nil
}
