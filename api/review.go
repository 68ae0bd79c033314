package api

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/gin-gonic/gin"
	"go.temporal.io/api/workflowservice/v1"

	"github.com/mfaflow/mfaflow/store"
	"github.com/mfaflow/mfaflow/workflows"
)

// documentLinkTTL is how long a reviewer's document link works.
const documentLinkTTL = 5 * time.Minute

var appealStatuses = map[string]bool{
	workflows.AppealCollecting: true, workflows.AppealPending: true, workflows.AppealInReview: true,
	workflows.AppealCoolingDown: true, workflows.AppealUnbound: true, workflows.AppealRejected: true,
	workflows.AppealCancelled: true, workflows.AppealExpired: true,
}

// maxQueuePage is the largest page of the review queue.
const maxQueuePage = 200

// listAppeals reads one page of the review queue from Temporal's visibility
// store by the appeal's search attributes (which hold no PII): at most
// ?limit= appeals (1–200, default 200), from the page ?page_token= names. It
// returns the token of the next page, empty after the last one.
func (s *Server) listAppeals(c *gin.Context) ([]gin.H, string, error) {
	limit := maxQueuePage
	if v := c.Query("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > maxQueuePage {
			return nil, "", invalidField("limit", "a number from 1 to 200")
		}
		limit = n
	}

	q := []string{"WorkflowType = 'UnbindAppeal'"}
	if v := c.Query("status"); v != "" {
		if !appealStatuses[v] {
			return nil, "", invalidField("status", "not an appeal status")
		}
		q = append(q, fmt.Sprintf("%s = '%s'", workflows.SearchAppealStatus, v))
	}
	if v := c.Query("type"); v != "" {
		if v != workflows.ApplicantPersonal && v != workflows.ApplicantEnterprise {
			return nil, "", invalidField("type", `must be "personal" or "enterprise"`)
		}
		q = append(q, fmt.Sprintf("%s = '%s'", workflows.SearchApplicantType, v))
	}
	if v := c.Query("assignee"); v != "" {
		if !idPattern.MatchString(v) {
			return nil, "", invalidField("assignee", "not a reviewer id")
		}
		q = append(q, fmt.Sprintf("%s = '%s'", workflows.SearchAssignee, v))
	}
	// awaiting=second_approval: the appeals one reviewer approved that wait
	// for a second, different one; in_review with nobody assigned (the
	// first approval releases the claim), kept below.
	secondOnly := false
	if v := c.Query("awaiting"); v != "" {
		if v != "second_approval" {
			return nil, "", invalidField("awaiting", `must be "second_approval"`)
		}
		if st := c.Query("status"); st != "" && st != workflows.AppealInReview {
			return nil, "", invalidField("awaiting", "an appeal that awaits a second approval is in_review")
		}
		if c.Query("status") == "" {
			q = append(q, fmt.Sprintf("%s = '%s'", workflows.SearchAppealStatus, workflows.AppealInReview))
		}
		secondOnly = true
	}
	if v := c.Query("sla_breached"); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return nil, "", invalidField("sla_breached", "true or false")
		}
		q = append(q, fmt.Sprintf("%s = %t", workflows.SearchSLABreached, b))
	}
	query := strings.Join(q, " AND ")
	var pageToken []byte
	if v := c.Query("page_token"); v != "" {
		var ok bool
		if pageToken, ok = s.openPageToken(query, v); !ok {
			return nil, "", invalidField("page_token", "not a page token of this list")
		}
	}
	ctx, cancel := context.WithTimeout(c.Request.Context(), temporalTimeout)
	defer cancel()
	resp, err := s.deps.Temporal.ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{
		Query: query, PageSize: int32(limit), NextPageToken: pageToken,
	})
	if err != nil {
		return nil, "", appealError(err)
	}
	out := []gin.H{}
	for _, e := range resp.GetExecutions() {
		item := gin.H{"appeal_id": e.GetExecution().GetWorkflowId(), "started_at": e.GetStartTime().AsTime().UTC()}
		for name, p := range e.GetSearchAttributes().GetIndexedFields() {
			var v any
			if err := decodeSearchAttribute(p, &v); err == nil {
				switch name {
				case workflows.SearchAppealStatus:
					item["status"] = v
				case workflows.SearchApplicantType:
					item["applicant_type"] = v
				case workflows.SearchSubmittedAt:
					item["submitted_at"] = v
				case workflows.SearchAssignee:
					item["assignee"] = v
				case workflows.SearchSLABreached:
					item["sla_breached"] = v
				}
			}
		}
		if item["status"] == workflows.AppealInReview && (item["assignee"] == nil || item["assignee"] == "") {
			by, err := s.approvedBy(c.Request.Context(), e.GetExecution().GetWorkflowId())
			if err != nil {
				return nil, "", err
			}
			if len(by) > 0 {
				item["approved_by"] = by
			}
		}
		if secondOnly && item["approved_by"] == nil {
			continue
		}
		out = append(out, item)
	}
	return out, s.sealPageToken(query, resp.GetNextPageToken()), nil
}

// approvedBy returns the reviewers who approved appeal id since it was last
// submitted, oldest first, from its audit trail (appeal.decide entries
// with decision approve; an appeal.submit ends the look back, as a
// resubmission clears the approvals).
func (s *Server) approvedBy(ctx context.Context, id string) ([]string, error) {
	entries, err := s.deps.Store.ListAudit(ctx, store.AuditFilter{Subject: id, Limit: 200})
	if err != nil {
		return nil, err
	}
	var by []string
	for _, e := range entries { // newest first
		if e.Action == workflows.AuditAppealSubmit {
			break
		}
		if e.Action == workflows.AuditAppealDecide && e.Outcome == "ok" && e.Details["decision"] == workflows.DecisionApprove && e.Details["reviewer"] != "" &&
			!slices.Contains(by, e.Details["reviewer"]) {
			by = append([]string{e.Details["reviewer"]}, by...)
		}
	}
	return by, nil
}

// pageTokenMAC is the length of a page token's MAC.
const pageTokenMAC = 16

// sealPageToken wraps Temporal's next-page token for the client, with a MAC
// over it and the list's query: a token only reaches Temporal back as we
// issued it, for the same filters. The MAC's key is derived from the
// current key, whose id leads the token ("<key id>.<base64url>"), so a
// token issued before a key rotation opens while its key stays in the
// ring. Empty for the last page.
func (s *Server) sealPageToken(query string, token []byte) string {
	if len(token) == 0 {
		return ""
	}
	id := s.deps.Keys.CurrentID()
	mac, _ := s.pageTokenMAC(id, query, token)
	return id + "." + base64.RawURLEncoding.EncodeToString(append(append([]byte(nil), token...), mac...))
}

// openPageToken returns the Temporal token inside a client's page token,
// or false when it is not one we issued for query with a key of the ring.
func (s *Server) openPageToken(query, v string) ([]byte, bool) {
	id, v, ok := strings.Cut(v, ".")
	if !ok {
		return nil, false
	}
	b, err := base64.RawURLEncoding.DecodeString(v)
	if err != nil || len(b) <= pageTokenMAC || len(b) > 8192 {
		return nil, false
	}
	token, mac := b[:len(b)-pageTokenMAC], b[len(b)-pageTokenMAC:]
	want, ok := s.pageTokenMAC(id, query, token)
	return token, ok && hmac.Equal(mac, want)
}

// pageTokenMAC returns the MAC of a page token with the key derived from
// key id, or false when the id is not in the ring.
func (s *Server) pageTokenMAC(keyID, query string, token []byte) ([]byte, bool) {
	key, ok := s.deps.Keys.DeriveKeyFor(keyID, "queue-pages")
	if !ok {
		return nil, false
	}
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(query))
	mac.Write([]byte{0})
	mac.Write(token)
	return mac.Sum(nil)[:pageTokenMAC], true
}

func (s *Server) handleReviewQueue() gin.HandlerFunc {
	return func(c *gin.Context) {
		s.respondAppealList(c)
	}
}

// respondAppealList answers one page of the appeal list, with the token of
// the next page when there is one.
func (s *Server) respondAppealList(c *gin.Context) {
	items, next, err := s.listAppeals(c)
	if err != nil {
		fail(c, s.log, err)
		return
	}
	body := gin.H{"appeals": items}
	if next != "" {
		body["next_page_token"] = next
	}
	c.JSON(http.StatusOK, body)
}

// maskName keeps the first character.
func maskName(s string) string {
	r := []rune(s)
	if len(r) <= 1 {
		return strings.Repeat("*", len(r))
	}
	return string(r[:1]) + strings.Repeat("*", len(r)-1)
}

// maskPhone keeps the first 3 and last 4 digits.
func maskPhone(s string) string {
	if len(s) < 8 {
		return strings.Repeat("*", len(s))
	}
	return s[:3] + strings.Repeat("*", len(s)-7) + s[len(s)-4:]
}

// documentLinkLabel labels the key (mfa.Keyring.LinkToken) of document
// links.
const documentLinkLabel = "document-links"

// documentLink signs a link to one document for one reviewer. Its sig is a
// mfa.Keyring.LinkToken, led by the id of the key that made it, so a link
// made just before a key rotation works until it expires.
func (s *Server) documentLink(appealID, docType, reviewer string, exp time.Time) string {
	e := strconv.FormatInt(exp.Unix(), 10)
	sig := s.deps.Keys.LinkToken(documentLinkLabel, documentLinkMsg(appealID, docType, reviewer, e))
	return fmt.Sprintf("/v1/review/documents/%s/%s?r=%s&exp=%s&sig=%s", appealID, docType, url.QueryEscape(reviewer), e, sig)
}

func documentLinkMsg(appealID, docType, reviewer, exp string) []byte {
	return fmt.Appendf(nil, "%s\x00%s\x00%s\x00%s", appealID, docType, reviewer, exp)
}

// reviewerView masks PII and links documents for the reviewer.
func (s *Server) reviewerView(st workflows.AppealState, reviewer string) gin.H {
	a := st.Applicant
	applicant := gin.H{
		"login": gin.H{"kind": a.LoginKind, "id": a.LoginID}, "bound_phone": maskPhone(a.BoundPhone),
		"name": maskName(a.Name), "id_number": MaskID(a.IDNumber), "contact_phone": maskPhone(a.ContactPhone),
	}
	if st.ApplicantType == workflows.ApplicantEnterprise {
		applicant["company_name"] = a.CompanyName
		applicant["company_reg_number"] = MaskID(a.CompanyRegNumber)
	}
	exp := s.deps.Now().Add(documentLinkTTL)
	docs := []gin.H{}
	for _, t := range st.RequiredDocuments {
		d, ok := st.Documents[t]
		if !ok {
			docs = append(docs, gin.H{"type": t, "uploaded": false})
			continue
		}
		docs = append(docs, gin.H{"type": t, "uploaded": true, "sha256": d.SHA256, "size": d.Size, "content_type": d.ContentType,
			"uploaded_at": d.UploadedAt.UTC(), "url": s.documentLink(st.AppealID, t, reviewer, exp), "url_expires_at": exp.UTC()})
	}
	approvals := []gin.H{}
	for _, ap := range st.Approvals {
		approvals = append(approvals, gin.H{"reviewer": ap.Reviewer, "at": ap.At.UTC()})
	}
	timeline := []gin.H{}
	for _, e := range st.Timeline {
		timeline = append(timeline, gin.H{"at": e.At.UTC(), "status": e.Status, "note": e.Note})
	}
	out := gin.H{
		"appeal_id": st.AppealID, "account_id": st.AccountID, "applicant_type": st.ApplicantType, "status": st.Status,
		"applicant": applicant, "documents": docs, "timeline": timeline, "assignee": st.Assignee,
		"approvals": approvals, "approvals_needed": st.ApprovalsNeeded, "sla_breached": st.SLABreached,
	}
	if !st.SubmittedAt.IsZero() {
		out["submitted_at"] = st.SubmittedAt.UTC()
	}
	if !st.CoolDownUntil.IsZero() {
		out["cool_down_until"] = st.CoolDownUntil.UTC()
	}
	return out
}

// reviewAppeal answers 404 not_found unless id names an appeal. Every
// appeal has its row in the store before its workflow starts; without this
// check an id of another workflow (a binding's "bind-…") would reach
// Temporal, which answers a query or update of a name that workflow does
// not know with an error that is no "not found".
func (s *Server) reviewAppeal(c *gin.Context, id string) error {
	if !idPattern.MatchString(id) {
		return noAppeal()
	}
	if _, err := s.deps.Store.GetAppeal(c.Request.Context(), id); err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return noAppeal()
		}
		return err
	}
	return nil
}

// noAppeal is the answer to an id that names no appeal.
func noAppeal() error { return errorf(http.StatusNotFound, "not_found", "no such appeal") }

func (s *Server) handleReviewCase() gin.HandlerFunc {
	return func(c *gin.Context) {
		id := c.Param("appeal_id")
		if err := s.reviewAppeal(c, id); err != nil {
			fail(c, s.log, err)
			return
		}
		p := principal(c)
		st, err := s.appealState(c.Request.Context(), id)
		if err != nil {
			fail(c, s.log, err)
			return
		}
		if st.Status == workflows.AppealIneligible {
			fail(c, s.log, store.ErrNotFound)
			return
		}
		s.audit(c, store.AuditEntry{Actor: actor(c), Action: "appeal.view", Outcome: "ok", AccountID: st.AccountID, Subject: id})
		view := s.reviewerView(st, p.Subject)
		trail, err := s.deps.Store.ListAudit(c.Request.Context(), store.AuditFilter{Subject: id, Limit: 200})
		if err != nil {
			fail(c, s.log, err)
			return
		}
		if trail == nil {
			trail = []store.AuditEntry{}
		}
		view["audit"] = trail
		c.JSON(http.StatusOK, view)
	}
}

// handleReviewDocument streams one document through a signed, short-lived
// link (so an <img> can show it) and audits the view.
func (s *Server) handleReviewDocument() gin.HandlerFunc {
	return func(c *gin.Context) {
		id, docType := c.Param("appeal_id"), c.Param("doc_type")
		reviewer, exp, sig := c.Query("r"), c.Query("exp"), c.Query("sig")
		e, err := strconv.ParseInt(exp, 10, 64)
		_, signed := s.deps.Keys.CheckLinkToken(documentLinkLabel, documentLinkMsg(id, docType, reviewer, exp), sig)
		valid := err == nil && signed && s.deps.Now().Before(time.Unix(e, 0))
		if !valid {
			s.audit(c, store.AuditEntry{Actor: "anonymous", Action: "document.view", Outcome: "denied", Subject: id, Details: map[string]string{"doc_type": docType}})
			fail(c, s.log, errorf(http.StatusForbidden, "forbidden", "the document link is not valid or has expired"))
			return
		}
		if err := s.reviewAppeal(c, id); err != nil {
			fail(c, s.log, err)
			return
		}
		st, err := s.appealState(c.Request.Context(), id)
		if err != nil {
			fail(c, s.log, err)
			return
		}
		d, ok := st.Documents[docType]
		if !ok || st.DocumentsDeleted {
			fail(c, s.log, store.ErrNotFound)
			return
		}
		r, obj, err := s.deps.Documents.Open(c.Request.Context(), d.ObjectKey)
		if err != nil {
			fail(c, s.log, err)
			return
		}
		defer r.Close()
		s.audit(c, store.AuditEntry{Actor: "reviewer:" + reviewer, Action: "document.view", Outcome: "ok", AccountID: st.AccountID, Subject: id,
			Details: map[string]string{"doc_type": docType, "sha256": d.SHA256}})
		c.Header("Content-Security-Policy", "sandbox; default-src 'none'")
		c.Header("Content-Disposition", "inline")
		c.Header("Content-Length", strconv.FormatInt(obj.Size, 10))
		c.Header("Content-Type", d.ContentType)
		c.Status(http.StatusOK)
		_, _ = io.Copy(c.Writer, r)
	}
}

func (s *Server) reviewerInput(c *gin.Context) workflows.ReviewerInput {
	p := principal(c)
	return workflows.ReviewerInput{Reviewer: p.Subject, ReviewerAccountID: p.AccountID}
}

func (s *Server) handleClaim() gin.HandlerFunc {
	return func(c *gin.Context) {
		id := c.Param("appeal_id")
		if err := s.reviewAppeal(c, id); err != nil {
			fail(c, s.log, err)
			return
		}
		st, err := s.appealUpdate(c.Request.Context(), id, workflows.UpdateClaim, s.reviewerInput(c))
		if err != nil {
			s.audit(c, store.AuditEntry{Actor: actor(c), Action: "appeal.claim", Outcome: "denied", Subject: id, Details: map[string]string{"reason": errCodeOf(err)}})
			fail(c, s.log, err)
			return
		}
		c.JSON(http.StatusOK, gin.H{"appeal_id": id, "status": st.Status, "assignee": st.Assignee})
	}
}

func (s *Server) handleDecide() gin.HandlerFunc {
	return func(c *gin.Context) {
		id := c.Param("appeal_id")
		if err := s.reviewAppeal(c, id); err != nil {
			fail(c, s.log, err)
			return
		}
		var req struct {
			Decision string `json:"decision"`
			Reason   string `json:"reason"`
		}
		if !s.decode(c, &req) {
			return
		}
		switch req.Decision {
		case workflows.DecisionApprove:
		case workflows.DecisionReject, workflows.DecisionRequestInfo:
			if strings.TrimSpace(req.Reason) == "" {
				fail(c, s.log, invalidField("reason", "required to reject or to request information"))
				return
			}
		default:
			fail(c, s.log, invalidField("decision", `must be "approve", "reject" or "request_info"`))
			return
		}
		if len(req.Reason) > 1000 {
			fail(c, s.log, invalidField("reason", "at most 1000 characters"))
			return
		}
		st, err := s.appealUpdate(c.Request.Context(), id, workflows.UpdateDecide, workflows.DecideInput{ReviewerInput: s.reviewerInput(c), Decision: req.Decision, Reason: req.Reason})
		if err != nil {
			s.audit(c, store.AuditEntry{Actor: actor(c), Action: "appeal.decide", Outcome: "denied", Subject: id, Details: map[string]string{"decision": req.Decision, "reason": errCodeOf(err)}})
			fail(c, s.log, err)
			return
		}
		c.JSON(http.StatusOK, gin.H{"appeal_id": id, "status": st.Status, "approvals": len(st.Approvals), "approvals_needed": st.ApprovalsNeeded})
	}
}

// errCodeOf is the client-visible code of err, for audit details.
func errCodeOf(err error) string {
	e, _ := toError(err)
	return e.Code
}

func (s *Server) handleAdminAppeals() gin.HandlerFunc {
	return func(c *gin.Context) {
		s.respondAppealList(c)
	}
}
