package main

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"time"

	"go.temporal.io/sdk/client"

	"github.com/anyops/anyops/activities"
	"github.com/anyops/anyops/alarms"
	"github.com/anyops/anyops/api"
	"github.com/anyops/anyops/config"
	"github.com/anyops/anyops/inventory"
	"github.com/anyops/anyops/sandboxd/token"
	"github.com/anyops/anyops/worker"
	"github.com/anyops/anyops/workflows"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// controlPlane is what the api, the worker and dev share: the inventory, a Temporal client
// and the key that signs sandboxd tokens.
type controlPlane struct {
	store       *inventory.Store
	temporal    client.Client
	sandboxdKey ed25519.PrivateKey   // nil: consoles are off
	retiredKeys []ed25519.PrivateKey // signed with before a rotation: their console tokens stay valid
	namespace   string               // the Temporal namespace, for the dashboard's links
	metrics     *worker.Metrics      // the Temporal SDK's metrics of this process
	logger      *slog.Logger
	// certs and smtp configure the worker's certificate rotation and owner notices.
	certs config.Certificates
	smtp  config.SMTP
	// speed is the speed factor of the simulated cloud (dev: cloudsim's; 0 elsewhere): the
	// recoveries alarms start, and the NFS probes, get their timing scaled by it.
	speed float64
}

// openControlPlane opens (and migrates) the inventory and dials Temporal.
func openControlPlane(ctx context.Context, common config.Common, db config.DB, tc config.Temporal, key ed25519.PrivateKey, logger *slog.Logger) (*controlPlane, error) {
	dsn, err := inventory.ResolveDSN(db.Driver, db.DSN, common.DataDir)
	if err != nil {
		return nil, err
	}
	store, err := inventory.Open(ctx, db.Driver, dsn)
	if err != nil {
		return nil, err
	}
	metrics := worker.NewMetrics()
	tcl, err := worker.Dial(ctx, tc, logger, metrics.Handler())
	if err != nil {
		store.Close()
		return nil, err
	}
	return &controlPlane{store: store, temporal: tcl, sandboxdKey: key, namespace: tc.Namespace, metrics: metrics, logger: logger}, nil
}

func (c *controlPlane) Close() {
	c.temporal.Close()
	_ = c.store.Close()
}

// readSandboxdKey reads the signing key when one is configured; without it consoles are off.
func readSandboxdKey(s config.Signing, logger *slog.Logger) (ed25519.PrivateKey, error) {
	if s.SandboxdKey == "" {
		logger.Warn("no --sandboxd-key: consoles are off")
		return nil, nil
	}
	key, err := token.ReadPrivateKey(s.SandboxdKey)
	if err != nil {
		return nil, fmt.Errorf("--sandboxd-key: %w", err)
	}
	return key, nil
}

// readRetiredKeys reads --sandboxd-retired-keys.
func readRetiredKeys(s config.Signing) ([]ed25519.PrivateKey, error) {
	var keys []ed25519.PrivateKey
	for _, f := range strings.Split(s.RetiredSandboxdKeys, ",") {
		if f = strings.TrimSpace(f); f == "" {
			continue
		}
		k, err := token.ReadPrivateKey(f)
		if err != nil {
			return nil, fmt.Errorf("--sandboxd-retired-keys: %w", err)
		}
		keys = append(keys, k)
	}
	return keys, nil
}

func (c *controlPlane) signer() *token.Signer {
	if c.sandboxdKey == nil {
		return nil
	}
	return token.NewSigner(c.sandboxdKey)
}

// runAPI serves the API until ctx ends; startup (nil: nothing) is what /readyz waits for
// beyond the database and Temporal.
func (c *controlPlane) runAPI(ctx context.Context, ac config.API, auth *api.Authorizer, startup func(context.Context) []string) error {
	snsClient, err := alarms.NewHTTPClient(ac.Alarms.SNSSigningCA)
	if err != nil {
		return fmt.Errorf("--sns-signing-ca: %w", err)
	}
	return api.Run(ctx, api.Config{Addr: ac.Addr, Deps: api.Deps{
		Startup:    startup,
		Collectors: []prometheus.Collector{c.metrics},
		Store:      c.store, Temporal: c.temporal, Auth: auth, Logger: c.logger.With("component", "api"),
		CORSOrigins: config.SplitList(ac.CORSOrigins), ConsolesEnabled: ac.PublicEmbed,
		Consoles:  api.ConsoleDeps{SandboxdKey: c.sandboxdKey, RetiredSandboxdKeys: c.retiredKeys},
		Dashboard: api.DashboardConfig{TemporalUIURL: ac.TemporalUIURL, TemporalNamespace: c.namespace},
		Alarms: api.AlarmDeps{SNSTopics: config.SplitList(ac.Alarms.SNSTopics), SNSCertHosts: config.SplitList(ac.Alarms.SNSCertHosts),
			SNSMaxAge: ac.Alarms.SNSMaxAge, SNSClient: snsClient, AlertmanagerToken: ac.Alarms.AlertmanagerToken, Speed: c.speed},
	}})
}

// runWorker runs workflows and activities until ctx ends; clouds may be nil for a worker that
// does not reach the cloud. ensureSchedules creates the Temporal schedules at start (`anyops
// worker`); dev ensures them itself once its demo fleet is built.
func (c *controlPlane) runWorker(ctx context.Context, wc config.Worker, clouds *activities.Clients, ensureSchedules bool) error {
	certs, err := activities.NewCertificates(c.store, c.certs)
	if err != nil {
		return err
	}
	return worker.Run(ctx, worker.Config{
		Client: c.temporal,
		Deps: worker.Deps{Store: c.store, AWS: clouds, SandboxdSigner: c.signer(), CommandPoll: wc.CommandPoll,
			Certificates: *certs, SMTP: activities.SMTPFromConfig(c.smtp),
			Alarms: &alarms.Intake{Store: c.store, Temporal: c.temporal, Logger: c.logger.With("component", "alarms"), Speed: c.speed},
			Drills: worker.DrillDeps{Cloudsim: wc.DrillCloudsim, BaseSpeed: wc.DrillBaseSpeed}},
		Logger: c.logger.With("component", "worker"),

		DeadlockDetectionTimeout: wc.DeadlockTimeout,
		MaxConcurrentActivities:  wc.MaxConcurrentActivities,
		EnsureSchedules:          ensureSchedules,
		NFSWatch:                 nfsWatchTiming(wc, c.speed),
	})
}

// nfsWatchTiming is the NFS watches' timing the worker settings ask for, scaled by a
// simulated-time speed (dev: cloudsim's; 1 elsewhere).
func nfsWatchTiming(wc config.Worker, speed float64) workflows.NFSWatchTiming {
	return workflows.NFSWatchTiming{Interval: wc.NFSProbeInterval, ProbeTimeout: wc.NFSProbeTimeout, FailuresToAlarm: wc.NFSProbeFailures}.Scaled(speed)
}

// serveWorkerMetrics serves the SDK's metrics and the process's on addr until ctx ends.
func (c *controlPlane) serveWorkerMetrics(ctx context.Context, addr string) error {
	reg := prometheus.NewRegistry()
	reg.MustRegister(c.metrics, collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	srv := &http.Server{Addr: addr, Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		<-ctx.Done()
		shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(shutdown)
	}()
	c.logger.Info("worker metrics listening", "addr", addr)
	if err := srv.ListenAndServe(); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("worker metrics: %w", err)
	}
	return nil
}

// startupLogger builds the logger and prints the settings, secrets masked.
func startupLogger(name string, common config.Common, b *config.Binder) (*slog.Logger, error) {
	logger, err := common.NewLogger(os.Stderr)
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(os.Stderr, "anyops %s, settings:\n", name)
	b.Print(os.Stderr)
	return logger, nil
}
