package api

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"time"

	"github.com/gin-gonic/gin"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"

	"github.com/mfaflow/mfaflow/activities"
	"github.com/mfaflow/mfaflow/blob"
	"github.com/mfaflow/mfaflow/console"
	"github.com/mfaflow/mfaflow/internal/doccheck"
	"github.com/mfaflow/mfaflow/internal/validate"
	"github.com/mfaflow/mfaflow/store"
	"github.com/mfaflow/mfaflow/workflows"
)

// DocumentStore keeps appeal documents (the blob store in production).
type DocumentStore interface {
	Put(ctx context.Context, key string, r io.Reader, size, max int64, contentType string) (blob.Object, error)
	Open(ctx context.Context, key string) (io.ReadCloser, blob.Object, error)
	Delete(ctx context.Context, key string) error
}

// AppealConfig holds the appeal settings from the configuration.
type AppealConfig struct {
	DocumentDeadline time.Duration
	ReviewSLA        time.Duration
	Cooldown         time.Duration
	Retention        time.Duration
	FourEyes         string // "enterprise", "all" or "none"
	PublicURL        string
	MaxDocument      int64 // 0: 10 MB
	// Rate limits on filing (see filing.go): filings per client IP per hour,
	// refused filings per client IP per hour, and filings that passed
	// eligibility per account per day; 0: 20, 10 and 5.
	PerIPPerHour        int
	RefusedPerIPPerHour int
	PerAccountPerDay    int
}

func (c AppealConfig) policy(applicantType string) workflows.AppealPolicy {
	p := workflows.AppealPolicy{DocumentDeadline: c.DocumentDeadline, ReviewSLA: c.ReviewSLA, Cooldown: c.Cooldown, Retention: c.Retention, PublicURL: c.PublicURL}
	switch c.FourEyes {
	case "all":
		p.FourEyes = true
	case "none":
	default:
		p.FourEyes = applicantType == workflows.ApplicantEnterprise
	}
	return p
}

func (c AppealConfig) maxDocument() int64 {
	if c.MaxDocument > 0 {
		return c.MaxDocument
	}
	return 10 << 20
}

// appealRequest is the body of POST /v1/appeals.
type appealRequest struct {
	AccountID     string `json:"account_id"`
	ApplicantType string `json:"applicant_type"`
	AccountLogin  *struct {
		Kind string `json:"kind"`
		ID   string `json:"id"`
	} `json:"account_login"`
	BoundPhone       string `json:"bound_phone"`
	Name             string `json:"name"`
	IDNumber         string `json:"id_number"`
	ContactPhone     string `json:"contact_phone"`
	CompanyName      string `json:"company_name"`
	CompanyRegNumber string `json:"company_reg_number"`
}

func appealField(field, msg string) *Error {
	return &Error{Status: http.StatusUnprocessableEntity, Code: "invalid_field", Field: field, Message: msg}
}

// applicant validates the request field by field.
func (r appealRequest) applicant() (workflows.Applicant, error) {
	var a workflows.Applicant
	var err error
	if !accountIDPattern.MatchString(r.AccountID) {
		return a, appealField("account_id", "the cloud account id")
	}
	if r.ApplicantType != workflows.ApplicantPersonal && r.ApplicantType != workflows.ApplicantEnterprise {
		return a, appealField("applicant_type", `must be "personal" or "enterprise"`)
	}
	if r.AccountLogin == nil {
		return a, appealField("account_login", "the login the account was registered with: qq, email, wechat or wechat_official")
	}
	if err := validate.LoginID(r.AccountLogin.Kind, r.AccountLogin.ID); err != nil {
		return a, appealField("account_login", "kind must be qq, email, wechat or wechat_official and the id must fit it")
	}
	a.LoginKind, a.LoginID = r.AccountLogin.Kind, r.AccountLogin.ID
	if a.BoundPhone, err = validate.Phone(r.BoundPhone); err != nil {
		return a, appealField("bound_phone", "the mainland mobile number bound to the account")
	}
	if a.Name, err = validate.Name(r.Name); err != nil {
		return a, appealField("name", "the applicant's name as on the ID card")
	}
	if a.IDNumber, err = validate.IDNumber(r.IDNumber); err != nil {
		return a, appealField("id_number", "an 18-character resident ID number with a valid checksum")
	}
	if a.ContactPhone, err = validate.Phone(r.ContactPhone); err != nil {
		return a, appealField("contact_phone", "a mainland mobile number where we can reach you")
	}
	if r.ApplicantType == workflows.ApplicantEnterprise {
		if a.CompanyName, err = validate.Name(r.CompanyName); err != nil {
			return a, appealField("company_name", "the company name as on the business licence")
		}
		if a.CompanyRegNumber, err = validate.USCC(r.CompanyRegNumber); err != nil {
			return a, appealField("company_reg_number", "the 18-character unified social credit code with a valid checksum")
		}
	} else if r.CompanyName != "" || r.CompanyRegNumber != "" {
		return a, appealField("company_name", "only enterprise appeals carry company details")
	}
	return a, nil
}

func constantEqual(a, b string) bool {
	return subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1 && a != ""
}

func newSecretToken(prefix string, n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return prefix + base64.RawURLEncoding.EncodeToString(b)
}

// appealError maps the UnbindAppeal workflow's failures to HTTP answers.
func appealError(err error) error {
	var already *serviceerror.WorkflowExecutionAlreadyStarted
	if errors.As(err, &already) {
		return errorf(http.StatusConflict, "appeal_in_progress", "an appeal for this account is already open")
	}
	var nf *serviceerror.NotFound
	if errors.As(err, &nf) {
		return errorf(http.StatusNotFound, "not_found", "no such appeal")
	}
	var app *temporal.ApplicationError
	if !errors.As(err, &app) {
		return bindingError(err) // shared handling of unavailability
	}
	switch app.Type() {
	case workflows.ErrTypeRealNameNotVerified:
		return errorf(http.StatusUnprocessableEntity, "real_name_not_verified",
			"this account has not completed real-name verification, so its MFA device cannot be unbound by appeal; complete real-name verification first")
	case workflows.ErrTypeIdentityMismatch:
		return errorf(http.StatusUnprocessableEntity, "identity_mismatch", "the details do not match the account's real-name record")
	case workflows.ErrTypeNoMFABound:
		return errorf(http.StatusUnprocessableEntity, "no_mfa_bound", "the account has no MFA device bound; there is nothing to unbind")
	case workflows.ErrTypeAppealWrongState:
		return errorf(http.StatusConflict, "wrong_state", "the appeal is not at a step that allows this")
	case workflows.ErrTypeDocumentsMissing:
		return errorf(http.StatusUnprocessableEntity, "documents_missing", "upload every required document before submitting")
	case workflows.ErrTypeDeadlinePassed:
		return errorf(http.StatusConflict, "deadline_passed", "the document deadline has passed")
	case workflows.ErrTypeSelfReview:
		return errorf(http.StatusForbidden, "self_review", "you cannot review an appeal on your own account")
	case workflows.ErrTypeSameReviewer:
		return errorf(http.StatusConflict, "same_reviewer", "a second, different reviewer must approve this appeal")
	case workflows.ErrTypeNotAssignee:
		return errorf(http.StatusConflict, "not_assignee", "claim the appeal before deciding it")
	case workflows.ErrTypeInvalidInput:
		return errorf(http.StatusBadRequest, "invalid_request", "the request is not valid for this appeal")
	case workflows.ErrTypeTooManyUploads:
		return errorf(http.StatusTooManyRequests, "too_many_uploads",
			"this document type was uploaded %d times, the most an appeal takes", workflows.MaxUploadsPerType)
	case workflows.ErrTypeTooManyUpdates:
		return errorf(http.StatusTooManyRequests, "too_many_updates",
			"this appeal has taken all the changes it can (%d); it can still be cancelled, and a new appeal filed", workflows.MaxAppealUpdates)
	}
	return bindingError(err)
}

// appealUpdate sends an update to an appeal and returns its state.
func (s *Server) appealUpdate(ctx context.Context, appealID, name string, arg any) (workflows.AppealState, error) {
	st, err := runUpdate[workflows.AppealState](ctx, s.deps.Temporal, appealID, name, arg)
	if err != nil {
		return st, appealError(err)
	}
	return st, nil
}

// appealState queries an appeal's state.
func (s *Server) appealState(ctx context.Context, appealID string) (workflows.AppealState, error) {
	st, err := runQuery[workflows.AppealState](ctx, s.deps.Temporal, appealID, workflows.QueryAppeal)
	if err != nil {
		return st, appealError(err)
	}
	return st, nil
}

func (s *Server) handleCreateAppeal() gin.HandlerFunc {
	return func(c *gin.Context) {
		cfg := s.deps.Appeals
		if err := s.checkFilingIP(c); err != nil {
			fail(c, s.log, err)
			return
		}
		var req appealRequest
		if err := decodeJSON(c, &req); err != nil {
			// A field of the wrong type is the form's 422 invalid_field; an
			// unknown field stays 400 unknown_field as on every endpoint.
			if e, ok := err.(*Error); ok && e.Status == http.StatusBadRequest && e.Code == "invalid_field" {
				e.Status = http.StatusUnprocessableEntity
			}
			fail(c, s.log, err)
			return
		}
		app, err := req.applicant()
		if err != nil {
			fail(c, s.log, err)
			return
		}
		if err := s.checkFilingAccount(c, req.AccountID); err != nil {
			fail(c, s.log, err)
			return
		}
		appealID := newSecretToken("apl_", 12)
		token := newSecretToken("apt_", 32) // 256 bits
		if err := s.createAppealRow(c, store.Appeal{
			ID: appealID, AccountID: req.AccountID, ApplicantType: req.ApplicantType, TokenHash: store.TokenHash(token), Status: appealFiling,
		}); err != nil {
			fail(c, s.log, err)
			return
		}
		in := workflows.AppealInput{AppealID: appealID, AccountID: req.AccountID, ApplicantType: req.ApplicantType, Applicant: app,
			Policy: cfg.policy(req.ApplicantType), RemoteIP: c.ClientIP()}
		st, err := startWithUpdate[workflows.AppealState](c.Request.Context(), s.deps.Temporal, appealID,
			enumspb.WORKFLOW_ID_REUSE_POLICY_REJECT_DUPLICATE, "UnbindAppeal", in, workflows.UpdateAppealCreate)
		if err != nil {
			// The access token is handed out only with a 201, so an appeal
			// that failed here can never be used, whatever the workflow's
			// fate: close its row at once so the account may file again.
			// This covers a refusal (the workflow records the same when it
			// closes; closing is idempotent) and a Temporal that did not
			// answer, where whether the workflow started cannot be known.
			_ = s.deps.Store.SetAppealStatus(context.WithoutCancel(c.Request.Context()), appealID, workflows.AppealIneligible, true, s.deps.Now())
			if r := refusalType(err); r != "" {
				s.filingRefused(c, req.AccountID, r)
			}
			fail(c, s.log, appealError(err))
			return
		}
		s.filingPassed(c, req.AccountID)
		c.JSON(http.StatusCreated, gin.H{
			"appeal_id": appealID, "access_token": token, "status": st.Status,
			"required_documents": st.RequiredDocuments, "document_deadline": st.DocumentDeadline.UTC(),
		})
	}
}

// applicantAppeal authenticates the applicant's access token for the
// appeal in the path. A token of another appeal gets 403.
func (s *Server) applicantAppeal(c *gin.Context) (store.Appeal, error) {
	id := c.Param("appeal_id")
	tok := bearer(c)
	if tok == "" {
		return store.Appeal{}, errorf(http.StatusUnauthorized, "unauthorized", "the appeal's access token is required")
	}
	a, err := s.deps.Store.FindAppealByToken(c.Request.Context(), store.TokenHash(tok))
	if errors.Is(err, store.ErrNotFound) {
		return store.Appeal{}, errorf(http.StatusUnauthorized, "unauthorized", "the access token is not valid")
	}
	if err != nil {
		return store.Appeal{}, err
	}
	if a.ID != id {
		s.audit(c, store.AuditEntry{Actor: "applicant:" + a.ID, Action: "appeal.access", Outcome: "denied", Subject: id,
			Details: map[string]string{"reason": "token_of_another_appeal", "route": c.FullPath()}})
		return store.Appeal{}, errorf(http.StatusForbidden, "forbidden", "this token belongs to another appeal")
	}
	return a, nil
}

// errReader remembers the first error other than EOF of the request body,
// to tell a client that gave up from a storage failure.
type errReader struct {
	r   io.Reader
	err error
}

func (e *errReader) Read(p []byte) (int, error) {
	n, err := e.r.Read(p)
	if err != nil && err != io.EOF && e.err == nil {
		e.err = err
	}
	return n, err
}

// allowedTypes are the document types accepted, by sniffed content.
var allowedTypes = map[string]bool{"image/jpeg": true, "image/png": true, "application/pdf": true}

// sniff names the content type from the first bytes, or "".
func sniff(head []byte) string {
	switch {
	case len(head) >= 3 && head[0] == 0xFF && head[1] == 0xD8 && head[2] == 0xFF:
		return "image/jpeg"
	case len(head) >= 8 && string(head[:8]) == "\x89PNG\r\n\x1a\n":
		return "image/png"
	case len(head) >= 5 && string(head[:5]) == "%PDF-":
		return "application/pdf"
	}
	return ""
}

func (s *Server) handleUploadDocument() gin.HandlerFunc {
	return func(c *gin.Context) {
		a, err := s.applicantAppeal(c)
		if err != nil {
			fail(c, s.log, err)
			return
		}
		docType := c.Param("doc_type")
		if docType != workflows.DocIDHoldingPhoto && docType != workflows.DocBusinessLicence {
			fail(c, s.log, appealField("doc_type", "id_holding_photo or business_licence"))
			return
		}
		max := s.deps.Appeals.maxDocument()
		if c.Request.ContentLength > max {
			fail(c, s.log, errorf(http.StatusRequestEntityTooLarge, "too_large", "documents are limited to %d bytes", max))
			return
		}
		declared, _, _ := mime.ParseMediaType(c.GetHeader("Content-Type"))
		if !allowedTypes[declared] {
			fail(c, s.log, errorf(http.StatusUnsupportedMediaType, "unsupported_media_type", "send a JPEG, PNG or PDF file"))
			return
		}
		// A closed appeal is refused here, from the row the token check
		// read (closing is final). Whether an open appeal collects documents
		// and is within its deadline is left to the AddDocument update: the
		// workflow checks both there, and only it records a document; an
		// upload it refuses is removed from storage. A Temporal query first
		// would add about 5 ms to every upload (the worker has to answer it),
		// and its answer could be outdated by the time of the update.
		if !a.ClosedAt.IsZero() || workflows.AppealClosed(a.Status) {
			fail(c, s.log, errorf(http.StatusConflict, "wrong_state", "documents can be uploaded only while the appeal collects them"))
			return
		}
		tracked := &errReader{r: c.Request.Body}
		body := bufio.NewReaderSize(tracked, 512)
		head, _ := body.Peek(512)
		got := sniff(head)
		if got == "" || got != declared {
			s.audit(c, store.AuditEntry{Actor: "applicant:" + a.ID, Action: "document.upload", Outcome: "invalid", AccountID: a.AccountID, Subject: a.ID,
				Details: map[string]string{"doc_type": docType, "reason": "content_type_mismatch"}})
			fail(c, s.log, errorf(http.StatusUnsupportedMediaType, "unsupported_media_type", "the file's content is not a JPEG, PNG or PDF matching its Content-Type"))
			return
		}
		// The content is checked as it streams (doccheck): an image from its
		// header, before anything is stored; a PDF while it is stored, as the
		// whole file is needed (spooling it first would need a disk and
		// double the work, and production keeps no local state), and a
		// refused one is deleted at once, as an upload the workflow refuses.
		var upload io.Reader = body
		var pdf *pdfCheck
		if got == "application/pdf" {
			pdf = startPDFCheck(body)
			upload = pdf
		} else {
			var head bytes.Buffer
			if _, err := doccheck.Image(io.TeeReader(body, &head), got); err != nil {
				if tracked.err != nil || c.Request.Context().Err() != nil {
					fail(c, s.log, errorf(http.StatusBadRequest, "incomplete_upload", "the upload ended before the whole file arrived"))
					return
				}
				s.refuseDocument(c, a, docType, err)
				return
			}
			upload = io.MultiReader(&head, body)
		}
		key := fmt.Sprintf("appeals/%s/%s/%s", a.ID, docType, newSecretToken("", 12))
		obj, err := s.deps.Documents.Put(c.Request.Context(), key, upload, c.Request.ContentLength, max, got)
		if pdf != nil {
			if verdict := pdf.finish(err); isDocRefusal(verdict) {
				if err == nil {
					_ = s.deps.Documents.Delete(context.WithoutCancel(c.Request.Context()), key)
				}
				s.refuseDocument(c, a, docType, verdict)
				return
			}
		}
		if err != nil {
			switch {
			case errors.Is(err, blob.ErrTooLarge):
				err = errorf(http.StatusRequestEntityTooLarge, "too_large", "documents are limited to %d bytes", max)
			case tracked.err != nil || c.Request.Context().Err() != nil:
				err = errorf(http.StatusBadRequest, "incomplete_upload", "the upload ended before the whole file arrived")
			}
			fail(c, s.log, err)
			return
		}
		if c.Request.ContentLength > 0 && obj.Size != c.Request.ContentLength {
			_ = s.deps.Documents.Delete(context.WithoutCancel(c.Request.Context()), key)
			fail(c, s.log, errorf(http.StatusBadRequest, "incomplete_upload", "the upload ended before the whole file arrived"))
			return
		}
		doc := workflows.Document{Type: docType, ObjectKey: key, SHA256: obj.SHA256, Size: obj.Size, ContentType: got, UploadedAt: s.deps.Now().UTC()}
		if _, err := s.appealUpdate(c.Request.Context(), a.ID, workflows.UpdateAddDocument, workflows.AddDocumentInput{Document: doc}); err != nil {
			_ = s.deps.Documents.Delete(context.WithoutCancel(c.Request.Context()), key)
			fail(c, s.log, err)
			return
		}
		c.JSON(http.StatusCreated, gin.H{"doc_type": docType, "sha256": obj.SHA256, "size": obj.Size, "content_type": got})
	}
}

// pdfCheck runs doccheck.PDF on a copy of the upload as it streams: its
// Read passes the body on and hands the same bytes to the check through a
// pipe, so memory does not grow with the file. When the check refuses
// early, the next Read fails and the upload stops.
type pdfCheck struct {
	body    io.Reader
	pw      *io.PipeWriter
	verdict chan error
}

// errPDFRefused stops an upload whose PDF the check refused.
var errPDFRefused = errors.New("api: the PDF check refused the upload")

func startPDFCheck(body io.Reader) *pdfCheck {
	pr, pw := io.Pipe()
	p := &pdfCheck{body: body, pw: pw, verdict: make(chan error, 1)}
	go func() {
		err := doccheck.PDF(pr)
		_ = pr.CloseWithError(errPDFRefused)
		p.verdict <- err
	}()
	return p
}

func (p *pdfCheck) Read(b []byte) (int, error) {
	n, err := p.body.Read(b)
	if n > 0 {
		if _, werr := p.pw.Write(b[:n]); werr != nil {
			return 0, werr
		}
	}
	return n, err
}

// finish ends the check once the store has read the upload (putErr is the
// store's error: the check then stops with it) and returns its verdict.
func (p *pdfCheck) finish(putErr error) error {
	_ = p.pw.CloseWithError(putErr)
	return <-p.verdict
}

// isDocRefusal reports whether err is doccheck's refusal of the content.
func isDocRefusal(err error) bool {
	return errors.Is(err, doccheck.ErrMalformed) || errors.Is(err, doccheck.ErrUnsafe)
}

// docRefusal names doccheck's refusal in the audit as a code.
func docRefusal(err error) string {
	if errors.Is(err, doccheck.ErrUnsafe) {
		return "unsafe_document"
	}
	return "malformed_document"
}

// refuseDocument audits and answers an upload whose content doccheck
// refused: 422 unsafe_document for a PDF with active content, else 415
// unsupported_media_type. The audit names the reason, never the content.
func (s *Server) refuseDocument(c *gin.Context, a store.Appeal, docType string, err error) {
	s.audit(c, store.AuditEntry{Actor: "applicant:" + a.ID, Action: "document.upload", Outcome: "invalid", AccountID: a.AccountID, Subject: a.ID,
		Details: map[string]string{"doc_type": docType, "reason": docRefusal(err)}})
	if errors.Is(err, doccheck.ErrUnsafe) {
		fail(c, s.log, errorf(http.StatusUnprocessableEntity, "unsafe_document",
			"the PDF holds JavaScript, a launch action or an embedded file; upload a plain PDF or a photo"))
		return
	}
	fail(c, s.log, errorf(http.StatusUnsupportedMediaType, "unsupported_media_type",
		"the file is not a readable JPEG, PNG or PDF: damaged, encrypted, or an image of impossible dimensions"))
}

func (s *Server) handleSubmitAppeal() gin.HandlerFunc {
	return func(c *gin.Context) {
		a, err := s.applicantAppeal(c)
		if err != nil {
			fail(c, s.log, err)
			return
		}
		st, err := s.appealUpdate(c.Request.Context(), a.ID, workflows.UpdateSubmit, workflows.SubmitInput{})
		if err != nil {
			fail(c, s.log, err)
			return
		}
		c.JSON(http.StatusAccepted, gin.H{"appeal_id": a.ID, "status": st.Status})
	}
}

// applicantView is what the applicant sees: no PII echo, no reviewer identities.
func applicantView(st workflows.AppealState) gin.H {
	docs := []gin.H{}
	for _, t := range st.RequiredDocuments {
		d, ok := st.Documents[t]
		if !ok {
			docs = append(docs, gin.H{"type": t, "uploaded": false})
			continue
		}
		docs = append(docs, gin.H{"type": t, "uploaded": true, "sha256": d.SHA256, "size": d.Size, "content_type": d.ContentType, "uploaded_at": d.UploadedAt.UTC()})
	}
	timeline := []gin.H{}
	for _, e := range st.Timeline {
		timeline = append(timeline, gin.H{"at": e.At.UTC(), "status": e.Status, "note": e.Note})
	}
	out := gin.H{"appeal_id": st.AppealID, "status": st.Status, "applicant_type": st.ApplicantType, "documents": docs, "timeline": timeline}
	if !st.DocumentDeadline.IsZero() && st.Status == workflows.AppealCollecting {
		out["document_deadline"] = st.DocumentDeadline.UTC()
	}
	if !st.CoolDownUntil.IsZero() && st.Status == workflows.AppealCoolingDown {
		out["cool_down_until"] = st.CoolDownUntil.UTC()
	}
	return out
}

func (s *Server) handleGetAppeal() gin.HandlerFunc {
	return func(c *gin.Context) {
		a, err := s.applicantAppeal(c)
		if err != nil {
			fail(c, s.log, err)
			return
		}
		st, err := s.appealState(c.Request.Context(), a.ID)
		if err != nil {
			fail(c, s.log, err)
			return
		}
		c.JSON(http.StatusOK, applicantView(st))
	}
}

// handleCancelAppeal cancels by the applicant (bearer access token) or by
// the account owner (the cancel token sent to the old channels, in the body).
func (s *Server) handleCancelAppeal() gin.HandlerFunc {
	return func(c *gin.Context) {
		id := c.Param("appeal_id")
		by := "applicant"
		if bearer(c) != "" {
			if _, err := s.applicantAppeal(c); err != nil {
				fail(c, s.log, err)
				return
			}
		} else {
			var req struct {
				Token string `json:"token"`
			}
			if err := decodeJSON(c, &req); err != nil {
				fail(c, s.log, err)
				return
			}
			// A link carries the id of the key that made it: one sent before
			// a key rotation checks while its key stays in the ring.
			if s.deps.OwnerCancelToken == nil || !constantEqual(req.Token, s.deps.OwnerCancelToken(id)) &&
				!activities.CheckOwnerCancelToken(s.deps.Keys, id, req.Token) {
				s.audit(c, store.AuditEntry{Actor: "anonymous", Action: "appeal.cancel", Outcome: "denied", Subject: id, Details: map[string]string{"reason": "bad_cancel_token"}})
				fail(c, s.log, errorf(http.StatusUnauthorized, "unauthorized", "the cancel link is not valid"))
				return
			}
			by = "owner"
		}
		st, err := s.appealUpdate(c.Request.Context(), id, workflows.UpdateCancel, workflows.CancelInput{By: by})
		if err != nil {
			fail(c, s.log, err)
			return
		}
		c.JSON(http.StatusOK, gin.H{"appeal_id": id, "status": st.Status, "cancelled_by": by})
	}
}

// FactorUsedHook returns the console service's OnFactorUsed hook: a
// successful use of a factor of an account with an open appeal tells the
// appeals filed after the factor became active (SPEC §6a: a factor bound
// or made after the filing never cancels it); one in cool-down cancels
// itself, since whoever still has the factor is its owner. A failed signal
// is logged; the verification itself stands.
func FactorUsedHook(st store.AppealStore, tc client.Client, log *slog.Logger) func(ctx context.Context, accountID string, u console.FactorUse) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return func(ctx context.Context, accountID string, u console.FactorUse) {
		// Every open appeal is told; only one in cool-down acts on it. (The
		// store's status mirror may lag the workflow by a moment.)
		appeals, err := st.ListAppeals(ctx, "", accountID, 10)
		if err != nil {
			log.WarnContext(ctx, "factor-used hook: list appeals failed", "err", err)
			return
		}
		for _, a := range appeals {
			if !a.ClosedAt.IsZero() || !u.ActiveSince.Before(a.CreatedAt) {
				continue
			}
			err := tc.SignalWorkflow(context.WithoutCancel(ctx), a.ID, "", workflows.SignalDeviceUsed, workflows.DeviceUsedSignal{
				DeviceID: u.ID, At: time.Now().UTC(), Factor: u.Kind, ActiveSince: u.ActiveSince.UTC()})
			if err != nil {
				log.WarnContext(ctx, "factor-used hook: signal failed", "appeal_id", a.ID, "err", err)
			}
		}
	}
}
