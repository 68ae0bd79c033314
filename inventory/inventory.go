// Package inventory imports hardware token cards into the platform's
// inventory and rotates the keys that seal device and token secrets. The
// admin API, `mfaflow tokens import`, `mfaflow keys rotate` and the dev
// stack all go through it.
package inventory

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"strconv"
	"time"

	"github.com/mfaflow/mfaflow/mfa"
	"github.com/mfaflow/mfaflow/store"
)

// Format is the format of an import file.
type Format string

// Import formats.
const (
	CSV  Format = "csv"  // header serial,secret,algorithm,digits,period; secret in base32
	PSKC Format = "pskc" // RFC 6030
)

// ErrRejected means entries of the file were refused; nothing was imported.
// Result.Rejected says which and why.
var ErrRejected = errors.New("inventory: import rejected")

// Options of one import.
type Options struct {
	Format       Format
	PreSharedKey []byte // PSKC encrypted with a pre-shared key
	Password     string // PSKC encrypted with a PBKDF2-derived key
	MaxBytes     int64  // 0: mfa.DefaultImportMaxBytes
	BatchID      string // "": a generated id
	Actor        string // for the audit log
}

// Result of an import. Skipped lists the entries that are not token cards
// (a PSKC PIN key), which never block an import.
type Result struct {
	BatchID  string         `json:"batch_id"`
	Imported int            `json:"imported"`
	Serials  []string       `json:"serials,omitempty"`
	Rejected []mfa.RowError `json:"rejected,omitempty"`
	Skipped  []mfa.RowError `json:"skipped,omitempty"`
}

// Importer imports token files.
type Importer struct {
	Store store.Store
	Keys  *mfa.Keyring
	Now   func() time.Time
}

// Import parses r and adds every token, all or nothing. When any entry is
// refused it returns ErrRejected with every refused entry in the result.
// Entries that are not token cards are listed as skipped either way. It
// also returns the parser's errors (mfa.ErrHostileXML, mfa.ErrTooLarge,
// mfa.ErrInvalidPSKC, mfa.ErrPSKCKey, mfa.ErrInvalidCSV) and the store's.
// Every outcome is audited.
func (im *Importer) Import(ctx context.Context, r io.Reader, opts Options) (Result, error) {
	res := Result{BatchID: opts.BatchID}
	if res.BatchID == "" {
		res.BatchID = newBatchID(im.now())
	}
	var parsed mfa.Parsed
	var err error
	switch opts.Format {
	case CSV:
		parsed, err = mfa.ParseCSV(r, opts.MaxBytes)
	case PSKC:
		parsed, err = mfa.ParsePSKC(r, mfa.PSKCOptions{PreSharedKey: opts.PreSharedKey, Password: opts.Password, MaxBytes: opts.MaxBytes})
	default:
		return res, fmt.Errorf("inventory: unknown format %q", opts.Format)
	}
	if err != nil {
		im.audit(ctx, opts, res, "invalid", map[string]string{"reason": parseRefusal(err)})
		return res, err
	}
	toks, rows := parsed.Tokens, parsed.Rejected
	res.Skipped = parsed.Skipped
	for _, t := range toks {
		if t.Type == mfa.TypeHOTP {
			rows = append(rows, mfa.RowError{Row: t.Row, Serial: t.Serial, Reason: "counter-based (HOTP) keys are not supported: token cards must be time-based (TOTP)"})
		}
	}
	if len(rows) > 0 || len(toks) == 0 {
		if len(toks) == 0 && len(rows) == 0 {
			rows = append(rows, mfa.RowError{Reason: "the file holds no tokens"})
		}
		res.Rejected = rows
		im.audit(ctx, opts, res, "invalid", map[string]string{"rejected": strconv.Itoa(len(rows)), "skipped": strconv.Itoa(len(res.Skipped))})
		return res, ErrRejected
	}
	batch := make([]store.HardwareToken, 0, len(toks))
	for _, t := range toks {
		p := t.Params.WithDefaults()
		sealed, err := im.Keys.Seal(t.Secret, mfa.AAD(string(store.SealedTokens), t.Serial))
		if err != nil {
			return res, fmt.Errorf("inventory: seal: %w", err)
		}
		batch = append(batch, store.HardwareToken{
			Serial: t.Serial, Seed: sealed, Algorithm: p.Algorithm.String(), Digits: p.Digits,
			PeriodSeconds: int(p.Period / time.Second), BatchID: res.BatchID,
		})
	}
	n, err := im.Store.ImportTokens(ctx, batch)
	var conflict *store.SerialConflictError
	if errors.As(err, &conflict) {
		for _, s := range conflict.Serials {
			res.Rejected = append(res.Rejected, mfa.RowError{Row: rowOf(toks, s), Serial: s, Reason: "the serial is already in the inventory"})
		}
		im.audit(ctx, opts, res, "invalid", map[string]string{"rejected": strconv.Itoa(len(res.Rejected)), "skipped": strconv.Itoa(len(res.Skipped))})
		return res, ErrRejected
	}
	if err != nil {
		return res, err
	}
	res.Imported = n
	for _, t := range batch {
		res.Serials = append(res.Serials, t.Serial)
	}
	im.audit(ctx, opts, res, "ok", map[string]string{"imported": strconv.Itoa(n), "skipped": strconv.Itoa(len(res.Skipped)), "format": string(opts.Format)})
	return res, nil
}

func (im *Importer) audit(ctx context.Context, opts Options, res Result, outcome string, details map[string]string) {
	actor := opts.Actor
	if actor == "" {
		actor = "system"
	}
	details["batch_id"] = res.BatchID
	_, _ = im.Store.AppendAudit(context.WithoutCancel(ctx), store.AuditEntry{
		At: im.now().UTC(), Actor: actor, Action: "tokens.import", Outcome: outcome, Subject: res.BatchID, Details: details,
	})
}

func (im *Importer) now() time.Time {
	if im.Now != nil {
		return im.Now()
	}
	return time.Now()
}

// rowOf returns the row of the token with the serial, 0 when none has it.
func rowOf(toks []mfa.Token, serial string) int {
	for _, t := range toks {
		if t.Serial == serial {
			return t.Row
		}
	}
	return 0
}

func newBatchID(now time.Time) string {
	var b [4]byte
	_, _ = rand.Read(b[:])
	return "batch-" + now.UTC().Format("20060102-150405") + "-" + hex.EncodeToString(b[:])
}

// CurrentCode returns the code a token card shows at now. The dev stack uses
// it to stand in for reading a demo card.
func CurrentCode(keys *mfa.Keyring, t store.HardwareToken, now time.Time) (string, error) {
	seed, err := keys.Open(t.Seed, mfa.AAD(string(store.SealedTokens), t.Serial))
	if err != nil {
		return "", err
	}
	alg, err := mfa.ParseAlgorithm(t.Algorithm)
	if err != nil {
		return "", err
	}
	return mfa.TOTP(seed, now, mfa.Params{Algorithm: alg, Digits: t.Digits, Period: time.Duration(t.PeriodSeconds) * time.Second}), nil
}

// parseRefusal names a file the parser refused with the code the API
// answers, never the parser's text.
func parseRefusal(err error) string {
	switch {
	case errors.Is(err, mfa.ErrTooLarge):
		return "too_large"
	case errors.Is(err, mfa.ErrHostileXML):
		return "hostile_xml"
	case errors.Is(err, mfa.ErrPSKCKey):
		return "pskc_key"
	case errors.Is(err, mfa.ErrInvalidPSKC), errors.Is(err, mfa.ErrInvalidCSV):
		return "invalid_file"
	}
	return "error"
}
