package notify

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestWebhookSignsAndDelivers(t *testing.T) {
	secret := []byte("0123456789abcdef0123456789abcdef")
	var mu sync.Mutex
	var got []Message
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if !Verify(secret, r.Header.Get("X-Mfaflow-Timestamp"), r.Header.Get("X-Mfaflow-Signature"), body, time.Now(), 5*time.Minute) {
			http.Error(w, "bad signature", http.StatusUnauthorized)
			return
		}
		var m Message
		if err := json.Unmarshal(body, &m); err != nil || m.ID != r.Header.Get("X-Mfaflow-Id") {
			http.Error(w, "bad body", http.StatusBadRequest)
			return
		}
		mu.Lock()
		got = append(got, m)
		mu.Unlock()
		w.WriteHeader(http.StatusAccepted)
	}))
	defer srv.Close()

	w := Webhook{URL: srv.URL, Secret: secret}
	if err := w.Notify(context.Background(), Message{Channel: SMS, To: "13800138000", Kind: "sms_code", Body: "code 123456"}); err != nil {
		t.Fatalf("Notify: %v", err)
	}
	if len(got) != 1 || got[0].To != "13800138000" || got[0].ID == "" {
		t.Fatalf("receiver got %+v", got)
	}

	bad := Webhook{URL: srv.URL, Secret: []byte("another-secret-another-secret-xx")}
	if err := bad.Notify(context.Background(), Message{Channel: SMS, To: "x"}); !errors.Is(err, ErrRejected) {
		t.Fatalf("wrong secret: err = %v, want ErrRejected", err)
	}
}

func TestWebhookUnavailable(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusServiceUnavailable)
	}))
	w := Webhook{URL: srv.URL, Secret: []byte("k")}
	if err := w.Notify(context.Background(), Message{Channel: Email}); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("503: err = %v", err)
	}
	srv.Close()
	if err := w.Notify(context.Background(), Message{Channel: Email, Body: "secret-body"}); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("closed: err = %v", err)
	} else if strings.Contains(err.Error(), "secret-body") {
		t.Fatalf("error leaks the body: %v", err)
	}
}

func TestVerifyRejectsOldTimestamp(t *testing.T) {
	secret := []byte("s")
	body := []byte(`{}`)
	old := time.Now().Add(-time.Hour)
	ts := strconv.FormatInt(old.Unix(), 10)
	if Verify(secret, ts, "v1="+Sign(secret, ts, body), body, time.Now(), 5*time.Minute) {
		t.Fatal("an hour-old signature was accepted")
	}
	now := strconv.FormatInt(time.Now().Unix(), 10)
	if !Verify(secret, now, "v1="+Sign(secret, now, body), body, time.Now(), 5*time.Minute) {
		t.Fatal("a fresh signature was refused")
	}
}
