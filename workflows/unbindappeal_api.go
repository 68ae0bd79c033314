package workflows

import "time"

// UnbindAppeal's names and messages: the contract between the applicant,
// reviewer and console APIs and the workflow. The workflow ID is the appeal
// id. PII (names, ID numbers, phones) travels only in payloads, which the
// codec encrypts; search attributes carry none.
const (
	// UpdateAppealCreate is sent with the start: it checks eligibility and
	// answers synchronously. A refused appeal ends the workflow.
	UpdateAppealCreate = "create"
	// UpdateAddDocument records an uploaded document (AddDocumentInput).
	UpdateAddDocument = "add_document"
	// UpdateSubmit moves a complete appeal to review (SubmitInput).
	UpdateSubmit = "submit"
	// UpdateClaim assigns a reviewer (ReviewerInput).
	UpdateClaim = "claim"
	// UpdateDecide records a reviewer's decision (DecideInput).
	UpdateDecide = "decide"
	// UpdateCancel cancels the appeal (CancelInput).
	UpdateCancel = "cancel"
	// SignalDeviceUsed tells the appeal that the supposedly lost device was
	// just used successfully (DeviceUsedSignal); in cool-down it cancels.
	SignalDeviceUsed = "device_used"
	// QueryAppeal returns the AppealState.
	QueryAppeal = "appeal"
)

// Appeal statuses (API and search attribute).
const (
	AppealCollecting  = "collecting_documents"
	AppealPending     = "pending_review"
	AppealInReview    = "in_review"
	AppealCoolingDown = "cooling_down"
	AppealUnbound     = "unbound"
	AppealRejected    = "rejected"
	AppealCancelled   = "cancelled"
	AppealExpired     = "expired"
	AppealIneligible  = "ineligible" // refused at creation; never visible in the queue
)

// Applicant types and document types.
const (
	ApplicantPersonal   = "personal"
	ApplicantEnterprise = "enterprise"

	DocIDHoldingPhoto  = "id_holding_photo"
	DocBusinessLicence = "business_licence"
)

// RequiredDocuments lists the documents an applicant type must upload.
func RequiredDocuments(applicantType string) []string {
	if applicantType == ApplicantEnterprise {
		return []string{DocBusinessLicence, DocIDHoldingPhoto}
	}
	return []string{DocIDHoldingPhoto}
}

// Decisions.
const (
	DecisionApprove     = "approve"
	DecisionReject      = "reject"
	DecisionRequestInfo = "request_info"
)

// Application error types of the appeal's updates.
const (
	ErrTypeRealNameNotVerified = "RealNameNotVerified" // 422 real_name_not_verified
	ErrTypeIdentityMismatch    = "IdentityMismatch"    // 422 identity_mismatch
	ErrTypeNoMFABound          = "NoMFABound"          // 422 no_mfa_bound
	ErrTypeAppealWrongState    = "AppealWrongState"    // 409: the update does not fit the status
	ErrTypeDocumentsMissing    = "DocumentsMissing"    // 422: submit before every required document
	ErrTypeDeadlinePassed      = "DeadlinePassed"      // 409: upload after the document deadline
	ErrTypeSelfReview          = "SelfReview"          // 403: the reviewer's own account, or the applicant
	ErrTypeSameReviewer        = "SameReviewer"        // 409: four-eyes needs a second, different reviewer
	ErrTypeNotAssignee         = "NotAssignee"         // 409: decide without holding the claim
	ErrTypeInvalidInput        = "InvalidInput"        // 400: refused by a validator
	ErrTypeTooManyUploads      = "TooManyUploads"      // 429: MaxUploadsPerType documents of this type were accepted
	ErrTypeTooManyUpdates      = "TooManyUpdates"      // 429: MaxAppealUpdates updates were accepted
	// UpdateAppealCreate also answers ErrTypeUnavailable (503, shared with
	// BindDevice) when the eligibility check could not reach the store for
	// a minute: nothing was created and the create may be sent again.
)

// Bounds of one appeal. Every accepted update adds events to the
// workflow's history, so without them whoever holds the access token could
// grow it toward Temporal's history limit. The validators refuse past the
// bounds, so a refused update leaves no trace in the history.
const (
	// MaxUploadsPerType is how many AddDocument updates an appeal accepts
	// for each document type, over its whole life (request_info rounds
	// included).
	MaxUploadsPerType = 10
	// MaxAppealUpdates is how many updates an appeal accepts in all:
	// create, add_document, submit, claim, decide and cancel each count,
	// a repeated one too (it lands in the history like any other). Past it
	// only a cancel is accepted: it closes the appeal, so it can come once,
	// and the owner's cancel link must always work.
	MaxAppealUpdates = 30
	// ReviewReserve updates are kept for the review: a submit that would
	// leave fewer is refused (ErrTypeTooManyUpdates), so a submitted appeal
	// can always be claimed and decided, by two reviewers under four-eyes.
	// An appeal whose submit is refused expires at its document deadline.
	ReviewReserve = 4
)

// AppealPolicy is fixed at creation from the configuration. Zero
// durations take the defaults of WithDefaults (Cooldown 0 is allowed).
type AppealPolicy struct {
	DocumentDeadline time.Duration // MFAFLOW_DOCUMENT_DEADLINE
	ReviewSLA        time.Duration // MFAFLOW_REVIEW_SLA
	Cooldown         time.Duration // MFAFLOW_APPEAL_COOLDOWN (0 allowed)
	Retention        time.Duration // MFAFLOW_RETENTION
	FourEyes         bool          // two distinct approvals needed (from MFAFLOW_FOUR_EYES and the type)
	PublicURL        string        // base of the cancel link sent to the old channels
}

// Applicant is what the applicant filed. It is PII: it exists only in
// encrypted payloads and the workflow's memory, never in search attributes
// or logs.
type Applicant struct {
	LoginKind        string
	LoginID          string
	BoundPhone       string
	Name             string // personal
	IDNumber         string // personal
	ContactPhone     string
	CompanyName      string // enterprise
	CompanyRegNumber string // enterprise
}

// AppealInput starts an appeal.
type AppealInput struct {
	AppealID      string
	AccountID     string
	ApplicantType string
	Applicant     Applicant
	Policy        AppealPolicy
	RemoteIP      string
	// Carry is set when an earlier run of the appeal continued as new:
	// the state it goes on from. Nil when the appeal is filed.
	Carry *AppealCarry `json:",omitempty"`
}

// AppealCarry is what an appeal takes into its next run when it continues
// as new (SPEC §6d): the whole state (status, timeline, documents,
// reviewers and approvals, deadlines, counts) and the workflow's own
// bookkeeping.
type AppealCarry struct {
	State    AppealState
	Held     []Document // every document ever recorded, for the deletion
	Filed    bool       // the filed notice was sent
	AuditSeq int        // audit keys already used
	FiledAt  time.Time  // the first run's start: factors active before it may cancel
	Runs     int        // runs that ended by continuing as new
	// Updated holds the ids of the updates the appeal completed (at most
	// MaxAppealUpdates and the cancel), so that one sent again after the
	// continue-as-new is not applied twice.
	Updated []string `json:",omitempty"`
}

// Document is an uploaded document: where it is and what it hashes to.
type Document struct {
	Type        string
	ObjectKey   string // never holds user input
	SHA256      string
	Size        int64
	ContentType string
	UploadedAt  time.Time
}

// AddDocumentInput records an upload already stored in object storage.
type AddDocumentInput struct {
	Document Document
}

// SubmitInput submits the appeal.
type SubmitInput struct{}

// ReviewerInput identifies the reviewer acting.
type ReviewerInput struct {
	Reviewer          string // JWT sub
	ReviewerAccountID string // the reviewer's own cloud account, if any
}

// DecideInput is a reviewer's decision.
type DecideInput struct {
	ReviewerInput
	Decision string
	Reason   string
}

// CancelInput cancels an appeal.
type CancelInput struct {
	By string // CancelByApplicant or CancelByOwner
}

// DeviceUsedSignal says a factor of the account was used successfully: a
// device verified a code, a recovery code was used or a card resynced.
type DeviceUsedSignal struct {
	DeviceID string // the device or recovery code
	At       time.Time
	// Factor is "device", "recovery_code" or "resync"; empty in signals
	// sent before it existed (a device).
	Factor string
	// ActiveSince is when the factor became active (device bound, code set
	// made). Only a factor active before the appeal was filed cancels it;
	// zero in signals sent before it existed.
	ActiveSince time.Time
}

// TimelineEvent is one step of the appeal, without reviewer identities.
type TimelineEvent struct {
	At     time.Time
	Status string
	Note   string // e.g. the reject reason or the information requested
}

// Approval is one reviewer's approval (kept for the audit, not shown to applicants).
type Approval struct {
	Reviewer string
	At       time.Time
}

// AppealState is the appeal as the APIs see it: QueryAppeal answers all of
// it, the updates answer Compact (no timeline, no applicant), so their
// results in the history stay small. The API masks PII before showing it to
// reviewers and shows applicants only their status, timeline and documents.
type AppealState struct {
	AppealID          string
	AccountID         string
	ApplicantType     string
	Applicant         Applicant
	Status            string
	RequiredDocuments []string
	Documents         map[string]Document // by type; the latest upload wins
	Timeline          []TimelineEvent
	DocumentDeadline  time.Time
	SubmittedAt       time.Time
	Assignee          string
	Approvals         []Approval
	ApprovalsNeeded   int
	SLABreached       bool
	CoolDownUntil     time.Time
	ClosedAt          time.Time
	DocumentsDeleted  bool
	Updates           int            // updates accepted, of MaxAppealUpdates
	Uploads           map[string]int // AddDocument updates accepted, by type, of MaxUploadsPerType
}

// Compact returns st without its timeline and applicant: what an update
// answers. The caller of an update needs the status and the counts; the
// timeline grows with the appeal and the applicant is PII.
func (st AppealState) Compact() AppealState {
	st.Timeline = nil
	st.Applicant = Applicant{}
	return st
}
