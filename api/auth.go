package api

import (
	"crypto/sha256"
	"crypto/subtle"
	"fmt"
	"strings"
	"unicode"

	"github.com/gin-gonic/gin"

	"github.com/anyops/anyops"
)

// AccessRole is what a bearer token may do. Roles are ordered: each includes the ones below.
type AccessRole string

const (
	RoleViewer   AccessRole = "viewer"   // reads inventory and operations
	RoleOperator AccessRole = "operator" // also starts and cancels operations
	RoleAdmin    AccessRole = "admin"    // everything
)

// AccessRoles lists the roles from least to most privileged.
var AccessRoles = []AccessRole{RoleViewer, RoleOperator, RoleAdmin}

func (r AccessRole) rank() int {
	for i, role := range AccessRoles {
		if role == r {
			return i + 1
		}
	}
	return 0
}

// Includes reports whether r grants everything need grants.
func (r AccessRole) Includes(need AccessRole) bool { return r.rank() >= need.rank() && need.rank() > 0 }

// token is a configured bearer token, kept as its SHA-256 so that comparing takes the same
// time whatever the length of the presented token.
type token struct {
	digest [sha256.Size]byte
	role   AccessRole
}

// Authorizer authenticates bearer tokens and checks their role.
type Authorizer struct {
	tokens []token
}

// ParseTokens reads the --tokens setting: "role:token" pairs separated by commas, role one of
// viewer, operator, admin. Empty means no tokens: every protected route answers 401.
func ParseTokens(spec string) (*Authorizer, error) {
	a := &Authorizer{}
	seen := map[[sha256.Size]byte]bool{}
	for i, pair := range strings.Split(spec, ",") {
		pair = strings.TrimSpace(pair)
		if pair == "" {
			continue
		}
		role, secret, ok := strings.Cut(pair, ":")
		if !ok || secret == "" {
			return nil, fmt.Errorf("tokens: entry %d: want role:token", i+1)
		}
		if strings.ContainsFunc(secret, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }) {
			// An Authorization header could not carry it intact.
			return nil, fmt.Errorf("tokens: entry %d: the token contains whitespace or control characters", i+1)
		}
		r, err := anyops.Parse("tokens: role", role, AccessRoles)
		if err != nil {
			return nil, fmt.Errorf("tokens: entry %d: %w", i+1, err)
		}
		digest := sha256.Sum256([]byte(secret))
		if seen[digest] {
			return nil, fmt.Errorf("tokens: entry %d: the same token is listed twice", i+1)
		}
		seen[digest] = true
		a.tokens = append(a.tokens, token{digest: digest, role: r})
	}
	return a, nil
}

// callerKey is where Require leaves the caller's role in the gin context.
const callerKey = "anyops.caller"

// authenticate returns the role of the request's bearer token. Every configured token is
// compared, in constant time, so timing reveals neither which matched nor how much of one.
func (a *Authorizer) authenticate(header string) (AccessRole, error) {
	scheme, presented, ok := strings.Cut(header, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") || strings.TrimSpace(presented) == "" {
		return "", anyops.Errorf(anyops.EUNAUTHORIZED, "missing bearer token: send Authorization: Bearer <token>")
	}
	digest := sha256.Sum256([]byte(strings.TrimSpace(presented)))
	var found AccessRole
	for _, t := range a.tokens {
		if subtle.ConstantTimeCompare(digest[:], t.digest[:]) == 1 {
			found = t.role
		}
	}
	if found == "" {
		return "", anyops.Errorf(anyops.EUNAUTHORIZED, "invalid bearer token")
	}
	return found, nil
}

// Require is middleware that lets a request through only with a bearer token whose role
// includes need: no or an unknown token is 401, too small a role 403.
func (a *Authorizer) Require(need AccessRole) gin.HandlerFunc {
	return func(c *gin.Context) {
		role, err := a.authenticate(c.GetHeader("Authorization"))
		if err != nil {
			WriteError(c, err)
			return
		}
		if !role.Includes(need) {
			WriteError(c, anyops.Errorf(anyops.EFORBIDDEN, "this needs the %s role; the token has %s", need, role))
			return
		}
		c.Set(callerKey, role)
		c.Next()
	}
}

// Caller returns the role Require authenticated for this request, "" on public routes.
func Caller(c *gin.Context) AccessRole {
	role, _ := c.Get(callerKey)
	r, _ := role.(AccessRole)
	return r
}

// Actor names the caller in audit records and workflow inputs.
func Actor(c *gin.Context) string {
	if r := Caller(c); r != "" {
		return "api:" + string(r)
	}
	return "api:anonymous"
}
