package api

import (
	"context"
	"strings"
	"testing"

	"github.com/anyops/anyops"
)

// FuzzParseTokens proves parsing --tokens never panics, and that whatever it accepts
// authenticates each of its tokens as the name and role it was listed with.
func FuzzParseTokens(f *testing.F) {
	for _, seed := range []string{"", "admin:a", "viewer:v,operator:o", "admin:x,admin:x", "root:x", ":", ",,", "admin:a:b", "alice:operator:o", "a:admin:b:c"} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, spec string) {
		a, err := ParseTokens(spec)
		if err != nil {
			return
		}
		for _, pair := range strings.Split(spec, ",") {
			pair = strings.TrimSpace(pair)
			if pair == "" {
				continue
			}
			name, role, secret, err := splitTokenEntry(pair)
			if err != nil {
				t.Fatalf("ParseTokens(%q) accepted entry %q that does not split: %v", spec, pair, err)
			}
			got, err := a.authenticate(context.Background(), "Bearer "+secret)
			if err != nil || got.role != role || got.name != name {
				t.Fatalf("ParseTokens(%q): token %q authenticates as %+v (%v), want %s %s", spec, secret, got, err, name, role)
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
		who, err := a.authenticate(context.Background(), header)
		role := who.role
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
