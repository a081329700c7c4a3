package api

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"

	"github.com/gin-gonic/gin"
	"go.temporal.io/api/serviceerror"

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

// retryAfterUnavailable is the Retry-After of a 503 for a dependency that is down (Temporal,
// the inventory) when the handler set none of its own: about how long a restart takes.
const retryAfterUnavailable = 5 * time.Second

// WriteError aborts the request with err as a JSON error. Errors that are not *anyops.Error
// are internal: the client sees only "internal error", except that Temporal being out of
// reach is EUNAVAILABLE wherever it surfaces. Every EUNAVAILABLE answer (503) carries
// Retry-After. Every 5xx error is logged in full by the request logger, with method, route
// and status.
func WriteError(c *gin.Context, err error) {
	err = asUnavailable(err)
	code := anyops.ErrorCode(err)
	if anyops.HTTPStatus(code) >= 500 {
		_ = c.Error(err)
	}
	if code == anyops.EUNAUTHORIZED {
		c.Header("WWW-Authenticate", `Bearer realm="anyops"`)
	}
	if code == anyops.EUNAVAILABLE && c.Writer.Header().Get("Retry-After") == "" {
		c.Header("Retry-After", strconv.Itoa(int(retryAfterUnavailable/time.Second)))
	}
	c.AbortWithStatusJSON(anyops.HTTPStatus(code), ErrorBody{Error: ErrorDetail{Code: code, Message: anyops.ErrorMessage(err)}})
}

// asUnavailable makes an internal error that says Temporal cannot be reached (its frontend is
// Unavailable, or the SDK's retries ran out of time) EUNAVAILABLE, keeping the cause for the
// log. The inventory maps its own lost connections (inventory's dbError).
func asUnavailable(err error) error {
	if anyops.ErrorCode(err) != anyops.EINTERNAL {
		return err
	}
	var unavailable *serviceerror.Unavailable
	switch {
	case errors.As(err, &unavailable):
		return fmt.Errorf("%w: %w", anyops.Errorf(anyops.EUNAVAILABLE, "temporal is unavailable"), err)
	case errors.Is(err, context.DeadlineExceeded):
		return fmt.Errorf("%w: %w", anyops.Errorf(anyops.EUNAVAILABLE, "a dependency did not answer in time"), err)
	}
	return err
}

// needTemporal runs before every handler that calls Temporal: while Temporal's frontend does
// not answer its health check the request is refused with 503 before the handler writes
// anything (a console's row and user, say) that a workflow it cannot start would then own.
func (s *Server) needTemporal(c *gin.Context) {
	if !s.temporalHealthy(c.Request.Context()) {
		WriteError(c, anyops.Errorf(anyops.EUNAVAILABLE, "temporal is unavailable; try again shortly"))
		return
	}
	c.Next()
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
