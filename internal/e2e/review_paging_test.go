package e2e

import (
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/mfaflow/mfaflow/auth"
	"github.com/mfaflow/mfaflow/store"
	"github.com/mfaflow/mfaflow/store/storetest"
)

// TestReviewQueuePages files three appeals and reads the queue two at a
// time: every appeal comes once, the last page has no next token, and bad
// paging parameters are refused.
func TestReviewQueuePages(t *testing.T) {
	s := newStack(t, storetest.Postgres(t), 1)
	filed := map[string]bool{}
	for i := range 3 {
		acct, phone := fmt.Sprintf("e2e-page-%d", i), fmt.Sprintf("138000007%02d", i)
		s.putAccount(acct, phone, store.LoginMFA)
		s.bindDirect(acct)
		code, out, _ := s.call(0, http.MethodPost, "/v1/appeals", "", personalAppeal(acct, phone, "11010519491231002X"))
		if code != http.StatusCreated {
			t.Fatalf("file appeal %d = %d %v", i, code, out)
		}
		filed[out["appeal_id"].(string)] = true
	}
	rev := staff(t, "rev-pages", "", auth.RoleReviewer)
	const q = "/v1/review/appeals?status=collecting_documents"

	// Visibility catches up with the workflows a moment later.
	deadline := time.Now().Add(30 * time.Second)
	for {
		_, out, _ := s.call(0, http.MethodGet, q, rev, nil)
		if n := len(out["appeals"].([]any)); n == len(filed) {
			break
		} else if time.Now().After(deadline) {
			t.Fatalf("the queue shows %d appeals, want %d", n, len(filed))
		}
		time.Sleep(100 * time.Millisecond)
	}

	seen := map[string]int{}
	token, pages := "", 0
	for {
		path := q + "&limit=2"
		if token != "" {
			path += "&page_token=" + token
		}
		code, out, _ := s.call(0, http.MethodGet, path, rev, nil)
		if code != http.StatusOK {
			t.Fatalf("page %d = %d %v", pages, code, out)
		}
		pages++
		items := out["appeals"].([]any)
		if len(items) > 2 {
			t.Fatalf("page %d has %d appeals with limit=2", pages, len(items))
		}
		for _, it := range items {
			seen[it.(map[string]any)["appeal_id"].(string)]++
		}
		next, _ := out["next_page_token"].(string)
		if next == "" {
			break
		}
		if pages > 3 {
			t.Fatal("the pages never end")
		}
		token = next
	}
	if pages != 2 || len(seen) != len(filed) {
		t.Fatalf("%d pages, appeals seen %v; want 2 pages with the %d filed", pages, seen, len(filed))
	}
	for id, n := range seen {
		if !filed[id] || n != 1 {
			t.Errorf("appeal %s seen %d times (filed here: %v)", id, n, filed[id])
		}
	}

	// A token is only good for the filters it was issued with.
	_, first, _ := s.call(0, http.MethodGet, q+"&limit=2", rev, nil)
	if code, out, _ := s.call(0, http.MethodGet, "/v1/review/appeals?status=pending_review&limit=2&page_token="+first["next_page_token"].(string), rev, nil); code != http.StatusBadRequest {
		t.Errorf("a token with other filters = %d %v, want 400", code, out)
	}
	for _, bad := range []string{"&limit=0", "&limit=201", "&limit=x", "&page_token=!!!", "&page_token=bm90LWEtdG9rZW4tYXQtYWxsLWF0LWFsbA"} {
		code, out, _ := s.call(0, http.MethodGet, q+bad, rev, nil)
		if code != http.StatusBadRequest || errCode(out) != "invalid_field" {
			t.Errorf("%s = %d %v, want 400 invalid_field", bad, code, out)
		}
	}
}
