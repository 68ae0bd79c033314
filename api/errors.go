package api

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/mfaflow/mfaflow/auth"
	"github.com/mfaflow/mfaflow/blob"
	"github.com/mfaflow/mfaflow/console"
	"github.com/mfaflow/mfaflow/i18n"
	"github.com/mfaflow/mfaflow/mfa"
	"github.com/mfaflow/mfaflow/store"
)

// Error is an error the client may see: a status, a snake_case code, a
// message and, for input errors, the offending field. Message is the
// English text; the client reads it in its language (Error.LocalMessage).
type Error struct {
	Status     int
	Code       string
	Message    string
	Field      string
	Key        string        // the catalog id of the message when not "error.<Code>"
	RetryAfter time.Duration // sets Retry-After when positive
}

// LocalMessage returns the error's message in l: the catalog's text of the
// code (i18n/locales/errors.*.toml, "error.<code>", or Key), with the field
// filled in. In English the call site's own sentence wins when it has one,
// as it may name a limit or a byte offset. A code the catalog lacks (which
// TestErrorMessagesBothLanguages catches) falls back to Message.
func (e *Error) LocalMessage(l i18n.Lang) string {
	if l == i18n.EN && e.Message != "" {
		return e.Message
	}
	key := e.Key
	if key == "" {
		key = "error." + e.Code
	}
	if i18n.Has(l, key) {
		return i18n.T(l, key, map[string]any{"Field": e.Field})
	}
	if e.Message != "" {
		return e.Message
	}
	return e.Code
}

// requestLang is the language of a request's error messages: the one its
// Accept-Language prefers of zh-CN and en, else zh-CN, the console's
// default (i18n.Negotiate with no explicit choice).
func requestLang(c *gin.Context) i18n.Lang {
	return i18n.Negotiate("", c.GetHeader("Accept-Language"))
}

// errorBody returns the "error" member of an error answer to c: code and
// message in the request's language, and the field when there is one. A
// handler that writes its error body itself (with more members) uses it.
func errorBody(c *gin.Context, e *Error) gin.H {
	body := gin.H{"code": e.Code, "message": e.LocalMessage(requestLang(c))}
	if e.Field != "" {
		body["field"] = e.Field
	}
	return body
}

func (e *Error) Error() string { return e.Code + ": " + e.Message }

// codeUnauthorized is the code of every 401 for missing or bad
// credentials (a console key, a JWT, an appeal's access token or cancel
// link); those alone carry WWW-Authenticate.
const codeUnauthorized = "unauthorized"

// errorf builds a client-visible error.
func errorf(status int, code, format string, args ...any) *Error {
	return &Error{Status: status, Code: code, Message: fmt.Sprintf(format, args...)}
}

// invalidField reports a bad input field with status 400.
func invalidField(field, message string) *Error {
	return &Error{Status: http.StatusBadRequest, Code: "invalid_field", Field: field, Message: message}
}

// errorMap is the one table from domain errors to HTTP answers. The first
// entry that errors.Is matches wins; anything else is a 500 whose cause is
// logged but never shown.
var errorMap = []struct {
	err     error
	status  int
	code    string
	message string
}{
	{store.ErrNotFound, http.StatusNotFound, "not_found", "not found"},
	{store.ErrConflict, http.StatusConflict, "conflict", "the request conflicts with the current state"},
	{store.ErrUnavailable, http.StatusServiceUnavailable, "unavailable", "the database is unavailable; try again shortly"},
	{blob.ErrUnavailable, http.StatusServiceUnavailable, "unavailable", "document storage is unavailable; try again shortly"},
	{blob.ErrNotFound, http.StatusNotFound, "not_found", "not found"},
	{blob.ErrTooLarge, http.StatusRequestEntityTooLarge, "too_large", "the body is larger than allowed"},
	{auth.ErrNoCredentials, http.StatusUnauthorized, "unauthorized", "credentials are required"},
	{auth.ErrInvalid, http.StatusUnauthorized, "unauthorized", "the credentials are not valid"},
	{auth.ErrForbidden, http.StatusForbidden, "forbidden", "not allowed"},
	{mfa.ErrReplayed, http.StatusUnauthorized, "code_reused", "this code was already used; wait for the next one"},
	{mfa.ErrResyncFailed, http.StatusUnauthorized, "resync_failed", "the two codes could not be matched to the card; read two new consecutive codes"},
	{mfa.ErrInvalidCode, http.StatusUnauthorized, "invalid_code", "the code is not valid"},
	{console.ErrProtectionOff, http.StatusConflict, "protection_off", "this protection is not turned on for the account"},
	{console.ErrNoDevice, http.StatusConflict, "no_device", "the account has no active MFA device for this check"},
	{console.ErrNotHardware, http.StatusConflict, "no_hardware_device", "resync is for hardware token cards; the account has none"},
	{console.ErrInvalid, http.StatusBadRequest, "invalid_request", "the request is not valid"},
	{mfa.ErrCloned, http.StatusForbidden, "possible_cloned_key",
		"the security key's signature counter went backwards, so it may have been copied; the check was refused and the owner told"},
	{console.ErrWebAuthnOff, http.StatusConflict, "webauthn_unavailable", "security keys are not configured on this service"},
	{console.ErrStepUpRequired, http.StatusForbidden, "step_up_required",
		"this change needs a proof of an MFA factor the account already has: a code of a bound device, a bound security key or a recovery code; without one, file an unbind appeal at /appeal"},
	{console.ErrAppealOpen, http.StatusConflict, "appeal_open",
		"an unbind appeal of this account is open, so its MFA devices cannot change until it closes; if you did not file it, cancel it with the link sent to the account's phone and e-mail"},
	{store.ErrGrantMismatch, http.StatusForbidden, "grant_mismatch", "the grant is for another operation"},
	{store.ErrGrantUsed, http.StatusConflict, "grant_used", "the grant was already used"},
	{store.ErrGrantExpired, http.StatusGone, "grant_expired", "the grant expired; verify a new code"},
	{context.DeadlineExceeded, http.StatusServiceUnavailable, "unavailable", "a dependency did not answer in time"},
}

// toError turns any error into the client-visible Error.
func toError(err error) (*Error, bool) {
	var e *Error
	if errors.As(err, &e) {
		return e, true
	}
	var le *mfa.LockedError
	if errors.As(err, &le) {
		e := errorf(http.StatusTooManyRequests, "locked", "too many wrong codes; try again later")
		e.RetryAfter = le.RetryAfter
		if le.Hard {
			e.Message = "too many wrong codes; the account's MFA checks are locked until support unlocks them"
			e.Key = "error.locked_hard"
			e.RetryAfter = 24 * time.Hour
		}
		return e, true
	}
	var mb *http.MaxBytesError
	if errors.As(err, &mb) {
		return errorf(http.StatusRequestEntityTooLarge, "too_large", "the body is larger than %d bytes", mb.Limit), true
	}
	for _, m := range errorMap {
		if errors.Is(err, m.err) {
			return &Error{Status: m.status, Code: m.code, Message: m.message}, true
		}
	}
	return &Error{Status: http.StatusInternalServerError, Code: "internal", Message: "internal error"}, false
}

// fail writes err as the JSON error body and aborts the request, its
// message in the language of the request's Accept-Language (zh-CN when it
// names neither zh nor en). Internal errors are logged with the request
// id; their text never reaches the client.
func fail(c *gin.Context, log *slog.Logger, err error) {
	e, known := toError(err)
	if !known || e.Status >= 500 {
		log.ErrorContext(c.Request.Context(), "request failed",
			"route", c.FullPath(), "method", c.Request.Method, "request_id", c.GetString(ctxRequestID), "err", err)
	}
	if e.RetryAfter > 0 {
		c.Header("Retry-After", strconv.Itoa(int((e.RetryAfter+time.Second-1)/time.Second)))
	}
	if e.Status == http.StatusServiceUnavailable && c.Writer.Header().Get("Retry-After") == "" {
		c.Header("Retry-After", "5")
	}
	if e.Status == http.StatusUnauthorized && e.Code == codeUnauthorized {
		// Only missing or bad credentials ask for new ones: a wrong MFA
		// code (401 invalid_code) came with credentials that were fine.
		c.Header("WWW-Authenticate", `Bearer realm="mfaflow"`)
	}
	c.Writer.Header().Add("Vary", "Accept-Language")
	c.AbortWithStatusJSON(e.Status, gin.H{"error": errorBody(c, e)})
}
