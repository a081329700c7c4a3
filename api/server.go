// Package api is the HTTP front of Anyops (Gin): it authenticates and validates requests,
// reads the inventory, turns operations into Temporal workflow starts, queries, updates
// (human decisions) and cancellations, and takes alarms in (SNS, Alertmanager) through the
// alarm intake. It never calls the cloud itself.
package api

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.temporal.io/sdk/client"

	"github.com/anyops/anyops"
	"github.com/anyops/anyops/inventory"
)

func init() { gin.SetMode(gin.ReleaseMode) }

// Deps are what the API serves from.
type Deps struct {
	// Collectors are added to /metrics: the Temporal SDK's metrics of the client, and in dev
	// those of the worker sharing it.
	Collectors []prometheus.Collector
	Store      *inventory.Store
	Temporal   client.Client
	Auth       *Authorizer
	Logger     *slog.Logger
	// CORSOrigins allowed on public endpoints; "*" allows any.
	CORSOrigins []string
	// ConsolesEnabled says whether the public console embed is switched on at all.
	ConsolesEnabled bool
	// SlotsPerConsoleHost is how many consoles one running console server takes, until the
	// live figures of sandboxd replace this estimate; zero means 64.
	SlotsPerConsoleHost int
	// Status overrides where GET /v1/status comes from; nil estimates it from the inventory
	// (from sandboxd's live capacity once Consoles.SandboxdKey is set).
	Status StatusSource
	// Consoles configures the consoles routes (consoles.go).
	Consoles ConsoleDeps
	// Dashboard configures the ops dashboard (dashboard.go).
	Dashboard DashboardConfig
	// Startup, when set, lists what the server still waits for before it is ready, each as
	// "what: how far it is" (`anyops dev`: the demo fleet and a console host); /readyz answers
	// 503 naming them until it returns none.
	Startup func(ctx context.Context) []string
	// Alarms configures the alarm endpoints (alarms.go).
	Alarms AlarmDeps
	// DrillTaskQueue overrides the task queue drills start on (tests give their own).
	DrillTaskQueue string
}

// RouteFunc registers routes on the /v1 group; auth gives the role middleware.
type RouteFunc func(v1 *gin.RouterGroup, auth *Authorizer)

// Server is the API: a Gin engine with every route, its metrics and its dependencies.
type Server struct {
	deps     Deps
	log      *slog.Logger
	engine   *gin.Engine
	v1       *gin.RouterGroup
	metrics  *metrics
	status   *cachedStatus
	consoles *consoleService
}

// New builds the API with its routes. Store, Temporal and Auth are required.
func New(deps Deps) *Server {
	if deps.Logger == nil {
		deps.Logger = slog.Default()
	}
	if deps.Auth == nil {
		deps.Auth = &Authorizer{}
	}
	if deps.Store != nil && deps.Auth.store == nil {
		// The people's tokens (`anyops token create`) live in the inventory.
		deps.Auth = deps.Auth.WithStore(deps.Store)
	}
	if deps.SlotsPerConsoleHost <= 0 {
		deps.SlotsPerConsoleHost = 64
	}
	if deps.Status == nil {
		deps.Status = inventoryStatus{store: deps.Store, enabled: deps.ConsolesEnabled, slots: deps.SlotsPerConsoleHost}
	}
	s := &Server{deps: deps, log: deps.Logger, metrics: newMetrics()}
	s.metrics.registry.MustRegister(deps.Collectors...)
	s.status = &cachedStatus{source: deps.Status, ttl: statusCacheTTL}

	e := gin.New()
	// Operation ids are business keys with '/' in them ("failover/file-1"); clients send them
	// URL-encoded (%2F), so routes match on the escaped path and parameters are unescaped.
	e.UseEscapedPath = true
	e.UnescapePathValues = true
	e.HandleMethodNotAllowed = true
	e.ContextWithFallback = true
	e.Use(s.recover, s.observe)
	e.NoRoute(func(c *gin.Context) {
		WriteError(c, anyops.Errorf(anyops.ENOTFOUND, "no route %s %s", c.Request.Method, c.Request.URL.Path))
	})
	e.NoMethod(func(c *gin.Context) {
		c.AbortWithStatusJSON(http.StatusMethodNotAllowed, ErrorBody{Error: ErrorDetail{Code: anyops.EINVALID, Message: "method " + c.Request.Method + " not allowed here"}})
	})
	s.engine = e

	e.GET("/healthz", s.healthz)
	e.GET("/readyz", s.readyz)
	e.GET("/metrics", gin.WrapH(promhttp.HandlerFor(s.metrics.registry, promhttp.HandlerOpts{})))
	s.v1 = e.Group("/v1")
	s.v1.Use(checkPathParams)
	s.v1.GET("/openapi.json", serveOpenAPI)
	s.registerStatus(s.v1)
	s.registerInventory(s.v1, deps.Auth)
	s.registerOperations(s.v1, deps.Auth)
	s.registerPatches(s.v1, deps.Auth)
	s.registerDecisions(s.v1, deps.Auth)
	s.registerIncidents(s.v1, deps.Auth)
	s.registerDrills(s.v1, deps.Auth)
	setupConsoles(s)
	setupDashboard(s)
	setupAlarms(s)
	return s
}

// RegisterRoutes adds routes to /v1 from outside the package.
func (s *Server) RegisterRoutes(fn RouteFunc) { fn(s.v1, s.deps.Auth) }

// Handler is the http.Handler of the API.
func (s *Server) Handler() http.Handler { return s.engine }

// Routes lists every registered route (method and Gin path).
func (s *Server) Routes() gin.RoutesInfo { return s.engine.Routes() }

func (s *Server) healthz(c *gin.Context) { c.JSON(http.StatusOK, gin.H{"status": "ok"}) }

// readyz checks the database and Temporal, and what Deps.Startup still waits for; a 503 names
// what is down or still coming (details of a failure go to the log).
func (s *Server) readyz(c *gin.Context) {
	ctx, cancel := context.WithTimeout(c.Request.Context(), 3*time.Second)
	defer cancel()
	checks := map[string]string{"database": "ok", "temporal": "ok"}
	var down, waiting []string
	if err := s.deps.Store.Ping(ctx); err != nil {
		s.log.Warn("readyz: database down", "err", err)
		checks["database"], down = "down", append(down, "database")
	}
	if _, err := s.deps.Temporal.CheckHealth(ctx, &client.CheckHealthRequest{}); err != nil {
		s.log.Warn("readyz: temporal down", "err", err)
		checks["temporal"], down = "down", append(down, "temporal")
	}
	if s.deps.Startup != nil {
		checks["startup"] = "ok"
		if waiting = s.deps.Startup(ctx); len(waiting) > 0 {
			checks["startup"] = "waiting"
		}
	}
	if len(down) > 0 || len(waiting) > 0 {
		var why []string
		if len(down) > 0 {
			why = append(why, strings.Join(down, ", ")+" down")
		}
		if len(waiting) > 0 {
			why = append(why, "waiting for "+strings.Join(waiting, "; "))
		}
		body := gin.H{
			"error":  ErrorDetail{Code: anyops.EUNAVAILABLE, Message: "not ready: " + strings.Join(why, "; ")},
			"checks": checks,
		}
		if len(waiting) > 0 {
			body["waiting"] = waiting
		}
		c.AbortWithStatusJSON(http.StatusServiceUnavailable, body)
		return
	}
	c.JSON(http.StatusOK, gin.H{"status": "ready", "checks": checks})
}

// recover turns a panic into a logged 500 so that none reaches a client.
func (s *Server) recover(c *gin.Context) {
	defer func() {
		if v := recover(); v != nil {
			if v == http.ErrAbortHandler {
				panic(v)
			}
			WriteError(c, fmt.Errorf("panic: %v", v))
		}
	}()
	c.Next()
}

// observe logs every request and counts it in the metrics by route and status.
func (s *Server) observe(c *gin.Context) {
	start := time.Now()
	c.Next()
	route := c.FullPath()
	if route == "" {
		route = "unmatched"
	}
	status := c.Writer.Status()
	elapsed := time.Since(start)
	s.metrics.observe(c.Request.Method, route, status, elapsed)
	attrs := []any{"method", c.Request.Method, "route", route, "path", c.Request.URL.Path, "status", status,
		"duration", elapsed, "bytes", c.Writer.Size(), "client", c.ClientIP()}
	if r := Caller(c); r != "" {
		attrs = append(attrs, "role", string(r))
	}
	level := slog.LevelInfo
	if len(c.Errors) > 0 {
		level = slog.LevelError
		attrs = append(attrs, "err", c.Errors.String())
	}
	s.log.Log(c.Request.Context(), level, "request", attrs...)
}

type metrics struct {
	registry *prometheus.Registry
	requests *prometheus.CounterVec
	latency  *prometheus.HistogramVec
}

func newMetrics() *metrics {
	m := &metrics{
		registry: prometheus.NewRegistry(),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "anyops_api_requests_total", Help: "HTTP requests by method, route and status.",
		}, []string{"method", "route", "status"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "anyops_api_request_duration_seconds", Help: "HTTP request latency by method and route.",
			Buckets: prometheus.DefBuckets,
		}, []string{"method", "route"}),
	}
	m.registry.MustRegister(m.requests, m.latency,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

func (m *metrics) observe(method, route string, status int, d time.Duration) {
	m.requests.WithLabelValues(method, route, fmt.Sprint(status)).Inc()
	m.latency.WithLabelValues(method, route).Observe(d.Seconds())
}

// Config is what Run needs.
type Config struct {
	Addr string
	Deps Deps
	// ShutdownTimeout bounds the wait for requests in flight when ctx ends; zero means 15s.
	ShutdownTimeout time.Duration
}

// Run builds the API from cfg.Deps and serves it on cfg.Addr until ctx ends.
func Run(ctx context.Context, cfg Config) error {
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return fmt.Errorf("api: listen %s: %w", cfg.Addr, err)
	}
	return New(cfg.Deps).Serve(ctx, ln, cfg.ShutdownTimeout)
}

// Serve serves the API on ln until ctx ends, then shuts down gracefully: it stops accepting
// connections and waits up to shutdownTimeout (zero: 15s) for requests in flight.
func (s *Server) Serve(ctx context.Context, ln net.Listener, shutdownTimeout time.Duration) error {
	srv := &http.Server{
		Handler:           s.Handler(),
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	s.log.Info("api listening", "addr", ln.Addr().String())
	select {
	case err := <-served:
		return fmt.Errorf("api: serve: %w", err)
	case <-ctx.Done():
	}
	if shutdownTimeout <= 0 {
		shutdownTimeout = 15 * time.Second
	}
	sctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()
	s.log.Info("api shutting down")
	if err := srv.Shutdown(sctx); err != nil {
		return fmt.Errorf("api: shutdown: %w", err)
	}
	if err := <-served; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("api: serve: %w", err)
	}
	return nil
}
