package api

import (
	_ "embed"
	"net/http"

	"github.com/gin-gonic/gin"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/mfaflow/mfaflow/auth"
)

//go:embed openapi.yaml
var openapiYAML []byte

// routes registers every route. A new route needs a row in the
// access-control test.
func (s *Server) routes() {
	r := s.engine
	r.GET("/healthz", handleHealthz())
	r.GET("/readyz", s.handleReadyz())
	r.GET("/metrics", gin.WrapH(promhttp.HandlerFor(s.deps.Registry, promhttp.HandlerOpts{})))
	r.GET("/openapi.yaml", func(c *gin.Context) { c.Data(http.StatusOK, "application/yaml", openapiYAML) })

	admin := r.Group("/v1/admin", s.limitBody(), s.requireRole(auth.RoleAdmin))
	admin.PUT("/accounts/:account_id", s.handlePutAccount())
	admin.GET("/accounts/:account_id", s.handleGetAccount())
	admin.GET("/audit", s.handleListAudit())
	r.POST("/v1/admin/hardware-tokens/import", s.requireRole(auth.RoleAdmin), s.handleImportTokens())

	if s.deps.Dev {
		r.GET("/dev/outbox", s.handleOutbox())
		r.GET("/dev/hardware-tokens/:serial/code", s.handleDemoTokenCode())
	}
}
