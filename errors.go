package anyops

import (
	"errors"
	"fmt"
)

// Error codes: the closed set every adapter maps its failures to. The API maps them to HTTP
// statuses and to the JSON body {"error": {"code", "message"}}.
const (
	EINVALID      = "invalid"      // the request is malformed or breaks a rule: 400
	EUNAUTHORIZED = "unauthorized" // no or bad credentials: 401
	EFORBIDDEN    = "forbidden"    // credentials lack the role: 403
	ENOTFOUND     = "not_found"    // 404
	ECONFLICT     = "conflict"     // the state does not allow it now: 409
	ERATELIMITED  = "rate_limited" // 429, with Retry-After
	EUNAVAILABLE  = "unavailable"  // a dependency is down or admission is closed: 503
	EINTERNAL     = "internal"     // anything else: 500, message never shown to clients
)

// Error is an application error with a code from the set above and a message safe to show to
// a client.
type Error struct {
	Code    string
	Message string
}

func (e *Error) Error() string { return fmt.Sprintf("%s: %s", e.Code, e.Message) }

// Errorf returns an *Error with the code and a formatted message.
func Errorf(code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// ErrorCode returns the code of the first *Error in err's chain, EINTERNAL for any other
// error, and "" for nil.
func ErrorCode(err error) string {
	var e *Error
	if err == nil {
		return ""
	} else if errors.As(err, &e) {
		return e.Code
	}
	return EINTERNAL
}

// ErrorMessage returns the client-safe message of err: the *Error's message, or a generic
// text that reveals nothing of internals.
func ErrorMessage(err error) string {
	var e *Error
	if err == nil {
		return ""
	} else if errors.As(err, &e) {
		return e.Message
	}
	return "internal error"
}

// ErrorBody is how an error travels over HTTP, from the api and from sandboxd:
// {"error": {"code": "...", "message": "..."}}.
type ErrorBody struct {
	Error ErrorDetail `json:"error"`
}

// ErrorDetail carries an error code and a message safe for the client.
type ErrorDetail struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// HTTPStatus maps an error code to its HTTP status: the one mapping the api and sandboxd share.
// The statuses are numbers, not net/http's names, so that the domain package (which workflow
// code imports) links no HTTP code.
func HTTPStatus(code string) int {
	switch code {
	case EINVALID:
		return 400
	case EUNAUTHORIZED:
		return 401
	case EFORBIDDEN:
		return 403
	case ENOTFOUND:
		return 404
	case ECONFLICT:
		return 409
	case ERATELIMITED:
		return 429
	case EUNAVAILABLE:
		return 503
	}
	return 500
}
