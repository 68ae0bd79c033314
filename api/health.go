package api

import (
	"context"
	"net/http"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/gin-gonic/gin"
)

func handleHealthz() gin.HandlerFunc {
	return func(c *gin.Context) { c.JSON(http.StatusOK, gin.H{"status": "ok"}) }
}

// handleReadyz checks every dependency in parallel, each within 2 s, and
// names those that are down. Any down dependency answers 503.
func (s *Server) handleReadyz() gin.HandlerFunc {
	return func(c *gin.Context) {
		ctx, cancel := context.WithTimeout(c.Request.Context(), 2*time.Second)
		defer cancel()
		var mu sync.Mutex
		var wg sync.WaitGroup
		checks := map[string]string{}
		for name, p := range s.deps.Ready {
			wg.Add(1)
			go func() {
				defer wg.Done()
				state := "ok"
				if err := p.Ping(ctx); err != nil {
					state = "down"
					s.log.WarnContext(ctx, "readiness check failed", "dependency", name, "err", err)
				}
				mu.Lock()
				checks[name] = state
				mu.Unlock()
			}()
		}
		wg.Wait()
		var down []string
		for name, state := range checks {
			if state != "ok" {
				down = append(down, name)
			}
		}
		sort.Strings(down)
		if len(down) > 0 {
			c.Header("Retry-After", "5")
			c.JSON(http.StatusServiceUnavailable, gin.H{
				"error":  gin.H{"code": "unavailable", "message": "not ready: " + strings.Join(down, ", ") + " down"},
				"status": "unavailable", "down": down, "checks": checks,
			})
			return
		}
		c.JSON(http.StatusOK, gin.H{"status": "ok", "checks": checks})
	}
}
			// The error body of every refusal, with the readiness fields.
