package client

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/anyops/anyops"
	"github.com/anyops/anyops/sandboxd/token"
	"github.com/anyops/anyops/sandboxd/wire"
)

func newTestClient(t *testing.T, baseURL string) (*Client, *token.Verifier) {
	t.Helper()
	pub, priv, err := token.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	c, err := New(baseURL, token.NewSigner(priv))
	if err != nil {
		t.Fatal(err)
	}
	v, err := token.NewVerifier(token.NewKeySet(pub), baseURL)
	if err != nil {
		t.Fatal(err)
	}
	return c, v
}

// TestNewRefusesBadBaseURLs proves a misconfigured console host address fails at once.
func TestNewRefusesBadBaseURLs(t *testing.T) {
	for _, u := range []string{"", "localhost:8090", "ftp://x", "http://", "ws://host:1"} {
		if _, err := New(u, nil); err == nil {
			t.Errorf("New(%q) succeeded", u)
		}
	}
}

// TestErrorsKeepSandboxdsCode proves callers can branch on sandboxd's error codes, and that
// an unreachable or non-JSON sandboxd maps to unavailable or internal.
func TestErrorsKeepSandboxdsCode(t *testing.T) {
	tests := []struct {
		name     string
		status   int
		body     string
		wantCode string
		wantMsg  string
	}{
		{"not found", 404, `{"error":{"code":"not_found","message":"no sandbox x"}}`, anyops.ENOTFOUND, "no sandbox x"},
		{"conflict", 409, `{"error":{"code":"conflict","message":"sandbox x already exists"}}`, anyops.ECONFLICT, "already exists"},
		{"proxy error page", 502, `<html>bad gateway</html>`, anyops.EUNAVAILABLE, "502"},
		{"plain 500", 500, `oops`, anyops.EINTERNAL, "500"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.WriteHeader(tt.status)
				_, _ = w.Write([]byte(tt.body))
			}))
			defer ts.Close()
			c, _ := newTestClient(t, ts.URL)
			_, err := c.Get(context.Background(), "x")
			if anyops.ErrorCode(err) != tt.wantCode || !strings.Contains(anyops.ErrorMessage(err), tt.wantMsg) {
				t.Fatalf("got %v, want code %s with %q", err, tt.wantCode, tt.wantMsg)
			}
		})
	}
	c, _ := newTestClient(t, "http://127.0.0.1:1")
	if _, err := c.Capacity(context.Background()); anyops.ErrorCode(err) != anyops.EUNAVAILABLE {
		t.Fatalf("unreachable sandboxd: %v, want unavailable", err)
	}
}

// TestEachCallCarriesATokenForItsOperation proves the client scopes every token to the call:
// this sandboxd (its URL, however spelt, as the audience), the operation, the sandbox or "*",
// and for create the exact body it sends, under an id it picks when the request has none.
func TestEachCallCarriesATokenForItsOperation(t *testing.T) {
	var c *Client
	var v *token.Verifier
	seen := map[string]token.Claims{}
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tok := strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")
		claims, err := v.Parse(tok)
		if err != nil {
			t.Errorf("%s %s: %v", r.Method, r.URL.Path, err)
		}
		body, _ := io.ReadAll(r.Body)
		if _, err := v.Verify(tok, token.Grant{Op: claims.Op, Sandbox: claims.Sandbox, Body: body}); err != nil {
			t.Errorf("%s %s: %v", r.Method, r.URL.Path, err)
		}
		if r.Method == "POST" && !strings.Contains(string(body), `"id":"`+claims.Sandbox+`"`) {
			t.Errorf("create token for %q, body %s", claims.Sandbox, body)
		}
		seen[r.Method+" "+r.URL.Path] = claims
		switch {
		case r.Method == "DELETE":
			w.WriteHeader(204)
		case r.URL.Path == "/v1/sandboxes" && r.Method == "GET":
			_, _ = w.Write([]byte(`{"sandboxes":[]}`))
		default:
			_, _ = w.Write([]byte(`{}`))
		}
	}))
	defer ts.Close()
	c, v = newTestClient(t, strings.ToUpper(ts.URL[:4])+ts.URL[4:]+"/")
	ctx := context.Background()
	_, _ = c.Create(ctx, wire.CreateRequest{User: "a"})
	_, _ = c.Get(ctx, "sb-1")
	_, _ = c.List(ctx)
	_ = c.Delete(ctx, "sb-1")
	_, _ = c.Capacity(ctx)
	want := map[string]token.Claims{
		"POST /v1/sandboxes":        {Op: token.OpCreate},
		"GET /v1/sandboxes/sb-1":    {Op: token.OpGet, Sandbox: "sb-1"},
		"GET /v1/sandboxes":         {Op: token.OpList, Sandbox: token.AnySandbox},
		"DELETE /v1/sandboxes/sb-1": {Op: token.OpDelete, Sandbox: "sb-1"},
		"GET /v1/capacity":          {Op: token.OpCapacity, Sandbox: token.AnySandbox},
	}
	for call, w := range want {
		got, ok := seen[call]
		if w.Op == token.OpCreate && strings.HasPrefix(got.Sandbox, "sb-") {
			w.Sandbox = got.Sandbox // an id of the client's choosing
		}
		if !ok || got.Op != w.Op || got.Sandbox != w.Sandbox || got.Aud != ts.URL || got.Exp-got.Iat != int64(DefaultTokenTTL.Seconds()) {
			t.Errorf("%s: token %+v, want op %s on %q valid for %s", call, got, w.Op, w.Sandbox, DefaultTokenTTL)
		}
	}

	u, tok, err := c.AttachURL("sb-1")
	if err != nil {
		t.Fatal(err)
	}
	parsed, _ := url.Parse(u)
	if parsed.Scheme != "ws" || parsed.Path != "/v1/sandboxes/sb-1/attach" || parsed.Query().Get("token") != tok {
		t.Fatalf("attach URL %s", u)
	}
	if _, err := v.Verify(tok, token.Grant{Op: token.OpAttach, Sandbox: "sb-1"}); err != nil {
		t.Fatalf("attach token: %v", err)
	}
}
