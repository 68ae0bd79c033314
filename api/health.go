package api

import (
	"context"
	"net/http"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/mfaflow/mfaflow/auth"
	"github.com/mfaflow/mfaflow/store"
)

// MetricsHandler serves reg's metrics in the Prometheus text format: at
// GET /metrics of the API (see Deps.NoMetrics and Deps.MetricsToken) or on
// a listener of its own (MFAFLOW_METRICS_ADDR), where every path serves
// them. With a token, a request without that bearer token gets 401.
func MetricsHandler(reg *prometheus.Registry, token string) http.Handler {
	h := promhttp.HandlerFor(reg, promhttp.HandlerOpts{})
	if token == "" {
		return h
	}
	key := auth.NewConsoleKeys([]string{token})
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		a := r.Header.Get("Authorization")
		if len(a) <= 7 || !strings.EqualFold(a[:7], "bearer ") || !key.Check(strings.TrimSpace(a[7:])) {
			w.Header().Set("Content-Type", "application/json; charset=utf-8")
			w.Header().Set("WWW-Authenticate", "Bearer")
			w.WriteHeader(http.StatusUnauthorized)
			_, _ = w.Write([]byte(`{"error":{"code":"unauthorized","message":"the metrics token is required"}}`))
			return
		}
		h.ServeHTTP(w, r)
	})
}

// requireMetricsToken admits callers of /metrics with the bearer token
// when Deps.MetricsToken is set, and everyone otherwise. Refusals are
// audited like every anonymous refusal.
func (s *Server) requireMetricsToken() gin.HandlerFunc {
	return func(c *gin.Context) {
		if s.metricsKey == nil {
			c.Next()
			return
		}
		tok := bearer(c)
		var err error
		switch {
		case tok == "":
			err = auth.ErrNoCredentials
		case !s.metricsKey.Check(tok):
			err = auth.ErrInvalid
		}
		if err != nil {
			s.audit(c, store.AuditEntry{Actor: "anonymous", Action: "auth.metrics", Outcome: "denied",
				Details: map[string]string{"route": c.FullPath(), "method": c.Request.Method, "reason": authRefusal(err)}})
			fail(c, s.log, err)
			return
		}
		c.Next()
	}
}

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
			// The error body of every refusal, with the readiness fields.
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
