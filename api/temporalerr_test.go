package api

import (
	"errors"
	"fmt"
	"net/http"
	"testing"

	"go.temporal.io/api/serviceerror"
)

// TestTransientTemporalErrorsAre503: what a Temporal frontend answers for a
// moment while it starts or is loaded must be "try again" (503), never a
// 500; a missing workflow stays a 404.
func TestTransientTemporalErrorsAre503(t *testing.T) {
	for _, err := range []error{
		serviceerror.NewNamespaceNotFound("default"),
		serviceerror.NewNamespaceUnavailable("default"),
		serviceerror.NewResourceExhausted(0, "rps"),
		serviceerror.NewUnavailable("frontend"),
		serviceerror.NewDeadlineExceeded("slow"),
		serviceerror.NewWorkflowNotReady("no worker"),
		serviceerror.NewCanceled("gone"),
	} {
		for _, wrapped := range []error{err, fmt.Errorf("start: %w", err)} {
			var e *Error
			if !errors.As(bindingError(wrapped), &e) || e.Status != http.StatusServiceUnavailable || e.Code != "unavailable" {
				t.Errorf("%T: answered %v, want 503 unavailable", err, bindingError(wrapped))
			}
			if !errors.As(appealError(wrapped), &e) || e.Status != http.StatusServiceUnavailable {
				t.Errorf("%T through appealError: answered %v, want 503", err, appealError(wrapped))
			}
		}
	}
	var e *Error
	if !errors.As(bindingError(serviceerror.NewNotFound("workflow")), &e) || e.Status != http.StatusNotFound {
		t.Errorf("a missing workflow = %v, want 404", bindingError(serviceerror.NewNotFound("workflow")))
	}
}
