package api

import (
	"context"
	"net/http"
	"net/url"

	"github.com/gin-gonic/gin"

	"github.com/anyops/anyops"
	"github.com/anyops/anyops/inventory"
)

// PatchReport is the body of GET /v1/patches/{advisory}: the rollout with every server's
// report (before, after, restarts, times), the notices of the advisory and the drains in
// force.
type PatchReport struct {
	inventory.PatchRollout
	Notices []inventory.Notice `json:"notices"`
	// Drained are the servers out of rotation now (a rollout in progress, or one left drained
	// because it was unhealthy after its restart).
	Drained []inventory.ServerDrain `json:"drained"`
}

func (s *Server) registerPatches(v1 *gin.RouterGroup, auth *Authorizer) {
	viewer := auth.Require(RoleViewer)
	v1.GET("/patches", viewer, listHandler(nil, func(ctx context.Context, _ url.Values, p inventory.Page) ([]inventory.PatchRollout, string, error) {
		return s.deps.Store.ListPatchRollouts(ctx, p)
	}))
	v1.GET("/patches/:advisory", viewer, s.getPatch)
	v1.GET("/certificates", auth.Require(RoleAdmin), s.listCertificates)
	// ACME HTTP-01: the CA fetches the key authorization from the platform's domain, which
	// points at the API; the certificate rotation (activities.Certificates) writes it.
	s.engine.GET("/.well-known/acme-challenge/:token", s.acmeChallenge)
}

func (s *Server) getPatch(c *gin.Context) {
	if _, err := queryParams(c); err != nil {
		WriteError(c, err)
		return
	}
	ctx := c.Request.Context()
	adv := c.Param("advisory")
	r, err := s.deps.Store.GetPatchRollout(ctx, adv)
	if err != nil {
		WriteError(c, err)
		return
	}
	notices, err := s.deps.Store.ListNotices(ctx, adv)
	if err != nil {
		WriteError(c, err)
		return
	}
	drains, err := s.deps.Store.Drains(ctx)
	if err != nil {
		WriteError(c, err)
		return
	}
	rep := PatchReport{PatchRollout: r, Notices: notices, Drained: []inventory.ServerDrain{}}
	if rep.Servers == nil {
		rep.Servers = []inventory.PatchServer{}
	}
	if rep.Notices == nil {
		rep.Notices = []inventory.Notice{}
	}
	for _, srv := range r.Servers {
		if d, ok := drains[srv.Server]; ok {
			rep.Drained = append(rep.Drained, d)
		}
	}
	c.JSON(http.StatusOK, rep)
}

func (s *Server) listCertificates(c *gin.Context) {
	if _, err := queryParams(c); err != nil {
		WriteError(c, err)
		return
	}
	certs, err := s.deps.Store.ListCertificates(c.Request.Context(), "platform")
	if err != nil {
		WriteError(c, err)
		return
	}
	if certs == nil {
		certs = []inventory.Certificate{}
	}
	c.JSON(http.StatusOK, List[inventory.Certificate]{Items: certs})
}

func (s *Server) acmeChallenge(c *gin.Context) {
	ch, err := s.deps.Store.GetChallenge(c.Request.Context(), c.Param("token"))
	if err != nil {
		if anyops.ErrorCode(err) == anyops.ENOTFOUND {
			c.String(http.StatusNotFound, "no such challenge\n")
			return
		}
		WriteError(c, err)
		return
	}
	c.String(http.StatusOK, ch.KeyAuth)
}
