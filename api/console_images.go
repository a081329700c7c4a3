package api

import (
	"net/http"

	"github.com/gin-gonic/gin"

	"github.com/anyops/anyops"
	"github.com/anyops/anyops/activities"
	"github.com/anyops/anyops/inventory"
)

// Console images and users: which image version new consoles run on, by default and per user.

// listImages serves GET /v1/images (?name= filters).
func (cs *consoleService) listImages(c *gin.Context) {
	q, err := queryParams(c, "name")
	if err != nil {
		WriteError(c, err)
		return
	}
	imgs, err := cs.server.deps.Store.ListImages(c.Request.Context(), q.Get("name"))
	if err != nil {
		WriteError(c, err)
		return
	}
	if imgs == nil {
		imgs = []inventory.Image{}
	}
	c.JSON(http.StatusOK, List[inventory.Image]{Items: imgs})
}

func (cs *consoleService) getUser(c *gin.Context) {
	u, err := cs.server.deps.Store.GetUser(c.Request.Context(), c.Param("name"))
	if err != nil {
		WriteError(c, err)
		return
	}
	c.JSON(http.StatusOK, u)
}

// ImageRequest names an image version: the body of PUT /v1/users/{name}/image (the version
// to move the user to: their next console runs on it, consoles open now keep theirs) and of
// PUT /v1/images/default.
type ImageRequest struct {
	Name    string `json:"name"`
	Version string `json:"version"`
}

// bindImageRequest reads an ImageRequest, refusing one without name or version.
func bindImageRequest(c *gin.Context) (ImageRequest, bool) {
	var req ImageRequest
	if err := BindJSON(c, &req); err != nil {
		WriteError(c, err)
		return req, false
	}
	if req.Name == "" || req.Version == "" {
		WriteError(c, anyops.Errorf(anyops.EINVALID, "name and version of the image are required"))
		return req, false
	}
	return req, true
}

// setDefaultImage serves PUT /v1/images/default: users created from now on are pinned to the
// image; users pinned before keep theirs. Every registered console host must be able to start
// it (one short sandbox each) before anything is recorded; the version is recorded when new.
func (cs *consoleService) setDefaultImage(c *gin.Context) {
	if err := cs.ready(); err != nil {
		WriteError(c, err)
		return
	}
	req, ok := bindImageRequest(c)
	if !ok {
		return
	}
	ref := inventory.Image{Name: req.Name, Version: req.Version}.Ref()
	ctx := c.Request.Context()
	if err := activities.ConsoleHostsHaveImage(ctx, cs.server.deps.Store, cs.signer, ref); err != nil {
		WriteError(c, err)
		return
	}
	from := ""
	if before, err := cs.server.deps.Store.DefaultImage(ctx); err == nil {
		from = before.Ref()
	} else if anyops.ErrorCode(err) != anyops.ENOTFOUND {
		WriteError(c, err)
		return
	}
	if _, err := cs.server.deps.Store.AddImage(ctx, req.Name, req.Version); err != nil && anyops.ErrorCode(err) != anyops.ECONFLICT {
		WriteError(c, err)
		return
	}
	img, err := cs.server.deps.Store.SetDefaultImage(ctx, req.Name, req.Version)
	if err != nil {
		WriteError(c, err)
		return
	}
	if _, err := cs.server.deps.Store.RecordAudit(ctx, inventory.AuditEvent{Actor: Actor(c), Action: "set-default-image", Subject: ref,
		Summary: map[string]any{"from": from, "to": ref}}); err != nil {
		cs.server.log.Warn("record default image audit event", "err", err)
	}
	c.JSON(http.StatusOK, img)
}

func (cs *consoleService) setUserImage(c *gin.Context) {
	req, ok := bindImageRequest(c)
	if !ok {
		return
	}
	if err := checkNames("name", req.Name, "version", req.Version); err != nil {
		WriteError(c, err)
		return
	}
	ctx := c.Request.Context()
	before, err := cs.server.deps.Store.GetUser(ctx, c.Param("name"))
	if err != nil {
		WriteError(c, err)
		return
	}
	u, err := cs.server.deps.Store.SetUserImage(ctx, c.Param("name"), req.Name, req.Version)
	if err != nil {
		WriteError(c, err)
		return
	}
	from := ""
	if before.Image != nil {
		from = before.Image.Ref()
	}
	if _, err := cs.server.deps.Store.RecordAudit(ctx, inventory.AuditEvent{Actor: Actor(c), Action: "move-user-image", Subject: u.Name,
		Summary: map[string]any{"from": from, "to": inventory.Image{Name: req.Name, Version: req.Version}.Ref()}}); err != nil {
		cs.server.log.Warn("record image move audit event", "err", err)
	}
	c.JSON(http.StatusOK, u)
}
