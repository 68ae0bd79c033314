// Package dbutil holds what the two store implementations share: migration
// files, identifiers, time precision and limits.
package dbutil

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/mfaflow/mfaflow/store"
)

// Migration is one numbered schema change.
type Migration struct {
	Version int
	Name    string // file name
	SQL     string
}

// ReadMigrations returns the migrations in dir of fsys, files named
// NNNN_description.sql, in version order. It returns an error for a file
// that does not follow the pattern or a repeated version.
func ReadMigrations(fsys fs.FS, dir string) ([]Migration, error) {
	entries, err := fs.ReadDir(fsys, dir)
	if err != nil {
		return nil, err
	}
	var out []Migration
	seen := map[int]string{}
	for _, e := range entries {
		name := e.Name()
		if e.IsDir() || !strings.HasSuffix(name, ".sql") {
			continue
		}
		num, _, ok := strings.Cut(name, "_")
		v, err := strconv.Atoi(num)
		if !ok || err != nil || v <= 0 {
			return nil, fmt.Errorf("migration %s: name is not NNNN_description.sql", name)
		}
		if other, dup := seen[v]; dup {
			return nil, fmt.Errorf("migrations %s and %s share version %d", other, name, v)
		}
		seen[v] = name
		b, err := fs.ReadFile(fsys, path.Join(dir, name))
		if err != nil {
			return nil, err
		}
		out = append(out, Migration{Version: v, Name: name, SQL: string(b)})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Version < out[j].Version })
	return out, nil
}

// NewID returns prefix_ followed by 128 random bits in hex.
func NewID(prefix string) string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return prefix + "_" + hex.EncodeToString(b[:])
}

// Time returns t in UTC at the microsecond precision both databases keep.
// The zero time stays zero.
func Time(t time.Time) time.Time {
	if t.IsZero() {
		return time.Time{}
	}
	return t.UTC().Truncate(time.Microsecond)
}

// Now returns the current time as Time stores it.
func Now() time.Time { return Time(time.Now()) }

// Limit applies the default (100) and the cap (1000) of list limits.
func Limit(n int) int {
	switch {
	case n <= 0:
		return 100
	case n > 1000:
		return 1000
	}
	return n
}

// MarshalMap encodes a details map as JSON; nil for an empty map.
func MarshalMap(m map[string]string) ([]byte, error) {
	if len(m) == 0 {
		return nil, nil
	}
	return json.Marshal(m)
}

// UnmarshalMap decodes what MarshalMap encoded; nil for empty input.
func UnmarshalMap(b []byte) (map[string]string, error) {
	if len(b) == 0 {
		return nil, nil
	}
	var m map[string]string
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, err
	}
	return m, nil
}

// Logins returns the logins without repeats, in their first order.
func Logins(in []store.Login) []store.Login {
	out := make([]store.Login, 0, len(in))
	seen := map[store.Login]bool{}
	for _, l := range in {
		if !seen[l] {
			seen[l] = true
			out = append(out, l)
		}
	}
	return out
}

// DuplicateSerials returns the serials repeated in batch, sorted.
func DuplicateSerials(batch []store.HardwareToken) []string {
	count := map[string]int{}
	for _, t := range batch {
		count[t.Serial]++
	}
	var dup []string
	for s, n := range count {
		if n > 1 {
			dup = append(dup, s)
		}
	}
	sort.Strings(dup)
	return dup
}

// SealedColumns returns the key id and ciphertext columns and the id column
// of a sealed table, or false for an unknown table.
func SealedColumns(t store.SealedTable) (keyID, sealed, id string, ok bool) {
	switch t {
	case store.SealedDevices:
		return "secret_key_id", "sealed_secret", "id", true
	case store.SealedTokens:
		return "seed_key_id", "sealed_seed", "serial", true
	}
	return "", "", "", false
}

// ChallengeRefusal returns why c cannot be tried at now, in the order of
// precedence of store.ChallengeStore: ErrChallengeUsed, ErrChallengeExpired,
// ErrChallengeExhausted; nil when it can.
func ChallengeRefusal(c store.SMSChallenge, now time.Time) error {
	switch {
	case !c.UsedAt.IsZero():
		return store.ErrChallengeUsed
	case !now.Before(c.ExpiresAt):
		return store.ErrChallengeExpired
	case c.TriesLeft <= 0:
		return store.ErrChallengeExhausted
	}
	return nil
}

// GrantRefusal returns why g cannot be consumed by accountID for (action,
// resource) at now, in the order of precedence of store.GrantStore:
// ErrNotFound (another account's grant), ErrGrantMismatch, ErrGrantUsed,
// ErrGrantExpired; nil when it can.
func GrantRefusal(g store.Grant, accountID, action, resource string, now time.Time) error {
	switch {
	case g.AccountID != accountID:
		return store.ErrNotFound
	case g.Action != action || g.Resource != resource:
		return store.ErrGrantMismatch
	case !g.UsedAt.IsZero():
		return store.ErrGrantUsed
	case !now.Before(g.ExpiresAt):
		return store.ErrGrantExpired
	}
	return nil
}

// CheckAppeal returns an error when a lacks what store.AppealStore's
// CreateAppeal requires: an ID, an account, an applicant type, a status and
// a token hash that is a hex SHA-256 (so that a token itself is never
// stored by mistake).
func CheckAppeal(a store.Appeal) error {
	switch {
	case a.ID == "" || a.AccountID == "" || a.ApplicantType == "" || a.Status == "":
		return errors.New("id, account, applicant type and status are required")
	case !isSHA256Hex(a.TokenHash):
		return errors.New("token hash is not a hex SHA-256")
	}
	return nil
}

// isSHA256Hex reports whether s is 64 lowercase hex digits.
func isSHA256Hex(s string) bool {
	if len(s) != 64 {
		return false
	}
	for _, c := range s {
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// RateWindow returns the bounds of the fixed window of length window
// containing now, at microsecond precision and aligned on the Unix epoch,
// so that every replica computes the same window. It returns an error when
// window is under a microsecond or limit is negative.
func RateWindow(window time.Duration, limit int, now time.Time) (start, end time.Time, err error) {
	w := window.Microseconds()
	if w < 1 || limit < 0 {
		return time.Time{}, time.Time{}, fmt.Errorf("invalid rate limit: window %v, limit %d", window, limit)
	}
	t := now.UnixMicro()
	s := t - t%w
	if t%w < 0 { // before the epoch: round down, not towards zero
		s -= w
	}
	return time.UnixMicro(s).UTC(), time.UnixMicro(s + w).UTC(), nil
}

// RateVerdict answers a rate-limit call from the window's count: allowed
// when count is within limit, else the time from now to the window's end.
// Hit passes the count with its event, Peek the count plus one.
func RateVerdict(count int64, limit int, end, now time.Time) (bool, time.Duration) {
	if count > int64(limit) {
		return false, end.Sub(now)
	}
	return true, 0
}

// ChallengePruneGrace is how long after its expiry a WebAuthn challenge is
// kept (so a late answer is told "expired" rather than "unknown"); older
// ones are deleted now and then by CreateWebAuthnChallenge.
const ChallengePruneGrace = time.Hour

// RateLimitPruneGrace is how long after its end a rate-limit window is
// kept, so that replicas whose clocks lag still find their counts.
const RateLimitPruneGrace = 5 * time.Minute

// Pruner says when a store should prune old rate-limit windows: on the
// first hit and then every pruneEvery hits. Its zero value is ready; it is
// safe for concurrent use.
type Pruner struct{ n atomic.Uint64 }

const pruneEvery = 256

// Due counts a hit and reports whether this one should prune.
func (p *Pruner) Due() bool { return p.n.Add(1)%pruneEvery == 1 }

// maxFirstLock bounds FirstLock's search.
const maxFirstLock = 1 << 16

// FirstLock returns the smallest failure count at which policy locks the
// budget at now (a timed or a hard lock), or a bound far above any real
// policy when it never does. A store's single-statement spend counts an
// attempt only while the new count stays below it; the attempt that earns
// a lock takes the locked read-modify-write path, so the policy sees every
// count that can lock. Policies are monotonic: once a count locks, every
// higher count does.
func FirstLock(policy func(failures int, now time.Time) (time.Time, bool), now time.Time) int {
	for n := 1; n < maxFirstLock; n++ {
		if until, hard := policy(n, now); hard || now.Before(until) {
			return n
		}
	}
	return maxFirstLock
}

// WebAuthnDevice returns d as CreateWebAuthnDevice stores it: type
// WebAuthn, active, with no sealed secret (an empty key id keeps it out of
// key rotation) and no TOTP parameters.
func WebAuthnDevice(d store.Device) store.Device {
	d.Type, d.Status = store.WebAuthn, store.DeviceActive
	d.Secret.KeyID, d.Secret.Ciphertext = "", []byte{}
	d.Algorithm, d.Digits, d.PeriodSeconds, d.Serial = "", 0, 0, ""
	return d
}

// Bytes returns b, or an empty slice for nil, for NOT NULL binary columns.
func Bytes(b []byte) []byte {
	if b == nil {
		return []byte{}
	}
	return b
}

// SplitList splits a comma-separated column; "" is an empty list.
func SplitList(s string) []string {
	if s == "" {
		return nil
	}
	return strings.Split(s, ",")
}

// WebAuthnChallengeRefusal says why challenge c cannot be used by
// accountID at now: store.ErrNotFound for another account's,
// store.ErrChallengeUsed, store.ErrChallengeExpired; store.ErrConflict when
// it could be (a race the caller lost in between cannot make it usable).
func WebAuthnChallengeRefusal(c store.WebAuthnChallenge, accountID string, now time.Time) error {
	switch {
	case c.AccountID != accountID:
		return store.ErrNotFound
	case !c.UsedAt.IsZero():
		return store.ErrChallengeUsed
	case !c.ExpiresAt.After(now):
		return store.ErrChallengeExpired
	}
	return store.ErrConflict
}

// UnbindAudit returns the audit entry of an unbind that revoked ids: r.Audit
// for the account and appeal, at r.At, with "devices" and "count".
func UnbindAudit(r store.UnbindRequest, ids []string) store.AuditEntry {
	e := r.Audit
	e.AccountID, e.Subject = r.AccountID, r.AppealID
	if e.At.IsZero() {
		e.At = r.At
	}
	e.At = Time(e.At)
	d := map[string]string{}
	for k, v := range e.Details {
		d[k] = v
	}
	d["devices"], d["count"] = strings.Join(ids, ","), strconv.Itoa(len(ids))
	e.Details = d
	return e
}

// UnboundDevices reads the devices an unbind's audit details recorded.
func UnboundDevices(details string) ([]string, error) {
	m, err := UnmarshalMap([]byte(details))
	if err != nil {
		return nil, err
	}
	if m["devices"] == "" {
		return nil, nil
	}
	return strings.Split(m["devices"], ","), nil
}
