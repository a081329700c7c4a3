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

const hostA = "http://console-a:8090"

func testPair(t testing.TB) (*Signer, *Verifier) {
	t.Helper()
	pub, priv, err := GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	s := NewSigner(priv)
	v, err := NewVerifier(NewKeySet(pub), hostA)
	if err != nil {
		t.Fatal(err)
	}
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
		t.Helper()
		tok, err := sg.Sign(c)
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	now := fixedNow.Unix()
	body := []byte(`{"id":"sb-1","user":"alice","uid":100001,"plan":"free"}`)
	good := Claims{Aud: hostA, Op: OpGet, Sandbox: "sb-1", Iat: now, Exp: now + 60, Sub: "worker"}
	create := Claims{Aud: hostA, Op: OpCreate, Sandbox: "sb-1", Body: BodyHash(body), Iat: now, Exp: now + 60}
	with := func(c Claims, change func(*Claims)) Claims { change(&c); return c }
	get := Grant{Audience: hostA, Op: OpGet, Sandbox: "sb-1"}
	tests := []struct {
		name string
		tok  string
		need Grant
		want error // nil: accepted
	}{
		{"current token for the right op and sandbox", mint(s, good), get, nil},
		{"create token for its sandbox and exact body", mint(s, create), Grant{Audience: hostA, Op: OpCreate, Sandbox: "sb-1", Body: body}, nil},
		{"collection token for list", mint(s, Claims{Aud: hostA, Op: OpList, Sandbox: AnySandbox, Iat: now, Exp: now + 60}), Grant{Audience: hostA, Op: OpList, Sandbox: AnySandbox}, nil},
		{"iat slightly ahead within clock skew", mint(s, with(good, func(c *Claims) { c.Iat = now + 10 })), get, nil},
		{"expired one second ago", mint(s, with(good, func(c *Claims) { c.Iat, c.Exp = now-61, now-1 })), get, ErrExpired},
		{"expiring this very second", mint(s, with(good, func(c *Claims) { c.Iat, c.Exp = now-60, now })), get, ErrExpired},
		{"issued far in the future", mint(s, with(good, func(c *Claims) { c.Iat, c.Exp = now+3600, now+7200 })), get, ErrNotYet},
		{"other operation", mint(s, good), Grant{Audience: hostA, Op: OpDelete, Sandbox: "sb-1"}, ErrScope},
		{"other sandbox", mint(s, good), Grant{Audience: hostA, Op: OpGet, Sandbox: "sb-2"}, ErrScope},
		{"another host's token", mint(s, with(good, func(c *Claims) { c.Aud = "http://console-b:8090" })), get, ErrScope},
		{"create with a changed body", mint(s, create), Grant{Audience: hostA, Op: OpCreate, Sandbox: "sb-1", Body: []byte(`{"id":"sb-1","user":"alice","uid":100001,"gid":42,"plan":"free"}`)}, ErrScope},
		{"create for another sandbox id", mint(s, create), Grant{Audience: hostA, Op: OpCreate, Sandbox: "sb-2", Body: body}, ErrScope},
		{"signed by another key", mint(other, good), get, ErrUnknownKey},
		{"another key's signature under this key's id", mint(other, with(good, func(c *Claims) { c.Kid = s.KeyID() })), get, ErrSignature},
		{"payload swapped under a valid signature", swapPayload(mint(s, good), with(good, func(c *Claims) { c.Op = OpDelete })), Grant{Audience: hostA, Op: OpDelete, Sandbox: "sb-1"}, ErrSignature},
		{"empty", "", get, ErrMalformed},
		{"no dot", "abc", get, ErrMalformed},
		{"signature not base64", "abc.!!!", get, ErrMalformed},
		{"signature wrong length", "abc." + base64.RawURLEncoding.EncodeToString([]byte("short")), get, ErrMalformed},
		{"padded signature", mint(s, good) + "=", get, ErrMalformed},
		{"too long", strings.Repeat("a", MaxTokenLen+1), get, ErrMalformed},
		{"signed garbage payload", signRaw(s, []byte("not json")), get, ErrMalformed},
		{"signed payload with unknown field", signRaw(s, []byte(`{"kid":"`+s.KeyID()+`","aud":"http://console-a:8090","op":"get","sandbox":"sb-1","iat":1,"exp":9999999999,"admin":true}`)), get, ErrMalformed},
		{"signed payload with unknown op", signRaw(s, []byte(`{"kid":"`+s.KeyID()+`","aud":"http://console-a:8090","op":"root","sandbox":"sb-1","iat":1,"exp":9999999999}`)), get, ErrMalformed},
		{"signed payload with no exp", signRaw(s, []byte(`{"kid":"`+s.KeyID()+`","aud":"http://console-a:8090","op":"get","sandbox":"sb-1","iat":1}`)), get, ErrMalformed},
		{"signed payload with no audience", signRaw(s, []byte(`{"kid":"`+s.KeyID()+`","op":"get","sandbox":"sb-1","iat":1,"exp":9999999999}`)), get, ErrMalformed},
		{"signed create payload without a body hash", signRaw(s, []byte(`{"kid":"`+s.KeyID()+`","aud":"http://console-a:8090","op":"create","sandbox":"sb-1","iat":1,"exp":9999999999}`)), Grant{Audience: hostA, Op: OpCreate, Sandbox: "sb-1"}, ErrMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := v.Verify(tt.tok, tt.need)
			if tt.want == nil && err != nil {
				t.Fatalf("refused: %v", err)
			}
			if tt.want != nil && !errors.Is(err, tt.want) {
				t.Fatalf("got %v, want %v", err, tt.want)
			}
		})
	}
}

// TestMintRoundTrip proves Mint's claims come back from Verify unchanged, with the key's id,
// the normalised audience and the body's hash.
func TestMintRoundTrip(t *testing.T) {
	s, v := testPair(t)
	body := []byte(`{"id":"abc-123"}`)
	tok, err := s.Mint(Grant{Audience: "HTTP://Console-A:8090/", Op: OpCreate, Sandbox: "abc-123", Body: body}, "alice", 5*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	c, err := v.Verify(tok, Grant{Audience: hostA, Op: OpCreate, Sandbox: "abc-123", Body: body})
	if err != nil {
		t.Fatal(err)
	}
	want := Claims{Kid: s.KeyID(), Aud: hostA, Op: OpCreate, Sandbox: "abc-123", Body: BodyHash(body), Sub: "alice",
		Iat: fixedNow.Unix(), Exp: fixedNow.Add(5 * time.Minute).Unix()}
	if c != want {
		t.Fatalf("claims %+v, want %+v", c, want)
	}
}

// TestSignRefusesBadClaims proves a Signer never mints a token a Verifier would call malformed.
func TestSignRefusesBadClaims(t *testing.T) {
	s, _ := testPair(t)
	body := BodyHash(nil)
	for name, c := range map[string]Claims{
		"unknown op":                   {Aud: hostA, Op: "root", Sandbox: "*", Iat: 1, Exp: 2},
		"bad sandbox":                  {Aud: hostA, Op: OpGet, Sandbox: "../etc", Iat: 1, Exp: 2},
		"exp before iat":               {Aud: hostA, Op: OpGet, Sandbox: "a", Iat: 2, Exp: 1},
		"no times":                     {Aud: hostA, Op: OpGet, Sandbox: "a"},
		"negative lifetime":            {Aud: hostA, Op: OpGet, Sandbox: "a", Iat: 5, Exp: 5},
		"no audience":                  {Op: OpGet, Sandbox: "a", Iat: 1, Exp: 2},
		"audience not in normal form":  {Aud: hostA + "/", Op: OpGet, Sandbox: "a", Iat: 1, Exp: 2},
		"create for the collection":    {Aud: hostA, Op: OpCreate, Sandbox: "*", Body: body, Iat: 1, Exp: 2},
		"create without a body":        {Aud: hostA, Op: OpCreate, Sandbox: "a", Iat: 1, Exp: 2},
		"get with a body":              {Aud: hostA, Op: OpGet, Sandbox: "a", Body: body, Iat: 1, Exp: 2},
		"list for one sandbox":         {Aud: hostA, Op: OpList, Sandbox: "a", Iat: 1, Exp: 2},
		"attach for the collection":    {Aud: hostA, Op: OpAttach, Sandbox: "*", Iat: 1, Exp: 2},
		"kid that is not a key id":     {Kid: "k1", Aud: hostA, Op: OpGet, Sandbox: "a", Iat: 1, Exp: 2},
		"audience with a query string": {Aud: hostA + "?x=1", Op: OpGet, Sandbox: "a", Iat: 1, Exp: 2},
	} {
		if _, err := s.Sign(c); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: Sign returned %v, want ErrMalformed", name, err)
		}
	}
}

// TestAudience proves the normal form both ends compare, and what is not a sandboxd URL.
func TestAudience(t *testing.T) {
	for in, want := range map[string]string{
		"http://10.0.1.14:8090":      "http://10.0.1.14:8090",
		"HTTP://Console-1:8090/":     "http://console-1:8090",
		"https://proxy.example/sbd/": "https://proxy.example/sbd",
		"http://[::1]:8090":          "http://[::1]:8090",
		"ftp://x":                    "",
		"http://user:pw@host:1":      "",
		"http://host:1/?a=b":         "",
		"http://host:1/#frag":        "",
		"host:8090":                  "",
		"":                           "",
		"http://" + strings.Repeat("a", maxAudienceLen): "",
	} {
		got, err := Audience(in)
		if (err != nil) != (want == "") || got != want {
			t.Errorf("Audience(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
}

// TestKeyRingRotation proves the rotation procedure of docs/sandboxd.md without a restart: a
// key dropped into the directory is accepted within a second, one removed stops being
// accepted, and fixed keys stay whatever the directory holds.
func TestKeyRingRotation(t *testing.T) {
	dir := t.TempDir()
	_, old, _ := GenerateKey()
	_, next, _ := GenerateKey()
	_, fixed, _ := GenerateKey()
	if err := WriteKeyPair(filepath.Join(dir, "old.key"), filepath.Join(dir, "old.pub"), old); err != nil {
		t.Fatal(err)
	}
	ring, err := NewKeyRing([]ed25519.PublicKey{fixed.Public().(ed25519.PublicKey)}, dir)
	if err != nil {
		t.Fatal(err)
	}
	clock := time.Unix(1000, 0)
	ring.now, ring.checked = func() time.Time { return clock }, clock
	has := func(k ed25519.PrivateKey) bool {
		_, ok := ring.Key(KeyID(k.Public().(ed25519.PublicKey)))
		return ok
	}
	if !has(old) || has(next) || !has(fixed) {
		t.Fatalf("at start: old %v next %v fixed %v, want true false true", has(old), has(next), has(fixed))
	}
	// Step 2 of the procedure: the new public key is added to every host.
	if err := WriteKeyPair(filepath.Join(t.TempDir(), "next.key"), filepath.Join(dir, "next.pub"), next); err != nil {
		t.Fatal(err)
	}
	touch(t, dir, clock.Add(time.Minute))
	clock = clock.Add(2 * reloadEvery)
	if !has(old) || !has(next) {
		t.Fatalf("after adding next.pub: old %v next %v, want both", has(old), has(next))
	}
	// Step 4: the old one is retired.
	if err := os.Remove(filepath.Join(dir, "old.pub")); err != nil {
		t.Fatal(err)
	}
	touch(t, dir, clock.Add(2*time.Minute))
	clock = clock.Add(2 * reloadEvery)
	if has(old) || !has(next) || !has(fixed) {
		t.Fatalf("after removing old.pub: old %v next %v fixed %v, want false true true", has(old), has(next), has(fixed))
	}
	if _, err := NewKeyRing(nil, t.TempDir()); err == nil {
		t.Fatal("a ring with no key at all was accepted")
	}
}

// touch sets dir's modification time, so a test does not depend on the file system's
// timestamp granularity.
func touch(t *testing.T, dir string, at time.Time) {
	t.Helper()
	if err := os.Chtimes(dir, at, at); err != nil {
		t.Fatal(err)
	}
}

// TestOnceSet proves a token is accepted once until it expires, and forgotten after.
func TestOnceSet(t *testing.T) {
	o := NewOnceSet()
	clock := time.Unix(1000, 0)
	o.now = func() time.Time { return clock }
	if !o.Use("tok", 1060) || o.Use("tok", 1060) {
		t.Fatal("a token was not accepted exactly once")
	}
	if !o.Use("other", 1060) {
		t.Fatal("a different token was refused")
	}
	clock = time.Unix(1061, 0)
	o.Use("x", 2000)
	if len(o.seen) != 1 {
		t.Fatalf("expired tokens kept: %d entries", len(o.seen))
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
	keys := NewKeySet(seed.Public().(ed25519.PublicKey))
	v, _ := NewVerifier(keys, hostA)
	good, _ := s.Sign(Claims{Aud: hostA, Op: OpGet, Sandbox: "sb-1", Iat: 1, Exp: 2, Sub: "fuzz"})
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
		key, _ := keys.Key(c.Kid)
		if key == nil || !ed25519.Verify(key, []byte(head), raw) {
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
	v, _ := NewVerifier(NewKeySet(pub), hostA)
	return NewSigner(priv), v
}

func signRaw(s *Signer, payload []byte) string {
	head := base64.RawURLEncoding.EncodeToString(payload)
	return head + "." + base64.RawURLEncoding.EncodeToString(ed25519.Sign(s.key, []byte(head)))
}
