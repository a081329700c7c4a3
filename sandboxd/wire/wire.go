// Package wire holds the types of sandboxd's HTTP API: requests, answers and the attach
// WebSocket's control frames. The daemon, its client, the worker's activities, the API and the
// console workflow share this one definition; it imports no HTTP code, so deterministic workflow
// code may use it.
package wire

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/anyops/anyops"
)

// CreateRequest is the body of POST /v1/sandboxes.
type CreateRequest struct {
	// ID names the sandbox ([a-z0-9][a-z0-9-]{0,63}); the create token names it too. Callers
	// that retry (workflow activities) pass their business key so a retry gets 409 instead of
	// a second sandbox; Client.Create fills in NewSandboxID when it is empty.
	ID      string               `json:"id"`
	User    string               `json:"user"`          // login name: [a-z_][a-z0-9_-]{0,31}
	UID     int                  `json:"uid"`           // in anyops.FirstSandboxID..LastSandboxID; never a host's
	GID     int                  `json:"gid,omitempty"` // 0: same as UID; else in anyops.FirstSandboxID..LastSandboxID
	Plan    anyops.Plan          `json:"plan"`          // decides the default and maximum limits
	Image   string               `json:"image,omitempty"`
	Command []string             `json:"command,omitempty"` // empty: a login shell
	Network anyops.NetworkPolicy `json:"network,omitempty"` // empty: the plan's (anyops.PlanNetwork); never more
	// Limits lowers the plan's resource limits; zero fields keep the plan's value. Its
	// idle_timeout and max_lifetime must be left zero: use the fields below.
	Limits      *anyops.Limits `json:"limits,omitempty"`
	IdleTimeout Duration       `json:"idle_timeout,omitempty"` // zero: the plan's
	MaxLifetime Duration       `json:"max_lifetime,omitempty"` // zero: the plan's
	Rows        uint16         `json:"rows,omitempty"`         // initial terminal size; 0: 24x80
	Cols        uint16         `json:"cols,omitempty"`
	// Lease, when set, ends the sandbox (EndLeaseExpired) once no GET of it has come for this
	// long: the control plane's host checks renew it, so a host cut off from the control
	// plane ends its sandboxes by itself before the console is placed elsewhere.
	Lease Duration `json:"lease,omitempty"`
}

// Sandbox states.
const (
	StateRunning = "running"
	StateExited  = "exited"
)

// Why a sandbox ended.
const (
	EndExit         = "exit"          // its command exited by itself
	EndIdleTimeout  = "idle_timeout"  // no input and no client for the idle timeout
	EndMaxLifetime  = "max_lifetime"  // ran for its maximum lifetime
	EndDeleted      = "deleted"       // DELETE /v1/sandboxes/{id}
	EndShutdown     = "shutdown"      // sandboxd stopped
	EndLeaseExpired = "lease_expired" // no GET renewed its lease in time: the control plane lost the host
)

// Sandbox is what sandboxd reports about one sandbox.
type Sandbox struct {
	ID          string               `json:"id"`
	User        string               `json:"user"`
	UID         int                  `json:"uid"`
	GID         int                  `json:"gid"`
	Plan        anyops.Plan          `json:"plan"`
	Image       string               `json:"image"` // name:version
	Command     []string             `json:"command,omitempty"`
	Network     anyops.NetworkPolicy `json:"network"`
	Limits      anyops.Limits        `json:"limits"` // the effective limits
	IdleTimeout Duration             `json:"idle_timeout"`
	MaxLifetime Duration             `json:"max_lifetime"`
	Lease       Duration             `json:"lease,omitempty"`
	State       string               `json:"state"`               // StateRunning or StateExited
	ExitCode    *int                 `json:"exit_code,omitempty"` // set once exited
	EndReason   string               `json:"end_reason,omitempty"`
	Pid         int                  `json:"pid,omitempty"` // host pid of the sandbox's init while running
	Clients     int                  `json:"clients"`       // WebSocket clients attached now
	CreatedAt   time.Time            `json:"created_at"`
	ExitedAt    *time.Time           `json:"exited_at,omitempty"`
}

// SandboxList is the body of GET /v1/sandboxes.
type SandboxList struct {
	Sandboxes []Sandbox `json:"sandboxes"`
}

// Capacity is the body of GET /v1/capacity: what the console workflow uses to place sandboxes.
type Capacity struct {
	Slots int        `json:"slots"`
	InUse int        `json:"in_use"`
	Free  int        `json:"free"`
	Load  [3]float64 `json:"load"` // 1, 5 and 15 minute load averages of the host
}

// ErrorBody is the JSON body of every 4xx and 5xx answer.
type ErrorBody = anyops.ErrorBody

// Duration is a time.Duration that travels as a Go duration string ("90s", "10m").
type Duration time.Duration

func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(time.Duration(d).String()) }

func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("duration must be a string like \"90s\" or \"10m\"")
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("duration %q: %w", s, err)
	}
	*d = Duration(v)
	return nil
}

// Control is a JSON text frame on the attach WebSocket. Client to server: "resize" (Rows, Cols)
// and "ping". Server to client: "pong", "exit" (Code) and "error" (Message).
type Control struct {
	Type    string `json:"type"`
	Rows    uint16 `json:"rows,omitempty"`
	Cols    uint16 `json:"cols,omitempty"`
	Code    *int   `json:"code,omitempty"`
	Message string `json:"message,omitempty"`
}

// Close codes of the attach WebSocket besides the standard ones (1000 when the sandbox exits).
const (
	CloseFellBehind = 4008 // the client did not read fast enough and its queue overflowed
)
