package api

import (
	"context"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/anyops/anyops"
	"github.com/anyops/anyops/inventory"
)

// statusCacheTTL is how long GET /v1/status answers from memory and how long clients and
// proxies may cache it: the python.org embed asks on every page view.
const statusCacheTTL = 5 * time.Second

// PublicStatus is the body of GET /v1/status: whether the launch button should show.
type PublicStatus struct {
	// AcceptingConsoles says whether a new console would be accepted now.
	AcceptingConsoles bool `json:"accepting_consoles"`
	// Capacity is how many consoles the fleet can run at once.
	Capacity int `json:"capacity"`
	// InUse is how many consoles run now.
	InUse   int       `json:"in_use"`
	Updated time.Time `json:"updated"`
}

// StatusSource computes the public status.
type StatusSource interface {
	PublicStatus(ctx context.Context) (PublicStatus, error)
}

// inventoryStatus estimates the status from the inventory: capacity is the running console
// servers times the slots each offers; nothing reports consoles in use yet, so InUse is 0
// until sandboxd's live figures feed this (a later issue).
type inventoryStatus struct {
	store   *inventory.Store
	enabled bool
	slots   int
}

func (s inventoryStatus) PublicStatus(ctx context.Context) (PublicStatus, error) {
	hosts := 0
	page := inventory.Page{Limit: 500}
	drains, err := s.store.Drains(ctx)
	if err != nil {
		return PublicStatus{}, err
	}
	for {
		servers, next, err := s.store.ListServers(ctx, inventory.ServerFilter{Role: anyops.RoleConsole, State: anyops.ServerRunning, Page: page})
		if err != nil {
			return PublicStatus{}, err
		}
		for _, srv := range servers {
			if _, drained := drains[srv.Name]; !drained { // a drained host admits no new console
				hosts++
			}
		}
		if next == "" {
			break
		}
		page.Cursor = next
	}
	st := PublicStatus{Capacity: hosts * s.slots, Updated: time.Now().UTC()}
	st.AcceptingConsoles = s.enabled && st.InUse < st.Capacity
	return st, nil
}

// cachedStatus answers from memory for ttl, so that page views do not reach the database.
type cachedStatus struct {
	source StatusSource
	ttl    time.Duration

	mu      sync.Mutex
	value   PublicStatus
	fetched time.Time
}

func (c *cachedStatus) get(ctx context.Context) (PublicStatus, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.fetched.IsZero() && time.Since(c.fetched) < c.ttl {
		return c.value, nil
	}
	v, err := c.source.PublicStatus(ctx)
	if err != nil {
		return PublicStatus{}, err
	}
	c.value, c.fetched = v, time.Now()
	return v, nil
}

// invalidate makes the next get read the source.
func (c *cachedStatus) invalidate() {
	c.mu.Lock()
	c.fetched = time.Time{}
	c.mu.Unlock()
}

func (s *Server) registerStatus(v1 *gin.RouterGroup) {
	cors := CORS(s.deps.CORSOrigins)
	v1.GET("/status", cors, s.getStatus)
	v1.OPTIONS("/status", cors)
}

func (s *Server) getStatus(c *gin.Context) {
	st, err := s.status.get(c.Request.Context())
	if err != nil {
		WriteError(c, err)
		return
	}
	c.Header("Cache-Control", "public, max-age=5")
	c.JSON(http.StatusOK, st)
}

// CORS is middleware for public endpoints: it allows the configured origins ("*" for any) to
// read with GET and answers preflight OPTIONS requests itself.
func CORS(origins []string) gin.HandlerFunc {
	return corsWith(origins, "GET, OPTIONS", "Content-Type")
}

// corsWith is CORS allowing the given methods and request headers. They are set before the
// preflight answer is written: headers set after it would never reach the browser.
func corsWith(origins []string, methods, headers string) gin.HandlerFunc {
	allowAny := slices.Contains(origins, "*")
	return func(c *gin.Context) {
		origin := c.GetHeader("Origin")
		c.Header("Vary", "Origin")
		if origin != "" && (allowAny || slices.ContainsFunc(origins, func(o string) bool { return strings.EqualFold(o, origin) })) {
			if allowAny {
				c.Header("Access-Control-Allow-Origin", "*")
			} else {
				c.Header("Access-Control-Allow-Origin", origin)
			}
			c.Header("Access-Control-Allow-Methods", methods)
			c.Header("Access-Control-Allow-Headers", headers)
			c.Header("Access-Control-Max-Age", "600")
		}
		if c.Request.Method == http.MethodOptions {
			c.AbortWithStatus(http.StatusNoContent)
			return
		}
		c.Next()
	}
}
