package activities

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/temporal"

	"github.com/anyops/anyops"
	"github.com/anyops/anyops/inventory"
	sbclient "github.com/anyops/anyops/sandboxd/client"
	"github.com/anyops/anyops/sandboxd/token"
	"github.com/anyops/anyops/sandboxd/wire"
)

// Error types of the sandbox activities that workflows branch on.
const (
	// ErrTypeNoHost: no console host has a free slot (or none answers). Retryable: slots free up.
	ErrTypeNoHost = "no_console_host"
)

// ProbeUID is the uid of the registration probe's sandbox: the last of the sandbox range,
// which the inventory, counting up from the first, never hands to a user.
const ProbeUID = anyops.LastSandboxID

// sandboxdCallTimeout bounds one call to a sandboxd: a host that does not answer in this time
// is treated as unreachable for this attempt.
const sandboxdCallTimeout = 10 * time.Second

// Sandboxes groups the activities that place, create, watch and destroy console sandboxes on
// sandboxd hosts, and record them in the inventory. Workflows refer to its methods through a
// nil *Sandboxes; the worker registers one with a Store and the Signer whose public key the
// sandboxds trust.
type Sandboxes struct {
	Store  *inventory.Store
	Signer *token.Signer
	// HTTP is the client used to reach sandboxd; nil uses one with sandboxdCallTimeout.
	HTTP *http.Client
}

func (a *Sandboxes) client(baseURL string) (*sbclient.Client, error) {
	if a.Signer == nil {
		return nil, temporal.NewNonRetryableApplicationError("the worker has no sandboxd signing key (--sandboxd-key)", anyops.EUNAVAILABLE, nil)
	}
	c, err := sbclient.New(baseURL, a.Signer)
	if err != nil {
		return nil, temporal.NewNonRetryableApplicationError(err.Error(), anyops.EINVALID, err)
	}
	c.Subject = "worker"
	if a.HTTP != nil {
		c.HTTP = a.HTTP
	} else {
		c.HTTP = &http.Client{Timeout: sandboxdCallTimeout}
	}
	return c, nil
}

// Host is a console host a sandbox can be placed on.
type Host struct {
	Server      string `json:"server"`
	SandboxdURL string `json:"sandboxd_url"`
	Slots       int    `json:"slots"`
	InUse       int    `json:"in_use"`
	Free        int    `json:"free"`
}

// PickHostInput says which hosts not to use (one just lost, for a replacement).
type PickHostInput struct {
	Exclude []string `json:"exclude,omitempty"`
}

// ConsoleHosts lists the running console servers of the inventory that have a sandboxd URL
// and are not drained (a host whose service restarts for a patch admits no new console),
// with their live capacity; hosts that do not answer are left out. The API's live status and
// PickHost share it.
func ConsoleHosts(ctx context.Context, store *inventory.Store, clientFor func(string) (*sbclient.Client, error)) ([]Host, error) {
	servers, err := listAll(func(p inventory.Page) ([]inventory.Server, string, error) {
		return store.ListServers(ctx, inventory.ServerFilter{Role: anyops.RoleConsole, State: anyops.ServerRunning, Page: p})
	})
	if err != nil {
		return nil, err
	}
	drains, err := store.Drains(ctx)
	if err != nil {
		return nil, err
	}
	var (
		mu    sync.Mutex
		hosts []Host
		wg    sync.WaitGroup
	)
	for _, srv := range servers {
		if _, drained := drains[srv.Name]; srv.SandboxdURL == "" || drained {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := clientFor(srv.SandboxdURL)
			if err != nil {
				return
			}
			cctx, cancel := context.WithTimeout(ctx, sandboxdCallTimeout)
			defer cancel()
			capy, err := c.Capacity(cctx)
			if err != nil {
				return
			}
			mu.Lock()
			hosts = append(hosts, Host{Server: srv.Name, SandboxdURL: srv.SandboxdURL, Slots: capy.Slots, InUse: capy.InUse, Free: capy.Free})
			mu.Unlock()
		}()
	}
	wg.Wait()
	sort.Slice(hosts, func(i, j int) bool { return hosts[i].Server < hosts[j].Server })
	return hosts, nil
}

// LeastLoaded returns the host with free slots whose share of slots in use is smallest (ties:
// more free slots, then name), skipping excluded ones; false when none has room.
func LeastLoaded(hosts []Host, exclude []string) (Host, bool) {
	var best Host
	found := false
	for _, h := range hosts {
		if h.Free <= 0 || h.Slots <= 0 || slices.Contains(exclude, h.Server) {
			continue
		}
		if !found || h.InUse*best.Slots < best.InUse*h.Slots ||
			(h.InUse*best.Slots == best.InUse*h.Slots && (h.Free > best.Free || (h.Free == best.Free && h.Server < best.Server))) {
			best, found = h, true
		}
	}
	return best, found
}

// PickHost chooses the least loaded console host with a free slot, from the inventory's
// running console servers and their live /v1/capacity. None with room is a retryable error of
// type ErrTypeNoHost.
func (a *Sandboxes) PickHost(ctx context.Context, in PickHostInput) (Host, error) {
	hosts, err := ConsoleHosts(ctx, a.Store, a.client)
	if err != nil {
		return Host{}, classify(err)
	}
	h, ok := LeastLoaded(hosts, in.Exclude)
	if !ok {
		return Host{}, temporal.NewApplicationError(fmt.Sprintf("no console host has a free slot (%d answered)", len(hosts)), ErrTypeNoHost)
	}
	return h, nil
}

// CreateSandboxInput is what the console workflow asks sandboxd for.
type CreateSandboxInput struct {
	SandboxdURL string             `json:"sandboxd_url"`
	Request     wire.CreateRequest `json:"request"` // Request.ID is the console's sandbox id
}

// CreateSandbox creates the sandbox named in.Request.ID. It is idempotent: a retry after a
// lost reply finds the sandbox an earlier attempt created (sandboxd answers 409 for the id)
// and returns it instead of making a second one.
func (a *Sandboxes) CreateSandbox(ctx context.Context, in CreateSandboxInput) (wire.Sandbox, error) {
	if in.Request.ID == "" {
		return wire.Sandbox{}, temporal.NewNonRetryableApplicationError("CreateSandbox needs a sandbox id", anyops.EINVALID, nil)
	}
	c, err := a.client(in.SandboxdURL)
	if err != nil {
		return wire.Sandbox{}, err
	}
	defer heartbeatWhile(ctx, time.Second)()
	if sb, err := c.Get(ctx, in.Request.ID); err == nil {
		return sb, nil
	} else if anyops.ErrorCode(err) != anyops.ENOTFOUND {
		return wire.Sandbox{}, sandboxdError(err)
	}
	sb, err := c.Create(ctx, in.Request)
	if anyops.ErrorCode(err) == anyops.ECONFLICT {
		// Created by an attempt whose answer we lost, between our Get and Create.
		sb, err = c.Get(ctx, in.Request.ID)
	}
	return sb, sandboxdError(err)
}

// heartbeatWhile heartbeats every interval until the returned stop is called: an activity
// blocked in one long call (sandboxd assembling an image) still shows its worker alive, and a
// dead worker's attempt is retried after the heartbeat timeout.
func heartbeatWhile(ctx context.Context, every time.Duration) (stop func()) {
	if !activity.IsActivity(ctx) {
		return func() {}
	}
	done := make(chan struct{})
	go func() {
		tick := time.NewTicker(every)
		defer tick.Stop()
		for {
			activity.RecordHeartbeat(ctx)
			select {
			case <-done:
				return
			case <-ctx.Done():
				return
			case <-tick.C:
			}
		}
	}()
	return sync.OnceFunc(func() { close(done) })
}

// SandboxRef names one sandbox on one host.
type SandboxRef struct {
	SandboxdURL string `json:"sandboxd_url"`
	SandboxID   string `json:"sandbox_id"`
	// TokenTTL is how long the call's token is valid; zero: the client's default. A host
	// check's token is short-lived: the console workflow's fence waits for it to expire.
	TokenTTL time.Duration `json:"token_ttl,omitempty"`
}

// DestroySandbox deletes a sandbox; one sandboxd no longer knows counts as gone. Any other
// failure (the host unreachable) is retryable: the workflow retries until it is gone. It
// heartbeats while sandboxd works, so a dead worker's attempt is retried within seconds.
func (a *Sandboxes) DestroySandbox(ctx context.Context, ref SandboxRef) error {
	c, err := a.client(ref.SandboxdURL)
	if err != nil {
		return err
	}
	defer heartbeatWhile(ctx, time.Second)()
	err = c.Delete(ctx, ref.SandboxID)
	if anyops.ErrorCode(err) == anyops.ENOTFOUND {
		return nil
	}
	if err != nil {
		// Retryable whatever sandboxd said: the sandbox must go.
		return fmt.Errorf("destroy sandbox %s: %w", ref.SandboxID, err)
	}
	return nil
}

// Sandbox health as SandboxStatus reports it.
const (
	SandboxHealthRunning     = "running"     // the sandbox runs
	SandboxHealthExited      = "exited"      // its command ended (or sandboxd ended it)
	SandboxHealthGone        = "gone"        // sandboxd does not know it (restarted, or deleted)
	SandboxHealthUnreachable = "unreachable" // sandboxd did not answer
)

// SandboxHealth is the answer of SandboxStatus.
type SandboxHealth struct {
	Health    string `json:"health"`
	Clients   int    `json:"clients"`
	EndReason string `json:"end_reason,omitempty"`
	Detail    string `json:"detail,omitempty"`
	// TokenExpires is when the check's token stops being valid: the last moment at which it
	// could still reach the host and renew the sandbox's lease, answered or not.
	TokenExpires time.Time `json:"token_expires"`
}

// SandboxStatus asks the host about a sandbox, which renews the sandbox's lease. It never
// fails for the host's sake: an unreachable host is an answer (the workflow counts them to
// decide the host is lost).
func (a *Sandboxes) SandboxStatus(ctx context.Context, ref SandboxRef) (SandboxHealth, error) {
	c, err := a.client(ref.SandboxdURL)
	if err != nil {
		return SandboxHealth{}, err
	}
	if ref.TokenTTL > 0 {
		c.TTL = ref.TokenTTL
	}
	// Tokens expire on whole seconds no later than this; the fence may count on it.
	expires := time.Now().Add(c.TTL).Truncate(time.Second).Add(time.Second)
	sb, err := c.Get(ctx, ref.SandboxID)
	switch code := anyops.ErrorCode(err); {
	case err == nil && sb.State == wire.StateRunning:
		return SandboxHealth{Health: SandboxHealthRunning, Clients: sb.Clients, TokenExpires: expires}, nil
	case err == nil:
		return SandboxHealth{Health: SandboxHealthExited, EndReason: sb.EndReason, TokenExpires: expires}, nil
	case code == anyops.ENOTFOUND:
		return SandboxHealth{Health: SandboxHealthGone, TokenExpires: expires}, nil
	default:
		return SandboxHealth{Health: SandboxHealthUnreachable, Detail: err.Error(), TokenExpires: expires}, nil
	}
}

// MarkConsoleInput records a console's state, and the sandbox it runs in, in the inventory.
type MarkConsoleInput struct {
	ConsoleID string              `json:"console_id"`
	State     anyops.ConsoleState `json:"state"`
	// Server and SandboxID, when set, are the console's current place: the sandbox row is
	// created (once) and the console points at it.
	Server    string     `json:"server,omitempty"`
	SandboxID string     `json:"sandbox_id,omitempty"`
	User      string     `json:"user,omitempty"`
	ExpiresAt *time.Time `json:"expires_at,omitempty"`
	// SandboxState, when set, is recorded for SandboxID (ended, lost).
	SandboxState anyops.SandboxState `json:"sandbox_state,omitempty"`
}

// MarkConsole records a console's state and place. It is idempotent. A console the inventory
// no longer has (an anonymous user already removed) is not an error: there is nothing to mark.
func (a *Sandboxes) MarkConsole(ctx context.Context, in MarkConsoleInput) error {
	if in.SandboxID != "" && in.Server != "" {
		if _, err := a.Store.GetSandbox(ctx, in.SandboxID); anyops.ErrorCode(err) == anyops.ENOTFOUND {
			_, err = a.Store.CreateSandbox(ctx, inventory.Sandbox{ID: in.SandboxID, User: in.User, Server: in.Server, State: anyops.SandboxRunning, ConsoleID: in.ConsoleID})
			if err != nil && anyops.ErrorCode(err) != anyops.ECONFLICT {
				return classify(err)
			}
		} else if err != nil {
			return classify(err)
		}
	}
	if in.SandboxID != "" && in.SandboxState != "" {
		if _, err := a.Store.SetSandboxState(ctx, in.SandboxID, in.SandboxState); err != nil && anyops.ErrorCode(err) != anyops.ENOTFOUND {
			return classify(err)
		}
	}
	u := inventory.ConsoleUpdate{State: &in.State, ExpiresAt: in.ExpiresAt}
	if in.Server != "" {
		u.Server = &in.Server
	}
	if in.SandboxID != "" && in.Server != "" {
		u.SandboxID = &in.SandboxID
	}
	_, err := a.Store.UpdateConsole(ctx, in.ConsoleID, u)
	if anyops.ErrorCode(err) == anyops.ENOTFOUND {
		return nil
	}
	return classify(err)
}

// DeleteAnonymousUser removes a throw-away user with its consoles and sandboxes once its
// console has closed. Named users are never removed here; a user already gone is done.
func (a *Sandboxes) DeleteAnonymousUser(ctx context.Context, name string) error {
	u, err := a.Store.GetUser(ctx, name)
	if anyops.ErrorCode(err) == anyops.ENOTFOUND {
		return nil
	} else if err != nil {
		return classify(err)
	}
	if !u.Anonymous {
		return temporal.NewNonRetryableApplicationError(fmt.Sprintf("user %q is not anonymous", name), anyops.EFORBIDDEN, nil)
	}
	err = a.Store.DeleteUser(ctx, name)
	if anyops.ErrorCode(err) == anyops.ENOTFOUND {
		return nil
	}
	return classify(err)
}

// sandboxdError makes sandboxd's refusals that no retry fixes (a bad request, a forbidden
// token) non-retryable; a full or unreachable host stays retryable.
func sandboxdError(err error) error {
	var e *anyops.Error
	if err == nil || !errors.As(err, &e) {
		return err
	}
	switch e.Code {
	case anyops.EINVALID, anyops.EFORBIDDEN, anyops.EUNAUTHORIZED:
		return temporal.NewNonRetryableApplicationError(e.Message, e.Code, err)
	}
	return temporal.NewApplicationError(e.Message, e.Code, err)
}

// probeTokenTTL is the lifetime of the registration probe's token: long enough for a host to
// answer, short enough to be worth nothing soon after.
const probeTokenTTL = 15 * time.Second

// RegisterConsoleHost records the sandboxd at srv.SandboxdURL as a running console server of
// the inventory (srv names it, with its zone and cluster) and records the image that sandboxd
// starts by default; when the inventory has no default image yet, that one becomes it, so
// that new users are pinned to an image the host has. Later defaults are the operators' to
// choose (PUT /v1/images/default). It starts and deletes one short sandbox to learn the
// image. anyops dev and the console benchmark's stack call it once sandboxd is up.
//
// The URL is not trusted yet, so the probe hands it nothing reusable: its one token is for
// that URL only (a real sandboxd registered elsewhere refuses it), creates only the probe
// sandbox with exactly the probe's body, is accepted once, and expires in probeTokenTTL.
func RegisterConsoleHost(ctx context.Context, store *inventory.Store, srv inventory.Server, signer *token.Signer) (inventory.Image, error) {
	c, err := sbclient.New(srv.SandboxdURL, signer)
	if err != nil {
		return inventory.Image{}, err
	}
	c.Subject, c.TTL = "register-console-host", probeTokenTTL
	// Probe first: a sandboxd that does not answer, or does not trust the key, records nothing.
	ref, err := probeImage(ctx, c, "")
	if err != nil {
		return inventory.Image{}, fmt.Errorf("learn the image of sandboxd %s: %w", srv.SandboxdURL, err)
	}
	srv.Role, srv.State = anyops.RoleConsole, anyops.ServerRunning
	if _, err := store.UpsertServer(ctx, srv); err != nil {
		return inventory.Image{}, err
	}
	name, version, _ := strings.Cut(ref, ":")
	img, err := store.AddImage(ctx, name, version)
	if anyops.ErrorCode(err) == anyops.ECONFLICT { // recorded before, by this host or another
		img, err = store.GetImage(ctx, name, version)
	}
	if err != nil {
		return inventory.Image{}, err
	}
	if _, err := store.DefaultImage(ctx); anyops.ErrorCode(err) == anyops.ENOTFOUND {
		return store.SetDefaultImage(ctx, name, version)
	} else if err != nil {
		return inventory.Image{}, err
	}
	return img, nil
}

// probeImage starts and deletes one short sandbox of image ("": the host's default) on c's
// sandboxd and returns the image it ran: proof that the host answers to this key and has it.
// Anonymous: the probe's home goes with its sandbox.
func probeImage(ctx context.Context, c *sbclient.Client, image string) (string, error) {
	probe, err := c.Create(ctx, wire.CreateRequest{ID: "probe-" + sbclient.NewSandboxID(), User: "anyops-probe",
		UID: ProbeUID, Plan: anyops.PlanAnonymous, Command: []string{"true"}, Image: image})
	if err != nil {
		return "", err
	}
	_ = c.Delete(ctx, probe.ID)
	return probe.Image, nil
}

// ConsoleHostsHaveImage checks that every running console host with a sandboxd has the image
// ref ("name:version") by starting one short sandbox of it on each: ECONFLICT names a host
// that lacks it, EUNAVAILABLE one that does not answer. Making an image the default passes
// it first, so that new users are never pinned to an image their consoles cannot start on.
func ConsoleHostsHaveImage(ctx context.Context, store *inventory.Store, signer *token.Signer, ref string) error {
	servers, err := listAll(func(p inventory.Page) ([]inventory.Server, string, error) {
		return store.ListServers(ctx, inventory.ServerFilter{Role: anyops.RoleConsole, State: anyops.ServerRunning, Page: p})
	})
	if err != nil {
		return err
	}
	for _, srv := range servers {
		if srv.SandboxdURL == "" {
			continue
		}
		c, err := sbclient.New(srv.SandboxdURL, signer)
		if err != nil {
			return err
		}
		c.Subject, c.TTL = "check-image", probeTokenTTL
		cctx, cancel := context.WithTimeout(ctx, sandboxdCallTimeout)
		_, err = probeImage(cctx, c, ref)
		cancel()
		switch anyops.ErrorCode(err) {
		case "":
		case anyops.EINVALID: // sandboxd refuses an image it does not have
			return anyops.Errorf(anyops.ECONFLICT, "console host %s cannot start image %s (%s): build it there first (anyops image build)", srv.Name, ref, anyops.ErrorMessage(err))
		default:
			return anyops.Errorf(anyops.EUNAVAILABLE, "console host %s did not answer whether it has image %s: %s", srv.Name, ref, anyops.ErrorMessage(err))
		}
	}
	return nil
}

// ConsoleRef names an open console and the workflow that drives it.
type ConsoleRef struct {
	ID         string `json:"id"`
	WorkflowID string `json:"workflow_id"`
}

// ConsolesOnInput names a console host.
type ConsolesOnInput struct {
	Server string `json:"server"`
}

// ConsolesOn lists the open consoles placed on a console host: what its failure takes away.
func (a *Sandboxes) ConsolesOn(ctx context.Context, in ConsolesOnInput) ([]ConsoleRef, error) {
	consoles, err := listAll(func(p inventory.Page) ([]inventory.Console, string, error) {
		return a.Store.ListConsoles(ctx, inventory.ConsoleFilter{Server: in.Server, State: anyops.ConsoleOpen, Page: p})
	})
	if err != nil {
		return nil, classify(err)
	}
	out := []ConsoleRef{}
	for _, c := range consoles {
		out = append(out, ConsoleRef{ID: c.ID, WorkflowID: c.WorkflowID})
	}
	return out, nil
}
