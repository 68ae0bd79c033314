package storetest

import (
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/mfaflow/mfaflow/store"
)

// testSessions: a staff session is found by its id hash until it expires
// or is deleted; a deleted one stays gone; expired ones are swept.
func testSessions(t *testing.T, s store.Store) {
	c := ctx(t)
	now := time.Now().UTC().Truncate(time.Second)
	a := store.StaffSession{IDHash: "aa01", Subject: "reviewer1", Name: "Reviewer One", Roles: []string{"reviewer"},
		CreatedAt: now, ExpiresAt: now.Add(time.Hour)}
	if err := s.CreateSession(c, a); err != nil {
		t.Fatalf("CreateSession: %v", err)
	}
	if err := s.CreateSession(c, a); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("CreateSession twice: %v, want ErrConflict", err)
	}
	got, err := s.GetSession(c, "aa01", now)
	if err != nil {
		t.Fatalf("GetSession: %v", err)
	}
	if !reflect.DeepEqual(got, a) {
		t.Fatalf("GetSession = %+v, want %+v", got, a)
	}
	if _, err := s.GetSession(c, "aa01", now.Add(time.Hour)); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("GetSession at expiry: %v, want ErrNotFound", err)
	}
	if _, err := s.GetSession(c, "bb02", now); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("GetSession unknown: %v, want ErrNotFound", err)
	}

	b := store.StaffSession{IDHash: "bb02", Subject: "admin", Roles: []string{"admin", "reviewer"}, ExpiresAt: now.Add(time.Minute)}
	if err := s.CreateSession(c, b); err != nil {
		t.Fatalf("CreateSession b: %v", err)
	}
	got, err = s.GetSession(c, "bb02", now)
	if err != nil || got.CreatedAt.IsZero() || !reflect.DeepEqual(got.Roles, b.Roles) {
		t.Fatalf("GetSession b = %+v, %v; want roles %v and a creation time", got, err, b.Roles)
	}

	if err := s.DeleteSession(c, "aa01"); err != nil {
		t.Fatalf("DeleteSession: %v", err)
	}
	if _, err := s.GetSession(c, "aa01", now); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("GetSession after delete: %v, want ErrNotFound", err)
	}
	if err := s.DeleteSession(c, "aa01"); err != nil {
		t.Fatalf("DeleteSession again: %v, want no error", err)
	}

	n, err := s.DeleteExpiredSessions(c, now.Add(2*time.Minute))
	if err != nil || n != 1 {
		t.Fatalf("DeleteExpiredSessions = %d, %v; want 1", n, err)
	}
	if _, err := s.GetSession(c, "bb02", now); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("GetSession after sweep: %v, want ErrNotFound", err)
	}
}
