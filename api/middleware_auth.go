package api

import (
	"context"
	"errors"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/mfaflow/mfaflow/auth"
	"github.com/mfaflow/mfaflow/store"
)

const ctxPrincipal = "principal"

// bearer returns the bearer token of the request, or "".
func bearer(c *gin.Context) string {
	h := c.GetHeader("Authorization")
	if len(h) > 7 && strings.EqualFold(h[:7], "bearer ") {
		return strings.TrimSpace(h[7:])
	}
	return ""
}

// requireConsole admits callers holding a console key.
func (s *Server) requireConsole() gin.HandlerFunc {
	return func(c *gin.Context) {
		tok := bearer(c)
		var err error
		switch {
		case tok == "":
			err = auth.ErrNoCredentials
		case s.deps.Console == nil || !s.deps.Console.Check(tok):
			err = auth.ErrInvalid
		}
		if err != nil {
			acct := c.Param("account_id")
			if !accountIDPattern.MatchString(acct) {
				acct = ""
			}
			s.audit(c, store.AuditEntry{Actor: "anonymous", Action: "auth.console", Outcome: "denied", AccountID: acct,
				Details: map[string]string{"route": c.FullPath(), "method": c.Request.Method, "reason": authRefusal(err)}})
			fail(c, s.log, err)
			return
		}
		c.Next()
	}
}

// requireRole admits reviewers or admins holding role (an admin holds every
// role), by bearer JWT or, without one, by staff session cookie (plus its
// CSRF token on unsafe methods). Refusals are audited.
func (s *Server) requireRole(role string) gin.HandlerFunc {
	return func(c *gin.Context) {
		tok := bearer(c)
		var err error
		var p auth.Principal
		sid := ""
		if tok == "" && s.deps.OIDC != nil {
			sid = s.sessionID(c) // a staff session (staff.go) when no bearer token is given
		}
		switch {
		case sid != "":
			p, err = s.sessionPrincipal(c, sid)
			if err == nil && !p.Has(role) {
				err = auth.ErrForbidden
			}
		case tok == "":
			err = auth.ErrNoCredentials
		case s.deps.JWT == nil:
			err = auth.ErrInvalid
		default:
			p, err = s.deps.JWT.Verify(c.Request.Context(), tok)
			if err == nil && !p.Has(role) {
				err = auth.ErrForbidden
			}
		}
		if err != nil {
			actor := "anonymous"
			if p.Subject != "" {
				actor = "user:" + p.Subject
			}
			s.audit(c, store.AuditEntry{Actor: actor, Action: "auth." + role, Outcome: "denied",
				Details: map[string]string{"route": c.FullPath(), "method": c.Request.Method, "reason": sessionRefusal(err)}})
			fail(c, s.log, sessionError(err))
			return
		}
		c.Set(ctxPrincipal, p)
		c.Next()
	}
}

func principal(c *gin.Context) auth.Principal {
	p, _ := c.Get(ctxPrincipal)
	pr, _ := p.(auth.Principal)
	return pr
}

// actor names the caller for the audit log.
func actor(c *gin.Context) string {
	if p := principal(c); p.Subject != "" {
		if p.Has(auth.RoleAdmin) {
			return "admin:" + p.Subject
		}
		return "reviewer:" + p.Subject
	}
	return "anonymous"
}

// audit appends e with the request's address. A failed audit write is logged;
// handlers whose action must not happen unaudited call the store directly.
// Anonymous refusals (actor "anonymous", outcome "denied": bad console
// keys, JWTs, cancel tokens, document links) are written at a bounded rate
// (admitRefusal).
func (s *Server) audit(c *gin.Context, e store.AuditEntry) {
	if e.RemoteIP == "" {
		e.RemoteIP = c.ClientIP()
	}
	if e.At.IsZero() {
		e.At = s.deps.Now().UTC()
	}
	ctx := context.WithoutCancel(c.Request.Context())
	if e.Actor == "anonymous" && e.Outcome == "denied" && !s.admitRefusal(ctx, &e) {
		return
	}
	if _, err := s.deps.Store.AppendAudit(ctx, e); err != nil {
		s.log.ErrorContext(ctx, "audit write failed", "action", e.Action, "outcome", e.Outcome, "err", err)
	}
}

// authRefusal names a refused credential in the audit: missing_credentials,
// invalid_credentials (a bad key or token, whatever the verifier's reason)
// or forbidden (a valid token without the role).
func authRefusal(err error) string {
	switch {
	case errors.Is(err, auth.ErrNoCredentials):
		return "missing_credentials"
	case errors.Is(err, auth.ErrForbidden):
		return "forbidden"
	}
	return "invalid_credentials"
}

// refusalWindow is the window of the bounds on audited anonymous refusals.
const refusalWindow = time.Minute

// admitRefusal decides whether the anonymous refusal e is written to the
// audit. Per kind (e.Action) and minute, the first RefusalAuditPerIP from
// one client IP are, and from every address together the first
// RefusalAuditPerKind. The first refusal past either bound is written once
// as a summary instead (details "audit_bound": "ip" or "kind", with
// "until", the window's end), and later ones of that window only counted
// in mfaflow_audit_refusals_unaudited_total. So a flood of bad keys adds
// at most RefusalAuditPerKind+1 entries of a kind a minute, however many
// addresses it comes from, while one address cannot crowd out the others
// (each is held to its own share first). The counters live in the store's
// rate limiter, shared by every replica; if it fails, the refusal is
// written.
func (s *Server) admitRefusal(ctx context.Context, e *store.AuditEntry) bool {
	perIP, perKind := s.deps.RefusalAuditPerIP, s.deps.RefusalAuditPerKind
	if perIP <= 0 {
		perIP = 10
	}
	if perKind <= 0 {
		perKind = 100
	}
	now := s.deps.Now()
	hit := func(key string, limit int) bool {
		ok, _, err := s.deps.Store.Hit(ctx, key, refusalWindow, limit, now)
		if err != nil {
			s.log.WarnContext(ctx, "audit bound: counting a refusal failed", "action", e.Action, "err", err)
			return true
		}
		return ok
	}
	kind, ip := "audit-refusal:"+e.Action, ":ip:"+e.RemoteIP
	until := now.Truncate(refusalWindow).Add(refusalWindow).UTC().Format(time.RFC3339)
	summary := func(scope string) {
		d := make(map[string]string, len(e.Details)+2)
		for k, v := range e.Details {
			d[k] = v
		}
		d["audit_bound"], d["until"] = scope, until
		e.Details = d
	}
	if !hit(kind+ip, perIP) {
		// Past this address's share: one summary, if the kind has room.
		if !hit(kind+ip+":summary", 1) {
			s.metrics.unaudited.WithLabelValues(e.Action).Inc()
			return false
		}
		summary("ip")
	}
	if !hit(kind, perKind) {
		if !hit(kind+":summary", 1) {
			s.metrics.unaudited.WithLabelValues(e.Action).Inc()
			return false
		}
		summary("kind")
	}
	return true
}
