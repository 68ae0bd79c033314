package api

import (
	"net/http"
	"strconv"

	"github.com/gin-gonic/gin"

	"github.com/mfaflow/mfaflow/store"
)

// handleOutbox lists what the dev notifier captured (SMS codes included).
// It is registered only in dev mode.
func (s *Server) handleOutbox() gin.HandlerFunc {
	return func(c *gin.Context) {
		limit := 50
		if v := c.Query("limit"); v != "" {
			n, err := strconv.Atoi(v)
			if err != nil || n < 1 || n > 500 {
				fail(c, s.log, invalidField("limit", "must be 1-500"))
				return
			}
			limit = n
		}
		msgs, err := s.deps.Store.ListOutbox(c.Request.Context(), c.Query("to"), limit)
		if err != nil {
			fail(c, s.log, err)
			return
		}
		if msgs == nil {
			msgs = []store.OutboxMessage{}
		}
		c.JSON(http.StatusOK, gin.H{"messages": msgs})
	}
}
