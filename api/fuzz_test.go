package api

import (
	"strings"
	"testing"

	"github.com/anyops/anyops"
)

// FuzzParseTokens proves parsing --tokens never panics, and that whatever it accepts
// authenticates each of its tokens as the role it was listed with.
func FuzzParseTokens(f *testing.F) {
	for _, seed := range []string{"", "admin:a", "viewer:v,operator:o", "admin:x,admin:x", "root:x", ":", ",,", "admin:a:b"} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, spec string) {
		a, err := ParseTokens(spec)
		if err != nil {
			return
		}
		for _, pair := range strings.Split(spec, ",") {
			pair = strings.TrimSpace(pair)
			role, secret, ok := strings.Cut(pair, ":")
			if pair == "" || !ok {
				continue
			}
			if strings.TrimSpace(secret) != secret || strings.ContainsAny(secret, " \t") {
				continue // the header form cannot carry surrounding or inner spaces verbatim
			}
			got, err := a.authenticate("Bearer " + secret)
			if err != nil || got != AccessRole(role) {
				t.Fatalf("ParseTokens(%q): token %q authenticates as %q (%v), want %q", spec, secret, got, err, role)
			}
		}
	})
}

// FuzzAuthenticate proves any Authorization header either authenticates a configured token or
// is EUNAUTHORIZED, never anything else and never a panic.
func FuzzAuthenticate(f *testing.F) {
	a, err := ParseTokens("viewer:v-token,admin:a-token")
	if err != nil {
		f.Fatal(err)
	}
	for _, seed := range []string{"", "Bearer v-token", "bearer a-token", "Bearer", "Bearer  ", "Basic v-token", "Bearer v-token ", "Bearer v-tokenX"} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, header string) {
		role, err := a.authenticate(header)
		if err != nil {
			if anyops.ErrorCode(err) != anyops.EUNAUTHORIZED || role != "" {
				t.Fatalf("authenticate(%q) = %q, %v", header, role, err)
			}
			return
		}
		_, tok, _ := strings.Cut(header, " ")
		tok = strings.TrimSpace(tok)
		if !(role == RoleViewer && tok == "v-token") && !(role == RoleAdmin && tok == "a-token") {
			t.Fatalf("authenticate(%q) = %q for a token that is not configured with that role", header, role)
		}
	})
}
