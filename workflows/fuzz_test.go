package workflows

import (
	"bytes"
	"encoding/json"
	"testing"

	"github.com/anyops/anyops"
)

// FuzzDecodeStrict proves DecodeStrict never panics, fails only with EINVALID, and accepts
// only bodies that encoding/json also accepts as one value of the target type.
func FuzzDecodeStrict(f *testing.F) {
	for _, seed := range []string{"", "{}", `{"reason":"x"}`, `{"reason":1}`, `{"x":1}`, `{} {}`, `[`, `null`, "\x00"} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		var in FleetAuditInput
		err := DecodeStrict(body, &in)
		if err != nil {
			if anyops.ErrorCode(err) != anyops.EINVALID {
				t.Fatalf("DecodeStrict(%q) failed with code %q, want %q", body, anyops.ErrorCode(err), anyops.EINVALID)
			}
			return
		}
		if len(bytes.Trim(body, jsonWhitespace)) > 0 && !json.Valid(body) {
			t.Fatalf("DecodeStrict accepted %q, which is not valid JSON", body)
		}
	})
}
