// Package apiclient is the Go client of the Anyops REST API: what the command line (anyops op,
// anyops incident, anyops drill) uses to reach a running stack, as temporal and kubectl reach
// theirs. Request and response types are the API's own (package api).
package apiclient

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/anyops/anyops"
	"github.com/anyops/anyops/api"
	"github.com/anyops/anyops/config"
	"github.com/anyops/anyops/inventory"
)

// Client calls one API with one bearer token.
type Client struct {
	base  *url.URL
	token string
	http  *http.Client
}

// New returns a client of the API at server (a base URL; "host:port" means http://host:port)
// sending token.
func New(server, token string) (*Client, error) {
	if !strings.Contains(server, "://") {
		server = "http://" + server
	}
	u, err := url.Parse(server)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("--server %q is not an http(s) URL", server)
	}
	u.Path = strings.TrimSuffix(u.Path, "/")
	return &Client{base: u, token: token, http: &http.Client{Timeout: time.Minute}}, nil
}

// FromConfig returns the client the command line's settings describe: --server, and the token
// from --token (or ANYOPS_TOKEN), else the admin token `anyops dev` keeps in --data-dir.
func FromConfig(c config.Client) (*Client, error) {
	token := c.Token
	if token == "" {
		file := filepath.Join(c.DataDir, config.AdminTokenFile)
		b, err := os.ReadFile(file)
		if err != nil {
			return nil, fmt.Errorf("no token: pass --token or set ANYOPS_TOKEN (no dev stack's %s either: %v)", file, errors.Unwrap(err))
		}
		token = strings.TrimSpace(string(b))
	}
	return New(c.Server, token)
}

// Server is the API's base URL.
func (c *Client) Server() string { return c.base.String() }

// Error is an error answer of the API, with its status and the code and message of its body.
type Error struct {
	Status  int
	Code    string
	Message string
}

// Error is one line: the message, the code and the status.
func (e *Error) Error() string {
	return fmt.Sprintf("%s (%s, HTTP %d)", e.Message, e.Code, e.Status)
}

// Do sends a request to path (under the base URL, escaped, e.g. "/v1/operations/failover%2Fx") with query, body (JSON
// unless nil) and decodes a 2xx answer into out (unless nil). An error answer is *Error; a
// request that got no answer says which server it could not reach.
func (c *Client) Do(ctx context.Context, method, path string, query url.Values, body, out any) error {
	u, err := url.Parse(c.base.String() + path)
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	u.RawQuery = query.Encode()
	var r io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		r = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, u.String(), r)
	if err != nil {
		return err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Accept", "application/json")
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return fmt.Errorf("cannot reach the API at %s: %v", c.base, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 32<<20))
	if err != nil {
		return fmt.Errorf("%s %s: reading the answer: %w", method, path, err)
	}
	if resp.StatusCode >= 300 {
		var eb anyops.ErrorBody
		if json.Unmarshal(raw, &eb) == nil && eb.Error.Code != "" {
			return &Error{Status: resp.StatusCode, Code: eb.Error.Code, Message: eb.Error.Message}
		}
		return &Error{Status: resp.StatusCode, Code: "http", Message: fmt.Sprintf("%s %s answered %s", method, path, resp.Status)}
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(raw, out); err != nil {
		return fmt.Errorf("%s %s: the answer is not the expected JSON: %w", method, path, err)
	}
	return nil
}

// OperationFilter selects operations.
type OperationFilter struct {
	Kind, State string
	Limit       int
	Cursor      string
}

// ListOperations lists one page of operations.
func (c *Client) ListOperations(ctx context.Context, f OperationFilter) (api.List[api.Operation], error) {
	var out api.List[api.Operation]
	return out, c.Do(ctx, http.MethodGet, "/v1/operations", listQuery(f.Limit, f.Cursor, "kind", f.Kind, "state", f.State), nil, &out)
}

// operationPath is the path of an operation id (which holds slashes) plus suffix.
func operationPath(id, suffix string) string {
	return "/v1/operations/" + url.PathEscape(id) + suffix
}

// GetOperation shows one operation with its Status.
func (c *Client) GetOperation(ctx context.Context, id string) (api.Operation, error) {
	var out api.Operation
	return out, c.Do(ctx, http.MethodGet, operationPath(id, ""), nil, nil, &out)
}

// StartOperation starts an operation of kind with body (its input as JSON; nil for {}), or
// joins the one running for the same business key.
func (c *Client) StartOperation(ctx context.Context, kind string, body json.RawMessage) (api.StartedOperation, error) {
	var in any
	if len(body) > 0 {
		in = body
	}
	var out api.StartedOperation
	return out, c.Do(ctx, http.MethodPost, operationPath(kind, ""), nil, in, &out)
}

// GetPatch is an advisory's fleet patch report (GET /v1/patches/{advisory}).
func (c *Client) GetPatch(ctx context.Context, advisory string) (api.PatchReport, error) {
	var out api.PatchReport
	return out, c.Do(ctx, http.MethodGet, "/v1/patches/"+url.PathEscape(advisory), nil, nil, &out)
}

// CancelOperation asks a running operation to cancel.
func (c *Client) CancelOperation(ctx context.Context, id string) (api.CancelResult, error) {
	var out api.CancelResult
	return out, c.Do(ctx, http.MethodPost, operationPath(id, "/cancel"), nil, nil, &out)
}

// Decide sends a human decision to a running operation: approve, abort or override (with the
// interlock). The workflow's validator may refuse it (an *Error with code conflict).
func (c *Client) Decide(ctx context.Context, id string, decision api.Decision, req api.DecisionRequest) (api.DecisionResult, error) {
	var out api.DecisionResult
	return out, c.Do(ctx, http.MethodPost, operationPath(id, "/"+string(decision)), nil, req, &out)
}

// IncidentFilter selects incidents.
type IncidentFilter struct {
	State, Cluster, Server string
	Limit                  int
	Cursor                 string
}

// ListIncidents lists one page of incidents, newest first.
func (c *Client) ListIncidents(ctx context.Context, f IncidentFilter) (api.List[inventory.Incident], error) {
	var out api.List[inventory.Incident]
	q := listQuery(f.Limit, f.Cursor, "state", f.State, "cluster", f.Cluster, "server", f.Server)
	return out, c.Do(ctx, http.MethodGet, "/v1/incidents", q, nil, &out)
}

// GetIncident shows one incident with its timeline and workflow.
func (c *Client) GetIncident(ctx context.Context, id int64) (api.IncidentView, error) {
	var out api.IncidentView
	return out, c.Do(ctx, http.MethodGet, "/v1/incidents/"+strconv.FormatInt(id, 10), nil, nil, &out)
}

// listQuery is the query of a list: the filters given (name, value pairs; empty values are
// left out), the page size when set, the cursor.
func listQuery(limit int, cursor string, filters ...string) url.Values {
	q := url.Values{}
	for i := 0; i+1 < len(filters); i += 2 {
		if filters[i+1] != "" {
			q.Set(filters[i], filters[i+1])
		}
	}
	if cursor != "" {
		q.Set("cursor", cursor)
	}
	if limit > 0 {
		q.Set("limit", strconv.Itoa(limit))
	}
	return q
}
