// Package token mints and verifies the capability tokens sandboxd accepts. The API holds the
// Ed25519 private key and signs one short-lived token per call, scoped to one operation and one
// sandbox; sandboxd holds only the public key, so a compromised console host cannot mint tokens.
//
// Format: base64url(JSON claims) "." base64url(Ed25519 signature over the first part's ASCII
// bytes), both without padding — the compact shape of a JWS, without its algorithm header, so
// there is no algorithm to confuse.
package token

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
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

// AnySandbox is the sandbox scope of tokens for operations on the collection (create, list,
// capacity); it never grants an operation on one particular sandbox.
const AnySandbox = "*"

// MaxTokenLen bounds what Parse looks at: a real token is a few hundred bytes.
const MaxTokenLen = 4096

// ClockSkew is how far in the future a token's iat may be: hosts' clocks differ a little.
const ClockSkew = 30 * time.Second

// Claims is what a token says.
type Claims struct {
	Op      Op     `json:"op"`
	Sandbox string `json:"sandbox"` // a sandbox id, or AnySandbox for collection operations
	Exp     int64  `json:"exp"`     // unix seconds; the token is refused from this second on
	Iat     int64  `json:"iat"`     // unix seconds of issue
	Sub     string `json:"sub"`     // who asked: a user, "worker", an operator; for logs
}

// Error kinds that a verifier distinguishes: a bad or expired token is "unauthorized" (401), a
// good token for another operation or sandbox is "forbidden" (403).
var (
	ErrMalformed = errors.New("malformed token")
	ErrSignature = errors.New("bad token signature")
	ErrExpired   = errors.New("token expired")
	ErrNotYet    = errors.New("token issued in the future")
	ErrScope     = errors.New("token not valid for this operation")
)

var sandboxScope = regexp.MustCompile(`^(\*|[a-z0-9][a-z0-9-]{0,63})$`)

// Validate checks the claims' shape (not their time or scope).
func (c Claims) Validate() error {
	if !slices.Contains(Ops, c.Op) {
		return fmt.Errorf("%w: op %q is not one of %v", ErrMalformed, c.Op, Ops)
	}
	if !sandboxScope.MatchString(c.Sandbox) {
		return fmt.Errorf("%w: sandbox %q is neither %q nor a sandbox id", ErrMalformed, c.Sandbox, AnySandbox)
	}
	if c.Exp <= 0 || c.Iat <= 0 || c.Exp <= c.Iat {
		return fmt.Errorf("%w: need 0 < iat < exp", ErrMalformed)
	}
	if len(c.Sub) > 256 {
		return fmt.Errorf("%w: sub longer than 256 bytes", ErrMalformed)
	}
	return nil
}

// Signer mints tokens with a private key.
type Signer struct {
	key ed25519.PrivateKey
	now func() time.Time
}

// NewSigner returns a Signer for key.
func NewSigner(key ed25519.PrivateKey) *Signer { return &Signer{key: key, now: time.Now} }

// PublicKey returns the key sandboxd needs to verify this Signer's tokens.
func (s *Signer) PublicKey() ed25519.PublicKey { return s.key.Public().(ed25519.PublicKey) }

// Mint returns a token for op on sandbox valid for ttl from now, issued to sub.
func (s *Signer) Mint(op Op, sandbox, sub string, ttl time.Duration) (string, error) {
	now := s.now()
	return s.Sign(Claims{Op: op, Sandbox: sandbox, Sub: sub, Iat: now.Unix(), Exp: now.Add(ttl).Unix()})
}

// Sign encodes and signs c as given.
func (s *Signer) Sign(c Claims) (string, error) {
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

// Verifier checks tokens with a public key.
type Verifier struct {
	key ed25519.PublicKey
	now func() time.Time
}

// NewVerifier returns a Verifier for key.
func NewVerifier(key ed25519.PublicKey) *Verifier { return &Verifier{key: key, now: time.Now} }

// Parse checks tok's shape and signature and returns its claims, without looking at time or
// scope. Errors wrap ErrMalformed or ErrSignature.
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
	if !ed25519.Verify(v.key, []byte(head), sig) {
		return c, ErrSignature
	}
	payload, err := base64.RawURLEncoding.Strict().DecodeString(head)
	if err != nil {
		return c, fmt.Errorf("%w: payload is not unpadded base64url", ErrMalformed)
	}
	dec := json.NewDecoder(bytes.NewReader(payload))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&c); err != nil || dec.More() {
		return Claims{}, fmt.Errorf("%w: payload is not a JSON claims object", ErrMalformed)
	}
	if err := c.Validate(); err != nil {
		return Claims{}, err
	}
	return c, nil
}

// Verify parses tok and checks that it is current and grants op on sandbox. For collection
// operations pass AnySandbox. A token scoped to AnySandbox grants only collection operations;
// one scoped to a sandbox id grants only operations on that sandbox.
func (v *Verifier) Verify(tok string, op Op, sandbox string) (Claims, error) {
	c, err := v.Parse(tok)
	if err != nil {
		return c, err
	}
	now := v.now()
	if now.Unix() >= c.Exp {
		return c, fmt.Errorf("%w at %s", ErrExpired, time.Unix(c.Exp, 0).UTC().Format(time.RFC3339))
	}
	if time.Unix(c.Iat, 0).After(now.Add(ClockSkew)) {
		return c, ErrNotYet
	}
	if c.Op != op || c.Sandbox != sandbox {
		return c, fmt.Errorf("%w: token grants %s on %q, request needs %s on %q", ErrScope, c.Op, c.Sandbox, op, sandbox)
	}
	return c, nil
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
