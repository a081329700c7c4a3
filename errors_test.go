package anyops

import "testing"

// TestHTTPStatus proves the one mapping from anyops codes to HTTP statuses.
func TestHTTPStatus(t *testing.T) {
	want := map[string]int{
		EINVALID: 400, EUNAUTHORIZED: 401, EFORBIDDEN: 403, ENOTFOUND: 404,
		ECONFLICT: 409, ERATELIMITED: 429, EUNAVAILABLE: 503, EINTERNAL: 500, "": 500,
	}
	for code, status := range want {
		if got := HTTPStatus(code); got != status {
			t.Errorf("HTTPStatus(%q) = %d, want %d", code, got, status)
		}
	}
}
