package api

import (
	"context"
	"errors"
	"strings"

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
// role). Refusals are audited.
func (s *Server) requireRole(role string) gin.HandlerFunc {
	return func(c *gin.Context) {
		tok := bearer(c)
		var err error
		var p auth.Principal
		switch {
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
				Details: map[string]string{"route": c.FullPath(), "method": c.Request.Method, "reason": authRefusal(err)}})
			fail(c, s.log, err)
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
func (s *Server) audit(c *gin.Context, e store.AuditEntry) {
	if e.RemoteIP == "" {
		e.RemoteIP = c.ClientIP()
	}
	if e.At.IsZero() {
		e.At = s.deps.Now().UTC()
	}
	ctx := context.WithoutCancel(c.Request.Context())
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
