package workflows

import (
	"time"

	"github.com/anyops/anyops"
)

// ConsoleLifecycle's input, timing, state and result; the workflow is in console_lifecycle.go.

// ConsoleWorkflowType is the registered name of ConsoleLifecycle.
const ConsoleWorkflowType = "ConsoleLifecycle"

// Messages ConsoleLifecycle answers.
const (
	// ConsoleUpdateOpen waits until the console's sandbox exists and returns ConsoleOpened.
	// The API sends it with update-with-start, so POST /v1/consoles returns once it is ready.
	ConsoleUpdateOpen = "Open"
	// ConsoleSignalAttach and ConsoleSignalDetach count clients a proxy attaches; sandboxd's
	// own client count, read on every host check, corrects them.
	ConsoleSignalAttach = "Attach"
	ConsoleSignalDetach = "Detach"
	// ConsoleSignalKeepalive marks the console in use now: the idle timer starts over.
	ConsoleSignalKeepalive = "Keepalive"
	// ConsoleSignalClose ends the console: its sandbox is destroyed.
	ConsoleSignalClose = "Close"
	// ConsoleSignalHostLost says the console's host failed (a ServerReplace of it): the
	// console treats it as lost at once, without waiting for its own checks to miss, and moves
	// (a registered user's) or ends lost (an anonymous one's, or when HostLost.EndLost says).
	ConsoleSignalHostLost = "HostLost"
	// ConsoleQuery returns ConsoleView.
	ConsoleQuery = "Console"
)

// Why a console ended.
const (
	ConsoleEndClosed      = "closed"       // closed on request
	ConsoleEndIdle        = "idle_timeout" // no client and no keepalive for the idle timeout
	ConsoleEndMaxLifetime = "max_lifetime" // lived its maximum lifetime
	ConsoleEndExited      = "exited"       // the sandbox ended by itself (the shell exited)
	ConsoleEndLost        = "lost"         // the host stopped answering, or no host could take it
	ConsoleEndCancelled   = "cancelled"    // the workflow was cancelled
)

// ConsoleTiming is every duration ConsoleLifecycle waits on; tests shrink them.
type ConsoleTiming struct {
	IdleTimeout time.Duration `json:"idle_timeout"`
	MaxLifetime time.Duration `json:"max_lifetime"`
	// KeepaliveInterval is how often an attached page should send a keepalive.
	KeepaliveInterval time.Duration `json:"keepalive_interval"`
	// HostCheckInterval is how often the workflow asks sandboxd about the sandbox.
	HostCheckInterval time.Duration `json:"host_check_interval"`
	// HostLostAfter consecutive unanswered host checks mark the host lost.
	HostLostAfter int `json:"host_lost_after"`
	// SandboxLease is the lease of the console's sandbox: sandboxd ends a sandbox no host
	// check has renewed for this long. Default HostLostAfter × HostCheckInterval.
	SandboxLease time.Duration `json:"sandbox_lease"`
	// CheckTokenTTL is the lifetime of a host check's token, the last moment that check can
	// renew the lease; ClockMargin covers the clocks of workers and hosts disagreeing. A lost
	// host's console moves only after the newest check token, plus the lease, plus the margin,
	// has run out — by then the old sandbox has ended itself.
	CheckTokenTTL time.Duration `json:"check_token_ttl"`
	ClockMargin   time.Duration `json:"clock_margin"`
	// HistoryLimit is the history length past which the workflow continues as new.
	HistoryLimit int `json:"history_limit"`
}

// DefaultConsoleTiming is the production timing for a plan: idle timeout and max lifetime
// from the plan's limits.
func DefaultConsoleTiming(plan anyops.Plan) ConsoleTiming {
	lim := anyops.PlanLimits(plan)
	return ConsoleTiming{
		IdleTimeout: lim.IdleTimeout, MaxLifetime: lim.MaxLifetime,
		KeepaliveInterval: time.Minute, HostCheckInterval: 30 * time.Second,
		HostLostAfter: 3, HistoryLimit: 2000,
		SandboxLease: 90 * time.Second, CheckTokenTTL: 15 * time.Second, ClockMargin: 5 * time.Second,
	}
}

// withDefaults fills zero fields from DefaultConsoleTiming(plan).
func (t ConsoleTiming) withDefaults(plan anyops.Plan) ConsoleTiming {
	d := DefaultConsoleTiming(plan)
	t.IdleTimeout = orDefault(t.IdleTimeout, d.IdleTimeout)
	t.MaxLifetime = orDefault(t.MaxLifetime, d.MaxLifetime)
	t.KeepaliveInterval = orDefault(t.KeepaliveInterval, d.KeepaliveInterval)
	t.HostCheckInterval = orDefault(t.HostCheckInterval, d.HostCheckInterval)
	t.HostLostAfter = orDefault(t.HostLostAfter, d.HostLostAfter)
	t.HistoryLimit = orDefault(t.HistoryLimit, d.HistoryLimit)
	t.SandboxLease = orDefault(t.SandboxLease, time.Duration(t.HostLostAfter)*t.HostCheckInterval)
	t.CheckTokenTTL = orDefault(t.CheckTokenTTL, d.CheckTokenTTL)
	t.ClockMargin = orDefault(t.ClockMargin, d.ClockMargin)
	return t
}

// ConsoleInput starts a ConsoleLifecycle.
type ConsoleInput struct {
	ConsoleID string               `json:"console_id"`
	User      string               `json:"user"`
	UID       int                  `json:"uid"`
	Plan      anyops.Plan          `json:"plan"`
	Anonymous bool                 `json:"anonymous"`       // a throw-away user, removed with the console
	Image     string               `json:"image,omitempty"` // name:version; empty: sandboxd's default
	Command   []string             `json:"command,omitempty"`
	Network   anyops.NetworkPolicy `json:"network,omitempty"`
	Timing    ConsoleTiming        `json:"timing"`
	// Carry is the state a continued run takes over; nil on the first run.
	Carry *ConsoleState `json:"carry,omitempty"`
}

// ConsoleState is what the workflow tracks, carried across continue-as-new.
type ConsoleState struct {
	Server      string    `json:"server,omitempty"`
	SandboxdURL string    `json:"sandboxd_url,omitempty"`
	SandboxID   string    `json:"sandbox_id,omitempty"`
	Generation  int       `json:"generation"` // sandboxes this console has had
	Clients     int       `json:"clients"`
	StartedAt   time.Time `json:"started_at"`
	LastActive  time.Time `json:"last_active"`
	NextCheck   time.Time `json:"next_check"`
	Unanswered  int       `json:"unanswered"` // consecutive host checks without an answer
	// CheckTokens is when the newest host check's token expires: until then that check may
	// still reach the host and renew the sandbox's lease.
	CheckTokens time.Time `json:"check_tokens,omitempty"`
	Runs        int       `json:"runs"` // runs before this one (continue-as-new count)
	// LostHost is a HostLost signal received and not yet acted on when the run continued.
	LostHost *HostLost `json:"lost_host,omitempty"`
}

// ConsoleOpened is the result of the Open update.
type ConsoleOpened struct {
	ConsoleID         string        `json:"console_id"`
	Server            string        `json:"server"`
	SandboxdURL       string        `json:"sandboxd_url"`
	SandboxID         string        `json:"sandbox_id"`
	ExpiresAt         time.Time     `json:"expires_at"`
	KeepaliveInterval time.Duration `json:"keepalive_interval"`
}

// ConsoleView answers ConsoleQuery.
type ConsoleView struct {
	Phase string `json:"phase"` // opening, open, closing, closed, lost
	ConsoleState
	ExpiresAt time.Time `json:"expires_at"`
	EndReason string    `json:"end_reason,omitempty"`
}

// HostLost is the payload of ConsoleSignalHostLost.
type HostLost struct {
	Server string `json:"server"`
	// EndLost ends the console lost instead of moving it to another host.
	EndLost bool `json:"end_lost,omitempty"`
}

// ConsoleResult is what ConsoleLifecycle returns.
type ConsoleResult struct {
	EndReason string `json:"end_reason"`
	SandboxID string `json:"sandbox_id,omitempty"`
}
