package api

import (
	"bytes"
	_ "embed"
	"net/http"

	"github.com/gin-gonic/gin"

	"github.com/mfaflow/mfaflow/auth"
)

//go:embed openapi.yaml
var openapiYAML []byte

// OpenAPI returns the OpenAPI document the server serves at /openapi.yaml.
func OpenAPI() []byte { return bytes.Clone(openapiYAML) }

// routes registers every route. A new route needs a row in the
// access-control test.
func (s *Server) routes() {
	r := s.engine
	r.GET("/healthz", handleHealthz())
	r.HEAD("/healthz", handleHealthz())
	r.GET("/readyz", s.handleReadyz())
	r.HEAD("/readyz", s.handleReadyz())
	if !s.deps.NoMetrics {
		r.GET("/metrics", s.requireMetricsToken(), gin.WrapH(MetricsHandler(s.deps.Registry, "")))
	}
	r.GET("/openapi.yaml", func(c *gin.Context) { c.Data(http.StatusOK, "application/yaml", openapiYAML) })
	r.GET("/v1", handleIndex())

	acct := r.Group("/v1/accounts/:account_id", s.limitBody(), s.requireConsole())
	acct.POST("/mfa/bindings", s.handleCreateBinding())
	acct.POST("/mfa/bindings/:binding_id/sms-code", s.handleBindingSMSCode())
	acct.GET("/mfa/bindings/:binding_id/qr.png", s.handleBindingQR())
	acct.POST("/mfa/bindings/:binding_id/confirm", s.handleBindingConfirm())
	acct.GET("/mfa/bindings/:binding_id", s.handleGetBinding())
	acct.DELETE("/mfa/bindings/:binding_id", s.handleCancelBinding())
	acct.GET("/mfa", s.handleGetMFA())
	acct.PUT("/mfa/protection", s.handlePutProtection())
	acct.POST("/mfa/verify", s.handleVerify())
	acct.POST("/mfa/grants/consume", s.handleConsumeGrant())
	acct.POST("/mfa/resync", s.handleResync())
	acct.DELETE("/mfa/devices/:device_id", s.handleDeleteDevice())
	acct.POST("/mfa/recovery-codes", s.handleRegenerateRecoveryCodes())
	acct.POST("/mfa/webauthn/challenge", s.handleWebAuthnChallenge())
	acct.POST("/login-protection/verify", s.handleLoginProtectionVerify())

	r.POST("/v1/appeals", s.limitBody(), s.handleCreateAppeal())
	appeal := r.Group("/v1/appeals/:appeal_id")
	appeal.PUT("/documents/:doc_type", s.bodyDeadline(s.deps.Appeals.maxDocument), s.handleUploadDocument())
	appeal.POST("/submit", s.limitBody(), s.handleSubmitAppeal())
	appeal.GET("", s.handleGetAppeal())
	appeal.POST("/cancel", s.limitBody(), s.handleCancelAppeal())
	r.GET("/c/:token", s.handleShortCancelLink())

	review := r.Group("/v1/review", s.limitBody(), s.requireRole(auth.RoleReviewer))
	review.GET("/appeals", s.handleReviewQueue())
	review.GET("/appeals/:appeal_id", s.handleReviewCase())
	review.POST("/appeals/:appeal_id/claim", s.handleClaim())
	review.POST("/appeals/:appeal_id/decision", s.handleDecide())
	r.GET("/v1/review/documents/:appeal_id/:doc_type", s.answerDeadline(s.deps.Appeals.maxDocument), s.handleReviewDocument())

	admin := r.Group("/v1/admin", s.limitBody(), s.requireRole(auth.RoleAdmin))
	admin.PUT("/accounts/:account_id", s.handlePutAccount())
	admin.GET("/accounts/:account_id", s.handleGetAccount())
	admin.GET("/audit", s.handleListAudit())
	admin.POST("/accounts/:account_id/security-center", s.handleProvisionSecurityCenter())
	admin.DELETE("/accounts/:account_id/mfa/lock", s.handleUnlock())
	admin.GET("/appeals", s.handleAdminAppeals())
	// The Temporal Web UI's codec server: decrypts history payloads for an
	// admin (every call audited). Configure the UI with <base>/v1/admin/codec
	// and "pass the access token".
	admin.POST("/codec/decode", s.handleCodec())
	admin.POST("/codec/encode", s.handleCodec())
	r.POST("/v1/admin/hardware-tokens/import", s.requireRole(auth.RoleAdmin), s.bodyDeadline(func() int64 { return maxImportBody }), s.handleImportTokens())

	// Staff sign-in through the company IdP (staff.go, SPEC §5b).
	r.GET("/auth/login", s.handleStaffLogin())
	r.GET("/auth/callback", s.handleStaffCallback())
	r.GET("/auth/session", s.handleStaffSession())
	r.POST("/auth/logout", s.limitBody(), s.handleStaffLogout())

	if s.deps.Pages != nil {
		for _, p := range []string{"/appeal", "/appeal/status", "/appeals/:appeal_id/owner-cancel", "/review", "/review/case", "/static/*file"} {
			r.GET(p, s.wrapPages(s.deps.Pages))
		}
	}
	if s.deps.Dev {
		r.GET("/dev/outbox", s.handleOutbox())
		r.GET("/dev/hardware-tokens/:serial/code", s.handleDemoTokenCode())
		if s.deps.Web != nil {
			r.GET("/console", s.wrapPages(s.deps.Web))
			if s.deps.Pages == nil { // else Pages serves the same /static/
				r.GET("/static/*file", s.wrapPages(s.deps.Web))
			}
		}
		r.GET("/dev/security-center/:account_id/code", s.handleDevSecurityCenterCode())
	}
}
