package token

import (
	"crypto/ed25519"
	"encoding/base64"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

var fixedNow = time.Unix(1_800_000_000, 0)

func testPair(t testing.TB) (*Signer, *Verifier) {
	t.Helper()
	pub, priv, err := GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	s, v := NewSigner(priv), NewVerifier(pub)
	s.now = func() time.Time { return fixedNow }
	v.now = func() time.Time { return fixedNow }
	return s, v
}

// TestVerify proves which tokens are accepted for which request, and that each refusal names
// the right kind (unauthorized vs forbidden).
func TestVerify(t *testing.T) {
	s, v := testPair(t)
	_, otherPriv, _ := GenerateKey()
	other := NewSigner(otherPriv)
	other.now = s.now
	mint := func(sg *Signer, c Claims) string {
		tok, err := sg.Sign(c)
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	now := fixedNow.Unix()
	good := Claims{Op: OpGet, Sandbox: "sb-1", Iat: now, Exp: now + 60, Sub: "worker"}
	tests := []struct {
		name    string
		tok     string
		op      Op
		sandbox string
		want    error // nil: accepted
	}{
		{"current token for the right op and sandbox", mint(s, good), OpGet, "sb-1", nil},
		{"collection token for create", mint(s, Claims{Op: OpCreate, Sandbox: AnySandbox, Iat: now, Exp: now + 60}), OpCreate, AnySandbox, nil},
		{"iat slightly ahead within clock skew", mint(s, Claims{Op: OpGet, Sandbox: "sb-1", Iat: now + 10, Exp: now + 60}), OpGet, "sb-1", nil},
		{"expired one second ago", mint(s, Claims{Op: OpGet, Sandbox: "sb-1", Iat: now - 61, Exp: now - 1}), OpGet, "sb-1", ErrExpired},
		{"expiring this very second", mint(s, Claims{Op: OpGet, Sandbox: "sb-1", Iat: now - 60, Exp: now}), OpGet, "sb-1", ErrExpired},
		{"issued far in the future", mint(s, Claims{Op: OpGet, Sandbox: "sb-1", Iat: now + 3600, Exp: now + 7200}), OpGet, "sb-1", ErrNotYet},
		{"other operation", mint(s, good), OpDelete, "sb-1", ErrScope},
		{"other sandbox", mint(s, good), OpGet, "sb-2", ErrScope},
		{"wildcard does not grant a single sandbox", mint(s, Claims{Op: OpGet, Sandbox: AnySandbox, Iat: now, Exp: now + 60}), OpGet, "sb-1", ErrScope},
		{"sandbox token does not grant the collection", mint(s, Claims{Op: OpCreate, Sandbox: "sb-1", Iat: now, Exp: now + 60}), OpCreate, AnySandbox, ErrScope},
		{"signed by another key", mint(other, good), OpGet, "sb-1", ErrSignature},
		{"payload swapped under a valid signature", swapPayload(mint(s, good), Claims{Op: OpDelete, Sandbox: "sb-1", Iat: now, Exp: now + 60}), OpDelete, "sb-1", ErrSignature},
		{"empty", "", OpGet, "sb-1", ErrMalformed},
		{"no dot", "abc", OpGet, "sb-1", ErrMalformed},
		{"signature not base64", "abc.!!!", OpGet, "sb-1", ErrMalformed},
		{"signature wrong length", "abc." + base64.RawURLEncoding.EncodeToString([]byte("short")), OpGet, "sb-1", ErrMalformed},
		{"padded signature", mint(s, good) + "=", OpGet, "sb-1", ErrMalformed},
		{"too long", strings.Repeat("a", MaxTokenLen+1), OpGet, "sb-1", ErrMalformed},
		{"signed garbage payload", signRaw(s, []byte("not json")), OpGet, "sb-1", ErrMalformed},
		{"signed payload with unknown field", signRaw(s, []byte(`{"op":"get","sandbox":"sb-1","iat":1,"exp":9999999999,"admin":true}`)), OpGet, "sb-1", ErrMalformed},
		{"signed payload with unknown op", signRaw(s, []byte(`{"op":"root","sandbox":"sb-1","iat":1,"exp":9999999999}`)), OpGet, "sb-1", ErrMalformed},
		{"signed payload with no exp", signRaw(s, []byte(`{"op":"get","sandbox":"sb-1","iat":1}`)), OpGet, "sb-1", ErrMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := v.Verify(tt.tok, tt.op, tt.sandbox)
			if tt.want == nil && err != nil {
				t.Fatalf("refused: %v", err)
			}
			if tt.want != nil && !errors.Is(err, tt.want) {
				t.Fatalf("got %v, want %v", err, tt.want)
			}
		})
	}
}

// TestMintRoundTrip proves Mint's claims come back from Verify unchanged.
func TestMintRoundTrip(t *testing.T) {
	s, v := testPair(t)
	tok, err := s.Mint(OpAttach, "abc-123", "alice", 5*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	c, err := v.Verify(tok, OpAttach, "abc-123")
	if err != nil {
		t.Fatal(err)
	}
	want := Claims{Op: OpAttach, Sandbox: "abc-123", Sub: "alice", Iat: fixedNow.Unix(), Exp: fixedNow.Add(5 * time.Minute).Unix()}
	if c != want {
		t.Fatalf("claims %+v, want %+v", c, want)
	}
}

// TestSignRefusesBadClaims proves a Signer never mints a token a Verifier would call malformed.
func TestSignRefusesBadClaims(t *testing.T) {
	s, _ := testPair(t)
	for name, c := range map[string]Claims{
		"unknown op":        {Op: "root", Sandbox: "*", Iat: 1, Exp: 2},
		"bad sandbox":       {Op: OpGet, Sandbox: "../etc", Iat: 1, Exp: 2},
		"exp before iat":    {Op: OpGet, Sandbox: "a", Iat: 2, Exp: 1},
		"no times":          {Op: OpGet, Sandbox: "a"},
		"negative lifetime": {Op: OpGet, Sandbox: "a", Iat: 5, Exp: 5},
	} {
		if _, err := s.Sign(c); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: Sign returned %v, want ErrMalformed", name, err)
		}
	}
}

// TestKeyFiles proves a written key pair reads back and that files of the wrong kind are refused.
func TestKeyFiles(t *testing.T) {
	dir := t.TempDir()
	priv, pub := filepath.Join(dir, "k"), filepath.Join(dir, "k.pub")
	_, key, _ := GenerateKey()
	if err := WriteKeyPair(priv, pub, key); err != nil {
		t.Fatal(err)
	}
	if err := WriteKeyPair(priv, pub, key); err == nil {
		t.Fatal("WriteKeyPair overwrote an existing private key")
	}
	gotPriv, err := ReadPrivateKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	gotPub, err := ReadPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	if !gotPriv.Equal(key) || !gotPub.Equal(key.Public()) {
		t.Fatal("keys changed on the way through files")
	}
	if _, err := ReadPublicKey(priv); err == nil {
		t.Error("ReadPublicKey accepted a private key file")
	}
	if _, err := ReadPrivateKey(pub); err == nil {
		t.Error("ReadPrivateKey accepted a public key file")
	}
}

// TestEnsureKeyPair proves the first call creates a pair and later calls return the same key.
func TestEnsureKeyPair(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sandboxd.key")
	first, err := EnsureKeyPair(path)
	if err != nil {
		t.Fatal(err)
	}
	again, err := EnsureKeyPair(path)
	if err != nil {
		t.Fatal(err)
	}
	pub, err := ReadPublicKey(path + ".pub")
	if err != nil {
		t.Fatal(err)
	}
	if !first.Equal(again) || !pub.Equal(first.Public()) {
		t.Fatal("EnsureKeyPair did not keep the key it created")
	}
	if err := os.WriteFile(path, []byte("garbage"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := EnsureKeyPair(path); err == nil {
		t.Fatal("EnsureKeyPair replaced or accepted a corrupt key file")
	}
}

// FuzzParse proves the parser never panics and never accepts a token the key did not sign:
// anything it accepts must re-verify byte for byte and carry valid claims.
func FuzzParse(f *testing.F) {
	seed := ed25519.NewKeyFromSeed(make([]byte, ed25519.SeedSize))
	s := NewSigner(seed)
	v := NewVerifier(seed.Public().(ed25519.PublicKey))
	good, _ := s.Sign(Claims{Op: OpGet, Sandbox: "sb-1", Iat: 1, Exp: 2, Sub: "fuzz"})
	f.Add(good)
	f.Add("")
	f.Add(".")
	f.Add("e30.AAAA")
	f.Add(good[:len(good)-2])
	f.Fuzz(func(t *testing.T, tok string) {
		c, err := v.Parse(tok)
		if err != nil {
			return
		}
		if err := c.Validate(); err != nil {
			t.Fatalf("accepted invalid claims %+v: %v", c, err)
		}
		head, sig, _ := strings.Cut(tok, ".")
		raw, _ := base64.RawURLEncoding.DecodeString(sig)
		if !ed25519.Verify(v.key, []byte(head), raw) {
			t.Fatalf("accepted %q without a valid signature", tok)
		}
	})
}

func swapPayload(tok string, c Claims) string {
	_, sig, _ := strings.Cut(tok, ".")
	s, _ := testPairNoT()
	other, _ := s.Sign(c)
	head, _, _ := strings.Cut(other, ".")
	return head + "." + sig
}

func testPairNoT() (*Signer, *Verifier) {
	pub, priv, _ := GenerateKey()
	return NewSigner(priv), NewVerifier(pub)
}

func signRaw(s *Signer, payload []byte) string {
	head := base64.RawURLEncoding.EncodeToString(payload)
	return head + "." + base64.RawURLEncoding.EncodeToString(ed25519.Sign(s.key, []byte(head)))
}
