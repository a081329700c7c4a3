package api

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"
	"unicode"

	"github.com/gin-gonic/gin"

	"github.com/anyops/anyops"
	"github.com/anyops/anyops/inventory"
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
	name   string // the person (or system) it belongs to: audit events record it
	role   AccessRole
}

// Authorizer authenticates bearer tokens and checks their role: the tokens of --tokens, then
// those of the inventory (`anyops token create`), which it looks up by their SHA-256.
type Authorizer struct {
	tokens []token
	store  *inventory.Store // nil: only --tokens
}

// ParseTokens reads the --tokens setting: "name:role:token" entries separated by commas, role
// one of viewer, operator, admin, and name the holder's (it is what audit events record).
// The older "role:token" form still works, with the role as the name. Empty means no
// tokens: only the inventory's, if any, are accepted.
func ParseTokens(spec string) (*Authorizer, error) {
	a := &Authorizer{}
	seen := map[[sha256.Size]byte]bool{}
	names := map[string]bool{}
	for i, entry := range strings.Split(spec, ",") {
		entry = strings.TrimSpace(entry)
		if entry == "" {
			continue
		}
		name, role, secret, err := splitTokenEntry(entry)
		if err != nil {
			return nil, fmt.Errorf("tokens: entry %d: %w", i+1, err)
		}
		if strings.ContainsFunc(secret, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }) {
			// An Authorization header could not carry it intact.
			return nil, fmt.Errorf("tokens: entry %d: the token contains whitespace or control characters", i+1)
		}
		digest := sha256.Sum256([]byte(secret))
		if seen[digest] {
			return nil, fmt.Errorf("tokens: entry %d: the same token is listed twice", i+1)
		}
		if names[name] {
			return nil, fmt.Errorf("tokens: entry %d: the name %q is listed twice", i+1, name)
		}
		seen[digest], names[name] = true, true
		a.tokens = append(a.tokens, token{digest: digest, name: name, role: role})
	}
	return a, nil
}

// splitTokenEntry reads "name:role:token", or the older "role:token" (named after its role).
func splitTokenEntry(entry string) (name string, role AccessRole, secret string, err error) {
	parts := strings.SplitN(entry, ":", 3)
	if len(parts) == 3 && parts[2] != "" && slices.Contains(AccessRoles, AccessRole(parts[1])) {
		if !inventory.ValidTokenName(parts[0]) {
			return "", "", "", fmt.Errorf("name %q: want lower-case letters, digits and . _ @ -", parts[0])
		}
		return parts[0], AccessRole(parts[1]), parts[2], nil
	}
	r, secret, ok := strings.Cut(entry, ":")
	if !ok || secret == "" {
		return "", "", "", errors.New("want name:role:token")
	}
	parsed, err := anyops.Parse("role", r, AccessRoles)
	if err != nil {
		return "", "", "", err
	}
	return r, parsed, secret, nil
}

// WithStore returns an Authorizer that also accepts the inventory's tokens.
func (a *Authorizer) WithStore(s *inventory.Store) *Authorizer {
	b := *a
	b.store = s
	return &b
}

// TokenDigest is the hex SHA-256 under which the inventory keeps a token.
func TokenDigest(secret string) string {
	d := sha256.Sum256([]byte(secret))
	return hex.EncodeToString(d[:])
}

// CreateToken makes a new random token for name with role, records its SHA-256 in the
// inventory and returns the token: the only time it is shown.
func CreateToken(ctx context.Context, store *inventory.Store, name string, role AccessRole, createdBy string) (string, error) {
	if _, err := anyops.Parse("role", string(role), AccessRoles); err != nil {
		return "", err
	}
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	secret := "anyops_" + base64.RawURLEncoding.EncodeToString(b)
	_, err := store.CreateAPIToken(ctx, inventory.APIToken{Name: name, Role: string(role), Digest: TokenDigest(secret), CreatedBy: createdBy})
	return secret, err
}

// caller is who Require authenticated.
type caller struct {
	name string
	role AccessRole
}

// callerKey is where Require leaves the caller in the gin context.
const callerKey = "anyops.caller"

// authenticate returns who holds the request's bearer token. Every configured token is
// compared, in constant time, so timing reveals neither which matched nor how much of one;
// then the inventory is asked for the token's SHA-256. An inventory that cannot be read
// lets nobody in.
func (a *Authorizer) authenticate(ctx context.Context, header string) (caller, error) {
	scheme, presented, ok := strings.Cut(header, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") || strings.TrimSpace(presented) == "" {
		return caller{}, anyops.Errorf(anyops.EUNAUTHORIZED, "missing bearer token: send Authorization: Bearer <token>")
	}
	secret := strings.TrimSpace(presented)
	digest := sha256.Sum256([]byte(secret))
	var found caller
	for _, t := range a.tokens {
		if subtle.ConstantTimeCompare(digest[:], t.digest[:]) == 1 {
			found = caller{name: t.name, role: t.role}
		}
	}
	if found.role != "" {
		return found, nil
	}
	if a.store != nil {
		t, err := a.store.APITokenByDigest(ctx, hex.EncodeToString(digest[:]))
		switch {
		case err == nil && slices.Contains(AccessRoles, AccessRole(t.Role)):
			return caller{name: t.Name, role: AccessRole(t.Role)}, nil
		case err != nil && anyops.ErrorCode(err) != anyops.ENOTFOUND:
			return caller{}, anyops.Errorf(anyops.EUNAVAILABLE, "tokens cannot be checked now")
		}
	}
	return caller{}, anyops.Errorf(anyops.EUNAUTHORIZED, "invalid bearer token")
}

// Require is middleware that lets a request through only with a bearer token whose role
// includes need: no or an unknown token is 401, too small a role 403.
func (a *Authorizer) Require(need AccessRole) gin.HandlerFunc {
	return func(c *gin.Context) {
		who, err := a.authenticate(c.Request.Context(), c.GetHeader("Authorization"))
		if err != nil {
			WriteError(c, err)
			return
		}
		if !who.role.Includes(need) {
			WriteError(c, anyops.Errorf(anyops.EFORBIDDEN, "this needs the %s role; the token has %s", need, who.role))
			return
		}
		c.Set(callerKey, who)
		c.Next()
	}
}

// Caller returns the role Require authenticated for this request, "" on public routes.
func Caller(c *gin.Context) AccessRole {
	v, _ := c.Get(callerKey)
	who, _ := v.(caller)
	return who.role
}

// Actor names the caller in audit records and workflow inputs: "api:" and the token's name.
func Actor(c *gin.Context) string {
	v, _ := c.Get(callerKey)
	if who, ok := v.(caller); ok && who.name != "" {
		return "api:" + who.name
	}
	return "api:anonymous"
}
