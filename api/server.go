// Package api is mfaflow's HTTP interface (Gin): the console, applicant,
// reviewer and admin endpoints of SPEC §5, health and metrics. Every route is
// listed in routes.go; handlers are made by handleX functions that take their
// dependencies.
package api

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"sync"
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
	// OIDC signs reviewers and admins in to the pages through the company
	// IdP (/auth/login, /auth/callback; SPEC §5b); their session cookie then
	// admits them to the review and admin routes like a JWT. nil: staff
	// sign-in is off.
	OIDC *auth.OIDC
	// SessionTTL is how long a staff session lasts; 0: 8 hours.
	SessionTTL time.Duration
	// InsecureSessionCookie drops the Secure flag (and the __Host- prefix)
	// of the staff cookies. Only the dev stack sets it, when it serves
	// plain http on a loopback address.
	InsecureSessionCookie bool
	Logger                *slog.Logger
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

	// TrustedProxies are the CIDRs of the reverse proxies in front of the
	// API (MFAFLOW_TRUSTED_PROXIES). A request from one of them is
	// attributed to the client its X-Forwarded-For names, in rate limits
	// and the audit; from any other peer every forwarded header is ignored.
	// None: the peer's address is the client's, always.
	TrustedProxies []string
	// MetricsToken, when set, is the bearer token GET /metrics asks for.
	MetricsToken string
	// NoMetrics leaves /metrics off this handler: it is served on a
	// listener of its own (MetricsHandler) or not at all.
	NoMetrics bool
	// UploadRate is the slowest rate, in bytes per second, a document
	// upload or token import is given time for; 0: 32 KiB/s. UploadGrace
	// is added to that time; 0: 30 s. See bodyDeadline.
	UploadRate  int64
	UploadGrace time.Duration
	// RefusalAuditPerIP and RefusalAuditPerKind bound the audit entries of
	// anonymous refusals per minute: per kind and client IP, and per kind
	// from every address; 0: 10 and 100. See admitRefusal.
	RefusalAuditPerIP   int
	RefusalAuditPerKind int
}

// Server is the HTTP handler.
type Server struct {
	deps       Deps
	log        *slog.Logger
	engine     *gin.Engine
	metrics    *metrics
	metricsKey *auth.ConsoleKeys // MetricsToken, compared in constant time
}

// Timeouts of the HTTP server (NewHTTPServer). ReadTimeout bounds reading
// a whole request, body included, and WriteTimeout the time from the end of
// its headers to the end of the answer; routes that take large bodies get
// longer (bodyDeadline).
const (
	ReadHeaderTimeout = 10 * time.Second
	ReadTimeout       = 30 * time.Second
	WriteTimeout      = 90 * time.Second
	IdleTimeout       = 120 * time.Second
)

// NewHTTPServer returns the HTTP server for h with every timeout set. Serve
// it on Listener(ln).
func NewHTTPServer(h http.Handler) *http.Server {
	return &http.Server{Handler: h, ReadHeaderTimeout: ReadHeaderTimeout, ReadTimeout: ReadTimeout,
		WriteTimeout: WriteTimeout, IdleTimeout: IdleTimeout}
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
	s := &Server{deps: deps, log: deps.Logger, engine: gin.New(), metrics: newMetrics(deps.Registry)}
	if deps.MetricsToken != "" {
		s.metricsKey = auth.NewConsoleKeys([]string{deps.MetricsToken})
	}
	s.engine.ContextWithFallback = true
	s.trustProxies(deps.TrustedProxies)
	s.engine.HandleMethodNotAllowed = true // 405 method_not_allowed with Allow
	// No redirects: /healthz/ is an unknown path (a JSON 404), like any other.
	s.engine.RedirectTrailingSlash = false
	s.engine.RedirectFixedPath = false
	s.engine.Use(s.requestID(), s.recoverer(), s.metrics.middleware())
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

// trustProxies makes c.ClientIP() the address X-Forwarded-For names when
// the peer is one of cidrs, and the peer's address otherwise. No platform
// header (X-Appengine-Remote-Addr, CF-Connecting-IP) and no X-Real-IP is
// believed from anyone. With no cidrs (or, which config refuses, bad ones)
// forwarded headers are off altogether: gin's own default trusts every
// peer, and SetTrustedProxies(nil) alone leaves the switch on.
func (s *Server) trustProxies(cidrs []string) {
	e := s.engine
	e.TrustedPlatform = ""
	e.RemoteIPHeaders = []string{"X-Forwarded-For"}
	e.ForwardedByClientIP = false
	_ = e.SetTrustedProxies(nil) // nil always parses
	if len(cidrs) == 0 {
		return
	}
	if err := e.SetTrustedProxies(cidrs); err != nil {
		_ = e.SetTrustedProxies(nil)
		s.log.Error("trusted proxies refused: forwarded headers are ignored", "err", err)
		return
	}
	e.ForwardedByClientIP = true
}

// bodyDeadline gives a route whose body may hold up to max() bytes the
// time to read it at UploadRate plus UploadGrace (for the declared length
// when it is shorter), instead of the server's ReadTimeout, and
// WriteTimeout after that to answer. The deadline is set when the handler
// first reads the body, so a request refused before (a bad token) keeps
// the server's timeouts. A client that trickles its body past the deadline
// has its reads fail: the handler answers and the connection closes
// instead of being held for ever.
func (s *Server) bodyDeadline(max func() int64) gin.HandlerFunc {
	return func(c *gin.Context) {
		d := s.uploadTime(max(), c.Request.ContentLength)
		rc := http.NewResponseController(c.Writer)
		c.Request.Body = &deadlineBody{ReadCloser: c.Request.Body, set: func() {
			now := time.Now()
			// Not every writer supports deadlines (httptest's recorder does
			// not); the server's own timeouts stand then.
			_ = rc.SetReadDeadline(now.Add(d))
			_ = rc.SetWriteDeadline(now.Add(d + WriteTimeout))
		}}
		c.Next()
	}
}

// answerDeadline gives a route whose answer may carry up to max() bytes
// (a document a reviewer views) the time to send it at UploadRate plus
// UploadGrace, besides WriteTimeout.
func (s *Server) answerDeadline(max func() int64) gin.HandlerFunc {
	return func(c *gin.Context) {
		_ = http.NewResponseController(c.Writer).SetWriteDeadline(time.Now().Add(WriteTimeout + s.uploadTime(max(), -1)))
		c.Next()
	}
}

// deadlineBody calls set before the first read of the body.
type deadlineBody struct {
	io.ReadCloser
	once sync.Once
	set  func()
}

func (b *deadlineBody) Read(p []byte) (int, error) {
	b.once.Do(b.set)
	return b.ReadCloser.Read(p)
}

// uploadTime is how long a body of up to max bytes (declared: the
// Content-Length, -1 when not given) may take to arrive.
func (s *Server) uploadTime(max, declared int64) time.Duration {
	rate, grace := s.deps.UploadRate, s.deps.UploadGrace
	if rate <= 0 {
		rate = 32 << 10
	}
	if grace <= 0 {
		grace = 30 * time.Second
	}
	if declared >= 0 && declared < max {
		max = declared
	}
	return grace + time.Duration(float64(max)/float64(rate)*float64(time.Second))
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
	// unaudited counts anonymous refusals left out of the audit past its
	// bound, by kind (see admitRefusal).
	unaudited *prometheus.CounterVec
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
		unaudited: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "mfaflow_audit_refusals_unaudited_total", Help: "Anonymous refusals not written to the audit log, past its per-minute bound, by kind.",
		}, []string{"action"}),
	}
	reg.MustRegister(m.requests, m.duration, m.unaudited)
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
