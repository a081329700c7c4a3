package sandboxd

import (
	"errors"
	"net/http"
	"strings"

	"github.com/anyops/anyops"
	"github.com/anyops/anyops/sandboxd/token"
)

// Every request's token: a sandboxd token (token.Verifier) for the operation, the sandbox and
// this daemon, from the Authorization header (or ?token= on attach).

// authorize checks the request's token for op on sandbox at this sandboxd and answers 401 or
// 403 when it does not grant it. allowQuery admits ?token= (attach: browsers cannot set
// WebSocket headers).
func (s *Server) authorize(w http.ResponseWriter, r *http.Request, op token.Op, sandbox string, allowQuery bool) (token.Claims, bool) {
	tok, ok := s.bearer(w, r, allowQuery)
	if !ok {
		return token.Claims{}, false
	}
	c, err := s.verify.Verify(tok, token.Grant{Op: op, Sandbox: sandbox})
	return c, s.refuseToken(w, err)
}

// authorizeCreate checks a create's token: for this sandboxd, for exactly body (whose id the
// caller then compares with the token's sandbox), and not used before.
func (s *Server) authorizeCreate(w http.ResponseWriter, r *http.Request, body []byte) (token.Claims, bool) {
	tok, ok := s.bearer(w, r, false)
	if !ok {
		return token.Claims{}, false
	}
	c, err := s.verify.Parse(tok)
	if err == nil {
		err = s.verify.Check(c, token.Grant{Op: token.OpCreate, Sandbox: c.Sandbox, Body: body})
	}
	if err == nil && !s.once.Use(tok, c.Exp) {
		err = token.ErrUsed
	}
	return c, s.refuseToken(w, err)
}

func (s *Server) bearer(w http.ResponseWriter, r *http.Request, allowQuery bool) (string, bool) {
	tok, found := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !found && allowQuery {
		tok = r.URL.Query().Get("token")
	}
	if tok == "" {
		s.fail(w, anyops.Errorf(anyops.EUNAUTHORIZED, "a token is required (Authorization: Bearer)"))
		return "", false
	}
	return tok, true
}

// refuseToken answers a token's refusal (403 for a good token that does not fit the request,
// else 401) and reports whether there was none.
func (s *Server) refuseToken(w http.ResponseWriter, err error) bool {
	switch {
	case err == nil:
		return true
	case errors.Is(err, token.ErrScope):
		s.fail(w, anyops.Errorf(anyops.EFORBIDDEN, "%v", err))
	default:
		s.fail(w, anyops.Errorf(anyops.EUNAUTHORIZED, "%v", err))
	}
	return false
}
