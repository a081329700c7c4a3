// Package sandboxd is the daemon on every console host: it creates sandboxes (through the jail
// runtime), runs each one's command on a PTY, streams the terminal over WebSocket to any number
// of clients, and enforces each sandbox's idle timeout and maximum lifetime. It knows nothing
// of Temporal; the worker's activities and the API call it over HTTP with Ed25519 tokens
// (package token). The protocol is described in docs/sandboxd.md.
package sandboxd

import (
	"bytes"
	"cmp"
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/coder/websocket"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/anyops/anyops"
	"github.com/anyops/anyops/sandboxd/homes"
	"github.com/anyops/anyops/sandboxd/network"
	"github.com/anyops/anyops/sandboxd/token"
	"github.com/anyops/anyops/sandboxd/wire"
)

// Config configures a sandboxd server.
type Config struct {
	Addr string // listen address, for Run
	// URL is this sandboxd's base URL as the control plane has it registered (PUT
	// /v1/servers/{name}/sandboxd): every token names it as its audience, so a token for
	// another host is refused here. Empty: http://<Addr>, when Addr names one address.
	URL string
	// Tokens are verified with PublicKey, the key in PublicKeyFile (PEM, see package token) and
	// every *.pub in PublicKeyDir, each by its key id; the directory is re-read when it
	// changes, so keys rotate without a restart. At least one key is required.
	PublicKey     ed25519.PublicKey
	PublicKeyFile string
	PublicKeyDir  string
	StorageRoot   string // per-user homes: <StorageRoot>/<user>, mode 0700, owned by the user
	// HomeQuota is how homes get their total size limit (the plan's Limits.HomeBytes): btrfs
	// (the default; the storage root must be a btrfs file system) or none (package homes).
	HomeQuota    homes.Mode
	StateDir     string // the jail's sandbox roots and records
	ImageStore   string // the image store (package images); empty: <StateDir>/images
	CgroupParent string // cgroup under which sandboxes' cgroups live; empty: the jail's default
	Slots        int    // sandboxes running at most
	// AllowedOrigins lists the Origins allowed to attach: full origins ("https://x.org") or
	// bare hosts ("x.org"); "*" allows any; empty allows no browser. A request without Origin
	// (not a browser) is allowed.
	AllowedOrigins []string
	// ExitedRetention is how long an exited sandbox stays visible to GET; 0: one hour.
	ExitedRetention time.Duration
	// Network configures the sandboxes' links: pool, private ranges, proxy allowlist, uplink
	// (package network; its Name defaults to one derived from CgroupParent).
	Network network.Config
	Logger  *slog.Logger
}

// Server is a sandboxd instance: an http.Handler plus the sandboxes it runs.
type Server struct {
	cfg    Config
	rt     runtime
	images imageResolver
	// release removes the (empty) cgroup parent; Run calls it on the way out, after Close.
	// sandboxd mounts nothing in the host's mount namespace: each sandbox's mounts live in
	// its own and go with its last process.
	release func() error
	verify  *token.Verifier
	once    *token.OnceSet // create tokens already used
	homes   *homes.Store
	metrics *metrics
	log     *slog.Logger
	mux     *http.ServeMux

	mu       sync.Mutex
	sessions map[string]*session
	reserved map[string]bool // ids being created: they hold a slot
	closed   bool
}

// New builds a Server on the real jail runtime and image store under cfg.StateDir. Before it
// returns it kills and removes every sandbox a previous sandboxd left behind: sandboxes do not
// survive a restart of their daemon (docs/sandboxd.md, "Restart policy").
func New(cfg Config) (*Server, error) {
	rt, store, err := openJail(cfg)
	if err != nil {
		return nil, err
	}
	s, err := newServer(cfg, rt, store)
	if err != nil {
		_ = rt.m.Close() // a daemon that does not start leaves no network table behind
		return nil, err
	}
	s.release = func() error { return errors.Join(rt.m.RemoveCgroupParent(), rt.m.Close()) }
	if def, err := store.Default(); err == nil {
		s.log.Info("image store", "dir", store.Dir(), "images", len(store.List()), "default", def.Ref())
	} else {
		s.log.Warn("this host has no default image: creates must name one (anyops image build, anyops image default)", "dir", store.Dir(), "images", len(store.List()))
	}
	return s, nil
}

func newServer(cfg Config, rt runtime, imgs imageResolver) (*Server, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Slots <= 0 {
		return nil, fmt.Errorf("sandboxd: slots must be positive, got %d", cfg.Slots)
	}
	if cfg.StorageRoot == "" {
		return nil, errors.New("sandboxd: storage root is required")
	}
	if cfg.ExitedRetention <= 0 {
		cfg.ExitedRetention = time.Hour
	}
	if cfg.HomeQuota == "" {
		cfg.HomeQuota = homes.QuotaBtrfs
	}
	verify, err := newVerifier(&cfg)
	if err != nil {
		return nil, err
	}
	if len(cfg.AllowedOrigins) == 0 {
		cfg.Logger.Warn("no allowed origins (--allowed-origins): browsers cannot attach; give the API's origin")
	}
	home, err := homes.Open(homes.Config{Root: cfg.StorageRoot, Mode: cfg.HomeQuota,
		Ledger: filepath.Join(cfg.StateDir, "ephemeral-homes", strings.ReplaceAll(cmp.Or(cfg.CgroupParent, "anyops"), "/", "_"))})
	if err != nil {
		return nil, fmt.Errorf("sandboxd: %w", err)
	}
	n, err := rt.CleanupStale()
	if err != nil {
		return nil, fmt.Errorf("sandboxd: clean up sandboxes of an earlier run: %w", err)
	}
	if n > 0 {
		cfg.Logger.Warn("removed sandboxes left by an earlier sandboxd; they are lost", "count", n)
	}
	// With the sandboxes of an earlier run gone, so are the throw-away homes they had.
	if n, err := home.RemoveLeftovers(); err != nil {
		return nil, fmt.Errorf("sandboxd: remove anonymous homes of an earlier run: %w", err)
	} else if n > 0 {
		cfg.Logger.Warn("removed anonymous homes left by an earlier sandboxd", "count", n)
	}
	s := &Server{
		cfg: cfg, rt: rt, images: imgs, verify: verify, once: token.NewOnceSet(), homes: home,
		metrics: newMetrics(cfg.Slots), log: cfg.Logger, mux: http.NewServeMux(),
		sessions: map[string]*session{}, reserved: map[string]bool{},
	}
	s.mux.HandleFunc("POST /v1/sandboxes", s.handleCreate)
	s.mux.HandleFunc("GET /v1/sandboxes", s.handleList)
	s.mux.HandleFunc("GET /v1/sandboxes/{id}", s.handleGet)
	s.mux.HandleFunc("DELETE /v1/sandboxes/{id}", s.handleDelete)
	s.mux.HandleFunc("GET /v1/sandboxes/{id}/attach", s.handleAttach)
	s.mux.HandleFunc("GET /v1/capacity", s.handleCapacity)
	s.mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	s.mux.Handle("GET /metrics", promhttp.HandlerFor(s.metrics.registry, promhttp.HandlerOpts{}))
	s.mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		s.fail(w, anyops.Errorf(anyops.ENOTFOUND, "no endpoint %s %s", r.Method, r.URL.Path))
	})
	return s, nil
}

// newVerifier builds the token verifier from cfg's keys and URL, filling in the URL's default.
func newVerifier(cfg *Config) (*token.Verifier, error) {
	if cfg.URL == "" {
		host, _, err := net.SplitHostPort(cfg.Addr)
		if ip := net.ParseIP(host); err != nil || host == "" || (ip != nil && ip.IsUnspecified()) {
			return nil, fmt.Errorf("sandboxd: its URL (--url), which tokens name as their audience, is required when listening on %q", cfg.Addr)
		}
		cfg.URL = "http://" + cfg.Addr
	}
	var fixed []ed25519.PublicKey
	if cfg.PublicKey != nil {
		fixed = append(fixed, cfg.PublicKey)
	}
	if cfg.PublicKeyFile != "" {
		k, err := token.ReadPublicKey(cfg.PublicKeyFile)
		if err != nil {
			return nil, fmt.Errorf("sandboxd: %w", err)
		}
		fixed = append(fixed, k)
	}
	ring, err := token.NewKeyRing(fixed, cfg.PublicKeyDir)
	if err != nil {
		return nil, fmt.Errorf("sandboxd: %w", err)
	}
	v, err := token.NewVerifier(ring, cfg.URL)
	if err != nil {
		return nil, fmt.Errorf("sandboxd: --url: %w", err)
	}
	cfg.Logger.Info("sandboxd accepts tokens", "audience", v.Audience(), "key_ids", ring.IDs())
	return v, nil
}

// URL is the audience this sandboxd's tokens must name.
func (s *Server) URL() string { return s.verify.Audience() }

// ServeHTTP serves the API.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	defer func() {
		if v := recover(); v != nil && v != http.ErrAbortHandler {
			s.log.Error("panic in handler", "path", r.URL.Path, "panic", v)
			s.fail(w, errors.New("panic"))
		}
	}()
	s.mux.ServeHTTP(w, r)
}

// Close ends every sandbox (reason "shutdown") and waits for them to be gone. Later creates
// are refused.
func (s *Server) Close() {
	s.mu.Lock()
	s.closed = true
	all := make([]*session, 0, len(s.sessions))
	for _, ss := range s.sessions {
		all = append(all, ss)
	}
	s.mu.Unlock()
	for _, ss := range all {
		ss.end(wire.EndShutdown)
	}
	for _, ss := range all {
		<-ss.exited
	}
}

// Run serves cfg.Addr until ctx ends, then ends every sandbox.
func Run(ctx context.Context, cfg Config) error {
	s, err := New(cfg)
	if err != nil {
		return err
	}
	defer func() {
		s.Close()
		if err := s.release(); err != nil {
			s.log.Warn("remove the cgroup parent", "err", err)
		}
	}()
	l, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return err
	}
	hs := &http.Server{Handler: s, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute}
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(l) }()
	s.log.Info("sandboxd listening", "addr", l.Addr().String(), "slots", cfg.Slots)
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	shutCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = hs.Shutdown(shutCtx)
	return nil
}

var (
	sandboxIDPattern = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,63}$`)
	userPattern      = regexp.MustCompile(`^[a-z_][a-z0-9_-]{0,31}$`)
)

const (
	maxArgs      = 64
	maxArgBytes  = 4096
	maxTermSize  = 1000
	maxBodyBytes = 64 << 10
	startTimeout = 30 * time.Second
	// maxClientsPerSandbox bounds the clients of one terminal (a browser tab stuck in a
	// reconnect loop must not exhaust the daemon); a racing attach may exceed it by a few.
	maxClientsPerSandbox = 32
)

func (s *Server) handleCreate(w http.ResponseWriter, r *http.Request) {
	raw, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBodyBytes))
	if err != nil {
		s.fail(w, anyops.Errorf(anyops.EINVALID, "request body: %v", err))
		return
	}
	claims, ok := s.authorizeCreate(w, r, raw)
	if !ok {
		return
	}
	var req wire.CreateRequest
	if err := decodeJSON(raw, &req); err != nil {
		s.fail(w, err)
		return
	}
	if req.ID != claims.Sandbox {
		s.fail(w, anyops.Errorf(anyops.EFORBIDDEN, "the token creates sandbox %q, the request asks for %q", claims.Sandbox, req.ID))
		return
	}
	spec, info, err := s.validateCreate(req)
	if err != nil {
		s.fail(w, err)
		return
	}
	id, err := s.reserve(req.ID)
	if err != nil {
		s.fail(w, err)
		return
	}
	defer s.unreserve(id)
	spec.ID, info.ID = id, id
	ephemeral := info.Plan == anyops.PlanAnonymous
	if spec.Home, err = s.homes.Prepare(homes.Home{User: info.User, UID: info.UID, GID: info.GID,
		QuotaBytes: info.Limits.HomeBytes, Ephemeral: ephemeral}); err != nil {
		s.fail(w, err)
		return
	}
	// Not the request's context: a setup is not abandoned halfway because its client hung up
	// (a sandbox whose creator left ends on its idle timeout). The timeout bounds the setup.
	startCtx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), startTimeout)
	defer cancel()
	proc, err := s.rt.Start(startCtx, spec)
	if err != nil {
		if ephemeral {
			s.releaseHome(info.User, id)
		}
		s.fail(w, fmt.Errorf("start sandbox %s: %w", id, err))
		return
	}
	info.CreatedAt = time.Now().UTC()
	ss := newSession(info, proc, s.metrics, s.log)
	if ephemeral {
		// A throw-away user's home goes with their sandbox.
		ss.onExit = func() { s.releaseHome(info.User, id) }
	}
	s.mu.Lock()
	if s.closed { // Close has already ended the sandboxes it knew of: this one must not escape it
		s.mu.Unlock()
		_ = proc.Destroy()
		if ephemeral {
			s.releaseHome(info.User, id)
		}
		s.fail(w, anyops.Errorf(anyops.EUNAVAILABLE, "sandboxd is shutting down"))
		return
	}
	s.sessions[id] = ss
	s.mu.Unlock()
	s.metrics.created.Inc()
	s.metrics.running.Inc()
	go func() {
		ss.run()
		time.AfterFunc(s.cfg.ExitedRetention, func() { s.forget(ss) })
	}()
	s.log.Info("sandbox created", "sandbox", id, "user", info.User, "plan", info.Plan, "image", info.Image, "sub", claims.Sub)
	writeJSON(w, http.StatusCreated, ss.snapshot())
}

// reserve claims a slot and an id (the requested one, or a new one).
func (s *Server) reserve(id string) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return "", anyops.Errorf(anyops.EUNAVAILABLE, "sandboxd is shutting down")
	}
	if _, ok := s.sessions[id]; ok || s.reserved[id] {
		return "", anyops.Errorf(anyops.ECONFLICT, "sandbox %s already exists", id)
	}
	if used := s.inUseLocked(); used >= s.cfg.Slots {
		return "", anyops.Errorf(anyops.EUNAVAILABLE, "all %d slots in use", s.cfg.Slots)
	}
	s.reserved[id] = true
	return id, nil
}

func (s *Server) unreserve(id string) {
	s.mu.Lock()
	delete(s.reserved, id)
	s.mu.Unlock()
}

func (s *Server) inUseLocked() int {
	n := len(s.reserved)
	for _, ss := range s.sessions {
		if !ss.isExited() {
			n++
		}
	}
	return n
}

// releaseHome removes the ephemeral home of user once no sandbox but done (which has ended,
// or never started) still uses it.
func (s *Server) releaseHome(user, done string) {
	s.mu.Lock()
	for id, ss := range s.sessions {
		if id != done && ss.info.User == user && !ss.isExited() {
			s.mu.Unlock()
			return
		}
	}
	s.mu.Unlock()
	if err := s.homes.Remove(user); err != nil {
		s.log.Error("remove anonymous home", "user", user, "err", err)
	}
}

func (s *Server) forget(ss *session) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.sessions[ss.info.ID] == ss {
		delete(s.sessions, ss.info.ID)
	}
}

func (s *Server) lookup(id string) (*session, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if ss, ok := s.sessions[id]; ok {
		return ss, nil
	}
	return nil, anyops.Errorf(anyops.ENOTFOUND, "no sandbox %s", id)
}

func (s *Server) handleList(w http.ResponseWriter, r *http.Request) {
	if _, ok := s.authorize(w, r, token.OpList, token.AnySandbox, false); !ok {
		return
	}
	s.mu.Lock()
	all := make([]*session, 0, len(s.sessions))
	for _, ss := range s.sessions {
		all = append(all, ss)
	}
	s.mu.Unlock()
	out := wire.SandboxList{Sandboxes: make([]wire.Sandbox, 0, len(all))}
	for _, ss := range all {
		out.Sandboxes = append(out.Sandboxes, ss.snapshot())
	}
	sort.Slice(out.Sandboxes, func(i, j int) bool { return out.Sandboxes[i].CreatedAt.Before(out.Sandboxes[j].CreatedAt) })
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) handleGet(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if _, ok := s.authorize(w, r, token.OpGet, id, false); !ok {
		return
	}
	ss, err := s.lookup(id)
	if err != nil {
		s.fail(w, err)
		return
	}
	// The control plane's host check reads its sandboxes: that is what renews their leases.
	ss.renewLease()
	writeJSON(w, http.StatusOK, ss.snapshot())
}

// handleDelete ends a sandbox and forgets it; the answer comes once its processes are gone.
func (s *Server) handleDelete(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if _, ok := s.authorize(w, r, token.OpDelete, id, false); !ok {
		return
	}
	ss, err := s.lookup(id)
	if err != nil {
		s.fail(w, err)
		return
	}
	ss.end(wire.EndDeleted)
	select {
	case <-ss.exited:
	case <-r.Context().Done():
		return
	}
	s.forget(ss)
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) handleAttach(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if _, ok := s.authorize(w, r, token.OpAttach, id, true); !ok {
		return
	}
	if err := s.checkOrigin(r); err != nil {
		s.fail(w, err)
		return
	}
	ss, err := s.lookup(id)
	if err != nil {
		s.fail(w, err)
		return
	}
	if n := ss.snapshot().Clients; n >= maxClientsPerSandbox {
		s.fail(w, anyops.Errorf(anyops.EUNAVAILABLE, "sandbox %s already has %d clients attached", id, n))
		return
	}
	// The Origin was checked above against our own list, which may differ from the Host.
	conn, err := websocket.Accept(w, r, &websocket.AcceptOptions{InsecureSkipVerify: true})
	if err != nil {
		return // Accept has answered the client
	}
	ss.attach(conn)
}

func (s *Server) checkOrigin(r *http.Request) error {
	origin := r.Header.Get("Origin")
	if origin == "" || slices.Contains(s.cfg.AllowedOrigins, "*") {
		return nil
	}
	u, err := url.Parse(origin)
	if err == nil && u.Host != "" {
		for _, allowed := range s.cfg.AllowedOrigins {
			if strings.EqualFold(allowed, origin) || strings.EqualFold(allowed, u.Host) {
				return nil
			}
		}
	}
	return anyops.Errorf(anyops.EFORBIDDEN, "origin %q is not allowed to attach", origin)
}

func (s *Server) handleCapacity(w http.ResponseWriter, r *http.Request) {
	if _, ok := s.authorize(w, r, token.OpCapacity, token.AnySandbox, false); !ok {
		return
	}
	s.mu.Lock()
	used := s.inUseLocked()
	s.mu.Unlock()
	c := wire.Capacity{Slots: s.cfg.Slots, InUse: used, Free: max(0, s.cfg.Slots-used)}
	if load, err := loadAverage(); err == nil {
		c.Load = load
	} else {
		s.log.Warn("read load average", "err", err)
	}
	writeJSON(w, http.StatusOK, c)
}

func loadAverage() ([3]float64, error) {
	var l [3]float64
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return l, err
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return l, fmt.Errorf("/proc/loadavg: %q", b)
	}
	for i := range l {
		if l[i], err = strconv.ParseFloat(f[i], 64); err != nil {
			return l, err
		}
	}
	return l, nil
}

// decodeJSON reads exactly one JSON object with only known fields.
func decodeJSON(raw []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return anyops.Errorf(anyops.EINVALID, "request body: %v", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return anyops.Errorf(anyops.EINVALID, "request body: want one JSON object")
	}
	return nil
}

// fail answers with err's status and JSON body; internal errors are logged, not shown.
func (s *Server) fail(w http.ResponseWriter, err error) {
	code := anyops.ErrorCode(err)
	status := anyops.HTTPStatus(code)
	if status == http.StatusInternalServerError {
		s.log.Error("request failed", "err", err)
	} else if status < 500 {
		s.metrics.refused.WithLabelValues(code).Inc()
	}
	var body wire.ErrorBody
	body.Error.Code, body.Error.Message = code, anyops.ErrorMessage(err)
	writeJSON(w, status, body)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
