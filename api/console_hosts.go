package api

import (
	"net/http"
	"net/url"

	"github.com/gin-gonic/gin"

	"github.com/anyops/anyops"
	"github.com/anyops/anyops/activities"
	"github.com/anyops/anyops/inventory"
)

// ConsoleHostRequest is the body of PUT /v1/servers/{name}/sandboxd.
type ConsoleHostRequest struct {
	// URL is the base URL of the server's sandboxd, as the API, the workers and browsers
	// reach it (http://10.0.1.14:8090, or behind a TLS proxy).
	URL string `json:"url"`
}

// registerConsoleHost serves PUT /v1/servers/{name}/sandboxd: it makes a console server of
// the inventory a console host. It asks that sandboxd for its image (which proves it trusts
// this API's key) before recording anything, so a wrong URL or key changes nothing.
func (cs *consoleService) registerConsoleHost(c *gin.Context) {
	if err := cs.ready(); err != nil {
		WriteError(c, err)
		return
	}
	var req ConsoleHostRequest
	if err := BindJSON(c, &req); err != nil {
		WriteError(c, err)
		return
	}
	u, err := url.Parse(req.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
		WriteError(c, anyops.Errorf(anyops.EINVALID, "url %q: want the http(s) base URL of a sandboxd, like http://10.0.1.14:8090", req.URL))
		return
	}
	ctx := c.Request.Context()
	srv, err := cs.server.deps.Store.GetServer(ctx, c.Param("name"))
	if err != nil {
		WriteError(c, err)
		return
	}
	if srv.Role != anyops.RoleConsole {
		WriteError(c, anyops.Errorf(anyops.ECONFLICT, "server %s has role %s; only console servers run sandboxd", srv.Name, srv.Role))
		return
	}
	if srv.State != anyops.ServerRunning {
		WriteError(c, anyops.Errorf(anyops.ECONFLICT, "server %s is %s, not running", srv.Name, srv.State))
		return
	}
	srv.SandboxdURL = u.String()
	image, err := activities.RegisterConsoleHost(ctx, cs.server.deps.Store, srv, cs.signer)
	if err != nil {
		switch anyops.ErrorCode(err) {
		case anyops.EINTERNAL, anyops.EUNAUTHORIZED, anyops.EFORBIDDEN:
			// Unreachable, or refusing this API's key: the sandboxd's fault, not the caller's.
			err = anyops.Errorf(anyops.EUNAVAILABLE, "sandboxd at %s did not answer as a console host of this API: %s", srv.SandboxdURL, anyops.ErrorMessage(err))
		}
		WriteError(c, err)
		return
	}
	if _, err := cs.server.deps.Store.RecordAudit(ctx, inventory.AuditEvent{Actor: Actor(c), Action: "register-console-host", Subject: srv.Name,
		Summary: map[string]any{"sandboxd_url": srv.SandboxdURL, "image": image.Ref()}}); err != nil {
		cs.server.log.Warn("record console host audit event", "err", err)
	}
	got, err := cs.server.deps.Store.GetServer(ctx, srv.Name)
	if err != nil {
		WriteError(c, err)
		return
	}
	c.JSON(http.StatusOK, got)
}
