package api

import (
	"net/http"
	"strings"

	"github.com/gin-gonic/gin"

	"github.com/mfaflow/mfaflow/codec"
	"github.com/mfaflow/mfaflow/store"
)

// handleCodec serves the Temporal UI's codec-server protocol for admins.
func (s *Server) handleCodec() gin.HandlerFunc {
	return func(c *gin.Context) {
		if s.deps.Keys == nil {
			fail(c, s.log, errorf(http.StatusServiceUnavailable, "unavailable", "no key ring configured"))
			return
		}
		op := c.Request.URL.Path[strings.LastIndexByte(c.Request.URL.Path, '/')+1:]
		s.audit(c, store.AuditEntry{Actor: actor(c), Action: "codec." + op, Outcome: "ok", Details: map[string]string{"namespace": c.GetHeader("X-Namespace")}})
		// The codec handler routes on the path's last element.
		r := c.Request.Clone(c.Request.Context())
		r.URL.Path = "/" + op
		codec.Handler(s.deps.Keys).ServeHTTP(c.Writer, r)
	}
}
