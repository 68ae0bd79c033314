package e2e

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	enumspb "go.temporal.io/api/enums/v1"

	"github.com/mfaflow/mfaflow/auth"
	"github.com/mfaflow/mfaflow/internal/doccheck/doctest"
	"github.com/mfaflow/mfaflow/store"
	"github.com/mfaflow/mfaflow/store/storetest"
	"github.com/mfaflow/mfaflow/workflows"
)

// fileBoundsAppeal files a personal appeal for a new account with a device
// and returns its id and access token.
func (s *stack) fileBoundsAppeal(acct, phone string) (string, string) {
	s.t.Helper()
	s.putAccount(acct, phone, store.LoginMFA)
	s.bindDirect(acct)
	code, out, _ := s.call(0, http.MethodPost, "/v1/appeals", "", personalAppeal(acct, phone, "11010519491231002X"))
	if code != http.StatusCreated {
		s.t.Fatalf("create = %d %v", code, out)
	}
	return out["appeal_id"].(string), out["access_token"].(string)
}

// upload sends body as a document of the appeal.
func (s *stack) upload(id, token, docType, contentType string, body []byte) (int, map[string]any) {
	s.t.Helper()
	return s.raw(http.MethodPut, "/v1/appeals/"+id+"/documents/"+docType, token, contentType, bytes.NewReader(body), int64(len(body)))
}

// waitObjects waits until the appeal holds n objects (replaced ones are
// deleted in the background) and fails past a generous deadline.
func (s *stack) waitObjects(id string, n int) {
	s.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for len(s.objects(id)) != n && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
	}
	if keys := s.objects(id); len(keys) != n {
		s.t.Fatalf("objects of %s: %v, want %d", id, keys, n)
	}
}

// updatesAccepted counts the appeal's accepted updates in its history.
func (s *stack) updatesAccepted(id string) int {
	s.t.Helper()
	it := s.ts.GetDefaultClient().GetWorkflowHistory(context.Background(), id, "", false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	n := 0
	for it.HasNext() {
		e, err := it.Next()
		if err != nil {
			s.t.Fatal(err)
		}
		if e.GetEventType() == enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED {
			n++
		}
	}
	return n
}

// TestAppealBounds walks an appeal to its bounds on real Temporal, MinIO and
// each database: the content checks refuse unsafe and malformed files (and
// leave no object), the 11th upload of one type and the 31st update answer
// 429 and never reach the workflow's history, and a cancel still works.
func TestAppealBounds(t *testing.T) {
	forEachStore(t, func(t *testing.T, st store.Store) {
		s := newStack(t, st, 1)
		ctx := context.Background()
		id, token := s.fileBoundsAppeal("e2e-bounds", "13800000021")
		photo := workflows.DocIDHoldingPhoto

		js := doctest.Build(
			"<< /Type /Catalog /Pages 2 0 R /OpenAction 4 0 R >>",
			"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
			"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] >>",
			"<< /S /JavaScript /JS (app.alert\\(1\\)) >>",
		)
		refused := []struct {
			name, ct string
			body     []byte
			status   int
			code     string
		}{
			{"PDF with an OpenAction script", "application/pdf", js, http.StatusUnprocessableEntity, "unsafe_document"},
			{"PDF header and padding", "application/pdf", append([]byte("%PDF-1.7\n"), bytes.Repeat([]byte("x"), 5000)...), http.StatusUnsupportedMediaType, "unsupported_media_type"},
			{"PDF cut short", "application/pdf", doctest.PDF(20_000)[:15_000], http.StatusUnsupportedMediaType, "unsupported_media_type"},
			{"PNG signature only", "image/png", []byte("\x89PNG\r\n\x1a\n"), http.StatusUnsupportedMediaType, "unsupported_media_type"},
			{"JPEG signature and noise", "image/jpeg", append([]byte{0xFF, 0xD8, 0xFF, 0xE0}, bytes.Repeat([]byte{9}, 5000)...), http.StatusUnsupportedMediaType, "unsupported_media_type"},
		}
		for _, r := range refused {
			if code, out := s.upload(id, token, photo, r.ct, r.body); code != r.status || errCode(out) != r.code {
				t.Fatalf("%s = %d %v, want %d %s", r.name, code, out, r.status, r.code)
			}
		}
		if keys := s.objects(id); len(keys) != 0 {
			t.Fatalf("refused uploads left objects: %v", keys)
		}
		trail, err := st.ListAudit(ctx, store.AuditFilter{Subject: id, Limit: 100})
		if err != nil {
			t.Fatal(err)
		}
		invalid := 0
		for _, e := range trail {
			if e.Action == "document.upload" && e.Outcome == "invalid" {
				invalid++
				if strings.Contains(e.Details["reason"], "app.alert") {
					t.Fatalf("the audit quotes the file: %v", e.Details)
				}
			}
		}
		if invalid != len(refused) {
			t.Fatalf("%d refusals audited, want %d", invalid, len(refused))
		}

		// A PDF and a PNG are accepted; with the JPEGs, 10 uploads in all.
		if code, out := s.upload(id, token, photo, "application/pdf", doctest.PDF(30_000)); code != http.StatusCreated {
			t.Fatalf("clean PDF = %d %v", code, out)
		}
		if code, out := s.upload(id, token, photo, "image/png", doctest.PNG(3000)); code != http.StatusCreated {
			t.Fatalf("PNG = %d %v", code, out)
		}
		for i := 2; i < workflows.MaxUploadsPerType; i++ {
			uploadOK(t, s, "/v1/appeals/"+id+"/documents/"+photo, token, jpeg(2000+i))
		}
		if code, out := s.upload(id, token, photo, "image/jpeg", jpeg(3000)); code != http.StatusTooManyRequests || errCode(out) != "too_many_uploads" {
			t.Fatalf("11th upload = %d %v", code, out)
		}
		s.waitObjects(id, 1) // the refused one removed, the replaced ones too

		// create + 10 uploads + submit = 12 updates; a reviewer's repeated
		// claims (each accepted) take the appeal to 30.
		if code, out := s.raw(http.MethodPost, "/v1/appeals/"+id+"/submit", token, "application/json", nil, 0); code != http.StatusAccepted {
			t.Fatalf("submit = %d %v", code, out)
		}
		rev := staff(t, "rev-bounds", "", auth.RoleReviewer)
		for i := 12; i < workflows.MaxAppealUpdates; i++ {
			if code, out, _ := s.call(0, http.MethodPost, "/v1/review/appeals/"+id+"/claim", rev, nil); code != http.StatusOK {
				t.Fatalf("claim %d = %d %v", i, code, out)
			}
		}
		if code, out, _ := s.call(0, http.MethodPost, "/v1/review/appeals/"+id+"/claim", rev, nil); code != http.StatusTooManyRequests || errCode(out) != "too_many_updates" {
			t.Fatalf("31st update (claim) = %d %v", code, out)
		}
		if code, out, _ := s.call(0, http.MethodPost, "/v1/review/appeals/"+id+"/decision", rev, map[string]string{"decision": "approve"}); code != http.StatusTooManyRequests || errCode(out) != "too_many_updates" {
			t.Fatalf("31st update (decision) = %d %v", code, out)
		}
		if n := s.updatesAccepted(id); n != workflows.MaxAppealUpdates {
			t.Fatalf("%d updates in the history, want %d", n, workflows.MaxAppealUpdates)
		}
		// The reviewer's case view (a query) still has the whole timeline.
		code, view, _ := s.call(0, http.MethodGet, "/v1/review/appeals/"+id, rev, nil)
		if tl, _ := view["timeline"].([]any); code != http.StatusOK || len(tl) < workflows.MaxUploadsPerType {
			t.Fatalf("case view = %d, timeline %v", code, view["timeline"])
		}
		// Past the bound the appeal can still be cancelled.
		if code, out := s.raw(http.MethodPost, "/v1/appeals/"+id+"/cancel", token, "application/json", nil, 0); code != http.StatusOK || out["status"] != workflows.AppealCancelled {
			t.Fatalf("cancel past the bound = %d %v", code, out)
		}
		if n := s.updatesAccepted(id); n != workflows.MaxAppealUpdates+1 {
			t.Fatalf("%d updates in the history after the cancel", n)
		}
	})
}

// TestReviewNotAnAppeal: the reviewer routes answer 404 not_found for an id
// that is no appeal, a binding's workflow id (a running BindDevice) among
// them, rather than sending Temporal a query or update that workflow does
// not know.
func TestReviewNotAnAppeal(t *testing.T) {
	s := newStack(t, storetest.SQLite(t), 1)
	const acct, phone = "e2e-notappeal", "13800000022"
	s.putAccount(acct, phone, store.LoginMFA)
	if code, out := s.console(http.MethodPost, "/v1/accounts/"+acct+"/mfa/bindings", map[string]any{"device_type": "virtual"}); code != http.StatusCreated {
		t.Fatalf("start binding = %d %v", code, out)
	}
	rev := staff(t, "rev-404", "", auth.RoleReviewer)
	admin := staff(t, "admin-404", "", auth.RoleAdmin)
	for _, id := range []string{"apl_doesnotexist", workflows.BindWorkflowID(acct), "bind-nobody"} {
		for _, tok := range []string{rev, admin} {
			checks := []struct {
				method, path string
				body         any
			}{
				{http.MethodGet, "/v1/review/appeals/" + id, nil},
				{http.MethodPost, "/v1/review/appeals/" + id + "/claim", nil},
				{http.MethodPost, "/v1/review/appeals/" + id + "/decision", map[string]string{"decision": "approve"}},
				{http.MethodGet, s.signedDocumentLink(id, workflows.DocIDHoldingPhoto, "rev-404"), nil},
			}
			for _, c := range checks {
				if code, out, _ := s.call(0, c.method, c.path, tok, c.body); code != http.StatusNotFound || errCode(out) != "not_found" {
					t.Errorf("%s %s = %d %v, want 404 not_found", c.method, c.path, code, out)
				}
			}
		}
	}
	// The binding is untouched by all this.
	if code, out := s.console(http.MethodGet, "/v1/accounts/"+acct+"/mfa", nil); code != http.StatusOK {
		t.Fatalf("account view = %d %v", code, out)
	}
}

// signedDocumentLink signs a reviewer's document link as the API does (the
// route's signature check comes before the appeal lookup).
func (s *stack) signedDocumentLink(id, docType, reviewer string) string {
	exp := strconv.FormatInt(time.Now().Add(time.Minute).Unix(), 10)
	// As the server signs since b704873: a LinkToken of the ring.
	sig := s.keys.LinkToken("document-links", fmt.Appendf(nil, "%s\x00%s\x00%s\x00%s", id, docType, reviewer, exp))
	return fmt.Sprintf("/v1/review/documents/%s/%s?r=%s&exp=%s&sig=%s", id, docType, url.QueryEscape(reviewer), exp, sig)
}
