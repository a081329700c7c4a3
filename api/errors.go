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

// ErrorBody and ErrorDetail are the JSON error of DESIGN.md §3, shared with sandboxd.
type (
	ErrorBody   = anyops.ErrorBody
	ErrorDetail = anyops.ErrorDetail
)

// WriteError aborts the request with err as a JSON error. Errors that are not *anyops.Error
// are internal: the client sees only "internal error". Every 5xx error is logged in full by
// the request logger, with method, route and status.
func WriteError(c *gin.Context, err error) {
	code := anyops.ErrorCode(err)
	if anyops.HTTPStatus(code) >= 500 {
		_ = c.Error(err)
	}
	if code == anyops.EUNAUTHORIZED {
		c.Header("WWW-Authenticate", `Bearer realm="anyops"`)
	}
	c.AbortWithStatusJSON(anyops.HTTPStatus(code), ErrorBody{Error: ErrorDetail{Code: code, Message: anyops.ErrorMessage(err)}})
}

// checkPathParams rejects, before any handler, a request whose path carries an id or name
// (every /v1 path parameter is one) that anyops.CheckName refuses: a NUL or an overlong id is
// a 400, and never reaches Temporal or the database.
func checkPathParams(c *gin.Context) {
	for _, p := range c.Params {
		if err := anyops.CheckName(p.Key, p.Value); err != nil {
			WriteError(c, err)
			return
		}
	}
	c.Next()
}

// checkNames validates the ids and names of a request body, given as field, value pairs;
// empty values are fields left out.
func checkNames(fieldValues ...string) error {
	for i := 0; i+1 < len(fieldValues); i += 2 {
		if v := fieldValues[i+1]; v != "" {
			if err := anyops.CheckName(fieldValues[i], v); err != nil {
				return err
			}
		}
	}
	return nil
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
