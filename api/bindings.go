package api

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"

	"github.com/gin-gonic/gin"
	"go.temporal.io/api/serviceerror"

	"github.com/mfaflow/mfaflow/mfa"
	"github.com/mfaflow/mfaflow/workflows"
)

// errBindingNotFound answers a binding id that is not the account's
// latest binding.
func errBindingNotFound() error {
	return errorf(http.StatusNotFound, "binding_not_found", "no such binding in progress")
}

// bindingState reads the state of the account's binding bid (the latest
// run of the account's BindDevice workflow, running or closed). It returns
// binding_not_found for another binding's id, or another account's.
func (s *Server) bindingState(ctx context.Context, accountID, bid string) (workflows.BindingState, error) {
	st, err := runQuery[workflows.BindingState](ctx, s.deps.Temporal, workflows.BindWorkflowID(accountID), workflows.QueryBindingStatus)
	if err != nil {
		return st, bindingError(err)
	}
	if st.BindingID != bid || st.AccountID != accountID {
		return st, errBindingNotFound()
	}
	return st, nil
}

// handleGetBinding answers a binding's state, so that a console page can
// resume a binding it started. While the binding waits for the app's codes
// the answer carries the key and otpauth URI again, as the SMS step did;
// while it waits for a security key, the creation options.
func (s *Server) handleGetBinding() gin.HandlerFunc {
	return func(c *gin.Context) {
		accountID, bid, err := bindingParams(c)
		if err != nil {
			fail(c, s.log, err)
			return
		}
		st, err := s.bindingState(c.Request.Context(), accountID, bid)
		if err != nil {
			fail(c, s.log, err)
			return
		}
		body := gin.H{"binding_id": st.BindingID, "status": st.Status, "device_type": st.DeviceType, "expires_at": st.ExpiresAt.UTC()}
		switch st.Status {
		case workflows.BindingAwaitingWebAuthn:
			body["creation_options"] = json.RawMessage(st.CreationOptions)
		case workflows.BindingAwaitingDeviceCodes:
			secret, uri, err := s.pendingSecret(c.Request.Context(), st)
			if err != nil {
				fail(c, s.log, err)
				return
			}
			body["secret"], body["otpauth_uri"] = mfa.EncodeSecret(secret), uri
			body["qr_url"] = c.Request.URL.Path + "/qr.png"
		}
		c.JSON(http.StatusOK, body)
	}
}

// handleCancelBinding cancels a pending binding: the workflow removes the
// pending device (or releases the card) as on expiry and audits the
// binding as cancelled. A binding that already ended answers its state
// (cancelling twice is the same as once); a bound one answers 409.
func (s *Server) handleCancelBinding() gin.HandlerFunc {
	return func(c *gin.Context) {
		accountID, bid, err := bindingParams(c)
		if err != nil {
			fail(c, s.log, err)
			return
		}
		ctx := c.Request.Context()
		st, err := s.bindingState(ctx, accountID, bid)
		if err != nil {
			fail(c, s.log, err)
			return
		}
		if !bindingEnded(st.Status) {
			st, err = runUpdate[workflows.BindingState](ctx, s.deps.Temporal, workflows.BindWorkflowID(accountID), workflows.UpdateCancelBinding,
				workflows.BindCancelInput{BindingID: bid})
			var nf *serviceerror.NotFound
			if errors.As(err, &nf) {
				// The binding ended meanwhile (bound, expired): answer its end.
				st, err = s.bindingState(ctx, accountID, bid)
			}
			if err != nil {
				fail(c, s.log, bindingErrorOrNil(err))
				return
			}
		}
		if st.Status == workflows.BindingBound {
			fail(c, s.log, errorf(http.StatusConflict, "wrong_state", "the binding is not at this step"))
			return
		}
		c.JSON(http.StatusOK, gin.H{"binding_id": st.BindingID, "status": st.Status, "device_type": st.DeviceType, "expires_at": st.ExpiresAt.UTC()})
	}
}

// bindingEnded reports whether a binding status is final.
func bindingEnded(status string) bool {
	switch status {
	case workflows.BindingBound, workflows.BindingExpired, workflows.BindingFailed, workflows.BindingCancelled:
		return true
	}
	return false
}
