package inventory_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/mfaflow/mfaflow/internal/harness"
	"github.com/mfaflow/mfaflow/inventory"
	"github.com/mfaflow/mfaflow/mfa"
	"github.com/mfaflow/mfaflow/store"
	"github.com/mfaflow/mfaflow/store/storetest"
)

func TestMain(m *testing.M) { harness.Main(m) }

// forEachStore runs f on a fresh SQLite file and a fresh PostgreSQL database.
func forEachStore(t *testing.T, f func(t *testing.T, st store.Store)) {
	t.Run("sqlite", func(t *testing.T) { f(t, storetest.SQLite(t)) })
	t.Run("postgres", func(t *testing.T) { f(t, storetest.Postgres(t)) })
}

func ring(t *testing.T) *mfa.Keyring {
	t.Helper()
	k, err := mfa.GenerateKeyring()
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func newSeed(t *testing.T) string {
	t.Helper()
	s, err := mfa.NewSecret(nil)
	if err != nil {
		t.Fatal(err)
	}
	return mfa.EncodeSecret(s)
}

func csvFile(rows ...string) string {
	return "serial,secret,algorithm,digits,period\n" + strings.Join(rows, "\n") + "\n"
}

const (
	seedA = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ" // "12345678901234567890"
	seedB = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"
)

func auditOutcomes(t *testing.T, st store.Store, batch string) []string {
	t.Helper()
	es, err := st.ListAudit(context.Background(), store.AuditFilter{Subject: batch})
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range es {
		if e.Action == "tokens.import" {
			out = append(out, e.Outcome)
		}
	}
	return out
}

func TestImportCSV(t *testing.T) {
	forEachStore(t, func(t *testing.T, st store.Store) {
		ctx := context.Background()
		keys := ring(t)
		im := inventory.Importer{Store: st, Keys: keys}
		res, err := im.Import(ctx, strings.NewReader(csvFile("CARD-0001,"+seedA+",SHA1,6,30", "CARD-0002,"+seedB+",SHA256,8,60")), inventory.Options{Format: inventory.CSV, BatchID: "b1"})
		if err != nil {
			t.Fatalf("Import: %v (%+v)", err, res.Rejected)
		}
		if res.Imported != 2 || len(res.Serials) != 2 {
			t.Fatalf("Import = %+v", res)
		}
		tok, err := st.GetToken(ctx, "CARD-0001")
		if err != nil {
			t.Fatal(err)
		}
		if tok.State != store.TokenUnassigned || tok.BatchID != "b1" || tok.Seed.KeyID != keys.CurrentID() {
			t.Fatalf("token = %+v", tok)
		}
		if bytes.Contains(tok.Seed.Ciphertext, []byte("12345678901234567890")) {
			t.Fatal("seed stored in the clear")
		}
		now := time.Unix(1_800_000_000, 0)
		got, err := inventory.CurrentCode(keys, tok, now)
		if err != nil {
			t.Fatal(err)
		}
		if want := mfa.TOTP([]byte("12345678901234567890"), now, mfa.Params{}); got != want {
			t.Fatalf("CurrentCode = %s, want %s", got, want)
		}
		// A sealed seed copied onto another serial does not open.
		other, _ := st.GetToken(ctx, "CARD-0002")
		other.Seed = tok.Seed
		if _, err := inventory.CurrentCode(keys, other, now); err == nil {
			t.Fatal("a seed sealed for CARD-0001 opened as CARD-0002")
		}
		if got := auditOutcomes(t, st, "b1"); len(got) != 1 || got[0] != "ok" {
			t.Fatalf("audit = %v", got)
		}
	})
}

func TestImportIsAllOrNothing(t *testing.T) {
	forEachStore(t, func(t *testing.T, st store.Store) {
		ctx := context.Background()
		im := inventory.Importer{Store: st, Keys: ring(t)}
		tests := []struct {
			name    string
			file    string
			rows    int
			reasons []string
		}{
			{"bad secret", csvFile("GOOD-0001,"+seedA+",SHA1,6,30", "BAD-0002,not!base32,SHA1,6,30"), 1, nil},
			{"bad digits and period", csvFile("GOOD-0001,"+seedA+",SHA1,7,30", "GOOD-0003,"+seedB+",SHA1,6,45"), 2, nil},
			{"duplicate in file", csvFile("DUP-0001,"+seedA+",SHA1,6,30", "DUP-0001,"+seedB+",SHA1,6,30"), 1, nil},
			{"empty file", csvFile(), 1, nil},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				batch := "b-" + strings.ReplaceAll(tt.name, " ", "-")
				res, err := im.Import(ctx, strings.NewReader(tt.file), inventory.Options{Format: inventory.CSV, BatchID: batch})
				if !errors.Is(err, inventory.ErrRejected) {
					t.Fatalf("err = %v, want ErrRejected", err)
				}
				if len(res.Rejected) < tt.rows || res.Imported != 0 {
					t.Fatalf("result = %+v", res)
				}
				for _, r := range res.Rejected {
					if r.Reason == "" || strings.Contains(r.Reason, seedA) || strings.Contains(r.Reason, "not!base32") {
						t.Fatalf("reason %q is empty or echoes the file", r.Reason)
					}
				}
				for _, serial := range []string{"GOOD-0001", "GOOD-0003", "DUP-0001"} {
					if _, err := st.GetToken(ctx, serial); !errors.Is(err, store.ErrNotFound) {
						t.Fatalf("GetToken(%s) = %v after a refused import", serial, err)
					}
				}
				if got := auditOutcomes(t, st, batch); len(got) != 1 || got[0] != "invalid" {
					t.Fatalf("audit = %v", got)
				}
			})
		}

		t.Run("serial already in the inventory", func(t *testing.T) {
			if _, err := im.Import(ctx, strings.NewReader(csvFile("OLD-0001,"+seedA+",SHA1,6,30")), inventory.Options{Format: inventory.CSV}); err != nil {
				t.Fatal(err)
			}
			res, err := im.Import(ctx, strings.NewReader(csvFile("NEW-0001,"+seedB+",SHA1,6,30", "OLD-0001,"+newSeed(t)+",SHA1,6,30")), inventory.Options{Format: inventory.CSV})
			if !errors.Is(err, inventory.ErrRejected) || len(res.Rejected) != 1 || res.Rejected[0].Serial != "OLD-0001" || res.Rejected[0].Row != 3 {
				t.Fatalf("re-import: err = %v, result = %+v", err, res)
			}
			if _, err := st.GetToken(ctx, "NEW-0001"); !errors.Is(err, store.ErrNotFound) {
				t.Fatalf("NEW-0001 imported from a refused batch: %v", err)
			}
		})
	})
}

func TestImportPSKC(t *testing.T) {
	forEachStore(t, func(t *testing.T, st store.Store) {
		ctx := context.Background()
		im := inventory.Importer{Store: st, Keys: ring(t)}
		f, err := os.Open("testdata/totp-plain.pskc")
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		res, err := im.Import(ctx, f, inventory.Options{Format: inventory.PSKC})
		if err != nil || res.Imported != 2 {
			t.Fatalf("Import = %+v, %v", res, err)
		}
		tok, err := st.GetToken(ctx, "TOTP-0002")
		if err != nil || tok.Digits != 8 || tok.PeriodSeconds != 60 {
			t.Fatalf("TOTP-0002 = %+v, %v", tok, err)
		}

		// RFC 6030's own examples are HOTP keys: refused, nothing imported.
		rfc, err := os.Open("../mfa/testdata/rfc6030-figure2.xml")
		if err != nil {
			t.Fatal(err)
		}
		defer rfc.Close()
		res, err = im.Import(ctx, rfc, inventory.Options{Format: inventory.PSKC})
		if !errors.Is(err, inventory.ErrRejected) || !strings.Contains(res.Rejected[0].Reason, "HOTP") {
			t.Fatalf("HOTP import: %+v, %v", res, err)
		}
	})
}

func TestImportHostileXML(t *testing.T) {
	st := storetest.SQLite(t)
	im := inventory.Importer{Store: st, Keys: ring(t)}
	laughs := `<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">]><KeyContainer>&lol2;</KeyContainer>`
	external := `<?xml version="1.0"?><!DOCTYPE x [<!ENTITY xxe SYSTEM "file:///etc/passwd">]><KeyContainer><KeyPackage><DeviceInfo><SerialNo>&xxe;</SerialNo></DeviceInfo></KeyPackage></KeyContainer>`
	huge := `<?xml version="1.0"?><KeyContainer Version="1.0" xmlns="urn:ietf:params:xml:ns:keyprov:pskc"><!--` + strings.Repeat("A", 50<<20) + `--></KeyContainer>`
	for name, tt := range map[string]struct {
		doc  string
		want error
	}{
		"billion laughs":  {laughs, mfa.ErrHostileXML},
		"external entity": {external, mfa.ErrHostileXML},
		"50 MB":           {huge, mfa.ErrTooLarge},
	} {
		t.Run(name, func(t *testing.T) {
			start := time.Now()
			_, err := im.Import(context.Background(), strings.NewReader(tt.doc), inventory.Options{Format: inventory.PSKC, MaxBytes: 10 << 20})
			if !errors.Is(err, tt.want) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
			if d := time.Since(start); d > 5*time.Second {
				t.Fatalf("refusal took %s", d)
			}
		})
	}
	es, _ := st.ListAudit(context.Background(), store.AuditFilter{})
	for _, e := range es {
		if e.Action == "tokens.import" && e.Outcome == "ok" {
			t.Fatal("a hostile document was imported")
		}
	}
}

func TestRotate(t *testing.T) {
	forEachStore(t, func(t *testing.T, st store.Store) {
		ctx := context.Background()
		old := ring(t)
		im := inventory.Importer{Store: st, Keys: old}
		var rows []string
		for i := range 7 {
			rows = append(rows, fmt.Sprintf("ROT-%04d,%s,SHA1,6,30", i, newSeed(t)))
		}
		if _, err := im.Import(ctx, strings.NewReader(csvFile(rows...)), inventory.Options{Format: inventory.CSV}); err != nil {
			t.Fatal(err)
		}
		fresh := ring(t)
		both, err := mfa.ParseKeyring(fresh.Encode() + "," + old.Encode())
		if err != nil {
			t.Fatal(err)
		}
		res, err := inventory.Rotate(ctx, st, both, 3)
		if err != nil {
			t.Fatal(err)
		}
		var resealed int
		for _, r := range res {
			resealed += r.Resealed
		}
		if resealed != 7 {
			t.Fatalf("Rotate = %+v, want 7 re-sealed", res)
		}
		// Every token now opens with the new key alone.
		for i := range 7 {
			tok, err := st.GetToken(ctx, fmt.Sprintf("ROT-%04d", i))
			if err != nil {
				t.Fatal(err)
			}
			if _, err := inventory.CurrentCode(fresh, tok, time.Now()); err != nil {
				t.Fatalf("ROT-%04d does not open with the new key: %v", i, err)
			}
		}
		res, err = inventory.Rotate(ctx, st, both, 3)
		if err != nil || res[0].Resealed+res[1].Resealed != 0 {
			t.Fatalf("second Rotate = %+v, %v", res, err)
		}
	})
}

func TestOpenSecretReSealsOnUse(t *testing.T) {
	forEachStore(t, func(t *testing.T, st store.Store) {
		ctx := context.Background()
		old := ring(t)
		im := inventory.Importer{Store: st, Keys: old}
		if _, err := im.Import(ctx, strings.NewReader(csvFile("USE-0001,"+seedA+",SHA1,6,30")), inventory.Options{Format: inventory.CSV}); err != nil {
			t.Fatal(err)
		}
		fresh := ring(t)
		both, err := mfa.ParseKeyring(fresh.Encode() + "," + old.Encode())
		if err != nil {
			t.Fatal(err)
		}
		tok, _ := st.GetToken(ctx, "USE-0001")
		seed, err := inventory.OpenSecret(ctx, st, both, store.SealedTokens, tok.Serial, tok.Seed)
		if err != nil || string(seed) != "12345678901234567890" {
			t.Fatalf("OpenSecret = %q, %v", seed, err)
		}
		tok, _ = st.GetToken(ctx, "USE-0001")
		if tok.Seed.KeyID != fresh.CurrentID() {
			t.Fatalf("after use the seed is sealed with %s, want the current key %s", tok.Seed.KeyID, fresh.CurrentID())
		}
		if _, err := inventory.OpenSecret(ctx, st, old, store.SealedTokens, tok.Serial, tok.Seed); !errors.Is(err, mfa.ErrUnknownKey) {
			t.Fatalf("old ring opening a re-sealed seed: %v, want ErrUnknownKey", err)
		}
	})
}

// TestImportPSKCVendorFile: a file saved with a byte-order mark, holding a
// local-PIN KeyPackage beside each card, imports the cards and lists the
// PINs as skipped, with the rows of the file.
func TestImportPSKCVendorFile(t *testing.T) {
	const vendor, rfcPIN = "../mfa/testdata/vendor-totp-pin-bom.xml", "../mfa/testdata/rfc6030-pin.xml"
	pinOnly := `<KeyContainer Version="1.0" xmlns="urn:ietf:params:xml:ns:keyprov:pskc"><KeyPackage>
		<DeviceInfo><SerialNo>PIN-ONLY-1</SerialNo></DeviceInfo>
		<Key Id="p" Algorithm="urn:ietf:params:xml:ns:keyprov:pskc:pin"><Data><Secret><PlainValue>MTIzNA==</PlainValue></Secret></Data></Key>
	</KeyPackage></KeyContainer>`
	const skip = "a PIN, not a token card: skipped"
	forEachStore(t, func(t *testing.T, st store.Store) {
		ctx := context.Background()
		im := inventory.Importer{Store: st, Keys: ring(t)}
		read := func(name string) string {
			b, err := os.ReadFile(name)
			if err != nil {
				t.Fatal(err)
			}
			return string(b)
		}
		tests := []struct {
			name               string
			doc                string
			err                error
			imported           int
			rejected, skipped  string
			importedAfterwards []string
		}{
			{name: "cards with their PINs", doc: read(vendor), imported: 2,
				skipped:            fmt.Sprint([]mfa.RowError{{Row: 2, Serial: "TV-10000001", Reason: skip}, {Row: 4, Serial: "TV-10000002", Reason: skip}}),
				importedAfterwards: []string{"TV-10000001", "TV-10000002"}},
			{name: "the same cards again", doc: read(vendor), err: inventory.ErrRejected,
				rejected: fmt.Sprint([]mfa.RowError{{Row: 1, Serial: "TV-10000001", Reason: "the serial is already in the inventory"},
					{Row: 3, Serial: "TV-10000002", Reason: "the serial is already in the inventory"}}),
				skipped: fmt.Sprint([]mfa.RowError{{Row: 2, Serial: "TV-10000001", Reason: skip}, {Row: 4, Serial: "TV-10000002", Reason: skip}})},
			{name: "RFC 6030 HOTP card with its PIN", doc: read(rfcPIN), err: inventory.ErrRejected,
				rejected: fmt.Sprint([]mfa.RowError{{Row: 1, Serial: "987654321", Reason: "counter-based (HOTP) keys are not supported: token cards must be time-based (TOTP)"}}),
				skipped:  fmt.Sprint([]mfa.RowError{{Row: 2, Serial: "987654321", Reason: skip}})},
			{name: "only a PIN", doc: pinOnly, err: inventory.ErrRejected,
				rejected: fmt.Sprint([]mfa.RowError{{Reason: "the file holds no tokens"}}),
				skipped:  fmt.Sprint([]mfa.RowError{{Row: 1, Serial: "PIN-ONLY-1", Reason: skip}})},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				res, err := im.Import(ctx, strings.NewReader(tt.doc), inventory.Options{Format: inventory.PSKC})
				if !errors.Is(err, tt.err) || res.Imported != tt.imported {
					t.Fatalf("Import = %+v, %v; want %d imported, err %v", res, err, tt.imported, tt.err)
				}
				if got := fmt.Sprint(res.Rejected); (tt.rejected == "" && len(res.Rejected) != 0) || (tt.rejected != "" && got != tt.rejected) {
					t.Errorf("rejected %s; want %s", got, tt.rejected)
				}
				if got := fmt.Sprint(res.Skipped); got != tt.skipped {
					t.Errorf("skipped %s; want %s", got, tt.skipped)
				}
				for _, serial := range tt.importedAfterwards {
					tok, err := st.GetToken(ctx, serial)
					if err != nil || tok.Digits != 6 || tok.PeriodSeconds != 30 {
						t.Errorf("GetToken(%s) = %+v, %v", serial, tok, err)
					}
				}
			})
		}
		if _, err := st.GetToken(ctx, "PIN-ONLY-1"); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("a PIN was imported as a card: %v", err)
		}
	})
}
