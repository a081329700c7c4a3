package anyops

import (
	"strings"
	"testing"
)

// TestCheckName proves which ids and names a client may send: every business key and name
// the platform makes passes; empty, overlong, NUL, control, space, quote, percent and
// non-ASCII ones are EINVALID.
func TestCheckName(t *testing.T) {
	for _, ok := range []string{
		"fleet-audit", "failover/live-file", "console/0b6f2c3e-9d1a-4f7e-8c2b-1a2b3c4d5e6f",
		"fleet-sync-2026-03-01T10:00:00Z", "us-east-1a", "live-console1", "anon-3f9a0c1b2d4e",
		"python3.12", "2024.1+build", "user@example", strings.Repeat("a", MaxNameLen),
	} {
		if err := CheckName("id", ok); err != nil {
			t.Errorf("CheckName(%q) = %v, want ok", ok, err)
		}
	}
	for _, bad := range []string{
		"", "\x00", "a\x00b", "a b", "a\tb", "a\nb", "a'b", `a"b`, "a%00", "a\\b", "é", "a\x7f",
		strings.Repeat("a", MaxNameLen+1),
	} {
		err := CheckName("id", bad)
		if ErrorCode(err) != EINVALID || !strings.HasPrefix(ErrorMessage(err), "id ") {
			t.Errorf("CheckName(%q) = %v, want EINVALID naming the field", bad, err)
		}
	}
}
