package api

import (
	"context"
	"errors"
	mrand "math/rand/v2"
	"net/http"
	"strconv"
	"time"

	"github.com/gin-gonic/gin"
	"go.temporal.io/sdk/temporal"

	"github.com/mfaflow/mfaflow/notify"
	"github.com/mfaflow/mfaflow/store"
	"github.com/mfaflow/mfaflow/workflows"
)

// The limits on filing an appeal (POST /v1/appeals). A stranger who knows
// an account id must not be able to spend its owner's quota, so filings
// are counted in three kinds of bucket:
//
//   - every filing from a client IP, before anything is read
//     (filingIPKey, PerIPPerHour an hour);
//   - filings the eligibility check refused, per client IP
//     (refusedIPKey, RefusedPerIPPerHour an hour): an address past it gets
//     429 before the check runs, which bounds how fast one address can try
//     names and ID numbers against an account's record;
//   - filings that passed the eligibility check, per account
//     (eligibleAccountKey, PerAccountPerDay a day): only the owner, or
//     someone holding the owner's details, can spend it. It is peeked
//     before the check and counted after a 201.
//
// There is deliberately no per-account limit on refused filings: checked
// before eligibility, it would refuse the owner too, and a stranger
// spraying from a handful of addresses could keep it full for ever.
// Refused filings for an account are counted (refusedAccountKey, a day)
// only to tell its owner, once a day, after refusedAlertAfter of them.
const (
	filingIPWindow      = time.Hour
	filingAccountWindow = 24 * time.Hour
	// refusedAlertAfter is how many identity refusals for one account in a
	// day make its owner be told.
	refusedAlertAfter = 3
)

// appealFiling is the status of an appeal row while its filing's
// eligibility is checked: the row holds the account's one open-appeal slot
// until the workflow answers, and a refused filing closes it at once.
const appealFiling = "filing"

// filingWait bounds how long a filing waits for other filings of the same
// account that are being checked.
const filingWait = 10 * time.Second

// Rate-limit keys: account ids and client IPs only.
func filingIPKey(ip string) string        { return "appeal-create:ip:" + ip }
func refusedIPKey(ip string) string       { return "appeal-refused:ip:" + ip }
func eligibleAccountKey(id string) string { return "appeal-eligible:account:" + id }
func refusedAccountKey(id string) string  { return "appeal-refused:account:" + id }
func refusedAlertKey(id string) string    { return "appeal-refused-alert:account:" + id }

// filingLimits are the configured limits, a default for each one not set.
func (c AppealConfig) filingLimits() (perIP, refusedPerIP, perAccount int) {
	or := func(n, def int) int {
		if n > 0 {
			return n
		}
		return def
	}
	return or(c.PerIPPerHour, 20), or(c.RefusedPerIPPerHour, 10), or(c.PerAccountPerDay, 5)
}

func tooManyFilings(msg string, retry time.Duration) error {
	e := errorf(http.StatusTooManyRequests, "rate_limited", "%s", msg)
	e.RetryAfter = retry
	return e
}

// checkFilingIP counts the filing for the client IP and refuses it past
// the IP's hourly limit, or when the IP is past its limit of refused
// filings (429 with Retry-After).
func (s *Server) checkFilingIP(c *gin.Context) error {
	perIP, refusedPerIP, _ := s.deps.Appeals.filingLimits()
	ctx, now, ip := c.Request.Context(), s.deps.Now(), c.ClientIP()
	ok, retry, err := s.deps.Store.Hit(ctx, filingIPKey(ip), filingIPWindow, perIP, now)
	if err != nil {
		return err
	}
	if !ok {
		return tooManyFilings("too many appeals filed from this address; try again later", retry)
	}
	ok, retry, err = s.deps.Store.Peek(ctx, refusedIPKey(ip), filingIPWindow, refusedPerIP, now)
	if err != nil {
		return err
	}
	if !ok {
		return tooManyFilings("too many refused appeals from this address; try again later", retry)
	}
	return nil
}

// checkFilingAccount refuses the filing when the account has used its
// daily quota of filings that passed eligibility. It counts nothing.
func (s *Server) checkFilingAccount(c *gin.Context, accountID string) error {
	_, _, perAccount := s.deps.Appeals.filingLimits()
	ok, retry, err := s.deps.Store.Peek(c.Request.Context(), eligibleAccountKey(accountID), filingAccountWindow, perAccount, s.deps.Now())
	if err != nil {
		return err
	}
	if !ok {
		return tooManyFilings("this account has filed too many appeals today; try again later", retry)
	}
	return nil
}

// filingPassed counts a filing that passed eligibility in the account's
// quota. A failure is logged: the appeal is filed, and answering an error
// now would hide its access token.
func (s *Server) filingPassed(c *gin.Context, accountID string) {
	_, _, perAccount := s.deps.Appeals.filingLimits()
	ctx := context.WithoutCancel(c.Request.Context())
	if _, _, err := s.deps.Store.Hit(ctx, eligibleAccountKey(accountID), filingAccountWindow, perAccount, s.deps.Now()); err != nil {
		s.log.WarnContext(ctx, "appeal filing: counting an eligible filing failed", "account_id", accountID, "err", err)
	}
}

// refusalType returns the eligibility refusal carried by the workflow's
// answer (workflows.ErrTypeIdentityMismatch and the like), or "".
func refusalType(err error) string {
	var app *temporal.ApplicationError
	if !errors.As(err, &app) {
		return ""
	}
	switch t := app.Type(); t {
	case workflows.ErrTypeIdentityMismatch, workflows.ErrTypeRealNameNotVerified, workflows.ErrTypeNoMFABound:
		return t
	}
	return ""
}

// filingRefused counts a filing the eligibility check refused. Every
// refusal counts for the client IP: each is an answer about an account's
// record. Only identity mismatches count for the account, towards telling
// its owner: the other refusals depend on the account alone, not on what
// the filer knows. Failures are logged; the refusal stands.
func (s *Server) filingRefused(c *gin.Context, accountID, refusal string) {
	_, refusedPerIP, _ := s.deps.Appeals.filingLimits()
	ctx, now := context.WithoutCancel(c.Request.Context()), s.deps.Now()
	if _, _, err := s.deps.Store.Hit(ctx, refusedIPKey(c.ClientIP()), filingIPWindow, refusedPerIP, now); err != nil {
		s.log.WarnContext(ctx, "appeal filing: counting a refused filing failed", "err", err)
	}
	if refusal != workflows.ErrTypeIdentityMismatch {
		return
	}
	// Hit answers "not allowed" from the refusedAlertAfter-th refusal of
	// the day on; the alert bucket, with room for one, lets exactly one of
	// them through however many replicas race.
	under, _, err := s.deps.Store.Hit(ctx, refusedAccountKey(accountID), filingAccountWindow, refusedAlertAfter-1, now)
	if err != nil || under {
		if err != nil {
			s.log.WarnContext(ctx, "appeal filing: counting a refused filing failed", "account_id", accountID, "err", err)
		}
		return
	}
	first, _, err := s.deps.Store.Hit(ctx, refusedAlertKey(accountID), filingAccountWindow, 1, now)
	if err != nil || !first {
		if err != nil {
			s.log.WarnContext(ctx, "appeal filing: the owner alert check failed", "account_id", accountID, "err", err)
		}
		return
	}
	s.alertOwnerOfRefusals(c, accountID, now)
}

// KindAppealAttempts is the kind of the message telling an account's owner
// that appeals for the account were refused for wrong identity details.
const KindAppealAttempts = "appeal_attempts"

// alertOwnerOfRefusals tells the account's bound phone and e-mail that
// someone is filing appeals for it with wrong details, and audits it. The
// message ids name the account and the day (UTC), so a receiver drops a
// repeat.
func (s *Server) alertOwnerOfRefusals(c *gin.Context, accountID string, now time.Time) {
	ctx := context.WithoutCancel(c.Request.Context())
	a, err := s.deps.Store.GetAccount(ctx, accountID)
	if err != nil {
		s.log.WarnContext(ctx, "appeal filing: owner alert: account lookup failed", "account_id", accountID, "err", err)
		return
	}
	day := now.UTC().Format("20060102")
	// In the owner's language and words, as every message to an account.
	text := notify.TextFor(a, s.issuer())
	sent := 0
	if s.deps.Notifier != nil {
		for _, m := range []notify.Message{
			{Channel: notify.SMS, To: a.BoundPhone},
			{Channel: notify.Email, To: a.Email},
		} {
			if m.To == "" {
				continue
			}
			m.ID = "appeal-attempts-" + accountID + "-" + day + "-" + m.Channel
			m.Kind, m.Body = KindAppealAttempts, text.Body(m.Channel, KindAppealAttempts, map[string]any{"Count": refusedAlertAfter})
			if err := s.deps.Notifier.Notify(ctx, m); err != nil {
				s.log.WarnContext(ctx, "appeal filing: owner alert failed", "channel", m.Channel, "err", err)
				continue
			}
			sent++
		}
	}
	outcome := "ok"
	if sent == 0 {
		outcome = "failed"
	}
	s.audit(c, store.AuditEntry{Actor: "system", Action: "appeal.attempts_alert", Outcome: outcome, AccountID: accountID,
		Details: map[string]string{"refused_filings": strconv.Itoa(refusedAlertAfter), "window": "24h", "messages": strconv.Itoa(sent)}})
}

// createAppealRow stores the filing's appeal row. While another filing of
// the account holds the open-appeal slot only because its eligibility is
// being checked (appealFiling), it waits and tries again, for up to
// filingWait: a stranger's refused filings let the slot go within moments,
// and without the wait a spray of them would answer the owner 409 at
// random. An appeal past that step answers 409 appeal_in_progress at once.
// It returns the store's other errors, and the context's.
func (s *Server) createAppealRow(c *gin.Context, a store.Appeal) error {
	ctx := c.Request.Context()
	deadline := time.Now().Add(filingWait)
	for {
		_, err := s.deps.Store.CreateAppeal(ctx, a)
		if !errors.Is(err, store.ErrConflict) {
			return err
		}
		open, err := s.deps.Store.ListAppeals(ctx, "", a.AccountID, 10)
		if err != nil {
			return err
		}
		for _, o := range open {
			if o.ClosedAt.IsZero() && o.Status != appealFiling {
				return errorf(http.StatusConflict, "appeal_in_progress", "an appeal for this account is already open")
			}
		}
		if time.Now().After(deadline) {
			e := errorf(http.StatusConflict, "appeal_in_progress", "another filing for this account is being checked; try again in a few seconds")
			e.RetryAfter = 5 * time.Second
			return e
		}
		t := time.NewTimer(time.Duration(50+mrand.IntN(100)) * time.Millisecond)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
	}
}
