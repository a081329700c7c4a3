// Package client calls sandboxd: the worker's activities, the API, benchmarks and tests use
// it. Every call mints its own short-lived token with the Signer it is given (the API's
// Ed25519 private key), bound to this sandboxd (its base URL is the token's audience), the
// operation and the sandbox, and for create to the exact request body.
package client

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"time"

	"github.com/coder/websocket"

	"github.com/anyops/anyops"
	"github.com/anyops/anyops/sandboxd/token"
	"github.com/anyops/anyops/sandboxd/wire"
)

// DefaultTokenTTL is how long the tokens the client mints stay valid.
const DefaultTokenTTL = time.Minute

// Client calls one sandboxd.
type Client struct {
	base     *url.URL
	audience string // the base URL in token.Audience's normal form
	signer   *token.Signer
	HTTP     *http.Client  // default: http.DefaultClient
	Subject  string        // the tokens' sub; default "anyops"
	TTL      time.Duration // the tokens' lifetime; default DefaultTokenTTL
}

// New returns a client of the sandboxd at baseURL ("http://host:port").
func New(baseURL string, signer *token.Signer) (*Client, error) {
	aud, err := token.Audience(baseURL)
	if err != nil {
		return nil, fmt.Errorf("sandboxd client: base URL %q must be http(s)://host[:port]", baseURL)
	}
	u, _ := url.Parse(aud)
	return &Client{base: u, audience: aud, signer: signer, HTTP: http.DefaultClient, Subject: "anyops", TTL: DefaultTokenTTL}, nil
}

// Audience is the sandboxd URL the client's tokens name.
func (c *Client) Audience() string { return c.audience }

// Token mints a token for op on sandbox (token.AnySandbox for collection operations) at this
// sandboxd; body is the exact request body of a create, nil otherwise.
func (c *Client) Token(op token.Op, sandbox string, body []byte) (string, error) {
	return c.signer.Mint(token.Grant{Audience: c.audience, Op: op, Sandbox: sandbox, Body: body}, c.Subject, c.TTL)
}

// NewSandboxID returns a fresh sandbox id, sb-<16 hex>: what Create uses when the request
// names none (the create token must name the sandbox it makes).
func NewSandboxID() string {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	return "sb-" + hex.EncodeToString(b)
}

// Create starts a sandbox; a request without an ID gets NewSandboxID.
func (c *Client) Create(ctx context.Context, req wire.CreateRequest) (wire.Sandbox, error) {
	if req.ID == "" {
		req.ID = NewSandboxID()
	}
	var out wire.Sandbox
	return out, c.do(ctx, http.MethodPost, "/v1/sandboxes", token.OpCreate, req.ID, req, &out)
}

// Get describes one sandbox; a sandbox sandboxd does not know is an anyops ENOTFOUND error.
func (c *Client) Get(ctx context.Context, id string) (wire.Sandbox, error) {
	var out wire.Sandbox
	return out, c.do(ctx, http.MethodGet, "/v1/sandboxes/"+url.PathEscape(id), token.OpGet, id, nil, &out)
}

// List describes every sandbox sandboxd knows, running or recently exited.
func (c *Client) List(ctx context.Context) ([]wire.Sandbox, error) {
	var out wire.SandboxList
	err := c.do(ctx, http.MethodGet, "/v1/sandboxes", token.OpList, token.AnySandbox, nil, &out)
	return out.Sandboxes, err
}

// Delete ends a sandbox and forgets it; it returns once its processes are gone.
func (c *Client) Delete(ctx context.Context, id string) error {
	return c.do(ctx, http.MethodDelete, "/v1/sandboxes/"+url.PathEscape(id), token.OpDelete, id, nil, nil)
}

// Capacity reports the host's slots and load.
func (c *Client) Capacity(ctx context.Context) (wire.Capacity, error) {
	var out wire.Capacity
	return out, c.do(ctx, http.MethodGet, "/v1/capacity", token.OpCapacity, token.AnySandbox, nil, &out)
}

// AttachURL returns the WebSocket URL of a sandbox's terminal with a fresh attach token in its
// query (for browsers, which cannot set headers on a WebSocket), and the token itself.
func (c *Client) AttachURL(id string) (string, string, error) {
	tok, err := c.Token(token.OpAttach, id, nil)
	if err != nil {
		return "", "", err
	}
	u := *c.base
	u.Scheme = map[string]string{"http": "ws", "https": "wss"}[u.Scheme]
	u.Path += "/v1/sandboxes/" + url.PathEscape(id) + "/attach"
	u.RawQuery = url.Values{"token": {tok}}.Encode()
	return u.String(), tok, nil
}

// Dial attaches to a sandbox's terminal. Binary messages carry terminal bytes both ways; text
// messages carry wire.Control frames. The caller closes the connection.
func (c *Client) Dial(ctx context.Context, id string) (*websocket.Conn, error) {
	u, _, err := c.AttachURL(id)
	if err != nil {
		return nil, err
	}
	conn, resp, err := websocket.Dial(ctx, u, &websocket.DialOptions{HTTPClient: c.HTTP})
	if err != nil {
		if resp != nil {
			return nil, errorFromResponse(resp, err)
		}
		return nil, fmt.Errorf("sandboxd attach %s: %w", id, err)
	}
	conn.SetReadLimit(1 << 20)
	return conn, nil
}

func (c *Client) do(ctx context.Context, method, path string, op token.Op, sandbox string, in, out any) error {
	var raw []byte
	if in != nil {
		var err error
		if raw, err = json.Marshal(in); err != nil {
			return err
		}
	}
	// The token of a create carries the hash of exactly these bytes.
	tok, err := c.Token(op, sandbox, raw)
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base.String()+path, bytes.NewReader(raw))
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+tok)
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.HTTP.Do(req)
	if err != nil {
		return anyops.Errorf(anyops.EUNAVAILABLE, "sandboxd %s: %v", c.base.Host, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 300 {
		return errorFromResponse(resp, nil)
	}
	if out == nil {
		return nil
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		return fmt.Errorf("sandboxd %s %s: decode answer: %w", method, path, err)
	}
	return nil
}

// errorFromResponse turns a sandboxd error answer into an *anyops.Error with sandboxd's code
// and message, so callers can branch on anyops.ErrorCode (ENOTFOUND, ECONFLICT, ...).
func errorFromResponse(resp *http.Response, cause error) error {
	var body wire.ErrorBody
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if json.Unmarshal(b, &body) == nil && body.Error.Code != "" {
		return &anyops.Error{Code: body.Error.Code, Message: body.Error.Message}
	}
	code := anyops.EINTERNAL
	if resp.StatusCode == http.StatusServiceUnavailable || resp.StatusCode == http.StatusBadGateway {
		code = anyops.EUNAVAILABLE
	}
	msg := fmt.Sprintf("sandboxd answered %s", resp.Status)
	if cause != nil {
		msg += ": " + cause.Error()
	}
	return &anyops.Error{Code: code, Message: msg}
}
