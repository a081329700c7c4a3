// Package token mints and verifies the capability tokens sandboxd accepts. The API and the
// workers hold an Ed25519 private key and sign one short-lived token per call; sandboxd holds
// only public keys, so a compromised console host cannot mint tokens.
//
// A token is bound to what it allows: the sandboxd it is for (its audience, the URL it is
// registered under), one operation, one sandbox (or the collection), and for create the
// SHA-256 of the exact request body, so nothing in the request can be changed and the token
// cannot be replayed on another host. Every token names the id of the key that signed it
// (kid), so a sandboxd can accept several keys while they are rotated.
//
// Format: base64url(JSON claims) "." base64url(Ed25519 signature over the first part's ASCII
// bytes), both without padding — the compact shape of a JWS, without its algorithm header, so
// there is no algorithm to confuse.
package token

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"net/url"
	"os"
	"regexp"
	"slices"
	"strings"
	"time"
)

// Op is the operation a token allows.
type Op string

const (
	OpCreate   Op = "create"
	OpList     Op = "list"
	OpGet      Op = "get"
	OpDelete   Op = "delete"
	OpAttach   Op = "attach"
	OpCapacity Op = "capacity"
)

// Ops lists every Op.
var Ops = []Op{OpCreate, OpList, OpGet, OpDelete, OpAttach, OpCapacity}

// CollectionOps act on the collection of sandboxes (sandbox AnySandbox); every other Op acts on
// one sandbox, named by its id — create too: its token names the sandbox it makes.
var CollectionOps = []Op{OpList, OpCapacity}

// AnySandbox is the sandbox scope of tokens for operations on the collection (list, capacity);
// it never grants an operation on one particular sandbox.
const AnySandbox = "*"

// MaxTokenLen bounds what Parse looks at: a real token is a few hundred bytes.
const MaxTokenLen = 4096

// ClockSkew is how far in the future a token's iat may be: hosts' clocks differ a little.
const ClockSkew = 30 * time.Second

// maxAudienceLen bounds the audience URL a token may name.
const maxAudienceLen = 512

// Claims is what a token says.
type Claims struct {
	Kid     string `json:"kid"`            // KeyID of the signing key's public half
	Aud     string `json:"aud"`            // the sandboxd it is for: its URL, as Audience spells it
	Op      Op     `json:"op"`             // the one operation it allows
	Sandbox string `json:"sandbox"`        // a sandbox id, or AnySandbox for collection operations
	Body    string `json:"body,omitempty"` // create only: hex SHA-256 of the exact request body
	Exp     int64  `json:"exp"`            // unix seconds; the token is refused from this second on
	Iat     int64  `json:"iat"`            // unix seconds of issue
	Sub     string `json:"sub"`            // who asked: a user, "worker", an operator; for logs
}

// Grant is what a request needs a token for: the sandboxd it goes to, the operation, the
// sandbox, and for create the exact body.
type Grant struct {
	Audience string // the sandboxd's URL (normalised by Audience)
	Op       Op
	Sandbox  string // a sandbox id, or AnySandbox for collection operations
	Body     []byte // create only: the request body, byte for byte
}

// Error kinds that a verifier distinguishes: a bad or expired token is "unauthorized" (401), a
// good token for another host, operation, sandbox or body is "forbidden" (403).
var (
	ErrMalformed  = errors.New("malformed token")
	ErrSignature  = errors.New("bad token signature")
	ErrUnknownKey = fmt.Errorf("%w: signed by a key this host does not hold", ErrSignature)
	ErrExpired    = errors.New("token expired")
	ErrNotYet     = errors.New("token issued in the future")
	ErrScope      = errors.New("token not valid for this request")
	ErrUsed       = errors.New("token already used")
)

var (
	sandboxScope = regexp.MustCompile(`^(\*|[a-z0-9][a-z0-9-]{0,63})$`)
	kidPattern   = regexp.MustCompile(`^[0-9a-f]{16}$`)
	bodyPattern  = regexp.MustCompile(`^[0-9a-f]{64}$`)
)

// IsCollection reports whether op acts on the collection rather than on one sandbox.
func IsCollection(op Op) bool { return slices.Contains(CollectionOps, op) }

// Validate checks the claims' shape (not their time or scope).
func (c Claims) Validate() error {
	if !slices.Contains(Ops, c.Op) {
		return fmt.Errorf("%w: op %q is not one of %v", ErrMalformed, c.Op, Ops)
	}
	if !sandboxScope.MatchString(c.Sandbox) {
		return fmt.Errorf("%w: sandbox %q is neither %q nor a sandbox id", ErrMalformed, c.Sandbox, AnySandbox)
	}
	if IsCollection(c.Op) != (c.Sandbox == AnySandbox) {
		return fmt.Errorf("%w: %s needs a sandbox of %s", ErrMalformed, c.Op, map[bool]string{true: `"*"`, false: "its own id"}[IsCollection(c.Op)])
	}
	if !kidPattern.MatchString(c.Kid) {
		return fmt.Errorf("%w: kid %q is not 16 hex digits", ErrMalformed, c.Kid)
	}
	if aud, err := Audience(c.Aud); err != nil || aud != c.Aud {
		return fmt.Errorf("%w: aud %q is not a sandboxd URL in normal form", ErrMalformed, c.Aud)
	}
	if (c.Op == OpCreate) != bodyPattern.MatchString(c.Body) {
		return fmt.Errorf("%w: create tokens, and only they, carry the hex SHA-256 of their body", ErrMalformed)
	}
	if c.Exp <= 0 || c.Iat <= 0 || c.Exp <= c.Iat {
		return fmt.Errorf("%w: need 0 < iat < exp", ErrMalformed)
	}
	if len(c.Sub) > 256 {
		return fmt.Errorf("%w: sub longer than 256 bytes", ErrMalformed)
	}
	return nil
}

// Audience is the normal form of a sandboxd's base URL that tokens name: lower-case scheme and
// host, no trailing slash, no query, fragment or user info. The client and sandboxd both pass
// the URL through it, so "HTTP://Host:8090/" and "http://host:8090" are one audience.
func Audience(baseURL string) (string, error) {
	u, err := url.Parse(baseURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || // Parse lower-cases the scheme
		u.Host == "" || u.User != nil || u.RawQuery != "" || u.Fragment != "" || u.Opaque != "" || len(baseURL) > maxAudienceLen {
		return "", fmt.Errorf("sandboxd URL %q must be http(s)://host[:port][/path]", baseURL)
	}
	return u.Scheme + "://" + strings.ToLower(u.Host) + strings.TrimRight(u.EscapedPath(), "/"), nil
}

// BodyHash is the hex SHA-256 a create token carries for body.
func BodyHash(body []byte) string {
	sum := sha256.Sum256(body)
	return hex.EncodeToString(sum[:])
}

// KeyID is the id of a public key: the first 8 bytes of its SHA-256, in hex. It is derived, not
// chosen, so a key file and its id can never disagree.
func KeyID(pub ed25519.PublicKey) string {
	sum := sha256.Sum256(pub)
	return hex.EncodeToString(sum[:8])
}

// Signer mints tokens with a private key.
type Signer struct {
	key ed25519.PrivateKey
	kid string
	now func() time.Time
}

// NewSigner returns a Signer for key.
func NewSigner(key ed25519.PrivateKey) *Signer {
	return &Signer{key: key, kid: KeyID(key.Public().(ed25519.PublicKey)), now: time.Now}
}

// PublicKey returns the key sandboxd needs to verify this Signer's tokens.
func (s *Signer) PublicKey() ed25519.PublicKey { return s.key.Public().(ed25519.PublicKey) }

// KeyID is the id its tokens name.
func (s *Signer) KeyID() string { return s.kid }

// Mint returns a token for g valid for ttl from now, issued to sub.
func (s *Signer) Mint(g Grant, sub string, ttl time.Duration) (string, error) {
	aud, err := Audience(g.Audience)
	if err != nil {
		return "", fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	now := s.now()
	c := Claims{Aud: aud, Op: g.Op, Sandbox: g.Sandbox, Sub: sub, Iat: now.Unix(), Exp: now.Add(ttl).Unix()}
	if g.Op == OpCreate {
		c.Body = BodyHash(g.Body)
	}
	return s.Sign(c)
}

// Sign encodes and signs c as given; an empty Kid is filled with the Signer's.
func (s *Signer) Sign(c Claims) (string, error) {
	if c.Kid == "" {
		c.Kid = s.kid
	}
	if err := c.Validate(); err != nil {
		return "", err
	}
	payload, err := json.Marshal(c)
	if err != nil {
		return "", err
	}
	head := base64.RawURLEncoding.EncodeToString(payload)
	sig := ed25519.Sign(s.key, []byte(head))
	return head + "." + base64.RawURLEncoding.EncodeToString(sig), nil
}

// Keys finds public keys by id.
type Keys interface {
	Key(kid string) (ed25519.PublicKey, bool)
}

// KeySet is a fixed set of public keys by id.
type KeySet map[string]ed25519.PublicKey

// NewKeySet returns the set of pubs.
func NewKeySet(pubs ...ed25519.PublicKey) KeySet {
	ks := KeySet{}
	for _, p := range pubs {
		ks[KeyID(p)] = p
	}
	return ks
}

// Key returns the key with id kid.
func (ks KeySet) Key(kid string) (ed25519.PublicKey, bool) {
	k, ok := ks[kid]
	return k, ok
}

// Verifier checks tokens with a set of public keys, for one audience (its sandboxd's URL).
type Verifier struct {
	keys     Keys
	audience string
	now      func() time.Time
}

// NewVerifier returns a Verifier that accepts tokens signed by any of keys and addressed to
// audience (normalised with Audience).
func NewVerifier(keys Keys, audience string) (*Verifier, error) {
	aud, err := Audience(audience)
	if err != nil {
		return nil, err
	}
	return &Verifier{keys: keys, audience: aud, now: time.Now}, nil
}

// Audience is the audience the Verifier accepts.
func (v *Verifier) Audience() string { return v.audience }

// Parse checks tok's shape and signature and returns its claims, without looking at time or
// scope. Errors wrap ErrMalformed or ErrSignature (ErrUnknownKey for a kid it does not hold).
func (v *Verifier) Parse(tok string) (Claims, error) {
	var c Claims
	if len(tok) > MaxTokenLen {
		return c, fmt.Errorf("%w: longer than %d bytes", ErrMalformed, MaxTokenLen)
	}
	head, sigText, ok := strings.Cut(tok, ".")
	if !ok || head == "" || sigText == "" {
		return c, fmt.Errorf("%w: want payload.signature", ErrMalformed)
	}
	sig, err := base64.RawURLEncoding.Strict().DecodeString(sigText)
	if err != nil || len(sig) != ed25519.SignatureSize {
		return c, fmt.Errorf("%w: signature is not %d bytes of unpadded base64url", ErrMalformed, ed25519.SignatureSize)
	}
	payload, err := base64.RawURLEncoding.Strict().DecodeString(head)
	if err != nil {
		return c, fmt.Errorf("%w: payload is not unpadded base64url", ErrMalformed)
	}
	// The payload names the key to check it with; nothing of it is believed before that check.
	dec := json.NewDecoder(bytes.NewReader(payload))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&c); err != nil || dec.More() {
		return Claims{}, fmt.Errorf("%w: payload is not a JSON claims object", ErrMalformed)
	}
	key, ok := v.keys.Key(c.Kid)
	if !ok {
		return Claims{}, fmt.Errorf("%w (kid %q)", ErrUnknownKey, c.Kid)
	}
	if !ed25519.Verify(key, []byte(head), sig) {
		return Claims{}, ErrSignature
	}
	if err := c.Validate(); err != nil {
		return Claims{}, err
	}
	return c, nil
}

// Verify parses tok and checks that it is current and grants exactly need: the same audience
// (this Verifier's), operation and sandbox, and for create the same body.
func (v *Verifier) Verify(tok string, need Grant) (Claims, error) {
	c, err := v.Parse(tok)
	if err != nil {
		return c, err
	}
	return c, v.Check(c, need)
}

// Check is Verify for claims Parse has returned already. need.Audience is not looked at: the
// Verifier's own audience is the one a token must name.
func (v *Verifier) Check(c Claims, need Grant) error {
	now := v.now()
	if now.Unix() >= c.Exp {
		return fmt.Errorf("%w at %s", ErrExpired, time.Unix(c.Exp, 0).UTC().Format(time.RFC3339))
	}
	if time.Unix(c.Iat, 0).After(now.Add(ClockSkew)) {
		return ErrNotYet
	}
	switch {
	case c.Aud != v.audience:
		return fmt.Errorf("%w: token is for sandboxd %s, this is %s", ErrScope, c.Aud, v.audience)
	case c.Op != need.Op || c.Sandbox != need.Sandbox:
		return fmt.Errorf("%w: token grants %s on %q, request needs %s on %q", ErrScope, c.Op, c.Sandbox, need.Op, need.Sandbox)
	case c.Op == OpCreate && c.Body != BodyHash(need.Body):
		return fmt.Errorf("%w: the request body is not the one the token was issued for", ErrScope)
	}
	return nil
}

// GenerateKey returns a new Ed25519 key pair.
func GenerateKey() (ed25519.PublicKey, ed25519.PrivateKey, error) {
	return ed25519.GenerateKey(rand.Reader)
}

// WriteKeyPair writes priv as a PKCS#8 PEM file at privPath (mode 0600) and its public key as a
// PKIX PEM file at pubPath (mode 0644). It refuses to overwrite an existing private key.
func WriteKeyPair(privPath, pubPath string, priv ed25519.PrivateKey) error {
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return err
	}
	pubDER, err := x509.MarshalPKIXPublicKey(priv.Public())
	if err != nil {
		return err
	}
	f, err := os.OpenFile(privPath, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	if err := pem.Encode(f, &pem.Block{Type: "PRIVATE KEY", Bytes: der}); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.WriteFile(pubPath, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER}), 0o644)
}

// EnsureKeyPair returns the private key at privPath, first creating a new pair there (and its
// public half at privPath+".pub") when the file does not exist: what `anyops dev` needs to
// run the API and sandboxd together with no setup.
func EnsureKeyPair(privPath string) (ed25519.PrivateKey, error) {
	priv, err := ReadPrivateKey(privPath)
	if err == nil || !errors.Is(err, os.ErrNotExist) {
		return priv, err
	}
	_, priv, err = GenerateKey()
	if err != nil {
		return nil, err
	}
	if err := WriteKeyPair(privPath, privPath+".pub", priv); err != nil {
		return nil, err
	}
	return priv, nil
}

// ReadPrivateKey reads a PKCS#8 PEM Ed25519 private key file.
func ReadPrivateKey(path string) (ed25519.PrivateKey, error) {
	der, err := readPEM(path, "PRIVATE KEY")
	if err != nil {
		return nil, err
	}
	k, err := x509.ParsePKCS8PrivateKey(der)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	priv, ok := k.(ed25519.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("%s: not an Ed25519 private key", path)
	}
	return priv, nil
}

// ReadPublicKey reads a PKIX PEM Ed25519 public key file.
func ReadPublicKey(path string) (ed25519.PublicKey, error) {
	der, err := readPEM(path, "PUBLIC KEY")
	if err != nil {
		return nil, err
	}
	k, err := x509.ParsePKIXPublicKey(der)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	pub, ok := k.(ed25519.PublicKey)
	if !ok {
		return nil, fmt.Errorf("%s: not an Ed25519 public key", path)
	}
	return pub, nil
}

func readPEM(path, typ string) ([]byte, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	b, _ := pem.Decode(data)
	if b == nil || b.Type != typ {
		return nil, fmt.Errorf("%s: no PEM block of type %q", path, typ)
	}
	return b.Bytes, nil
}
