package api

import (
	"net/http"
	"strings"

	"github.com/gin-gonic/gin"

	"github.com/anyops/anyops/web"
	"github.com/anyops/anyops/workflows"
)

// DashboardConfig is what the ops dashboard needs to know that the API cannot find out by
// itself: where the Temporal Web UI is, so that every operation links to its workflow there.
// In dev it is the --temporal-ui-addr of `anyops dev`; in production the address ops reach
// the Temporal UI of the cluster at.
type DashboardConfig struct {
	// TemporalUIURL is the base URL of the Temporal Web UI ("http://127.0.0.1:8233"); empty
	// leaves the links out.
	TemporalUIURL string
	// TemporalNamespace is the namespace the workflows run in; empty means "default".
	TemporalNamespace string
}

// DashboardInfo is the body of GET /v1/dashboard: what the dashboard page shows beside the
// inventory, operations and status it reads from their own endpoints.
type DashboardInfo struct {
	// TemporalUIURL is the base URL of the Temporal Web UI, "" when not configured.
	TemporalUIURL string `json:"temporal_ui_url"`
	// TemporalNamespace is the namespace of the operations' workflows.
	TemporalNamespace string `json:"temporal_namespace"`
	// OperationKinds are the kinds POST /v1/operations/{kind} starts, in registry order.
	OperationKinds []OperationKind `json:"operation_kinds"`
}

// OperationKind describes one kind of operation to a client.
type OperationKind struct {
	Name        string `json:"name"`
	Description string `json:"description"`
	TaskQueue   string `json:"task_queue"`
}

// setupDashboard serves the dashboard page at / and /dashboard (public: it holds no data and
// asks for a token before it reads any), its assets, and GET /v1/dashboard for viewers.
func setupDashboard(s *Server) {
	info := dashboardInfo(s.deps.Dashboard)
	s.engine.GET("/", func(c *gin.Context) { c.Redirect(http.StatusFound, "/dashboard") })
	s.engine.GET("/dashboard", serveDashboardPage)
	s.engine.GET("/dashboard/assets/*file", serveFiles("/dashboard/assets/", web.Assets()))
	s.v1.GET("/dashboard", s.deps.Auth.Require(RoleViewer), func(c *gin.Context) {
		c.JSON(http.StatusOK, info)
	})
}

// dashboardInfo is computed once: the kinds registry and the configuration do not change
// while the server runs.
func dashboardInfo(cfg DashboardConfig) DashboardInfo {
	info := DashboardInfo{
		TemporalUIURL:     strings.TrimRight(cfg.TemporalUIURL, "/"),
		TemporalNamespace: cfg.TemporalNamespace,
		OperationKinds:    []OperationKind{},
	}
	if info.TemporalNamespace == "" {
		info.TemporalNamespace = "default"
	}
	for _, k := range workflows.Kinds() {
		info.OperationKinds = append(info.OperationKinds, OperationKind{Name: k.Name, Description: k.Description, TaskQueue: k.TaskQueue})
	}
	return info
}

// serveDashboardPage serves the ops dashboard. Its data comes from the API with the bearer
// token the operator enters; the page itself is the same for everyone.
func serveDashboardPage(c *gin.Context) {
	c.Header("Cache-Control", "no-cache")
	c.Header("X-Content-Type-Options", "nosniff")
	// The page holds an admin token in sessionStorage: no other site may frame it.
	c.Header("X-Frame-Options", "DENY")
	c.Header("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'")
	c.Data(http.StatusOK, "text/html; charset=utf-8", web.DashboardPage())
}
