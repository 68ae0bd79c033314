package workflows

import (
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"
)

// Activities of UnbindAppeal, by name: the methods of
// activities.Activities that implement them.
const (
	ActivityCheckEligibility  = "CheckEligibility"
	ActivitySetAppealStatus   = "SetAppealStatus"
	ActivityAuditAppeal       = "AuditAppeal"
	ActivityNotifyAppealOwner = "NotifyAppealOwner"
	ActivityNotifyLead        = "NotifyLead"
	ActivityDeleteObjects     = "DeleteObjects"
	ActivityUnbindAll         = "UnbindAll"
	ActivityDeleteDocuments   = "DeleteDocuments"
	ActivityRevokeSessions    = "RevokeSessions"
)

// RevokeSessionsInput is the argument of RevokeSessions.
type RevokeSessionsInput struct {
	AppealID  string
	AccountID string
}

// Audit actions of the appeal. UnbindAll and DeleteDocuments write theirs
// themselves, exactly once per appeal.
const (
	AuditAppealCreate           = "appeal.create"
	AuditAppealDocument         = "appeal.document"
	AuditAppealSubmit           = "appeal.submit"
	AuditAppealClaim            = "appeal.claim"
	AuditAppealDecide           = "appeal.decide"
	AuditAppealCancel           = "appeal.cancel"
	AuditAppealExpire           = "appeal.expire"
	AuditAppealSLABreached      = "appeal.sla_breached"
	AuditAppealUnbind           = "appeal.unbind"
	AuditAppealDocumentsDeleted = "appeal.documents_deleted"
)

// Events NotifyAppealOwner tells the account's old channels about.
const (
	AppealEventFiled      = "filed"       // with the owner's cancel link
	AppealEventApproved   = "approved"    // cool-down started; with the cancel link and the unbind time
	AppealEventRejected   = "rejected"    //
	AppealEventCancelled  = "cancelled"   // by the applicant or the owner
	AppealEventDeviceUsed = "device_used" // cancelled because the device was used in the cool-down
	AppealEventUnbound    = "unbound"     // the devices were unbound
)

// Who may cancel an appeal (CancelInput.By).
const (
	CancelByApplicant = "applicant"
	CancelByOwner     = "owner"
)

// Defaults of AppealPolicy's zero durations (Cooldown 0 is allowed).
const (
	DefaultDocumentDeadline = 7 * 24 * time.Hour
	DefaultReviewSLA        = 72 * time.Hour
	DefaultRetention        = 90 * 24 * time.Hour
)

// AppealCreateTimeout is how long a started appeal waits for
// UpdateAppealCreate before it ends without having been created.
const AppealCreateTimeout = time.Hour

// MaxReasonLength caps a decision's reason, in bytes.
const MaxReasonLength = 2000

// CheckEligibilityInput is the argument of CheckEligibility.
type CheckEligibilityInput struct {
	AccountID     string
	ApplicantType string
	Applicant     Applicant
}

// SetAppealStatusInput is the argument of SetAppealStatus: it mirrors the
// status to the app store's appeal row.
type SetAppealStatusInput struct {
	AppealID string
	Status   string
	Closed   bool
	At       time.Time
}

// AppealAuditInput is the argument of AuditAppeal. Key is unique within
// the appeal: a retried activity finds its entry and writes no second one.
type AppealAuditInput struct {
	AppealID  string
	AccountID string
	Key       string
	Actor     string
	Action    string
	Outcome   string
	RemoteIP  string
	Details   map[string]string
}

// AppealNoticeInput is the argument of NotifyAppealOwner.
type AppealNoticeInput struct {
	AppealID  string
	AccountID string
	Event     string    // AppealEvent*
	PublicURL string    // base of the cancel link (filed, approved)
	UnbindAt  time.Time // approved: when the devices will be unbound
}

// NotifyLeadInput is the argument of NotifyLead; it holds no PII.
type NotifyLeadInput struct {
	AppealID      string
	ApplicantType string
	Status        string
	SubmittedAt   time.Time
	ReviewSLA     time.Duration
}

// DeleteObjectsInput is the argument of DeleteObjects (replaced uploads).
type DeleteObjectsInput struct {
	AppealID string
	Keys     []string
}

// UnbindAllInput is the argument of UnbindAll.
type UnbindAllInput struct {
	AppealID  string
	AccountID string
	// ApprovedAt is when the cool-down started (kept for histories from
	// before the unbind was one store transaction).
	ApprovedAt time.Time
	// EffectsApart: the workflow revokes the console sessions and tells the
	// owner as effects of their own after the unbind (RevokeSessions,
	// NotifyAppealOwner "unbound"); false in histories from before, where
	// UnbindAll did both itself.
	EffectsApart bool
}

// UnbindAllResult lists the devices the unbind revoked.
type UnbindAllResult struct {
	DeviceIDs []string
}

// DeleteDocumentsInput is the argument of DeleteDocuments: every document
// the appeal ever held (replaced ones included).
type DeleteDocumentsInput struct {
	AppealID  string
	AccountID string
	Documents []Document
}

// DeleteDocumentsResult counts the object keys deleted.
type DeleteDocumentsResult struct {
	Deleted int
}

// Typed search attribute keys of the review queue.
var (
	saAppealStatus  = temporal.NewSearchAttributeKeyKeyword(SearchAppealStatus)
	saApplicantType = temporal.NewSearchAttributeKeyKeyword(SearchApplicantType)
	saSubmittedAt   = temporal.NewSearchAttributeKeyTime(SearchSubmittedAt)
	saAssignee      = temporal.NewSearchAttributeKeyKeyword(SearchAssignee)
	saSLABreached   = temporal.NewSearchAttributeKeyBool(SearchSLABreached)
)

var sha256Hex = regexp.MustCompile(`^[0-9a-f]{64}$`)

// eligibilityErrTypes are CheckEligibility's refusals: they end the appeal.
var eligibilityErrTypes = []string{ErrTypeRealNameNotVerified, ErrTypeIdentityMismatch, ErrTypeNoMFABound}

// AppealClosed reports whether status is final.
func AppealClosed(status string) bool {
	switch status {
	case AppealUnbound, AppealRejected, AppealCancelled, AppealExpired, AppealIneligible:
		return true
	}
	return false
}

// AppealOpen reports whether an appeal in status can still be cancelled.
func AppealOpen(status string) bool {
	switch status {
	case AppealCollecting, AppealPending, AppealInReview, AppealCoolingDown:
		return true
	}
	return false
}

// WithDefaults returns p with its zero durations set to the defaults;
// Cooldown stays as it is (0 means unbind right after approval).
func (p AppealPolicy) WithDefaults() AppealPolicy {
	if p.DocumentDeadline <= 0 {
		p.DocumentDeadline = DefaultDocumentDeadline
	}
	if p.ReviewSLA <= 0 {
		p.ReviewSLA = DefaultReviewSLA
	}
	if p.Retention <= 0 {
		p.Retention = DefaultRetention
	}
	if p.Cooldown < 0 {
		p.Cooldown = 0
	}
	return p
}

// Effect lanes: each runs its effects in order, independently of the others.
const (
	laneStatus  = "status"
	laneAudit   = "audit"
	laneNotices = "notices"
	laneObjects = "objects"
)

var effectLanes = []string{laneStatus, laneAudit, laneNotices, laneObjects}

// effectLane is the lane of an effect's activity.
func effectLane(activity string) string {
	switch activity {
	case ActivitySetAppealStatus:
		return laneStatus
	case ActivityAuditAppeal:
		return laneAudit
	case ActivityDeleteObjects:
		return laneObjects
	}
	return laneNotices // owner notices, lead e-mails, session revocation
}

// effect is an activity run in the background, in order, after the update
// that caused it answered: mirroring the status, audit, notices.
type effect struct {
	activity   string
	arg        any
	bestEffort bool // give up after an hour (the retention deletion catches up)
}

// UnbindAppeal runs a lost-phone unbind appeal (SPEC §1, §6). The workflow
// ID is the appeal id. UpdateAppealCreate (sent with the start) checks
// eligibility; a refused appeal becomes ineligible and ends. Then the
// applicant uploads documents (UpdateAddDocument) and submits
// (UpdateSubmit) before the document deadline, the account's old channels
// get a cancel link, reviewers claim (UpdateClaim) and decide
// (UpdateDecide; four-eyes when the policy says), a review SLA escalates
// to the leads, and an approval waits out the cool-down, in which the
// owner may cancel (UpdateCancel) and any use of the device cancels
// (SignalDeviceUsed), before UnbindAll. A closed appeal keeps its documents
// for the retention period, deletes them and completes. Handlers run one at
// a time; business refusals are the updates' errors (ErrType*), never the
// workflow's. The validators bound the appeal (MaxUploadsPerType,
// MaxAppealUpdates, ReviewReserve) and the updates answer the state's
// Compact form, so the history stays small whoever holds the access token;
// QueryAppeal answers the whole state. It returns the final state.
func UnbindAppeal(ctx workflow.Context, in AppealInput) (AppealState, error) {
	// Answers to updates: an update waits at most a minute.
	ao := workflow.ActivityOptions{
		StartToCloseTimeout:    10 * time.Second,
		ScheduleToCloseTimeout: time.Minute,
		RetryPolicy: &temporal.RetryPolicy{
			InitialInterval:        time.Second,
			BackoffCoefficient:     2,
			MaximumInterval:        10 * time.Second,
			NonRetryableErrorTypes: eligibilityErrTypes,
		},
	}
	// Background work (status mirror, audit, notices, unbind, deletion)
	// retries until the store, notifier or object store come back.
	bo := workflow.ActivityOptions{
		StartToCloseTimeout: 10 * time.Second,
		RetryPolicy: &temporal.RetryPolicy{
			InitialInterval:    time.Second,
			BackoffCoefficient: 2,
			MaximumInterval:    time.Minute,
		},
	}
	withOptions := func(ctx workflow.Context) workflow.Context { return workflow.WithActivityOptions(ctx, ao) }
	ctx = withOptions(ctx)
	background := workflow.WithActivityOptions(ctx, bo)

	logger := workflow.GetLogger(ctx)
	if in.AppealID == "" {
		in.AppealID = workflow.GetInfo(ctx).WorkflowExecution.ID
	}
	policy := in.Policy.WithDefaults()
	st := AppealState{
		AppealID:          in.AppealID,
		AccountID:         in.AccountID,
		ApplicantType:     in.ApplicantType,
		Applicant:         in.Applicant,
		RequiredDocuments: RequiredDocuments(in.ApplicantType),
		Documents:         map[string]Document{},
		ApprovalsNeeded:   1,
		Uploads:           map[string]int{},
	}
	if policy.FourEyes {
		st.ApprovalsNeeded = 2
	}
	// filedAt is when the appeal was filed: the first run's start.
	filedAt := workflow.GetInfo(ctx).WorkflowStartTime
	var (
		mu       = workflow.NewMutex(ctx)
		rev      int        // bumped on every change; the timers wait on it
		refusal  error      // create's refusal, answered again to a repeated create
		held     []Document // every document ever recorded, for the deletion
		filed    bool       // the filed notice was sent
		auditSeq int        // makes audit keys unique within the appeal
		effects  []effect   // run in order by the effects goroutine (histories from before lanes)
		lanes    bool       // effects run in lanes of their own kind (effectLanes)
		laneQ    = map[string][]effect{}
		objPfx   = "appeals/" + in.AppealID + "/"
		noteTime = func(t time.Time) string { return t.UTC().Format("2006-01-02 15:04 UTC") }
		runs     int             // runs of this appeal before this one (continue-as-new)
		sigBusy  bool            // a device-used signal is being handled
		updated  []string        // ids of the updates this appeal completed, earlier runs' included
		earlier  map[string]bool // ids of the updates earlier runs completed
	)
	// A run continued from an earlier one (continue-as-new) takes its state.
	if c := in.Carry; c != nil {
		st, held, filed, auditSeq, filedAt, runs = c.State, c.Held, c.Filed, c.AuditSeq, c.FiledAt, c.Runs
		updated, earlier = c.Updated, map[string]bool{}
		for _, id := range c.Updated {
			earlier[id] = true
		}
		if st.Documents == nil {
			st.Documents = map[string]Document{}
		}
		if st.Uploads == nil {
			st.Uploads = map[string]int{}
		}
		in.Carry = nil
	}

	enqueue := func(e effect) {
		if lanes {
			l := effectLane(e.activity)
			laneQ[l] = append(laneQ[l], e)
			return
		}
		effects = append(effects, e)
	}
	// idle reports whether no effect waits (in the lanes named, or any).
	idle := func(only ...string) bool {
		if len(effects) > 0 {
			return false
		}
		for _, l := range effectLanes {
			if len(laneQ[l]) > 0 && (len(only) == 0 || slices.Contains(only, l)) {
				return false
			}
		}
		return true
	}
	upsert := func(ctx workflow.Context, u ...temporal.SearchAttributeUpdate) {
		if err := workflow.UpsertTypedSearchAttributes(ctx, u...); err != nil {
			logger.Error("appeal search attributes not updated", "appeal_id", in.AppealID, "error", err)
		}
	}
	note := func(ctx workflow.Context, text string) {
		st.Timeline = append(st.Timeline, TimelineEvent{At: workflow.Now(ctx), Status: st.Status, Note: text})
		rev++
	}
	setStatus := func(ctx workflow.Context, status, text string) {
		now := workflow.Now(ctx)
		st.Status = status
		st.Timeline = append(st.Timeline, TimelineEvent{At: now, Status: status, Note: text})
		closed := AppealClosed(status)
		if closed {
			st.ClosedAt = now
		}
		rev++
		upsert(ctx, saAppealStatus.ValueSet(status))
		enqueue(effect{activity: ActivitySetAppealStatus, arg: SetAppealStatusInput{AppealID: in.AppealID, Status: status, Closed: closed, At: now}})
		logger.Info("appeal status", "appeal_id", in.AppealID, "status", status)
	}
	audit := func(actor, action, outcome string, details map[string]string) {
		auditSeq++
		enqueue(effect{activity: ActivityAuditAppeal, arg: AppealAuditInput{
			AppealID: in.AppealID, AccountID: in.AccountID, Key: fmt.Sprintf("%s#%d", action, auditSeq),
			Actor: actor, Action: action, Outcome: outcome, RemoteIP: in.RemoteIP, Details: details,
		}})
	}
	notice := func(event string, unbindAt time.Time) {
		enqueue(effect{activity: ActivityNotifyAppealOwner, arg: AppealNoticeInput{
			AppealID: in.AppealID, AccountID: in.AccountID, Event: event, PublicURL: policy.PublicURL, UnbindAt: unbindAt,
		}})
	}
	applicantActor := "applicant:" + in.AppealID

	// answer turns an activity failure into the update's answer.
	answer := func(err error) error {
		var appErr *temporal.ApplicationError
		if errors.As(err, &appErr) && slices.Contains(eligibilityErrTypes, appErr.Type()) {
			return temporal.NewApplicationError(appErr.Message(), appErr.Type())
		}
		logger.Warn("appeal activity failed", "appeal_id", in.AppealID, "error", err)
		return temporal.NewApplicationError("appeal: temporarily unavailable, try again", ErrTypeUnavailable)
	}
	wrongState := func() error {
		s := st.Status
		if s == "" {
			s = "not created"
		}
		return temporal.NewApplicationError("appeal: not possible now (status "+s+")", ErrTypeAppealWrongState)
	}
	invalid := func(msg string) error {
		return temporal.NewApplicationError("appeal: "+msg, ErrTypeInvalidInput)
	}
	stateErr := func(want ...string) error {
		if slices.Contains(want, st.Status) {
			return nil
		}
		return wrongState()
	}
	approvedBy := func(reviewer string) bool {
		return slices.ContainsFunc(st.Approvals, func(a Approval) bool { return a.Reviewer == reviewer })
	}
	distinctApprovals := func() int {
		seen := map[string]bool{}
		for _, a := range st.Approvals {
			seen[a.Reviewer] = true
		}
		return len(seen)
	}
	// tooMany refuses an update once MaxAppealUpdates were accepted. Only
	// validators call it, so a refused update leaves no trace in the history.
	tooMany := func() error {
		if st.Updates >= MaxAppealUpdates {
			return temporal.NewApplicationError(fmt.Sprintf("appeal: this appeal has taken its %d updates; file a new appeal", MaxAppealUpdates), ErrTypeTooManyUpdates)
		}
		return nil
	}
	// count runs as an update is accepted: the handler starts right after
	// its validator, and count comes before anything that can block, so the
	// next validator sees it. Replay runs the handlers (not the validators)
	// and so counts the same.
	count := func() { st.Updates++ }
	// Temporal recognises a repeated update id within a run only. An
	// update an earlier run completed, sent again by a client retrying
	// across a continue-as-new, passes its validator and is answered with
	// the state, applied no second time (repeated); every completed update
	// is remembered for the next run (completed).
	repeated := func(ctx workflow.Context) bool {
		u := workflow.GetCurrentUpdateInfo(ctx)
		return u != nil && earlier[u.ID]
	}
	completed := func(ctx workflow.Context) {
		if u := workflow.GetCurrentUpdateInfo(ctx); u != nil {
			updated = append(updated, u.ID)
		}
	}
	selfReview := func(r ReviewerInput) error {
		if r.ReviewerAccountID != "" && r.ReviewerAccountID == in.AccountID {
			return temporal.NewApplicationError("appeal: a reviewer cannot review an appeal on their own account", ErrTypeSelfReview)
		}
		return nil
	}

	if err := workflow.SetQueryHandler(ctx, QueryAppeal, func() (AppealState, error) {
		return st, nil
	}); err != nil {
		return st, err
	}

	run := func(ctx workflow.Context, e effect) {
		ectx := workflow.WithActivityOptions(ctx, bo)
		if e.bestEffort {
			ectx = workflow.WithScheduleToCloseTimeout(ectx, time.Hour)
		}
		if err := workflow.ExecuteActivity(ectx, e.activity, e.arg).Get(ctx, nil); err != nil {
			logger.Warn("appeal background activity failed", "appeal_id", in.AppealID, "activity", e.activity, "error", err)
		}
	}
	// Version 1: effects run in lanes by kind (status mirror, audit,
	// notices, object deletion), each in the order queued, so a notifier
	// that is down for an hour holds back no status and no deletion.
	// Before it (histories of shipped versions) one queue ran them all in
	// order.
	lanes = workflow.GetVersion(ctx, "effect-lanes", workflow.DefaultVersion, 1) == 1
	// Version 1: an open appeal whose history Temporal finds long continues
	// as new with its state (continueAsNew below). Histories from before
	// never do, even where the server suggested it.
	canContinue := workflow.GetVersion(ctx, "continue-as-new", workflow.DefaultVersion, 1) == 1
	if lanes {
		for _, l := range effectLanes {
			workflow.Go(ctx, func(ctx workflow.Context) {
				for {
					if err := workflow.Await(ctx, func() bool { return len(laneQ[l]) > 0 }); err != nil {
						return
					}
					run(ctx, laneQ[l][0])
					laneQ[l] = laneQ[l][1:]
				}
			})
		}
	} else {
		workflow.Go(ctx, func(ctx workflow.Context) {
			for {
				if err := workflow.Await(ctx, func() bool { return len(effects) > 0 }); err != nil {
					return
				}
				run(ctx, effects[0])
				effects = effects[1:]
			}
		})
	}

	// UpdateAppealCreate checks eligibility. Sent again, it answers the
	// same: the state, or the same refusal.
	createHandler := func(ctx workflow.Context) (AppealState, error) {
		ctx = withOptions(ctx)
		if err := mu.Lock(ctx); err != nil {
			return st, err
		}
		defer mu.Unlock()
		if refusal != nil {
			return st, refusal
		}
		if st.Status != "" {
			return st, nil
		}
		err := workflow.ExecuteActivity(ctx, ActivityCheckEligibility, CheckEligibilityInput{
			AccountID: in.AccountID, ApplicantType: in.ApplicantType, Applicant: in.Applicant,
		}).Get(ctx, nil)
		if err != nil {
			err = answer(err)
			if isType(err, eligibilityErrTypes...) {
				refusal = err
				var appErr *temporal.ApplicationError
				errors.As(err, &appErr)
				upsert(ctx, saApplicantType.ValueSet(in.ApplicantType))
				setStatus(ctx, AppealIneligible, strings.TrimPrefix(appErr.Message(), "appeal: "))
				audit(applicantActor, AuditAppealCreate, "denied", map[string]string{"applicant_type": in.ApplicantType, "reason": appErr.Type()})
			}
			return st, err
		}
		st.DocumentDeadline = workflow.Now(ctx).Add(policy.DocumentDeadline)
		upsert(ctx, saApplicantType.ValueSet(in.ApplicantType), saSLABreached.ValueSet(false))
		setStatus(ctx, AppealCollecting, "appeal filed; upload the documents by "+noteTime(st.DocumentDeadline))
		audit(applicantActor, AuditAppealCreate, "ok", map[string]string{"applicant_type": in.ApplicantType})
		return st, nil
	}
	if err := workflow.SetUpdateHandlerWithOptions(ctx, UpdateAppealCreate, func(ctx workflow.Context) (AppealState, error) {
		if repeated(ctx) {
			return st.Compact(), nil
		}
		defer completed(ctx)
		count()
		st, err := createHandler(ctx)
		return st.Compact(), err
	}, workflow.UpdateHandlerOptions{
		Validator: func(ctx workflow.Context) error {
			if repeated(ctx) {
				return nil
			}
			if refusal == nil && AppealClosed(st.Status) {
				return wrongState()
			}
			return tooMany()
		},
	}); err != nil {
		return st, err
	}

	checkDocument := func(ctx workflow.Context, d Document) error {
		if err := stateErr(AppealCollecting); err != nil {
			return err
		}
		if !slices.Contains(st.RequiredDocuments, d.Type) {
			return invalid("this document type is not asked for this appeal")
		}
		if !sha256Hex.MatchString(d.SHA256) {
			return invalid("sha256 must be 64 lowercase hex digits")
		}
		if d.Size <= 0 {
			return invalid("the document is empty")
		}
		if !strings.HasPrefix(d.ObjectKey, objPfx) || len(d.ObjectKey) == len(objPfx) || strings.Contains(d.ObjectKey, "..") {
			return invalid("the object key is not under this appeal")
		}
		if !workflow.Now(ctx).Before(st.DocumentDeadline) {
			return temporal.NewApplicationError("appeal: the document deadline has passed", ErrTypeDeadlinePassed)
		}
		return nil
	}
	addDocHandler := func(ctx workflow.Context, u AddDocumentInput) (AppealState, error) {
		if err := mu.Lock(ctx); err != nil {
			return st, err
		}
		defer mu.Unlock()
		d := u.Document
		if err := checkDocument(ctx, d); err != nil {
			return st, err
		}
		prev, had := st.Documents[d.Type]
		if had && prev.ObjectKey == d.ObjectKey && prev.SHA256 == d.SHA256 {
			return st, nil // the same upload recorded again
		}
		if d.UploadedAt.IsZero() {
			d.UploadedAt = workflow.Now(ctx)
		}
		st.Documents[d.Type] = d
		held = append(held, d)
		if had {
			note(ctx, d.Type+" replaced")
			if prev.ObjectKey != d.ObjectKey {
				enqueue(effect{activity: ActivityDeleteObjects, arg: DeleteObjectsInput{AppealID: in.AppealID, Keys: []string{prev.ObjectKey}}, bestEffort: true})
			}
		} else {
			note(ctx, d.Type+" received")
		}
		audit(applicantActor, AuditAppealDocument, "ok", map[string]string{"type": d.Type, "sha256": d.SHA256, "size": fmt.Sprint(d.Size)})
		return st, nil
	}
	countUpload := func(u AddDocumentInput) {
		count()
		st.Uploads[u.Document.Type]++
	}
	if err := workflow.SetUpdateHandlerWithOptions(ctx, UpdateAddDocument, once(repeated, completed, &st, compacted(countUpload, addDocHandler)), workflow.UpdateHandlerOptions{
		Validator: onceValid(repeated, func(ctx workflow.Context, u AddDocumentInput) error {
			if err := checkDocument(ctx, u.Document); err != nil {
				return err
			}
			if st.Uploads[u.Document.Type] >= MaxUploadsPerType {
				return temporal.NewApplicationError(fmt.Sprintf("appeal: at most %d uploads of each document type", MaxUploadsPerType), ErrTypeTooManyUploads)
			}
			return tooMany()
		}),
	}); err != nil {
		return st, err
	}

	checkSubmit := func(ctx workflow.Context) error {
		if err := stateErr(AppealCollecting); err != nil {
			return err
		}
		if !workflow.Now(ctx).Before(st.DocumentDeadline) {
			return temporal.NewApplicationError("appeal: the document deadline has passed", ErrTypeDeadlinePassed)
		}
		var missing []string
		for _, t := range st.RequiredDocuments {
			if _, ok := st.Documents[t]; !ok {
				missing = append(missing, t)
			}
		}
		if len(missing) > 0 {
			return temporal.NewApplicationError("appeal: documents missing: "+strings.Join(missing, ", "), ErrTypeDocumentsMissing, missing)
		}
		return nil
	}
	submitHandler := func(ctx workflow.Context, _ SubmitInput) (AppealState, error) {
		if err := mu.Lock(ctx); err != nil {
			return st, err
		}
		defer mu.Unlock()
		if err := checkSubmit(ctx); err != nil {
			return st, err
		}
		st.SubmittedAt = workflow.Now(ctx)
		st.Assignee = ""
		st.Approvals = nil
		upsert(ctx, saSubmittedAt.ValueSet(st.SubmittedAt), saAssignee.ValueUnset())
		setStatus(ctx, AppealPending, "submitted for review")
		audit(applicantActor, AuditAppealSubmit, "ok", nil)
		if !filed {
			filed = true
			notice(AppealEventFiled, time.Time{})
		}
		return st, nil
	}
	if err := workflow.SetUpdateHandlerWithOptions(ctx, UpdateSubmit, once(repeated, completed, &st, compacted(func(SubmitInput) { count() }, submitHandler)), workflow.UpdateHandlerOptions{
		Validator: onceValid(repeated, func(ctx workflow.Context, _ SubmitInput) error {
			if err := checkSubmit(ctx); err != nil {
				return err
			}
			if st.Updates+1 > MaxAppealUpdates-ReviewReserve {
				return temporal.NewApplicationError("appeal: too few updates are left for a review; file a new appeal", ErrTypeTooManyUpdates)
			}
			return nil
		}),
	}); err != nil {
		return st, err
	}

	checkClaim := func(u ReviewerInput) error {
		if err := stateErr(AppealPending, AppealInReview); err != nil {
			return err
		}
		if u.Reviewer == "" {
			return invalid("reviewer required")
		}
		if err := selfReview(u); err != nil {
			return err
		}
		if approvedBy(u.Reviewer) {
			return temporal.NewApplicationError("appeal: a second, different reviewer must approve", ErrTypeSameReviewer)
		}
		if st.Status == AppealInReview && st.Assignee != "" && st.Assignee != u.Reviewer {
			return temporal.NewApplicationError("appeal: claimed by another reviewer", ErrTypeAppealWrongState)
		}
		return nil
	}
	claimHandler := func(ctx workflow.Context, u ReviewerInput) (AppealState, error) {
		if err := mu.Lock(ctx); err != nil {
			return st, err
		}
		defer mu.Unlock()
		if err := checkClaim(u); err != nil {
			return st, err
		}
		if st.Assignee == u.Reviewer {
			return st, nil
		}
		st.Assignee = u.Reviewer
		upsert(ctx, saAssignee.ValueSet(u.Reviewer))
		if st.Status == AppealPending {
			setStatus(ctx, AppealInReview, "a reviewer is looking at the appeal")
		} else {
			note(ctx, "a second reviewer is looking at the appeal")
		}
		audit("reviewer:"+u.Reviewer, AuditAppealClaim, "ok", map[string]string{"reviewer": u.Reviewer})
		return st, nil
	}
	if err := workflow.SetUpdateHandlerWithOptions(ctx, UpdateClaim, once(repeated, completed, &st, compacted(func(ReviewerInput) { count() }, claimHandler)), workflow.UpdateHandlerOptions{
		Validator: onceValid(repeated, func(ctx workflow.Context, u ReviewerInput) error {
			if err := checkClaim(u); err != nil {
				return err
			}
			return tooMany()
		}),
	}); err != nil {
		return st, err
	}

	checkDecide := func(u DecideInput) error {
		if err := stateErr(AppealInReview); err != nil {
			return err
		}
		if u.Reviewer == "" {
			return invalid("reviewer required")
		}
		if err := selfReview(u.ReviewerInput); err != nil {
			return err
		}
		if st.Assignee != u.Reviewer {
			return temporal.NewApplicationError("appeal: claim the appeal before deciding", ErrTypeNotAssignee)
		}
		switch u.Decision {
		case DecisionApprove:
		case DecisionReject, DecisionRequestInfo:
			if strings.TrimSpace(u.Reason) == "" {
				return invalid("a reason is required")
			}
		default:
			return invalid("decision must be approve, reject or request_info")
		}
		if len(u.Reason) > MaxReasonLength {
			return invalid(fmt.Sprintf("the reason is longer than %d bytes", MaxReasonLength))
		}
		return nil
	}
	decideHandler := func(ctx workflow.Context, u DecideInput) (AppealState, error) {
		if err := mu.Lock(ctx); err != nil {
			return st, err
		}
		defer mu.Unlock()
		if err := checkDecide(u); err != nil {
			return st, err
		}
		now := workflow.Now(ctx)
		reviewer := "reviewer:" + u.Reviewer
		details := map[string]string{"reviewer": u.Reviewer, "decision": u.Decision}
		reason := strings.TrimSpace(u.Reason)
		switch u.Decision {
		case DecisionApprove:
			st.Approvals = append(st.Approvals, Approval{Reviewer: u.Reviewer, At: now})
			details["approvals"] = fmt.Sprint(distinctApprovals())
			if distinctApprovals() < st.ApprovalsNeeded {
				st.Assignee = ""
				upsert(ctx, saAssignee.ValueUnset())
				note(ctx, "approved by one reviewer; a second reviewer must approve")
				audit(reviewer, AuditAppealDecide, "ok", details)
				return st, nil
			}
			st.CoolDownUntil = now.Add(policy.Cooldown)
			setStatus(ctx, AppealCoolingDown, "approved; the MFA devices will be unbound at "+noteTime(st.CoolDownUntil)+" unless the account owner cancels")
			audit(reviewer, AuditAppealDecide, "ok", details)
			notice(AppealEventApproved, st.CoolDownUntil)
		case DecisionReject:
			setStatus(ctx, AppealRejected, reason)
			audit(reviewer, AuditAppealDecide, "ok", details)
			notice(AppealEventRejected, time.Time{})
		case DecisionRequestInfo:
			st.DocumentDeadline = now.Add(policy.DocumentDeadline)
			st.Assignee = ""
			st.Approvals = nil
			upsert(ctx, saAssignee.ValueUnset())
			setStatus(ctx, AppealCollecting, reason)
			audit(reviewer, AuditAppealDecide, "ok", details)
		}
		return st, nil
	}
	if err := workflow.SetUpdateHandlerWithOptions(ctx, UpdateDecide, once(repeated, completed, &st, compacted(func(DecideInput) { count() }, decideHandler)), workflow.UpdateHandlerOptions{
		Validator: onceValid(repeated, func(ctx workflow.Context, u DecideInput) error {
			if err := checkDecide(u); err != nil {
				return err
			}
			return tooMany()
		}),
	}); err != nil {
		return st, err
	}

	checkCancel := func(u CancelInput) error {
		if u.By != CancelByApplicant && u.By != CancelByOwner {
			return invalid("cancel by applicant or owner")
		}
		if !AppealOpen(st.Status) {
			return wrongState()
		}
		return nil
	}
	cancelHandler := func(ctx workflow.Context, u CancelInput) (AppealState, error) {
		if err := mu.Lock(ctx); err != nil {
			return st, err
		}
		defer mu.Unlock()
		if err := checkCancel(u); err != nil {
			return st, err
		}
		actor, text := applicantActor, "cancelled by the applicant"
		if u.By == CancelByOwner {
			actor, text = "owner:"+in.AccountID, "cancelled by the account owner"
		}
		setStatus(ctx, AppealCancelled, text)
		audit(actor, AuditAppealCancel, "ok", map[string]string{"by": u.By})
		notice(AppealEventCancelled, time.Time{})
		return st, nil
	}
	// A cancel is never refused for the count (MaxAppealUpdates): it closes
	// the appeal, so it is accepted at most once.
	if err := workflow.SetUpdateHandlerWithOptions(ctx, UpdateCancel, once(repeated, completed, &st, compacted(func(CancelInput) { count() }, cancelHandler)), workflow.UpdateHandlerOptions{
		Validator: onceValid(repeated, func(ctx workflow.Context, u CancelInput) error { return checkCancel(u) }),
	}); err != nil {
		return st, err
	}

	// A successful use of the "lost" device during the cool-down cancels.
	deviceUsed := workflow.GetSignalChannel(ctx, SignalDeviceUsed)
	workflow.Go(ctx, func(ctx workflow.Context) {
		for {
			var s DeviceUsedSignal
			deviceUsed.Receive(ctx, &s)
			sigBusy = true
			if err := mu.Lock(ctx); err != nil {
				return
			}
			// Only a factor that was active when the appeal was filed
			// proves the owner still has it (SPEC §6a); signals from
			// before the rule carry no time and count.
			filedBefore := s.ActiveSince.IsZero() || s.ActiveSince.Before(filedAt)
			if st.Status == AppealCoolingDown && filedBefore {
				note, by, subject := "the MFA device was used, so it is not lost", "device_used", "device_id"
				switch s.Factor {
				case "recovery_code":
					note, by, subject = "a recovery code of the account was used, so the owner can still sign in", "recovery_code_used", "recovery_code_id"
				case "resync":
					note, by = "the token card was resynchronised, so it is not lost", "device_resynced"
				}
				setStatus(ctx, AppealCancelled, note)
				audit("system", AuditAppealCancel, "ok", map[string]string{"by": by, subject: s.DeviceID})
				notice(AppealEventDeviceUsed, time.Time{})
			}
			mu.Unlock()
			sigBusy = false
		}
	})

	// continueNow: Temporal suggests continuing as new (the history has
	// grown past the namespace's limit.historyCount/historySize
	// .suggestContinueAsNew), and this is a safe point: no update handler
	// is running, no signal is being handled or waits in the channel, and
	// every background effect has run, so the next run loses nothing.
	continueNow := func() bool {
		return canContinue && workflow.GetInfo(ctx).GetContinueAsNewSuggested() &&
			!sigBusy && deviceUsed.Len() == 0 && idle() && workflow.AllHandlersFinished(ctx)
	}
	// continueAsNew ends this run; the next one, under the same workflow ID
	// (the appeal id) and pinned to the same build, goes on from the state.
	continueAsNew := func(ctx workflow.Context) error {
		next := in
		next.Carry = &AppealCarry{State: st, Held: held, Filed: filed, AuditSeq: auditSeq, FiledAt: filedAt, Runs: runs + 1,
			Updated: updated}
		logger.Info("appeal continues as new", "appeal_id", in.AppealID, "status", st.Status, "runs", runs+1,
			"history_events", workflow.GetInfo(ctx).GetCurrentHistoryLength())
		return workflow.NewContinueAsNewError(ctx, UnbindAppeal, next)
	}

	// Timers: the document deadline, the review SLA and the cool-down.
	expire := func(ctx workflow.Context) {
		setStatus(ctx, AppealExpired, "the documents were not submitted by the deadline")
		audit("system", AuditAppealExpire, "ok", nil)
	}
	breach := func(ctx workflow.Context) {
		st.SLABreached = true
		rev++
		upsert(ctx, saSLABreached.ValueSet(true))
		audit("system", AuditAppealSLABreached, "ok", map[string]string{"status": st.Status, "review_sla": policy.ReviewSLA.String()})
		enqueue(effect{activity: ActivityNotifyLead, arg: NotifyLeadInput{
			AppealID: in.AppealID, ApplicantType: in.ApplicantType, Status: st.Status, SubmittedAt: st.SubmittedAt, ReviewSLA: policy.ReviewSLA,
		}})
		logger.Warn("appeal review SLA breached", "appeal_id", in.AppealID)
	}
	var retryUnbind bool
	unbind := func(ctx workflow.Context) {
		var out UnbindAllResult
		// Version 1: the unbind is one store transaction, and the session
		// revocation and the owner's notice are effects after it, so a
		// console refusing the webhook never holds the unbind back.
		apart := workflow.GetVersion(ctx, "unbind-effects-apart", workflow.DefaultVersion, 1) == 1
		err := workflow.ExecuteActivity(workflow.WithActivityOptions(ctx, bo), ActivityUnbindAll, UnbindAllInput{
			AppealID: in.AppealID, AccountID: in.AccountID, ApprovedAt: st.CoolDownUntil.Add(-policy.Cooldown), EffectsApart: apart,
		}).Get(ctx, &out)
		if err != nil {
			// The activity retries until the store answers; only an
			// activity that was cancelled or timed out at its schedule-to-
			// close gets here. Keep the appeal in cool-down and try again.
			logger.Error("appeal unbind failed", "appeal_id", in.AppealID, "error", err)
			retryUnbind = true
			return
		}
		setStatus(ctx, AppealUnbound, "the MFA devices were unbound; sign in and bind a new device")
		if apart {
			enqueue(effect{activity: ActivityRevokeSessions, arg: RevokeSessionsInput{AppealID: in.AppealID, AccountID: in.AccountID}})
			notice(AppealEventUnbound, time.Time{})
		}
	}

	ok, err := workflow.AwaitWithTimeout(ctx, AppealCreateTimeout, func() bool { return st.Status != "" })
	if err != nil {
		return st, err
	}
	if !ok {
		logger.Warn("appeal never created", "appeal_id", in.AppealID)
	}
	for ok && !AppealClosed(st.Status) {
		if continueNow() {
			return st, continueAsNew(ctx)
		}
		cur := rev
		var (
			until time.Time
			fire  func(workflow.Context)
		)
		switch st.Status {
		case AppealCollecting:
			until, fire = st.DocumentDeadline, expire
		case AppealPending, AppealInReview:
			if !st.SLABreached {
				until, fire = st.SubmittedAt.Add(policy.ReviewSLA), breach
			}
		case AppealCoolingDown:
			until, fire = st.CoolDownUntil, unbind
		}
		if fire == nil {
			if err := workflow.Await(ctx, func() bool { return rev != cur || continueNow() }); err != nil {
				return st, err
			}
			continue
		}
		if wait := until.Sub(workflow.Now(ctx)); wait > 0 {
			changed, err := workflow.AwaitWithTimeout(ctx, wait, func() bool { return rev != cur || continueNow() })
			if err != nil {
				return st, err
			}
			if changed {
				continue
			}
		}
		if err := mu.Lock(ctx); err != nil {
			return st, err
		}
		if rev == cur {
			fire(ctx)
		}
		mu.Unlock()
		if retryUnbind {
			retryUnbind = false
			if _, err := workflow.AwaitWithTimeout(ctx, time.Hour, func() bool { return rev != cur }); err != nil {
				return st, err
			}
		}
	}

	// Retention: documents are kept for Retention after the appeal closed,
	// then deleted. A refused appeal never had any. Version 1: a retention
	// longer than ClosedGrace is handed to a DocumentRetention workflow of
	// its own after the grace, and the appeal ends.
	handedOff := false
	if ok && st.Status != AppealIneligible && workflow.GetVersion(ctx, "retention-apart", workflow.DefaultVersion, 1) == 1 && policy.Retention > ClosedGrace {
		if err := workflow.Sleep(ctx, st.ClosedAt.Add(ClosedGrace).Sub(workflow.Now(ctx))); err != nil {
			return st, err
		}
		if err := workflow.Await(ctx, func() bool { return idle(laneObjects) }); err != nil {
			return st, err
		}
		deleteAt := st.ClosedAt.Add(policy.Retention)
		cctx := workflow.WithChildOptions(ctx, workflow.ChildWorkflowOptions{
			WorkflowID:        RetentionWorkflowID(in.AppealID),
			TaskQueue:         TaskQueue,
			ParentClosePolicy: enumspb.PARENT_CLOSE_POLICY_ABANDON,
		})
		child := workflow.ExecuteChildWorkflow(cctx, DocumentRetention, RetentionInput{
			AppealID: in.AppealID, AccountID: in.AccountID, Documents: held, DeleteAt: deleteAt,
		})
		err := child.GetChildWorkflowExecution().Get(ctx, nil)
		var started *temporal.ChildWorkflowExecutionAlreadyStartedError
		if err == nil || errors.As(err, &started) {
			handedOff = true
			note(ctx, "documents kept until "+noteTime(deleteAt)+", then deleted")
		} else {
			logger.Error("document retention not handed off; kept here", "appeal_id", in.AppealID, "error", err)
		}
	}
	if ok && st.Status != AppealIneligible && !handedOff {
		if err := workflow.Sleep(ctx, st.ClosedAt.Add(policy.Retention).Sub(workflow.Now(ctx))); err != nil {
			return st, err
		}
		// The deletion waits for the object deletions queued before it,
		// not for notices: a notifier outage never holds it back.
		if err := workflow.Await(ctx, func() bool { return idle(laneObjects) }); err != nil {
			return st, err
		}
		var out DeleteDocumentsResult
		err := workflow.ExecuteActivity(background, ActivityDeleteDocuments, DeleteDocumentsInput{
			AppealID: in.AppealID, AccountID: in.AccountID, Documents: held,
		}).Get(ctx, &out)
		if err != nil {
			logger.Error("appeal documents not deleted", "appeal_id", in.AppealID, "error", err)
		} else {
			st.DocumentsDeleted = true
			note(ctx, "documents deleted after the retention period")
		}
	}
	if err := workflow.Await(ctx, func() bool { return idle() && workflow.AllHandlersFinished(ctx) }); err != nil {
		return st, err
	}
	return st, nil
}

// once wraps an update handler: an update an earlier run completed
// (repeated) is answered with the state *st and not run again; every other
// one is remembered when it completes.
func once[A any](repeated func(workflow.Context) bool, completed func(workflow.Context), st *AppealState,
	h func(workflow.Context, A) (AppealState, error)) func(workflow.Context, A) (AppealState, error) {
	return func(ctx workflow.Context, a A) (AppealState, error) {
		if repeated(ctx) {
			return st.Compact(), nil
		}
		defer completed(ctx)
		return h(ctx, a)
	}
}

// onceValid wraps an update's validator: an update an earlier run
// completed (repeated) passes, for once to answer it.
func onceValid[A any](repeated func(workflow.Context) bool, v func(workflow.Context, A) error) func(workflow.Context, A) error {
	return func(ctx workflow.Context, a A) error {
		if repeated(ctx) {
			return nil
		}
		return v(ctx, a)
	}
}

// compacted wraps an update handler: count runs first, as the update is
// accepted, and the answer is the state's Compact form.
func compacted[A any](count func(A), h func(workflow.Context, A) (AppealState, error)) func(workflow.Context, A) (AppealState, error) {
	return func(ctx workflow.Context, a A) (AppealState, error) {
		count(a)
		st, err := h(ctx, a)
		return st.Compact(), err
	}
}
