// Package activities holds the Temporal activities of mfaflow's workflows.
// Activities are methods on Activities, which holds the clients; every
// activity is idempotent, and business failures are non-retryable
// application errors with the type names below.
package activities

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.temporal.io/sdk/temporal"

	"github.com/mfaflow/mfaflow/mfa"
	"github.com/mfaflow/mfaflow/notify"
	"github.com/mfaflow/mfaflow/store"
)

// Application error types of non-retryable business failures.
const (
	ErrTypeRejected = "Rejected" // a receiver refused the message for good
)

// Activities holds what the activities talk to.
type Activities struct {
	Store    store.Store
	Notifier notify.Notifier
	// Keys seals device secrets and derives the SMS code hash key.
	Keys *mfa.Keyring
	// Policy is the progressive lock of the accounts' failure budgets.
	Policy mfa.LockPolicy
	// MaxDevices is the most active devices an account may have; 0 means
	// DefaultMaxDevices.
	MaxDevices int
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Issuer names the service in authenticator apps (otpauth issuer);
	// empty means DefaultIssuer.
	Issuer string
	// Blobs holds appeal documents (a *blob.Store); DeleteObjects and
	// DeleteDocuments delete from it.
	Blobs DocumentStore
	// LeadEmail receives review-SLA escalations; empty means
	// DefaultLeadEmail.
	LeadEmail string
	// WebAuthn is the relying party for binding security keys; nil refuses
	// WebAuthn bindings.
	WebAuthn *mfa.WebAuthn
}

// DocumentStore is what the appeal activities need of the object store.
// *blob.Store satisfies it; deleting a missing key is not an error.
type DocumentStore interface {
	Delete(ctx context.Context, key string) error
}

// Defaults of Activities' zero fields.
const (
	DefaultMaxDevices = 8
	DefaultIssuer     = "mfaflow"
	DefaultLeadEmail  = "review-leads@mfaflow.local"
)

func (a *Activities) now() time.Time {
	if a.Now != nil {
		return a.Now()
	}
	return time.Now()
}

func (a *Activities) maxDevices() int {
	if a.MaxDevices > 0 {
		return a.MaxDevices
	}
	return DefaultMaxDevices
}

func (a *Activities) leadEmail() string {
	if a.LeadEmail != "" {
		return a.LeadEmail
	}
	return DefaultLeadEmail
}

// issuer returns Issuer or DefaultIssuer. (Exported methods of Activities
// are registered as activities, so helpers stay unexported.)
func (a *Activities) issuer() string {
	if a.Issuer != "" {
		return a.Issuer
	}
	return DefaultIssuer
}

// Notify hands m to the notifier. The caller sets m.ID so that a retried
// activity delivers at most one message per receiver. A refused message is a
// non-retryable failure; an unreachable notifier is retried.
func (a *Activities) Notify(ctx context.Context, m notify.Message) error {
	if m.ID == "" {
		return temporal.NewNonRetryableApplicationError("notify: message id required", ErrTypeRejected, nil)
	}
	err := a.Notifier.Notify(ctx, m)
	if errors.Is(err, notify.ErrRejected) {
		return temporal.NewNonRetryableApplicationError("notify: rejected", ErrTypeRejected, err)
	}
	if err != nil {
		return fmt.Errorf("notify %s: %w", m.Channel, err)
	}
	return nil
}

// Audit appends e to the audit log.
func (a *Activities) Audit(ctx context.Context, e store.AuditEntry) error {
	if _, err := a.Store.AppendAudit(ctx, e); err != nil {
		return fmt.Errorf("audit %s: %w", e.Action, err)
	}
	return nil
}
