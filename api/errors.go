package api

import (
	"errors"
	"io"
	"net/http"

	"github.com/gin-gonic/gin"

	"github.com/anyops/anyops"
	"github.com/anyops/anyops/workflows"
)

// maxBodyBytes bounds every request body the API reads.
const maxBodyBytes = 1 << 20

// ErrorBody is the JSON shape of every error response: {"error": {"code", "message"}}.
type ErrorBody struct {
	Error ErrorDetail `json:"error"`
}

// ErrorDetail carries an anyops error code and a message safe for the client.
type ErrorDetail struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// HTTPStatus maps an anyops error code to its HTTP status: the one place this mapping lives.
func HTTPStatus(code string) int {
	switch code {
	case anyops.EINVALID:
		return http.StatusBadRequest
	case anyops.EUNAUTHORIZED:
		return http.StatusUnauthorized
	case anyops.EFORBIDDEN:
		return http.StatusForbidden
	case anyops.ENOTFOUND:
		return http.StatusNotFound
	case anyops.ECONFLICT:
		return http.StatusConflict
	case anyops.ERATELIMITED:
		return http.StatusTooManyRequests
	case anyops.EUNAVAILABLE:
		return http.StatusServiceUnavailable
	}
	return http.StatusInternalServerError
}

// WriteError aborts the request with err as a JSON error. Errors that are not *anyops.Error
// are internal: the client sees only "internal error". Every 5xx error is logged in full by
// the request logger, with method, route and status.
func WriteError(c *gin.Context, err error) {
	code := anyops.ErrorCode(err)
	if HTTPStatus(code) >= 500 {
		_ = c.Error(err)
	}
	if code == anyops.EUNAUTHORIZED {
		c.Header("WWW-Authenticate", `Bearer realm="anyops"`)
	}
	c.AbortWithStatusJSON(HTTPStatus(code), ErrorBody{Error: ErrorDetail{Code: code, Message: anyops.ErrorMessage(err)}})
}

// ReadBody reads the request body, at most maxBodyBytes of it; a larger body is EINVALID.
func ReadBody(c *gin.Context) ([]byte, error) {
	body, err := io.ReadAll(http.MaxBytesReader(c.Writer, c.Request.Body, maxBodyBytes))
	var tooLarge *http.MaxBytesError
	if errors.As(err, &tooLarge) {
		return nil, anyops.Errorf(anyops.EINVALID, "request body is larger than %d bytes", maxBodyBytes)
	} else if err != nil {
		return nil, anyops.Errorf(anyops.EINVALID, "reading request body: %v", err)
	}
	return body, nil
}

// BindJSON decodes the request body into v strictly: malformed JSON, unknown fields and
// trailing data are EINVALID errors. An empty body decodes as {}.
func BindJSON(c *gin.Context, v any) error {
	body, err := ReadBody(c)
	if err != nil {
		return err
	}
	return workflows.DecodeStrict(body, v)
}
