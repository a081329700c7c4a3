// Package worker hosts Anyops' workflows and activities on Temporal: it dials the client from
// config, registers every operation kind's workflow and every activity group, and runs one
// Temporal worker per task queue until its context ends, then lets running activities finish.
package worker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"go.temporal.io/sdk/client"
	tlog "go.temporal.io/sdk/log"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"github.com/anyops/anyops/activities"
	"github.com/anyops/anyops/alarms"
	"github.com/anyops/anyops/config"
	"github.com/anyops/anyops/inventory"
	"github.com/anyops/anyops/sandboxd/token"
	"github.com/anyops/anyops/workflows"
)

// Task queues the worker serves; the constants live with the kinds that name them.
const (
	TaskQueueControl  = workflows.TaskQueueControl
	TaskQueueConsoles = workflows.TaskQueueConsoles
)

// TaskQueues lists every queue a worker serves unless told otherwise.
var TaskQueues = []string{TaskQueueControl, TaskQueueConsoles}

// Defaults of Config fields left zero.
const (
	// DefaultDeadlockDetectionTimeout is well above the SDK's 1s: on loaded machines (CI, two
	// cores shared by many processes) a workflow goroutine can stall longer than that without
	// any deadlock.
	DefaultDeadlockDetectionTimeout = 10 * time.Second
	// DefaultStopTimeout is how long a stopping worker waits for running activities.
	DefaultStopTimeout = 30 * time.Second
	// DefaultMaxConcurrentActivities per task queue.
	DefaultMaxConcurrentActivities = 200
)

// Deps are what the activities need. Fields others add (cloud clients, sandboxd) stay nil
// where a deployment does not use them.
type Deps struct {
	Store *inventory.Store
	// AWS are the clients of the Cloud (EC2) and Hosts (SSM) activities; nil registers
	// neither, for a worker that does not reach the cloud.
	AWS *activities.Clients
	// SandboxdSigner signs the worker's calls to sandboxd (the key of config.API.SandboxdKey);
	// without it console workflows fail to place sandboxes.
	SandboxdSigner *token.Signer
	// Certificates configures the platform certificate's rotation (domain, ACME CA);
	// Store is filled from Deps.Store.
	Certificates activities.Certificates
	// SMTP is where the notices outbox sends its mail.
	SMTP activities.SMTPConfig
	// Alarms is the alarm intake of the RaiseAlarm activity (the NFS probe's alarms); Run
	// fills it with an alarms.Intake on Store and the worker's Temporal client when nil.
	Alarms activities.AlarmIntake
	// Temporal is the client the drill activities read workflows through; Run fills it.
	Temporal client.Client
	// Drills configures the drill runner's activities (docs/drills.md); without a cloudsim
	// they are registered but refuse to run (NoCloudsim).
	Drills DrillDeps
	// CommandPoll is the Hosts activities' SSM poll interval; 0 is activities.DefaultCommandPoll.
	CommandPoll time.Duration
}

// DrillDeps are what drills need beyond the cloud clients: the cloudsim they drive.
type DrillDeps struct {
	// Cloudsim is the base URL of cloudsim's control API (dev: its own cloudsim).
	Cloudsim string
	// BaseSpeed is cloudsim's speed while no drill runs (dev: cloudsim's --speed).
	BaseSpeed float64
}

// Register registers, on w, the workflow of every kind whose task queue is queue and every
// activity group. Activities are registered on every queue: they are stateless, and a
// workflow may send one to whichever queue its worker serves.
func Register(w worker.Registry, queue string, deps Deps) {
	RegisterWorkflows(w, queue)
	w.RegisterActivity(&activities.Inventory{Store: deps.Store})
	w.RegisterActivity(&activities.Sandboxes{Store: deps.Store, Signer: deps.SandboxdSigner})
	certs := deps.Certificates
	certs.Store = deps.Store
	w.RegisterActivity(&certs)
	w.RegisterActivity(&activities.Notices{Store: deps.Store, SMTP: deps.SMTP})
	if deps.Alarms != nil {
		w.RegisterActivity(&activities.Alarms{Intake: deps.Alarms})
	}
	if deps.AWS != nil {
		cloud := activities.NewCloud(deps.AWS)
		if deps.Store != nil {
			cloud.Clusters = activities.InventoryClusters{Store: deps.Store}
		}
		w.RegisterActivity(cloud)
		hosts := &activities.Hosts{Clients: deps.AWS, PollInterval: deps.CommandPoll}
		w.RegisterActivity(hosts)
		w.RegisterActivity(&activities.UserChecks{Inventory: &activities.Inventory{Store: deps.Store}, Hosts: hosts})
		w.RegisterActivity(&activities.Teardown{Store: deps.Store, Clients: deps.AWS})
		drills := &activities.Drills{Store: deps.Store, Clients: deps.AWS, Temporal: deps.Temporal, BaseSpeed: deps.Drills.BaseSpeed}
		if deps.Drills.Cloudsim != "" {
			drills.Sim = activities.NewSimControl(deps.Drills.Cloudsim)
		}
		w.RegisterActivity(drills)
	}
}

// RegisterWorkflows registers, on w, every workflow whose task queue is queue under the name
// its starters use: on a worker, or on a replayer of recorded histories (replay_test.go).
func RegisterWorkflows(w worker.WorkflowRegistry, queue string) {
	for _, k := range workflows.Kinds() {
		if k.TaskQueue == queue {
			w.RegisterWorkflowWithOptions(k.Workflow, workflow.RegisterOptions{Name: k.WorkflowType})
		}
	}
	if queue == TaskQueueConsoles {
		w.RegisterWorkflowWithOptions(workflows.ConsoleLifecycle, workflow.RegisterOptions{Name: workflows.ConsoleWorkflowType})
	}
	if queue == TaskQueueControl {
		// The fleet-sync schedule's tick: not an operation of the API, so not a kind.
		w.RegisterWorkflowWithOptions(workflows.ScheduledFleetSync, workflow.RegisterOptions{Name: workflows.ScheduledFleetSyncWorkflowType})
		// The building blocks the demo fleet, drills, releases and recoveries run as children.
		w.RegisterWorkflowWithOptions(workflows.BuildServer, workflow.RegisterOptions{Name: workflows.BuildServerWorkflowType})
		w.RegisterWorkflowWithOptions(workflows.BuildCluster, workflow.RegisterOptions{Name: workflows.BuildClusterWorkflowType})
		w.RegisterWorkflowWithOptions(workflows.SeedReplica, workflow.RegisterOptions{Name: workflows.SeedReplicaWorkflowType})
		// Drills are numbered by the API (POST /v1/drills) before they start: not a kind.
		w.RegisterWorkflowWithOptions(workflows.Drill, workflow.RegisterOptions{Name: workflows.DrillWorkflowType})
	}
}

// Config is what Run needs.
type Config struct {
	Client client.Client
	Deps   Deps
	Logger *slog.Logger
	// TaskQueues to serve; nil serves TaskQueues.
	TaskQueues               []string
	DeadlockDetectionTimeout time.Duration
	MaxConcurrentActivities  int
	StopTimeout              time.Duration
	// EnsureSchedules creates the schedules of Schedules that do not exist yet once the
	// workers are up: `anyops worker` sets it, so a deployment of workers alone reconciles.
	// (`anyops dev` ensures them after building its demo fleet instead.)
	EnsureSchedules bool
	// NFSWatch is the timing of the file servers' NFS watches the schedule's fleet syncs start
	// (zero fields: production defaults).
	NFSWatch workflows.NFSWatchTiming
}

// Run starts a Temporal worker on each task queue, ensures the schedules when asked, and
// blocks until ctx ends; then it stops them, waiting up to StopTimeout for running activities
// to finish. It returns an error if a worker fails to start or dies, or the schedules cannot
// be ensured.
func Run(ctx context.Context, cfg Config) error {
	if cfg.Client == nil {
		return errors.New("worker: Config.Client is required")
	}
	if cfg.Deps.Store == nil {
		return errors.New("worker: Config.Deps.Store is required")
	}
	logger := cfg.Logger
	if logger == nil {
		logger = slog.Default()
	}
	queues := cfg.TaskQueues
	if queues == nil {
		queues = TaskQueues
	}
	if cfg.Deps.Temporal == nil {
		cfg.Deps.Temporal = cfg.Client
	}
	if cfg.Deps.Alarms == nil {
		cfg.Deps.Alarms = &alarms.Intake{Store: cfg.Deps.Store, Temporal: cfg.Client, Logger: logger.With("component", "alarms")}
	}
	opts := Options(cfg)

	failed := make(chan error, len(queues))
	var started []worker.Worker
	stopAll := func() {
		for _, w := range started {
			w.Stop()
		}
	}
	for _, q := range queues {
		o := opts
		queue := q
		o.OnFatalError = func(err error) { failed <- fmt.Errorf("worker on %s: %w", queue, err) }
		w := worker.New(cfg.Client, queue, o)
		Register(w, queue, cfg.Deps)
		if err := w.Start(); err != nil {
			stopAll()
			return fmt.Errorf("worker: start on %s: %w", queue, err)
		}
		started = append(started, w)
		logger.Info("worker started", "task_queue", queue)
	}
	if cfg.EnsureSchedules {
		if err := EnsureSchedules(ctx, cfg.Client, cfg.NFSWatch); err != nil {
			stopAll()
			return fmt.Errorf("worker: %w", err)
		}
		logger.Info("schedules ensured", "schedules", len(Schedules(cfg.NFSWatch)))
	}

	var err error
	select {
	case <-ctx.Done():
		logger.Info("worker stopping: letting running activities finish", "timeout", opts.WorkerStopTimeout)
	case err = <-failed:
		logger.Error("worker failed", "err", err)
	}
	stopAll()
	logger.Info("worker stopped")
	return err
}

// Options are the Temporal worker options Run uses, with defaults for zero fields.
func Options(cfg Config) worker.Options {
	o := worker.Options{
		DeadlockDetectionTimeout:           cfg.DeadlockDetectionTimeout,
		MaxConcurrentActivityExecutionSize: cfg.MaxConcurrentActivities,
		WorkerStopTimeout:                  cfg.StopTimeout,
	}
	if o.DeadlockDetectionTimeout <= 0 {
		o.DeadlockDetectionTimeout = DefaultDeadlockDetectionTimeout
	}
	if o.MaxConcurrentActivityExecutionSize <= 0 {
		o.MaxConcurrentActivityExecutionSize = DefaultMaxConcurrentActivities
	}
	if o.WorkerStopTimeout <= 0 {
		o.WorkerStopTimeout = DefaultStopTimeout
	}
	return o
}

// Dial connects a Temporal client as configured, logging through logger. The API and the
// worker both use it. While Temporal cannot be reached (it is restarting, or starts after
// this process) Dial keeps trying, with a growing pause up to dialRetryMax, until ctx ends:
// a process started in an outage waits for Temporal instead of exiting.
// metrics, when not nil, receives the SDK's metrics (see Metrics).
func Dial(ctx context.Context, c config.Temporal, logger *slog.Logger, metrics client.MetricsHandler) (client.Client, error) {
	if logger == nil {
		logger = slog.Default()
	}
	pause := dialRetryMin
	for {
		cl, err := client.DialContext(ctx, client.Options{
			HostPort:       c.Address,
			Namespace:      c.Namespace,
			Logger:         tlog.NewStructuredLogger(logger.With("component", "temporal")),
			MetricsHandler: metrics,
		})
		if err == nil {
			return cl, nil
		}
		err = fmt.Errorf("temporal: dial %s (namespace %s): %w", c.Address, c.Namespace, err)
		logger.Warn("temporal not reachable yet; retrying", "err", err, "retry_in", pause)
		select {
		case <-ctx.Done():
			return nil, err
		case <-time.After(pause):
		}
		pause = min(2*pause, dialRetryMax)
	}
}

// The pauses between Dial's attempts.
const (
	dialRetryMin = 250 * time.Millisecond
	dialRetryMax = 5 * time.Second
)
