package api

import (
	"context"
	"math"
	"net"
	"net/http"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gin-gonic/gin"
	"golang.org/x/time/rate"

	"github.com/anyops/anyops"
	"github.com/anyops/anyops/activities"
	"github.com/anyops/anyops/inventory"
	sbclient "github.com/anyops/anyops/sandboxd/client"
)

// AdmissionConfig bounds anonymous console creation. Zero fields take the defaults below.
type AdmissionConfig struct {
	// PerClientEvery is the sustained interval between anonymous consoles from one client
	// address; PerClientBurst how many it may start at once.
	PerClientEvery time.Duration
	PerClientBurst int
	// GlobalPerSecond and GlobalBurst bound anonymous consoles from everyone together.
	GlobalPerSecond float64
	GlobalBurst     int
	// TrustedProxies are the addresses (CIDRs) whose X-Forwarded-For is believed; a request
	// from anywhere else is the client itself, whatever it claims.
	TrustedProxies []netip.Prefix
	// MaxClients bounds the per-client limiters kept; the least recently seen are evicted.
	MaxClients int
}

// Defaults of AdmissionConfig.
const (
	DefaultPerClientEvery  = 10 * time.Second
	DefaultPerClientBurst  = 5
	DefaultGlobalPerSecond = 20
	DefaultGlobalBurst     = 100
	DefaultMaxClients      = 100_000
)

// Retry-After values of refusals that no limiter computes.
const (
	retryAfterSwitchedOff = 60 * time.Second
	retryAfterFull        = 30 * time.Second
)

func (c AdmissionConfig) withDefaults() AdmissionConfig {
	if c.PerClientEvery <= 0 {
		c.PerClientEvery = DefaultPerClientEvery
	}
	if c.PerClientBurst <= 0 {
		c.PerClientBurst = DefaultPerClientBurst
	}
	if c.GlobalPerSecond <= 0 {
		c.GlobalPerSecond = DefaultGlobalPerSecond
	}
	if c.GlobalBurst <= 0 {
		c.GlobalBurst = DefaultGlobalBurst
	}
	if c.MaxClients <= 0 {
		c.MaxClients = DefaultMaxClients
	}
	return c
}

// ParseTrustedProxies reads a comma-separated list of addresses or CIDRs.
func ParseTrustedProxies(spec string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, s := range strings.Split(spec, ",") {
		if s = strings.TrimSpace(s); s == "" {
			continue
		}
		if !strings.Contains(s, "/") {
			a, err := netip.ParseAddr(s)
			if err != nil {
				return nil, anyops.Errorf(anyops.EINVALID, "trusted proxy %q is not an address or CIDR", s)
			}
			out = append(out, netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen()))
			continue
		}
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return nil, anyops.Errorf(anyops.EINVALID, "trusted proxy %q is not an address or CIDR", s)
		}
		out = append(out, p.Masked())
	}
	return out, nil
}

// ClientAddr is the address a request comes from: the peer, or, when the peer is a trusted
// proxy, the rightmost X-Forwarded-For entry that is not itself a trusted proxy (entries left
// of it are whatever the client chose to send).
func ClientAddr(r *http.Request, trusted []netip.Prefix) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	peer, err := netip.ParseAddr(host)
	if err != nil {
		return host
	}
	peer = peer.Unmap()
	isTrusted := func(a netip.Addr) bool {
		for _, p := range trusted {
			if p.Contains(a) {
				return true
			}
		}
		return false
	}
	if !isTrusted(peer) {
		return peer.String()
	}
	var hops []string
	for _, h := range r.Header.Values("X-Forwarded-For") {
		hops = append(hops, strings.Split(h, ",")...)
	}
	for i := len(hops) - 1; i >= 0; i-- {
		a, err := netip.ParseAddr(strings.TrimSpace(hops[i]))
		if err != nil {
			break // a malformed hop: trust nothing further left
		}
		a = a.Unmap()
		if !isTrusted(a) {
			return a.String()
		}
		peer = a
	}
	return peer.String()
}

// admission decides whether a new console may start: the operator's switch, and rate limits
// on anonymous creation per client address and overall.
type admission struct {
	cfg    AdmissionConfig
	global *rate.Limiter

	mu      sync.Mutex
	clients map[string]*clientLimiter
}

type clientLimiter struct {
	lim  *rate.Limiter
	seen time.Time
}

func newAdmission(cfg AdmissionConfig) *admission {
	cfg = cfg.withDefaults()
	return &admission{cfg: cfg, global: rate.NewLimiter(rate.Limit(cfg.GlobalPerSecond), cfg.GlobalBurst), clients: map[string]*clientLimiter{}}
}

// refusal is a 429 or 503 with the time after which a retry may succeed.
type refusal struct {
	err        *anyops.Error
	retryAfter time.Duration
}

// RateKey is what a client's rate limit is kept under: its address, and for IPv6 its /64 —
// the one network a single subscriber gets, from which they can use as many addresses as
// they like.
func RateKey(addr string) string {
	a, err := netip.ParseAddr(addr)
	if err != nil || !a.Unmap().Is6() {
		return addr
	}
	p, _ := a.WithZone("").Prefix(64)
	return p.String()
}

// admitAnonymous takes a token from the client's limiter (by RateKey of its address) and then
// from the global one. A refused request takes nothing, so a flood from one client does not
// use up the others'.
func (a *admission) admitAnonymous(addr string, now time.Time) *refusal {
	addr = RateKey(addr)
	a.mu.Lock()
	cl := a.clients[addr]
	if cl == nil {
		if len(a.clients) >= a.cfg.MaxClients {
			a.evictLocked(now)
		}
		cl = &clientLimiter{lim: rate.NewLimiter(rate.Every(a.cfg.PerClientEvery), a.cfg.PerClientBurst)}
		a.clients[addr] = cl
	}
	cl.seen = now
	a.mu.Unlock()

	r := cl.lim.ReserveN(now, 1)
	if d := r.DelayFrom(now); d > 0 {
		r.CancelAt(now)
		return &refusal{anyops.Errorf(anyops.ERATELIMITED, "too many new consoles from your address; retry in %s", ceilSeconds(d)), d}
	}
	g := a.global.ReserveN(now, 1)
	if d := g.DelayFrom(now); d > 0 {
		g.CancelAt(now)
		r.CancelAt(now)
		return &refusal{anyops.Errorf(anyops.ERATELIMITED, "too many new consoles right now; retry in %s", ceilSeconds(d)), d}
	}
	return nil
}

// evictLocked drops limiters of clients idle long enough for a full bucket, and, if that
// frees nothing, the least recently seen half.
func (a *admission) evictLocked(now time.Time) {
	full := a.cfg.PerClientEvery * time.Duration(a.cfg.PerClientBurst)
	for k, cl := range a.clients {
		if now.Sub(cl.seen) >= full {
			delete(a.clients, k)
		}
	}
	if len(a.clients) < a.cfg.MaxClients {
		return
	}
	seen := make([]time.Time, 0, len(a.clients))
	for _, cl := range a.clients {
		seen = append(seen, cl.seen)
	}
	// The median last-seen time: dropping everyone seen no later frees at least half.
	slices.SortFunc(seen, time.Time.Compare)
	cut := seen[(len(seen)-1)/2]
	for k, cl := range a.clients {
		if !cl.seen.After(cut) {
			delete(a.clients, k)
		}
	}
}

func ceilSeconds(d time.Duration) string {
	return strconv.Itoa(int(math.Ceil(d.Seconds()))) + "s"
}

// writeRefusal answers 429 or 503 with Retry-After in whole seconds (at least 1).
func writeRefusal(c *gin.Context, r *refusal) {
	c.Header("Retry-After", strconv.Itoa(max(1, int(math.Ceil(r.retryAfter.Seconds())))))
	WriteError(c, r.err)
}

// auditActionAccepting is the audit action of the kill switch. The newest such event is the
// switch's position, so every API replica reads the same one (and a restart keeps it).
const auditActionAccepting = "consoles-accepting"

// killSwitch is the operator's switch, read from the inventory at most once per ttl.
type killSwitch struct {
	store *inventory.Store
	ttl   time.Duration
	log   interface{ Warn(string, ...any) }

	mu      sync.Mutex
	on      bool
	fetched time.Time
}

// accepting reports the switch's position. If the inventory cannot be read, it is off: an
// operator who switched consoles off must never see them come back because the database
// is down. The next call reads again.
func (k *killSwitch) accepting(ctx context.Context) bool {
	k.mu.Lock()
	defer k.mu.Unlock()
	if !k.fetched.IsZero() && time.Since(k.fetched) < k.ttl {
		return k.on
	}
	e, err := k.store.LatestAudit(ctx, auditActionAccepting)
	switch {
	case anyops.ErrorCode(err) == anyops.ENOTFOUND:
		k.on, k.fetched = true, time.Now()
	case err != nil:
		k.on, k.fetched = false, time.Time{}
		k.log.Warn("cannot read the consoles kill switch: not accepting new consoles until it can be read", "err", err)
	default:
		on, ok := e.Summary["accepting"].(bool)
		k.on, k.fetched = !ok || on, time.Now()
	}
	return k.on
}

// set records the switch's new position and applies it here at once.
func (k *killSwitch) set(ctx context.Context, on bool, actor string) error {
	if _, err := k.store.RecordAudit(ctx, inventory.AuditEvent{Actor: actor, Action: auditActionAccepting,
		Subject: "consoles", Summary: map[string]any{"accepting": on}}); err != nil {
		return err
	}
	k.mu.Lock()
	k.on, k.fetched = on, time.Now()
	k.mu.Unlock()
	return nil
}

// liveStatus is the public status from live capacity: the running console servers of the
// inventory as their sandboxds report them, the operator's switch and the embed setting.
type liveStatus struct {
	store     *inventory.Store
	clientFor func(string) (*sbclient.Client, error)
	enabled   bool
	accepting func(context.Context) bool
}

func (s liveStatus) PublicStatus(ctx context.Context) (PublicStatus, error) {
	hosts, err := activities.ConsoleHosts(ctx, s.store, s.clientFor)
	if err != nil {
		return PublicStatus{}, err
	}
	st := PublicStatus{Updated: time.Now().UTC()}
	free := 0
	for _, h := range hosts {
		st.Capacity += h.Slots
		st.InUse += h.InUse
		free += h.Free
	}
	st.AcceptingConsoles = s.enabled && free > 0 && s.accepting(ctx)
	return st, nil
}

// AcceptingBody is the body of POST /v1/admin/consoles/accepting.
type AcceptingBody struct {
	Accepting *bool `json:"accepting"`
}

func (cs *consoleService) setAccepting(c *gin.Context) {
	var body AcceptingBody
	if err := BindJSON(c, &body); err != nil {
		WriteError(c, err)
		return
	}
	if body.Accepting == nil {
		WriteError(c, anyops.Errorf(anyops.EINVALID, "accepting (true or false) is required"))
		return
	}
	if err := cs.killSwitch.set(c.Request.Context(), *body.Accepting, Actor(c)); err != nil {
		WriteError(c, err)
		return
	}
	// The public status must show the switch at once, not after its cache expires.
	cs.server.status.invalidate()
	cs.server.log.Info("console admission switched", "accepting", *body.Accepting, "actor", Actor(c))
	c.JSON(http.StatusOK, gin.H{"accepting": *body.Accepting})
}
