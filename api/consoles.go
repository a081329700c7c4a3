package api

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"

	"github.com/anyops/anyops"
	"github.com/anyops/anyops/inventory"
	sbclient "github.com/anyops/anyops/sandboxd/client"
	sbtoken "github.com/anyops/anyops/sandboxd/token"
	"github.com/anyops/anyops/web"
	"github.com/anyops/anyops/workflows"
)

// ConsoleDeps configure the consoles part of the API. Whether anonymous visitors may create
// consoles is Deps.ConsolesEnabled (the public embed).
type ConsoleDeps struct {
	// SandboxdKey signs sandboxd attach tokens and, through a key derived from it, console
	// tokens. Nil switches the console routes off (503).
	SandboxdKey ed25519.PrivateKey
	// RetiredSandboxdKeys are keys signed with before a rotation: console tokens derived from
	// them stay valid (consoles live for days), nothing is signed with them any more.
	RetiredSandboxdKeys []ed25519.PrivateKey
	Admission           AdmissionConfig
	// Timing returns the workflow timing for a plan; nil uses workflows.DefaultConsoleTiming.
	Timing func(anyops.Plan) workflows.ConsoleTiming
	// AttachTTL is how long an attach URL handed to a client stays valid; zero: one minute.
	AttachTTL time.Duration
	// TaskQueue of the console workflows; empty: workflows.TaskQueueConsoles. Tests give each
	// stack its own so workers of other tests never pick up their consoles.
	TaskQueue string
	// OpenTimeout bounds how long POST /v1/consoles waits for the sandbox; zero: two minutes.
	OpenTimeout time.Duration
}

// ConsoleCommands are the programs a console may run, by the name a request gives.
var ConsoleCommands = map[string][]string{
	"bash":    {"/bin/bash", "-l"},
	"python3": {"python3"},
}

// CreateConsoleRequest is the body of POST /v1/consoles.
type CreateConsoleRequest struct {
	// User is the registered user to open the console for; it needs an operator token.
	// Empty: an anonymous console (only with the public embed on).
	User string `json:"user,omitempty"`
	// Command names one of ConsoleCommands; empty: bash.
	Command string `json:"command,omitempty"`
}

// ConsoleResponse describes a console to its client.
type ConsoleResponse struct {
	ID    string              `json:"id"`
	User  string              `json:"user"`
	State anyops.ConsoleState `json:"state"`
	// AttachURL is the WebSocket of the console's terminal with a short-lived token in it; GET
	// /v1/consoles/{id} with the console token returns a fresh one.
	AttachURL string `json:"attach_url,omitempty"`
	// Token is the console's own credential (Bearer, or ?token=) for GET, DELETE and
	// keepalive of this console; only the creating response carries it.
	Token            string     `json:"token,omitempty"`
	ExpiresAt        *time.Time `json:"expires_at,omitempty"`
	KeepaliveSeconds int        `json:"keepalive_seconds,omitempty"`
	Server           string     `json:"server,omitempty"`
	SandboxID        string     `json:"sandbox_id,omitempty"`
	CreatedAt        time.Time  `json:"created_at"`
}

// consoleService serves the consoles routes of one Server.
type consoleService struct {
	server     *Server
	cfg        ConsoleDeps
	signer     *sbtoken.Signer
	tokenKeys  [][]byte // console token keys: the current one first, then the retired ones
	admission  *admission
	killSwitch *killSwitch
	metrics    consoleMetrics
}

// consoleMetrics are the consoles' Prometheus metrics on the API's /metrics.
type consoleMetrics struct {
	opened   prometheus.Counter
	refused  *prometheus.CounterVec
	openTime prometheus.Histogram
}

func newConsoleMetrics(reg *prometheus.Registry) consoleMetrics {
	m := consoleMetrics{
		opened: prometheus.NewCounter(prometheus.CounterOpts{Name: "anyops_consoles_opened_total", Help: "Consoles opened through the API."}),
		refused: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "anyops_console_refusals_total",
			Help: "Console creations refused, by reason: switched_off, rate_limited, no_room, failed."}, []string{"reason"}),
		openTime: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "anyops_console_open_seconds",
			Help: "Time from POST /v1/consoles to a running sandbox.", Buckets: prometheus.ExponentialBuckets(0.01, 2, 12)}),
	}
	reg.MustRegister(m.opened, m.refused, m.openTime)
	return m
}

// setupConsoles wires consoles into a new Server: live status, admission, routes.
func setupConsoles(s *Server) {
	cfg := s.deps.Consoles
	if cfg.AttachTTL <= 0 {
		cfg.AttachTTL = time.Minute
	}
	if cfg.OpenTimeout <= 0 {
		cfg.OpenTimeout = 2 * time.Minute
	}
	if cfg.TaskQueue == "" {
		cfg.TaskQueue = workflows.TaskQueueConsoles
	}
	if cfg.Timing == nil {
		cfg.Timing = workflows.DefaultConsoleTiming
	}
	cs := &consoleService{server: s, cfg: cfg, admission: newAdmission(cfg.Admission), metrics: newConsoleMetrics(s.metrics.registry),
		killSwitch: &killSwitch{store: s.deps.Store, ttl: statusCacheTTL, log: s.log}}
	if cfg.SandboxdKey != nil {
		cs.signer = sbtoken.NewSigner(cfg.SandboxdKey)
		for _, k := range append([]ed25519.PrivateKey{cfg.SandboxdKey}, cfg.RetiredSandboxdKeys...) {
			cs.tokenKeys = append(cs.tokenKeys, consoleTokenKey(k))
		}
		if _, custom := s.deps.Status.(inventoryStatus); custom {
			s.status.source = liveStatus{store: s.deps.Store, clientFor: cs.sandboxd, enabled: s.deps.ConsolesEnabled, accepting: cs.killSwitch.accepting}
		}
	}
	s.consoles = cs

	auth := s.deps.Auth
	v1 := s.v1
	cors := consoleCORS(s.deps.CORSOrigins)
	v1.POST("/consoles", cors, s.needTemporal, cs.create)
	v1.OPTIONS("/consoles", cors)
	v1.GET("/consoles", auth.Require(RoleViewer), cs.list)
	v1.GET("/consoles/:id", cors, cs.get)
	v1.DELETE("/consoles/:id", cors, s.needTemporal, cs.delete)
	v1.POST("/consoles/:id/keepalive", cors, s.needTemporal, cs.keepalive)
	v1.OPTIONS("/consoles/:id", cors)
	v1.OPTIONS("/consoles/:id/keepalive", cors)
	v1.POST("/admin/consoles/accepting", auth.Require(RoleAdmin), cs.setAccepting)
	v1.GET("/images", auth.Require(RoleViewer), cs.listImages)
	v1.PUT("/images/default", auth.Require(RoleOperator), cs.setDefaultImage)
	s.engine.GET("/console", serveConsolePage)
	s.engine.GET("/console/assets/*file", serveFiles("/console/assets/", web.Assets()))
	s.engine.GET("/embed/*file", serveFiles("/embed/", web.Embed()))
	v1.GET("/users/:name", auth.Require(RoleViewer), cs.getUser)
	v1.PUT("/users/:name/image", auth.Require(RoleOperator), cs.setUserImage)
	v1.PUT("/servers/:name/sandboxd", auth.Require(RoleAdmin), cs.registerConsoleHost)
}

// serveConsolePage serves the console page; it is public (it creates anonymous consoles or
// re-attaches with the console token the tab keeps).
func serveConsolePage(c *gin.Context) {
	c.Header("Cache-Control", "no-cache")
	c.Header("X-Content-Type-Options", "nosniff")
	c.Data(http.StatusOK, "text/html; charset=utf-8", web.ConsolePage())
}

// serveFiles serves the files of fsys under prefix, without directory listings.
func serveFiles(prefix string, fsys fs.FS) gin.HandlerFunc {
	files := http.StripPrefix(prefix, http.FileServerFS(fsys))
	return func(c *gin.Context) {
		name := strings.TrimPrefix(c.Param("file"), "/")
		if st, err := fs.Stat(fsys, name); name == "" || err != nil || st.IsDir() {
			WriteError(c, anyops.Errorf(anyops.ENOTFOUND, "no file %s", c.Request.URL.Path))
			return
		}
		c.Header("Cache-Control", "public, max-age=300")
		c.Header("X-Content-Type-Options", "nosniff")
		files.ServeHTTP(c.Writer, c.Request)
	}
}

// consoleCORS lets the embed on another site create and use consoles: like CORS, with the
// methods and the Authorization header these routes need.
func consoleCORS(origins []string) gin.HandlerFunc {
	return corsWith(origins, "GET, POST, DELETE, OPTIONS", "Content-Type, Authorization")
}

func (cs *consoleService) sandboxd(baseURL string) (*sbclient.Client, error) {
	c, err := sbclient.New(baseURL, cs.signer)
	if err != nil {
		return nil, err
	}
	c.Subject = "api"
	c.HTTP = &http.Client{Timeout: 5 * time.Second}
	c.TTL = cs.cfg.AttachTTL
	return c, nil
}

func (cs *consoleService) ready() error {
	if cs.signer == nil {
		return anyops.Errorf(anyops.EUNAVAILABLE, "consoles are not configured on this server (no sandboxd key)")
	}
	return nil
}

// create serves POST /v1/consoles: admission, the user (a throw-away one for anonymous
// visitors), the inventory row, then the workflow by update-with-start; it answers once the
// sandbox exists.
func (cs *consoleService) create(c *gin.Context) {
	if err := cs.ready(); err != nil {
		WriteError(c, err)
		return
	}
	var req CreateConsoleRequest
	if err := BindJSON(c, &req); err != nil {
		WriteError(c, err)
		return
	}
	if err := checkNames("user", req.User); err != nil {
		WriteError(c, err)
		return
	}
	if req.Command == "" {
		req.Command = "bash"
	}
	command, ok := ConsoleCommands[req.Command]
	if !ok {
		WriteError(c, anyops.Errorf(anyops.EINVALID, "command %q is not one of bash, python3", req.Command))
		return
	}
	anonymous := c.GetHeader("Authorization") == ""
	if anonymous {
		if req.User != "" {
			WriteError(c, anyops.Errorf(anyops.EUNAUTHORIZED, "a console for user %q needs an operator token", req.User))
			return
		}
		if !cs.server.deps.ConsolesEnabled {
			WriteError(c, anyops.Errorf(anyops.EUNAUTHORIZED, "anonymous consoles are off: send Authorization: Bearer <token>"))
			return
		}
	} else {
		cs.server.deps.Auth.Require(RoleOperator)(c)
		if c.IsAborted() {
			return
		}
		if req.User == "" {
			WriteError(c, anyops.Errorf(anyops.EINVALID, "user is required with a token (omit the token for an anonymous console)"))
			return
		}
	}
	if !cs.killSwitch.accepting(c.Request.Context()) {
		cs.metrics.refused.WithLabelValues("switched_off").Inc()
		writeRefusal(c, &refusal{anyops.Errorf(anyops.EUNAVAILABLE, "new consoles are switched off for now"), retryAfterSwitchedOff})
		return
	}
	if anonymous {
		if r := cs.admission.admitAnonymous(ClientAddr(c.Request, cs.cfg.Admission.TrustedProxies), time.Now()); r != nil {
			cs.metrics.refused.WithLabelValues("rate_limited").Inc()
			writeRefusal(c, r)
			return
		}
	}
	ctx := c.Request.Context()
	var user inventory.User
	var err error
	if anonymous {
		user, err = cs.server.deps.Store.CreateUser(ctx, anonymousName(), anyops.PlanAnonymous, true)
	} else {
		user, err = cs.server.deps.Store.GetUser(ctx, req.User)
	}
	if err != nil {
		WriteError(c, err)
		return
	}
	con, err := cs.server.deps.Store.CreateConsole(ctx, inventory.Console{User: user.Name})
	if err != nil {
		cs.dropAnonymous(user)
		WriteError(c, err)
		return
	}
	in := workflows.ConsoleInput{ConsoleID: con.ID, User: user.Name, UID: user.UID, Plan: user.Plan, Anonymous: user.Anonymous,
		Command: command, Network: anyops.PlanNetwork(user.Plan), Timing: cs.cfg.Timing(user.Plan)}
	if user.Image != nil {
		in.Image = user.Image.Ref()
	}
	started := time.Now()
	opened, err := cs.open(ctx, in)
	if err != nil {
		reason := "failed"
		if anyops.ErrorCode(err) == anyops.EUNAVAILABLE {
			reason = "no_room"
			c.Header("Retry-After", strconv.Itoa(int(retryAfterFull/time.Second)))
		}
		cs.metrics.refused.WithLabelValues(reason).Inc()
		cs.abandon(con, user)
		WriteError(c, err)
		return
	}
	cs.metrics.opened.Inc()
	cs.metrics.openTime.Observe(time.Since(started).Seconds())
	attach, err := cs.attachURL(opened.SandboxdURL, opened.SandboxID)
	if err != nil {
		WriteError(c, err)
		return
	}
	exp := opened.ExpiresAt.UTC()
	c.JSON(http.StatusCreated, ConsoleResponse{ID: con.ID, User: user.Name, State: anyops.ConsoleOpen, AttachURL: attach,
		Token: cs.consoleToken(con.ID, exp), ExpiresAt: &exp, KeepaliveSeconds: int(opened.KeepaliveInterval / time.Second),
		Server: opened.Server, SandboxID: opened.SandboxID, CreatedAt: con.CreatedAt})
}

// open starts the console's workflow with update-with-start and waits for its sandbox.
func (cs *consoleService) open(ctx context.Context, in workflows.ConsoleInput) (workflows.ConsoleOpened, error) {
	ctx, cancel := context.WithTimeout(ctx, cs.cfg.OpenTimeout)
	defer cancel()
	tc := cs.server.deps.Temporal
	start := tc.NewWithStartWorkflowOperation(client.StartWorkflowOptions{
		ID:                       anyops.ConsoleWorkflowID(in.ConsoleID),
		TaskQueue:                cs.cfg.TaskQueue,
		WorkflowIDConflictPolicy: enumspb.WORKFLOW_ID_CONFLICT_POLICY_USE_EXISTING,
		TypedSearchAttributes:    temporal.NewSearchAttributes(workflows.SearchConsole.ValueSet(in.ConsoleID)),
	}, workflows.ConsoleWorkflowType, in)
	h, err := tc.UpdateWithStartWorkflow(ctx, client.UpdateWithStartWorkflowOptions{
		StartWorkflowOperation: start,
		UpdateOptions: client.UpdateWorkflowOptions{
			UpdateID:     "open",
			UpdateName:   workflows.ConsoleUpdateOpen,
			WaitForStage: client.WorkflowUpdateStageCompleted,
		},
	})
	var opened workflows.ConsoleOpened
	if err == nil {
		err = h.Get(ctx, &opened)
	}
	if err != nil {
		var app *temporal.ApplicationError
		if errors.As(err, &app) && app.Type() == anyops.EUNAVAILABLE {
			return opened, anyops.Errorf(anyops.EUNAVAILABLE, "no console host has room now; try again shortly")
		}
		if ctx.Err() != nil {
			return opened, anyops.Errorf(anyops.EUNAVAILABLE, "the console did not start within %s", cs.cfg.OpenTimeout)
		}
		return opened, fmt.Errorf("open console %s: %w", in.ConsoleID, err)
	}
	return opened, nil
}

// abandon cleans up after a console whose workflow never started (Temporal unreachable): a
// workflow that did start marks the console and removes its user itself.
func (cs *consoleService) abandon(con inventory.Console, u inventory.User) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err := cs.server.deps.Temporal.DescribeWorkflow(ctx, anyops.ConsoleWorkflowID(con.ID), "")
	var nf *serviceerror.NotFound
	if !errors.As(err, &nf) {
		return
	}
	lost := anyops.ConsoleLost
	if _, err := cs.server.deps.Store.UpdateConsole(ctx, con.ID, inventory.ConsoleUpdate{State: &lost}); err != nil {
		cs.server.log.Warn("mark abandoned console lost", "console", con.ID, "err", err)
	}
	cs.dropAnonymous(u)
}

func (cs *consoleService) dropAnonymous(u inventory.User) {
	if u.Anonymous {
		if err := cs.server.deps.Store.DeleteUser(context.Background(), u.Name); err != nil {
			cs.server.log.Warn("remove anonymous user", "user", u.Name, "err", err)
		}
	}
}

func anonymousName() string {
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	return "anon-" + hex.EncodeToString(b)
}

// attachURL is the WebSocket URL, with a fresh token, of a sandbox's terminal.
func (cs *consoleService) attachURL(sandboxdURL, sandboxID string) (string, error) {
	c, err := cs.sandboxd(sandboxdURL)
	if err != nil {
		return "", err
	}
	u, _, err := c.AttachURL(sandboxID)
	return u, err
}

func consoleID(c *gin.Context) (string, error) {
	id := c.Param("id")
	if _, err := uuid.Parse(id); err != nil || len(id) != 36 {
		return "", anyops.Errorf(anyops.ENOTFOUND, "console %q: not found", id)
	}
	return id, nil
}

// get serves GET /v1/consoles/{id}: the console, and for its owner or an operator a fresh
// attach URL (a reloaded page re-attaches with it). Minting one counts as activity.
func (cs *consoleService) get(c *gin.Context) {
	id, err := consoleID(c)
	if err != nil {
		WriteError(c, err)
		return
	}
	owner, ok := cs.authorizeConsole(c, id, RoleViewer)
	if !ok {
		return
	}
	con, err := cs.server.deps.Store.GetConsole(c.Request.Context(), id)
	if err != nil {
		WriteError(c, err)
		return
	}
	resp := consoleResponse(con)
	if con.State == anyops.ConsoleOpen && con.SandboxID != "" && (owner || Caller(c).Includes(RoleOperator)) {
		srv, err := cs.server.deps.Store.GetServer(c.Request.Context(), con.Server)
		if err != nil {
			WriteError(c, err)
			return
		}
		if resp.AttachURL, err = cs.attachURL(srv.SandboxdURL, con.SandboxID); err != nil {
			WriteError(c, err)
			return
		}
		cs.signal(c.Request.Context(), id, workflows.ConsoleSignalKeepalive)
	}
	c.JSON(http.StatusOK, resp)
}

func consoleResponse(con inventory.Console) ConsoleResponse {
	return ConsoleResponse{ID: con.ID, User: con.User, State: con.State, ExpiresAt: con.ExpiresAt,
		Server: con.Server, SandboxID: con.SandboxID, CreatedAt: con.CreatedAt}
}

// signal sends a signal to the console's workflow; a workflow already gone is no error.
func (cs *consoleService) signal(ctx context.Context, id, name string) error {
	err := cs.server.deps.Temporal.SignalWorkflow(ctx, anyops.ConsoleWorkflowID(id), "", name, nil)
	var nf *serviceerror.NotFound
	if errors.As(err, &nf) {
		return anyops.Errorf(anyops.ENOTFOUND, "console %q is not running", id)
	}
	if err != nil {
		cs.server.log.Warn("signal console", "console", id, "signal", name, "err", err)
		return anyops.Errorf(anyops.EUNAVAILABLE, "could not reach the console's workflow")
	}
	return nil
}

// signalRequest signals the workflow of the request's console {id} for its owner or an
// operator; on failure it has written the error response and returns ok false.
func (cs *consoleService) signalRequest(c *gin.Context, name string) (id string, ok bool) {
	id, err := consoleID(c)
	if err != nil {
		WriteError(c, err)
		return "", false
	}
	if _, ok := cs.authorizeConsole(c, id, RoleOperator); !ok {
		return "", false
	}
	if err := cs.signal(c.Request.Context(), id, name); err != nil {
		WriteError(c, err)
		return "", false
	}
	return id, true
}

// keepalive serves POST /v1/consoles/{id}/keepalive: the page is still there.
func (cs *consoleService) keepalive(c *gin.Context) {
	if _, ok := cs.signalRequest(c, workflows.ConsoleSignalKeepalive); ok {
		c.Status(http.StatusNoContent)
	}
}

// deleteWait is how long DELETE waits for the sandbox to be gone before answering 202.
const deleteWait = 20 * time.Second

// delete serves DELETE /v1/consoles/{id}: it asks the workflow to close the console and
// answers 200 once the sandbox is destroyed, or 202 if that takes longer than deleteWait
// (the workflow keeps trying until it is gone).
func (cs *consoleService) delete(c *gin.Context) {
	id, ok := cs.signalRequest(c, workflows.ConsoleSignalClose)
	if !ok {
		return
	}
	wctx, cancel := context.WithTimeout(c.Request.Context(), deleteWait)
	defer cancel()
	var res workflows.ConsoleResult
	err := cs.server.deps.Temporal.GetWorkflow(wctx, anyops.ConsoleWorkflowID(id), "").Get(wctx, &res)
	switch {
	case err == nil:
		c.JSON(http.StatusOK, gin.H{"id": id, "state": "closed", "end_reason": res.EndReason})
	case wctx.Err() != nil:
		c.JSON(http.StatusAccepted, gin.H{"id": id, "state": "closing"})
	default:
		WriteError(c, fmt.Errorf("close console %s: %w", id, err))
	}
}

// list serves GET /v1/consoles for staff.
func (cs *consoleService) list(c *gin.Context) {
	listHandler([]string{"user", "server", "state"}, func(ctx context.Context, q url.Values, p inventory.Page) ([]ConsoleResponse, string, error) {
		cons, next, err := cs.server.deps.Store.ListConsoles(ctx, inventory.ConsoleFilter{User: q.Get("user"), Server: q.Get("server"),
			State: anyops.ConsoleState(q.Get("state")), Page: p})
		out := make([]ConsoleResponse, len(cons))
		for i, con := range cons {
			out[i] = consoleResponse(con)
		}
		return out, next, err
	})(c)
}
