// Package notify delivers messages to users (SMS, e-mail) and to the console
// (session revocation). Two adapters satisfy Notifier: Webhook posts
// HMAC-signed JSON to the platform's notifier in production, and Outbox keeps
// messages in the app store for the dev stack and tests (GET /dev/outbox).
package notify

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"

	"github.com/mfaflow/mfaflow/store"
)

// Channels a message can go through.
const (
	SMS     = "sms"
	Email   = "email"
	Console = "console" // the console's session-revocation hook
)

// ErrUnavailable means the message could not be handed over; retry later.
var ErrUnavailable = errors.New("notify: unavailable")

// ErrRejected means the receiver refused the message; retrying will not help.
var ErrRejected = errors.New("notify: rejected")

// Message is one notification. Body may carry an SMS code meant for the
// recipient: adapters deliver it but never log it.
type Message struct {
	// ID makes delivery idempotent: receivers drop a repeated ID. Empty: one is generated.
	ID      string            `json:"id"`
	Channel string            `json:"channel"`
	To      string            `json:"to"`
	Kind    string            `json:"kind"`
	Body    string            `json:"body"`
	Data    map[string]string `json:"data,omitempty"`
}

// Notifier hands messages over for delivery.
type Notifier interface {
	Notify(ctx context.Context, m Message) error
}

// OutboxStore is the part of the app store the outbox needs.
type OutboxStore interface {
	AddOutbox(ctx context.Context, m store.OutboxMessage) (store.OutboxMessage, error)
}

// Outbox stores every message in the app store instead of sending it.
type Outbox struct {
	Store OutboxStore
}

// Notify stores m. It returns the store's error.
func (o Outbox) Notify(ctx context.Context, m Message) error {
	data := m.Data
	if m.ID != "" {
		data = make(map[string]string, len(m.Data)+1)
		for k, v := range m.Data {
			data[k] = v
		}
		data["message_id"] = m.ID
	}
	_, err := o.Store.AddOutbox(ctx, store.OutboxMessage{Channel: m.Channel, To: m.To, Kind: m.Kind, Body: m.Body, Data: data})
	return err
}

// Webhook posts each message as JSON to URL, signed with HMAC-SHA256 over
// "timestamp.body" in the header X-Mfaflow-Signature ("v1=<hex>"), with the
// timestamp in X-Mfaflow-Timestamp and the message id in X-Mfaflow-Id.
type Webhook struct {
	URL    string
	Secret []byte
	Client *http.Client // nil: a client with a 10 s timeout
	Now    func() time.Time
}

// Notify posts m. A 2xx answer is success; 4xx (except 408 and 429) returns
// ErrRejected; anything else returns ErrUnavailable.
func (w Webhook) Notify(ctx context.Context, m Message) error {
	if m.ID == "" {
		m.ID = newID()
	}
	body, err := json.Marshal(m)
	if err != nil {
		return fmt.Errorf("notify: encode: %w", err)
	}
	now := time.Now
	if w.Now != nil {
		now = w.Now
	}
	ts := strconv.FormatInt(now().Unix(), 10)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, w.URL, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("notify: request: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Mfaflow-Id", m.ID)
	req.Header.Set("X-Mfaflow-Timestamp", ts)
	req.Header.Set("X-Mfaflow-Signature", "v1="+Sign(w.Secret, ts, body))
	c := w.Client
	if c == nil {
		c = &http.Client{Timeout: 10 * time.Second}
	}
	resp, err := c.Do(req)
	if err != nil {
		return fmt.Errorf("%w: %s channel", ErrUnavailable, m.Channel)
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	_ = resp.Body.Close()
	switch {
	case resp.StatusCode >= 200 && resp.StatusCode < 300:
		return nil
	case resp.StatusCode >= 400 && resp.StatusCode < 500 && resp.StatusCode != http.StatusRequestTimeout && resp.StatusCode != http.StatusTooManyRequests:
		return fmt.Errorf("%w: status %d", ErrRejected, resp.StatusCode)
	default:
		return fmt.Errorf("%w: status %d", ErrUnavailable, resp.StatusCode)
	}
}

// Sign returns the hex HMAC-SHA256 of "timestamp.body" under secret.
func Sign(secret []byte, timestamp string, body []byte) string {
	mac := hmac.New(sha256.New, secret)
	mac.Write([]byte(timestamp))
	mac.Write([]byte{'.'})
	mac.Write(body)
	return hex.EncodeToString(mac.Sum(nil))
}

// Verify checks a webhook request's signature and that its timestamp is within
// maxAge of now. Receivers (and tests) use it.
func Verify(secret []byte, timestamp, signature string, body []byte, now time.Time, maxAge time.Duration) bool {
	sec, err := strconv.ParseInt(timestamp, 10, 64)
	if err != nil {
		return false
	}
	if d := now.Sub(time.Unix(sec, 0)); d > maxAge || d < -maxAge {
		return false
	}
	want := "v1=" + Sign(secret, timestamp, body)
	return hmac.Equal([]byte(want), []byte(signature))
}

// Router sends each channel through its own notifier; Default takes the rest.
type Router struct {
	Default  Notifier
	Channels map[string]Notifier
}

// Notify routes m by channel.
func (r Router) Notify(ctx context.Context, m Message) error {
	if n, ok := r.Channels[m.Channel]; ok {
		return n.Notify(ctx, m)
	}
	return r.Default.Notify(ctx, m)
}

func newID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
