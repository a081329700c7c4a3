package api

import (
	"context"
	"net/http"
	"net/url"

	"github.com/gin-gonic/gin"

	"github.com/anyops/anyops"
	"github.com/anyops/anyops/inventory"
)

// List is the body of every list endpoint: one page of items and the cursor of the next page
// ("" on the last).
type List[T any] struct {
	Items      []T    `json:"items"`
	NextCursor string `json:"next_cursor"`
}

func (s *Server) registerInventory(v1 *gin.RouterGroup, auth *Authorizer) {
	viewer := auth.Require(RoleViewer)
	v1.GET("/zones", viewer, listHandler(nil, func(ctx context.Context, _ url.Values, p inventory.Page) ([]inventory.Zone, string, error) {
		return s.deps.Store.ListZones(ctx, inventory.ZoneFilter{Page: p})
	}))
	v1.GET("/clusters", viewer, listHandler([]string{"zone", "state"}, func(ctx context.Context, q url.Values, p inventory.Page) ([]inventory.Cluster, string, error) {
		return s.deps.Store.ListClusters(ctx, inventory.ClusterFilter{Zone: q.Get("zone"), State: anyops.ClusterState(q.Get("state")), Page: p})
	}))
	v1.GET("/servers", viewer, listHandler([]string{"zone", "cluster", "role", "state"}, func(ctx context.Context, q url.Values, p inventory.Page) ([]inventory.Server, string, error) {
		return s.deps.Store.ListServers(ctx, inventory.ServerFilter{Zone: q.Get("zone"), Cluster: q.Get("cluster"),
			Role: anyops.Role(q.Get("role")), State: anyops.ServerState(q.Get("state")), Page: p})
	}))
	v1.GET("/volumes", viewer, listHandler([]string{"zone", "cluster", "kind", "state", "server"}, func(ctx context.Context, q url.Values, p inventory.Page) ([]inventory.Volume, string, error) {
		return s.deps.Store.ListVolumes(ctx, inventory.VolumeFilter{Zone: q.Get("zone"), Cluster: q.Get("cluster"),
			Kind: anyops.VolumeKind(q.Get("kind")), State: anyops.VolumeState(q.Get("state")), Server: q.Get("server"), Page: p})
	}))
	v1.GET("/replicas", viewer, listHandler([]string{"cluster", "state"}, func(ctx context.Context, q url.Values, p inventory.Page) ([]inventory.Replica, string, error) {
		return s.deps.Store.ListReplicas(ctx, inventory.ReplicaFilter{Cluster: q.Get("cluster"), State: anyops.ReplicaState(q.Get("state")), Page: p})
	}))
}

// listHandler serves one inventory list: it rejects query parameters other than filters,
// limit and cursor, and leaves validating filter values and cursor to the store (EINVALID
// from there is a 400).
func listHandler[T any](filters []string, list func(context.Context, url.Values, inventory.Page) ([]T, string, error)) gin.HandlerFunc {
	allowed := append([]string{"limit", "cursor"}, filters...)
	return func(c *gin.Context) {
		q, err := queryParams(c, allowed...)
		if err != nil {
			WriteError(c, err)
			return
		}
		limit, err := parseLimit(q.Get("limit"), 0, inventory.MaxLimit) // 0: the store's default
		if err != nil {
			WriteError(c, err)
			return
		}
		items, next, err := list(c.Request.Context(), q, inventory.Page{Cursor: q.Get("cursor"), Limit: limit})
		if err != nil {
			WriteError(c, err)
			return
		}
		if items == nil {
			items = []T{}
		}
		c.JSON(http.StatusOK, List[T]{Items: items, NextCursor: next})
	}
}
