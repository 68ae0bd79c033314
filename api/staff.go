package api

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/mfaflow/mfaflow/auth"
	"github.com/mfaflow/mfaflow/store"
)

// Staff sign-in to the pages through the company IdP (SPEC §5b).
//
// GET /auth/login sends the browser to the IdP with state, nonce and an S256
// PKCE challenge, whose secrets wait in a short-lived HttpOnly flow cookie;
// GET /auth/callback checks them, exchanges the code with the verifier,
// verifies the ID token and, for a reviewer or admin, starts a session: a
// random id in an HttpOnly, Secure, SameSite=Strict cookie, its SHA-256 in
// the store. GET /auth/session tells the page who is signed in and gives it
// the session's CSRF token, which every state-changing request made with
// the cookie carries in X-CSRF-Token. POST /auth/logout ends the session.

// Session errors the pages act on: 401 session_expired asks to sign in
// again, 403 csrf_failed is a request without the session's CSRF token.
const (
	codeSessionExpired = "session_expired"
	codeCSRFFailed     = "csrf_failed"
	// CSRFHeader carries the session's CSRF token.
	CSRFHeader = "X-CSRF-Token"
	// defaultSessionTTL is how long a staff session lasts when
	// Deps.SessionTTL is 0: a working day.
	defaultSessionTTL = 8 * time.Hour
	flowTTL           = 10 * time.Minute
)

// errSignInUnavailable answers the /auth routes of a server without
// MFAFLOW_OIDC_ISSUER; the pages then hide their sign-in button.
var errSignInUnavailable = errorf(http.StatusNotFound, "sign_in_unavailable", "staff sign-in is not configured on this server")

// csrfExempt are the session routes that take POST without changing
// anything: the Temporal UI's codec calls (decode and encode answer and
// change nothing; the UI cannot send our CSRF header). The SameSite=Strict
// cookie is not sent from another site, and no CORS header lets another
// origin read the answer.
var csrfExempt = map[string]bool{"/v1/admin/codec/decode": true, "/v1/admin/codec/encode": true}

// sessionCookie and flowCookie name the cookies. With the Secure flag
// they carry the __Host- prefix, which the browser only accepts from a
// secure origin, for path / and without a Domain.
func (s *Server) sessionCookie() string {
	if s.deps.InsecureSessionCookie {
		return "mfaflow_staff"
	}
	return "__Host-mfaflow_staff"
}

func (s *Server) flowCookie() string {
	if s.deps.InsecureSessionCookie {
		return "mfaflow_signin"
	}
	return "__Host-mfaflow_signin"
}

func (s *Server) setCookie(c *gin.Context, name, value string, maxAge int, same http.SameSite) {
	http.SetCookie(c.Writer, &http.Cookie{Name: name, Value: value, Path: "/", MaxAge: maxAge,
		HttpOnly: true, Secure: !s.deps.InsecureSessionCookie, SameSite: same})
}

func (s *Server) sessionTTL() time.Duration {
	if s.deps.SessionTTL > 0 {
		return s.deps.SessionTTL
	}
	return defaultSessionTTL
}

// returnPath keeps only a local path (and its query) to go back to after
// the sign-in, so /auth/login cannot send anyone to another site; anything
// else is /review.
func returnPath(v string) string {
	const def = "/review"
	if v == "" || len(v) > 512 || !strings.HasPrefix(v, "/") || strings.HasPrefix(v, "//") || strings.HasPrefix(v, "/\\") {
		return def
	}
	for _, r := range v {
		if r < 0x20 || r == 0x7f || r == '\\' {
			return def
		}
	}
	u, err := url.Parse(v)
	if err != nil || u.Scheme != "" || u.Host != "" || u.User != nil || u.Opaque != "" {
		return def
	}
	return u.RequestURI()
}

// reasonPattern is what of an IdP's error code the audit records.
var reasonPattern = regexp.MustCompile(`^[a-z_]{1,40}$`)

// signInRefused sends the browser back to page ret with sign_in=reason
// (no_role, failed, idp_unreachable, unavailable): the review pages say
// in the reader's language why the sign-in did not happen, next to their
// "sign in" button.
func signInRefused(c *gin.Context, ret, reason string) {
	u, err := url.Parse(returnPath(ret))
	if err != nil {
		u = &url.URL{Path: "/review"}
	}
	q := u.Query()
	q.Set("sign_in", reason)
	u.RawQuery = q.Encode()
	c.Header("Cache-Control", "no-store")
	c.Redirect(http.StatusSeeOther, u.RequestURI())
	c.Abort()
}

// handleStaffLogin answers GET /auth/login: the redirect to the IdP.
func (s *Server) handleStaffLogin() gin.HandlerFunc {
	return func(c *gin.Context) {
		if s.deps.OIDC == nil {
			fail(c, s.log, errSignInUnavailable)
			return
		}
		f := auth.NewFlow(returnPath(c.Query("return")))
		to, err := s.deps.OIDC.AuthURL(c.Request.Context(), f)
		if err != nil {
			s.log.ErrorContext(c.Request.Context(), "staff sign-in: the IdP is unreachable", "err", err)
			signInRefused(c, f.Return, "idp_unreachable")
			return
		}
		raw, _ := json.Marshal(f)
		s.setCookie(c, s.flowCookie(), base64.RawURLEncoding.EncodeToString(raw), int(flowTTL/time.Second), http.SameSiteLaxMode)
		c.Header("Cache-Control", "no-store")
		c.Redirect(http.StatusFound, to)
	}
}

// readFlow returns the flow of the browser's flow cookie (a zero Flow when
// there is none), and clears the cookie: a flow is finished once.
func (s *Server) readFlow(c *gin.Context) auth.Flow {
	var f auth.Flow
	ck, err := c.Request.Cookie(s.flowCookie())
	if err != nil {
		return f
	}
	s.setCookie(c, s.flowCookie(), "", -1, http.SameSiteLaxMode)
	raw, err := base64.RawURLEncoding.DecodeString(ck.Value)
	if err != nil || json.Unmarshal(raw, &f) != nil {
		return auth.Flow{}
	}
	f.Return = returnPath(f.Return)
	return f
}

// handleStaffCallback answers GET /auth/callback: the IdP's redirect back.
// A reviewer or admin gets a session and goes back to the page the sign-in
// started from; anyone else goes back there with the reason
// (signInRefused), and the refusal is audited.
func (s *Server) handleStaffCallback() gin.HandlerFunc {
	return func(c *gin.Context) {
		if s.deps.OIDC == nil {
			fail(c, s.log, errSignInUnavailable)
			return
		}
		ctx := c.Request.Context()
		f := s.readFlow(c)
		if e := c.Query("error"); e != "" {
			if !reasonPattern.MatchString(e) {
				e = "idp_error"
			}
			s.audit(c, store.AuditEntry{Actor: "anonymous", Action: "auth.sign_in", Outcome: "denied", Details: map[string]string{"reason": "idp:" + e}})
			signInRefused(c, f.Return, "failed")
			return
		}
		id, err := s.deps.OIDC.Finish(ctx, f, c.Query("state"), c.Query("code"))
		switch {
		case errors.Is(err, auth.ErrNoRole):
			s.audit(c, store.AuditEntry{Actor: "user:" + id.Subject, Action: "auth.sign_in", Outcome: "denied", Details: map[string]string{"reason": "no_role"}})
			signInRefused(c, f.Return, "no_role")
			return
		case errors.Is(err, auth.ErrFlow), errors.Is(err, auth.ErrIDToken):
			reason := "flow"
			if errors.Is(err, auth.ErrIDToken) {
				reason = "id_token"
			}
			s.log.WarnContext(ctx, "staff sign-in refused", "err", err)
			s.audit(c, store.AuditEntry{Actor: "anonymous", Action: "auth.sign_in", Outcome: "denied", Details: map[string]string{"reason": reason}})
			signInRefused(c, f.Return, "failed")
			return
		case err != nil:
			s.log.ErrorContext(ctx, "staff sign-in: the IdP is unreachable", "err", err)
			signInRefused(c, f.Return, "idp_unreachable")
			return
		}
		now := s.deps.Now()
		sid := auth.NewSessionID()
		sess := store.StaffSession{IDHash: auth.SessionHash(sid), Subject: id.Subject, Name: id.Name, Roles: id.Roles,
			CreatedAt: now.UTC(), ExpiresAt: now.Add(s.sessionTTL()).UTC()}
		if err := s.deps.Store.CreateSession(ctx, sess); err != nil {
			s.log.ErrorContext(ctx, "staff sign-in: storing the session failed", "err", err)
			signInRefused(c, f.Return, "unavailable")
			return
		}
		if n, err := s.deps.Store.DeleteExpiredSessions(ctx, now); err != nil {
			s.log.WarnContext(ctx, "staff sessions: sweep failed", "err", err)
		} else if n > 0 {
			s.log.InfoContext(ctx, "staff sessions: expired ones swept", "count", n)
		}
		s.audit(c, store.AuditEntry{Actor: staffActor(id.Subject, id.Roles), Action: "auth.sign_in", Outcome: "ok",
			Details: map[string]string{"roles": strings.Join(id.Roles, ",")}})
		// A session cookie (no Max-Age): the server's expiry decides, so an
		// ended session is still seen as one and the page says "sign in
		// again" rather than "not signed in".
		s.setCookie(c, s.sessionCookie(), sid, 0, http.SameSiteStrictMode)
		c.Header("Cache-Control", "no-store")
		c.Redirect(http.StatusSeeOther, f.Return)
	}
}

func staffActor(sub string, roles []string) string {
	if slices.Contains(roles, auth.RoleAdmin) {
		return "admin:" + sub
	}
	return "reviewer:" + sub
}

// sessionID returns the browser's session id, or "".
func (s *Server) sessionID(c *gin.Context) string {
	ck, err := c.Request.Cookie(s.sessionCookie())
	if err != nil {
		return ""
	}
	return ck.Value
}

// session returns the session of the request's cookie. It returns
// auth.ErrSessionEnded for a session that expired, was signed out or never
// was, and the store's error when it cannot look.
func (s *Server) session(c *gin.Context, sid string) (store.StaffSession, error) {
	sess, err := s.deps.Store.GetSession(c.Request.Context(), auth.SessionHash(sid), s.deps.Now())
	if errors.Is(err, store.ErrNotFound) {
		return sess, auth.ErrSessionEnded
	}
	return sess, err
}

// sessionPrincipal authenticates a request by its session cookie sid.
// Unsafe methods need the session's CSRF token (X-CSRF-Token) except on the
// csrfExempt routes. It returns auth.ErrSessionEnded, auth.ErrCSRF or the
// store's error.
func (s *Server) sessionPrincipal(c *gin.Context, sid string) (auth.Principal, error) {
	sess, err := s.session(c, sid)
	if err != nil {
		return auth.Principal{}, err
	}
	switch c.Request.Method {
	case http.MethodGet, http.MethodHead, http.MethodOptions:
	default:
		if !csrfExempt[c.FullPath()] && !auth.CheckCSRF(sid, c.GetHeader(CSRFHeader)) {
			return auth.Principal{Subject: sess.Subject, Roles: sess.Roles}, auth.ErrCSRF
		}
	}
	return auth.Principal{Subject: sess.Subject, Roles: sess.Roles, Expires: sess.ExpiresAt}, nil
}

// sessionError is the client's error for a session refusal.
func sessionError(err error) error {
	switch {
	case errors.Is(err, auth.ErrSessionEnded):
		return errorf(http.StatusUnauthorized, codeSessionExpired, "the session has ended; sign in again")
	case errors.Is(err, auth.ErrCSRF):
		return errorf(http.StatusForbidden, codeCSRFFailed, "the request lacks the session's CSRF token (%s)", CSRFHeader)
	}
	return err
}

// sessionRefusal names a session refusal in the audit.
func sessionRefusal(err error) string {
	switch {
	case errors.Is(err, auth.ErrSessionEnded):
		return codeSessionExpired
	case errors.Is(err, auth.ErrCSRF):
		return codeCSRFFailed
	}
	return authRefusal(err)
}

// staffSession is the answer of GET /auth/session.
type staffSession struct {
	Subject   string    `json:"subject"`
	Name      string    `json:"name"`
	Roles     []string  `json:"roles"`
	ExpiresAt time.Time `json:"expires_at"`
	CSRFToken string    `json:"csrf_token"`
}

// handleStaffSession answers GET /auth/session: who is signed in, and the
// CSRF token the page sends with its state-changing requests.
func (s *Server) handleStaffSession() gin.HandlerFunc {
	return func(c *gin.Context) {
		c.Header("Cache-Control", "no-store")
		if s.deps.OIDC == nil {
			fail(c, s.log, errSignInUnavailable)
			return
		}
		sid := s.sessionID(c)
		if sid == "" {
			fail(c, s.log, auth.ErrNoCredentials)
			return
		}
		sess, err := s.session(c, sid)
		if err != nil {
			fail(c, s.log, sessionError(err))
			return
		}
		c.JSON(http.StatusOK, staffSession{Subject: sess.Subject, Name: sess.Name, Roles: sess.Roles,
			ExpiresAt: sess.ExpiresAt.UTC(), CSRFToken: auth.CSRFToken(sid)})
	}
}

// handleStaffLogout answers POST /auth/logout: the session ends (on every
// replica: it is gone from the store) and the cookie is cleared. It needs
// the session's CSRF token, so another site cannot sign a reviewer out.
func (s *Server) handleStaffLogout() gin.HandlerFunc {
	return func(c *gin.Context) {
		c.Header("Cache-Control", "no-store")
		sid := s.sessionID(c)
		if sid != "" {
			tok := c.GetHeader(CSRFHeader)
			if !auth.CheckCSRF(sid, tok) {
				s.audit(c, store.AuditEntry{Actor: "anonymous", Action: "auth.sign_out", Outcome: "denied", Details: map[string]string{"reason": codeCSRFFailed}})
				fail(c, s.log, sessionError(auth.ErrCSRF))
				return
			}
			sess, err := s.session(c, sid)
			if err != nil && !errors.Is(err, auth.ErrSessionEnded) {
				fail(c, s.log, err)
				return
			}
			if err := s.deps.Store.DeleteSession(c.Request.Context(), auth.SessionHash(sid)); err != nil {
				fail(c, s.log, err)
				return
			}
			if sess.Subject != "" {
				s.audit(c, store.AuditEntry{Actor: staffActor(sess.Subject, sess.Roles), Action: "auth.sign_out", Outcome: "ok"})
			}
		}
		s.setCookie(c, s.sessionCookie(), "", -1, http.SameSiteStrictMode)
		c.JSON(http.StatusOK, gin.H{"status": "signed_out"})
	}
}
