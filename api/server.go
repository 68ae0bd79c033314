// Package api is mfaflow's HTTP interface (Gin): the console, applicant,
// reviewer and admin endpoints of SPEC §5, health and metrics. Every route is
// listed in routes.go; handlers are made by handleX functions that take their
// dependencies.
package api

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/prometheus/client_golang/prometheus"

	"go.temporal.io/sdk/client"

	"github.com/mfaflow/mfaflow/auth"
	"github.com/mfaflow/mfaflow/console"
	"github.com/mfaflow/mfaflow/mfa"
	"github.com/mfaflow/mfaflow/notify"
	"github.com/mfaflow/mfaflow/store"
)

// Pinger is a dependency /readyz checks.
type Pinger interface {
	Ping(ctx context.Context) error
}

// PingFunc adapts a function to Pinger.
type PingFunc func(ctx context.Context) error

// Ping calls f.
func (f PingFunc) Ping(ctx context.Context) error { return f(ctx) }

// Deps are the server's dependencies.
type Deps struct {
	Store    store.Store
	Notifier notify.Notifier
	// Ready lists what /readyz checks, by name: "database", "object_storage", "temporal".
	Ready map[string]Pinger
	// Temporal drives the workflows (bindings, appeals).
	Temporal client.Client
	// ConsoleService answers the console's verification calls.
	ConsoleService *console.Service
	// Issuer names the service in authenticator apps; "" is "mfaflow".
	Issuer string
	// Documents keeps appeal documents; Appeals holds the appeal settings.
	Documents DocumentStore
	Appeals   AppealConfig
	// OwnerCancelToken computes the cancel token sent to the account's old
	// channels for an appeal.
	OwnerCancelToken func(appealID string) string
	// Keys seals and opens device and token secrets.
	Keys    *mfa.Keyring
	Console *auth.ConsoleKeys
	JWT     *auth.Verifier
	Logger  *slog.Logger
	// Registry collects the HTTP metrics; nil: a new registry.
	Registry *prometheus.Registry
	// Dev enables the /dev routes (outbox, demo helpers).
	Dev bool
	// Web serves the dev web pages (GET /console, GET /static/…); mounted
	// only when Dev is set. nil: no pages.
	Web http.Handler
	// Pages serves the public web pages (the appeal form and status page,
	// the owner's cancel page, the reviewer queue and case page) and
	// /static/…; mounted in every mode. nil: no pages.
	Pages http.Handler
	// MaxBody caps JSON request bodies; 0: 1 MiB.
	MaxBody int64
	Now     func() time.Time
}

// Server is the HTTP handler.
type Server struct {
	deps   Deps
	log    *slog.Logger
	engine *gin.Engine
}

const ctxRequestID = "request_id"

// NewServer builds the handler with every route.
func NewServer(deps Deps) *Server {
	gin.SetMode(gin.ReleaseMode)
	if deps.Logger == nil {
		deps.Logger = slog.New(slog.DiscardHandler)
	}
	if deps.Registry == nil {
		deps.Registry = prometheus.NewRegistry()
	}
	if deps.MaxBody == 0 {
		deps.MaxBody = 1 << 20
	}
	if deps.Now == nil {
		deps.Now = time.Now
	}
	s := &Server{deps: deps, log: deps.Logger, engine: gin.New()}
	s.engine.ContextWithFallback = true
	_ = s.engine.SetTrustedProxies(nil)
	s.engine.HandleMethodNotAllowed = true // 405 method_not_allowed with Allow
	// No redirects: /healthz/ is an unknown path (a JSON 404), like any other.
	s.engine.RedirectTrailingSlash = false
	s.engine.RedirectFixedPath = false
	s.engine.Use(s.requestID(), s.recoverer(), newMetrics(deps.Registry).middleware())
	s.engine.NoRoute(func(c *gin.Context) { fail(c, s.log, errorf(http.StatusNotFound, "not_found", "no such route")) })
	s.engine.NoMethod(func(c *gin.Context) {
		fail(c, s.log, errorf(http.StatusMethodNotAllowed, "method_not_allowed", "method not allowed on this route"))
	})
	s.routes()
	return s
}

// ServeHTTP serves a request.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.engine.ServeHTTP(w, r) }

// Routes lists every registered route as "METHOD path", for the access-control test.
func (s *Server) Routes() []string {
	var out []string
	for _, r := range s.engine.Routes() {
		out = append(out, r.Method+" "+r.Path)
	}
	return out
}

func (s *Server) requestID() gin.HandlerFunc {
	return func(c *gin.Context) {
		var b [8]byte
		_, _ = rand.Read(b[:])
		id := hex.EncodeToString(b[:])
		c.Set(ctxRequestID, id)
		c.Header("X-Request-Id", id)
		c.Header("X-Content-Type-Options", "nosniff")
		c.Header("Cache-Control", "no-store")
		c.Next()
	}
}

func (s *Server) recoverer() gin.HandlerFunc {
	return func(c *gin.Context) {
		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					panic(v)
				}
				s.log.ErrorContext(c.Request.Context(), "panic in handler", "route", c.FullPath(), "request_id", c.GetString(ctxRequestID), "panic", v)
				fail(c, s.log, errorf(http.StatusInternalServerError, "internal", "internal error"))
			}
		}()
		c.Next()
	}
}

// limitBody caps the request body for JSON routes. An oversized body is
// refused (413) by the handler when it reads past the cap, not here, so the
// refusal goes through the handler's audit like any other bad input; at
// most MaxBody+1 bytes are read.
func (s *Server) limitBody() gin.HandlerFunc {
	return func(c *gin.Context) {
		c.Request.Body = http.MaxBytesReader(c.Writer, c.Request.Body, s.deps.MaxBody)
		c.Next()
	}
}

type metrics struct {
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
}

func newMetrics(reg *prometheus.Registry) *metrics {
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "mfaflow_http_requests_total", Help: "HTTP requests by route, method and status.",
		}, []string{"route", "method", "status"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "mfaflow_http_request_duration_seconds", Help: "HTTP request latency by route.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}, []string{"route", "method"}),
	}
	reg.MustRegister(m.requests, m.duration)
	return m
}

func (m *metrics) middleware() gin.HandlerFunc {
	return func(c *gin.Context) {
		start := time.Now()
		c.Next()
		route := c.FullPath()
		if route == "" {
			route = "unmatched"
		}
		m.requests.WithLabelValues(route, c.Request.Method, strconv.Itoa(c.Writer.Status())).Inc()
		m.duration.WithLabelValues(route, c.Request.Method).Observe(time.Since(start).Seconds())
	}
}
