package activities

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"unicode"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/temporal"

	"github.com/mfaflow/mfaflow/i18n"
	"github.com/mfaflow/mfaflow/mfa"
	"github.com/mfaflow/mfaflow/notify"
	"github.com/mfaflow/mfaflow/store"
	"github.com/mfaflow/mfaflow/workflows"
)

// Appeal notification kinds, derived-key label and the error type of a
// missing document store.
const (
	KindAppealNotice   = "appeal_notice"
	KindAppealUnbound  = "appeal_unbound"
	KindAppealSLA      = "appeal_sla_breached"
	KindRevokeSessions = "revoke_sessions"
	// OwnerCancelKeyLabel labels the key (Keyring.DeriveKey) of the owner's
	// cancel tokens.
	OwnerCancelKeyLabel = "appeal-owner-cancel"
	// ErrTypeNoDocumentStore means Activities.Blobs is not set.
	ErrTypeNoDocumentStore = "NoDocumentStore"
)

// OwnerCancelToken returns the token of the cancel link sent to the
// account's old channels: keys.LinkToken(OwnerCancelKeyLabel, appealID),
// the id of the current key followed by an HMAC-SHA256 of the appeal id. It
// is deterministic, so a retried notice carries the same link. The key id
// lets CheckOwnerCancelToken verify a link sent before a key rotation
// while its key stays in the ring. It is "" for an empty ring.
func OwnerCancelToken(keys *mfa.Keyring, appealID string) string {
	return keys.LinkToken(OwnerCancelKeyLabel, []byte(appealID))
}

// CheckOwnerCancelToken reports, in constant time, whether token is the
// owner's cancel token of appealID made with any key of the ring, the
// current one or an older one. A token without a key id (sent before
// tokens carried one) is checked against every key. It is false for an
// empty key ring.
func CheckOwnerCancelToken(keys *mfa.Keyring, appealID, token string) bool {
	_, ok := keys.CheckLinkToken(OwnerCancelKeyLabel, []byte(appealID), token)
	return ok
}

// OwnerCancelURL returns the owner's cancel link under publicURL.
func OwnerCancelURL(keys *mfa.Keyring, publicURL, appealID string) string {
	return strings.TrimRight(publicURL, "/") + "/appeals/" + url.PathEscape(appealID) +
		"/owner-cancel?token=" + OwnerCancelToken(keys, appealID)
}

// appealObjectPrefix is where an appeal's documents live in object storage.
func appealObjectPrefix(appealID string) string { return "appeals/" + appealID + "/" }

// same compares two normalized values in constant time (over their hashes,
// so their lengths do not show). An empty record never matches.
func same(input, record string) bool {
	if record == "" {
		return false
	}
	a, b := sha256.Sum256([]byte(input)), sha256.Sum256([]byte(record))
	return subtle.ConstantTimeCompare(a[:], b[:]) == 1
}

// normPhone keeps the digits of a phone number and drops the Chinese
// country code, so "+86 138-0013-8000" and "13800138000" compare equal.
func normPhone(s string) string {
	var b strings.Builder
	for _, r := range s {
		if r >= '0' && r <= '9' {
			b.WriteRune(r)
		}
	}
	d := b.String()
	switch {
	case strings.HasPrefix(d, "0086") && len(d) == 15:
		d = d[4:]
	case strings.HasPrefix(d, "86") && len(d) == 13:
		d = d[2:]
	}
	return d
}

// normText collapses white space; names and company names compare on it.
func normText(s string) string { return strings.Join(strings.Fields(s), " ") }

// normCode upper-cases an ID number or registration code and drops spaces
// (the final check character of a Chinese ID number may be x or X).
func normCode(s string) string {
	return strings.ToUpper(strings.Map(func(r rune) rune {
		if unicode.IsSpace(r) {
			return -1
		}
		return r
	}, s))
}

// CheckEligibility decides whether an unbind appeal may be filed (SPEC §1):
// the account exists and completed real-name verification, the bound
// phone and login match, the applicant's name and ID number (personal) or
// the company name and registration number of an enterprise account
// (enterprise) match the record, and the account has an active virtual or
// hardware MFA device. It fails with ErrTypeRealNameNotVerified,
// ErrTypeIdentityMismatch (never saying which field) or ErrTypeNoMFABound;
// store outages are retried. Every identity field is compared, in constant
// time, whatever the others gave.
func (a *Activities) CheckEligibility(ctx context.Context, in workflows.CheckEligibilityInput) error {
	acct, err := a.Store.GetAccount(ctx, in.AccountID)
	if errors.Is(err, store.ErrNotFound) || (err == nil && !acct.RealName.Verified) {
		return businessErr("appeal: the account has not completed real-name verification, so its MFA device cannot be unbound by appeal",
			workflows.ErrTypeRealNameNotVerified, nil)
	}
	if err != nil {
		return fmt.Errorf("check eligibility: %w", err)
	}
	ap := in.Applicant
	ok := same(normPhone(ap.BoundPhone), normPhone(acct.BoundPhone))
	login := false
	for _, l := range acct.Logins {
		id, rec := normText(ap.LoginID), normText(l.ID)
		if l.Kind == store.LoginEmail {
			id, rec = strings.ToLower(id), strings.ToLower(rec)
		}
		if same(id, rec) && string(l.Kind) == ap.LoginKind {
			login = true
		}
	}
	ok = ok && login
	switch in.ApplicantType {
	case workflows.ApplicantPersonal:
		name := same(normText(ap.Name), normText(acct.RealName.Name))
		id := same(normCode(ap.IDNumber), normCode(acct.RealName.IDNumber))
		ok = ok && name && id
	case workflows.ApplicantEnterprise:
		name := same(normText(ap.CompanyName), normText(acct.Company.Name))
		reg := same(normCode(ap.CompanyRegNumber), normCode(acct.Company.RegNumber))
		ok = ok && name && reg && acct.Type == store.Enterprise
	default:
		ok = false
	}
	if !ok {
		return businessErr("appeal: the details do not match the account's records", workflows.ErrTypeIdentityMismatch, nil)
	}
	ds, err := a.Store.ListDevices(ctx, in.AccountID)
	if err != nil {
		return fmt.Errorf("check eligibility: %w", err)
	}
	if !slices.ContainsFunc(ds, func(d store.Device) bool { return d.Status == store.DeviceActive && mfaDevice(d) }) {
		return businessErr("appeal: the account has no MFA device bound", workflows.ErrTypeNoMFABound, nil)
	}
	return nil
}

// mfaDevice reports whether d is an MFA device an appeal unbinds (not the
// platform's security-center token).
func mfaDevice(d store.Device) bool { return d.Type.MFA() }

// SetAppealStatus mirrors the workflow's status to the store's appeal row.
// An appeal the store does not know (the API records it before starting
// the workflow) is left alone. Store outages are retried.
func (a *Activities) SetAppealStatus(ctx context.Context, in workflows.SetAppealStatusInput) error {
	err := a.Store.SetAppealStatus(ctx, in.AppealID, in.Status, in.Closed, in.At)
	if errors.Is(err, store.ErrNotFound) {
		a.warn(ctx, "appeal not in the store; status not mirrored", "appeal_id", in.AppealID, "status", in.Status)
		return nil
	}
	if err != nil {
		return fmt.Errorf("set appeal status: %w", err)
	}
	return nil
}

// appealAudit returns the appeal's audit entries with action, newest first.
func (a *Activities) appealAudit(ctx context.Context, accountID, appealID, action string) ([]store.AuditEntry, error) {
	entries, err := a.Store.ListAudit(ctx, store.AuditFilter{AccountID: accountID, Subject: appealID, Limit: 1000})
	if err != nil {
		return nil, fmt.Errorf("list audit: %w", err)
	}
	var out []store.AuditEntry
	for _, e := range entries {
		if e.Action == action {
			out = append(out, e)
		}
	}
	return out, nil
}

// AuditAppeal appends an audit entry of the appeal (subject: the appeal
// id) once per in.Key: a retry finds the entry and writes no second one.
func (a *Activities) AuditAppeal(ctx context.Context, in workflows.AppealAuditInput) error {
	entries, err := a.appealAudit(ctx, in.AccountID, in.AppealID, in.Action)
	if err != nil {
		return fmt.Errorf("audit appeal: %w", err)
	}
	for _, e := range entries {
		if e.Details["key"] == in.Key {
			return nil
		}
	}
	details := map[string]string{"key": in.Key}
	for k, v := range in.Details {
		details[k] = v
	}
	if _, err := a.Store.AppendAudit(ctx, store.AuditEntry{
		Actor: actor(in.Actor), Action: in.Action, Outcome: in.Outcome, AccountID: in.AccountID,
		Subject: in.AppealID, RemoteIP: in.RemoteIP, Details: details,
	}); err != nil {
		return fmt.Errorf("audit appeal: %w", err)
	}
	return nil
}

// notifyOwner sends the message msg (catalog "msg.<msg>.sms" and
// ".email") to the account's bound phone and e-mail, in the account's
// language and time zone; fill gives the template data for that reader.
// Message IDs are "<id>-sms" and "<id>-email" so receivers drop repeats. A
// receiver refusing a message for good is logged; other failures are
// returned for a retry.
func (a *Activities) notifyOwner(ctx context.Context, accountID, id, kind, msg string, fill func(notify.Text) map[string]any, data map[string]string) error {
	acct, err := a.Store.GetAccount(ctx, accountID)
	if errors.Is(err, store.ErrNotFound) {
		a.warn(ctx, "appeal notice: account not in the directory", "account_id", accountID)
		return nil
	}
	if err != nil {
		return fmt.Errorf("notify owner: %w", err)
	}
	tx := notify.TextFor(acct, a.issuer())
	var vars map[string]any
	if fill != nil {
		vars = fill(tx)
	}
	for _, m := range []notify.Message{
		{ID: id + "-sms", Channel: notify.SMS, To: acct.BoundPhone, Kind: kind, Body: tx.SMS(msg, vars), Data: data},
		{ID: id + "-email", Channel: notify.Email, To: acct.Email, Kind: kind, Body: tx.Email(msg, vars), Data: data},
	} {
		if m.To == "" {
			continue
		}
		if err := a.Notify(ctx, m); err != nil {
			if !errors.Is(err, notify.ErrRejected) {
				return err
			}
			a.warn(ctx, "appeal notice refused", "channel", m.Channel, "kind", kind)
		}
	}
	return nil
}

// NotifyAppealOwner tells the account's old channels (bound phone and
// e-mail) about the appeal, in the account's language and time zone: filed
// and approved notices carry the owner's cancel link, the short one
// (OwnerCancelShortURL) in the SMS and the full one (OwnerCancelURL) in the
// e-mail. Message IDs are "appeal-<id>-<event>-sms|email", so a retry sends
// the same messages.
func (a *Activities) NotifyAppealOwner(ctx context.Context, in workflows.AppealNoticeInput) error {
	var msg string
	switch in.Event {
	case workflows.AppealEventFiled, workflows.AppealEventApproved:
		msg = "appeal_filed"
		if in.Event == workflows.AppealEventApproved {
			msg = "appeal_approved"
		}
		return a.notifyOwnerLinks(ctx, in, msg)
	case workflows.AppealEventRejected:
		msg = "appeal_rejected"
	case workflows.AppealEventCancelled:
		msg = "appeal_cancelled"
	case workflows.AppealEventDeviceUsed:
		msg = "appeal_device_used"
	case workflows.AppealEventUnbound:
		return a.notifyOwner(ctx, in.AccountID, "appeal-"+in.AppealID+"-unbound", KindAppealUnbound, "appeal_unbound", nil,
			map[string]string{"appeal_id": in.AppealID})
	default:
		return businessErr("appeal: unknown notice", workflows.ErrTypeInvalidInput, nil)
	}
	return a.notifyOwner(ctx, in.AccountID, "appeal-"+in.AppealID+"-"+in.Event, KindAppealNotice, msg, nil,
		map[string]string{"appeal_id": in.AppealID, "event": in.Event})
}

// notifyOwnerLinks is notifyOwner for the notices with the cancel link,
// whose SMS and e-mail carry different links.
func (a *Activities) notifyOwnerLinks(ctx context.Context, in workflows.AppealNoticeInput, msg string) error {
	short, long := OwnerCancelShortURL(a.Keys, in.PublicURL, in.AppealID), OwnerCancelURL(a.Keys, in.PublicURL, in.AppealID)
	return a.notifyOwner(ctx, in.AccountID, "appeal-"+in.AppealID+"-"+in.Event, KindAppealNotice, msg,
		func(tx notify.Text) map[string]any {
			return map[string]any{"Time": tx.Time(in.UnbindAt), "Link": long, "ShortLink": short}
		},
		map[string]string{"appeal_id": in.AppealID, "event": in.Event})
}

// NotifyLead e-mails the review leads (LeadEmail) that the appeal missed
// its review SLA, in zh-CN and Asia/Shanghai (the leads have no directory
// entry). The message holds no PII.
func (a *Activities) NotifyLead(ctx context.Context, in workflows.NotifyLeadInput) error {
	tx := notify.Text{Lang: i18n.ZH, Product: a.issuer()}
	body := tx.Email("appeal_sla", map[string]any{
		"AppealID": in.AppealID, "Type": tx.ApplicantType(in.ApplicantType), "Time": tx.Time(in.SubmittedAt),
		"Status": tx.Status(in.Status), "SLA": tx.Hours(in.ReviewSLA),
	})
	return a.Notify(ctx, notify.Message{
		ID: "appeal-sla-" + in.AppealID, Channel: notify.Email, To: a.leadEmail(), Kind: KindAppealSLA, Body: body,
		Data: map[string]string{"appeal_id": in.AppealID, "status": in.Status},
	})
}

// deleteKeys deletes the keys under the appeal's prefix (others are
// skipped: they are not the appeal's) and returns how many it deleted.
func (a *Activities) deleteKeys(ctx context.Context, appealID string, keys []string) (int, error) {
	if a.Blobs == nil {
		return 0, businessErr("appeal: no document store configured", ErrTypeNoDocumentStore, nil)
	}
	prefix := appealObjectPrefix(appealID)
	n := 0
	for _, k := range keys {
		if !strings.HasPrefix(k, prefix) || strings.Contains(k, "..") {
			a.warn(ctx, "object key outside the appeal skipped", "appeal_id", appealID)
			continue
		}
		if err := a.Blobs.Delete(ctx, k); err != nil {
			return n, fmt.Errorf("delete document: %w", err)
		}
		n++
	}
	return n, nil
}

// DeleteObjects deletes replaced uploads of the appeal. Deleting a missing
// object is not an error, so a retry is harmless.
func (a *Activities) DeleteObjects(ctx context.Context, in workflows.DeleteObjectsInput) error {
	_, err := a.deleteKeys(ctx, in.AppealID, in.Keys)
	return err
}

// keyLister is implemented by *blob.Store: DeleteDocuments also deletes
// uploads the workflow never recorded (an API crash between upload and
// update).
type keyLister interface {
	Keys(ctx context.Context, prefix string) ([]string, error)
}

// DeleteDocuments deletes every document the appeal held, and anything
// else under its prefix, at the end of the retention period, then audits
// the deletion once (AuditAppealDocumentsDeleted, with the count and the
// SHA-256 of the recorded documents, never their bytes). A retry after
// the audit changes nothing. It fails with ErrTypeNoDocumentStore when
// Blobs is not set; object store outages are retried.
func (a *Activities) DeleteDocuments(ctx context.Context, in workflows.DeleteDocumentsInput) (workflows.DeleteDocumentsResult, error) {
	var out workflows.DeleteDocumentsResult
	done, err := a.appealAudit(ctx, in.AccountID, in.AppealID, workflows.AuditAppealDocumentsDeleted)
	if err != nil {
		return out, err
	}
	if len(done) > 0 {
		out.Deleted, _ = strconv.Atoi(done[0].Details["count"])
		return out, nil
	}
	var keys, hashes []string
	for _, d := range in.Documents {
		if !slices.Contains(keys, d.ObjectKey) {
			keys = append(keys, d.ObjectKey)
		}
		if !slices.Contains(hashes, d.SHA256) {
			hashes = append(hashes, d.SHA256)
		}
	}
	if l, ok := a.Blobs.(keyLister); ok {
		listed, err := l.Keys(ctx, appealObjectPrefix(in.AppealID))
		if err != nil {
			return out, fmt.Errorf("delete documents: %w", err)
		}
		for _, k := range listed {
			if !slices.Contains(keys, k) {
				keys = append(keys, k)
			}
		}
	}
	slices.Sort(keys)
	slices.Sort(hashes)
	if out.Deleted, err = a.deleteKeys(ctx, in.AppealID, keys); err != nil {
		return out, err
	}
	if _, err := a.Store.AppendAudit(ctx, store.AuditEntry{
		Actor: "system", Action: workflows.AuditAppealDocumentsDeleted, Outcome: "ok", AccountID: in.AccountID, Subject: in.AppealID,
		Details: map[string]string{"count": strconv.Itoa(out.Deleted), "sha256": strings.Join(hashes, ",")},
	}); err != nil {
		return out, fmt.Errorf("delete documents: audit: %w", err)
	}
	return out, nil
}

// UnbindAll unbinds the account after an approved appeal in one store
// transaction (store.Unbinder): every MFA device not yet revoked is revoked
// (the security-center token stays) and its card returned to the
// inventory, the recovery codes cleared, the failure budget reset,
// protection turned off, the appeal's row closed as unbound and
// AuditAppealUnbind appended. Once it commits the appeal is unbound; a
// retry changes nothing and answers the same devices, so an appeal unbinds
// at most once. With in.EffectsApart the workflow revokes the console
// sessions and tells the owner afterwards; without it (histories from
// before) this does both, and a console refusing the webhook is reported,
// never a failure: the devices are gone already. Store failures are
// retried.
func (a *Activities) UnbindAll(ctx context.Context, in workflows.UnbindAllInput) (workflows.UnbindAllResult, error) {
	var out workflows.UnbindAllResult
	ids, err := a.Store.UnbindAccount(ctx, store.UnbindRequest{AccountID: in.AccountID, AppealID: in.AppealID, Status: workflows.AppealUnbound,
		At: a.now(), Audit: store.AuditEntry{Actor: "system", Action: workflows.AuditAppealUnbind, Outcome: "ok"}})
	if err != nil {
		return out, fmt.Errorf("unbind: %w", err)
	}
	out.DeviceIDs = ids
	if in.EffectsApart {
		return out, nil
	}
	if err := a.RevokeSessions(ctx, workflows.RevokeSessionsInput{AppealID: in.AppealID, AccountID: in.AccountID}); err != nil {
		return out, err
	}
	if err := a.notifyOwner(ctx, in.AccountID, "appeal-"+in.AppealID+"-unbound", KindAppealUnbound, "appeal_unbound", nil,
		map[string]string{"appeal_id": in.AppealID}); err != nil {
		return out, err
	}
	return out, nil
}

// RevokeSessions asks the console to sign out every session of the account
// whose devices an appeal unbound (message "revoke-<appeal>", so a retry
// is dropped by the receiver). An unreachable console is retried with
// backoff; a console that refuses the message for good is an alert, logged
// and audited as appeal.revoke_sessions "failed", and not an error: the
// unbind stands and nothing waits on this.
func (a *Activities) RevokeSessions(ctx context.Context, in workflows.RevokeSessionsInput) error {
	err := a.Notify(ctx, notify.Message{
		ID: "revoke-" + in.AppealID, Channel: notify.Console, To: in.AccountID, Kind: KindRevokeSessions,
		Body: "Revoke every session of the account: its MFA devices were unbound by an appeal.",
		Data: map[string]string{"account_id": in.AccountID, "appeal_id": in.AppealID},
	})
	var appErr *temporal.ApplicationError
	if !errors.As(err, &appErr) || appErr.Type() != ErrTypeRejected {
		return err
	}
	if activity.IsActivity(ctx) {
		activity.GetLogger(ctx).Error("ALERT: the console refused to revoke the sessions of an unbound account; revoke them by hand",
			"appeal_id", in.AppealID, "account_id", in.AccountID)
	}
	if _, aerr := a.Store.AppendAudit(ctx, store.AuditEntry{Actor: "system", Action: "appeal.revoke_sessions", Outcome: "failed",
		AccountID: in.AccountID, Subject: in.AppealID, Details: map[string]string{"reason": "console_refused"}}); aerr != nil {
		return fmt.Errorf("revoke sessions: audit: %w", aerr)
	}
	return nil
}
