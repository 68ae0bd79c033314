package mfa

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

var (
	xmlText      = regexp.MustCompile(`>([^<]+)<|"([^"]+)"`)
	looksLikeKey = regexp.MustCompile(`^[A-Za-z0-9+/=]{8,}$`)
	hasDigit     = regexp.MustCompile(`[0-9+/=]`)
	knownReasons = map[string]bool{
		reasonBadSerial: true, reasonDupSerial: true, reasonDupSecret: true, reasonBadSecret: true,
		reasonBadSecret64: true, reasonShortSecret: true, reasonLongSecret: true, reasonBadAlgorithm: true,
		reasonBadDigits: true, reasonBadPeriod: true, reasonFieldCount: true, reasonMalformedCSV: true,
		reasonKeyAlgorithm: true, reasonKeyCount: true, reasonNoSecret: true, reasonBadEncoding: true,
		reasonBadCounter: true, reasonEncMethod: true, reasonDecrypt: true, reasonNoMAC: true,
		reasonBadMAC: true, reasonNoEncKey: true, reasonEncryptedParam: true, reasonPIN: true,
	}
	skipReasons = map[string]bool{reasonPINKey: true}
)

// secretForms are the ways a secret could leak into text.
func secretForms(s []byte) []string {
	return []string{string(s), hex.EncodeToString(s), base64.StdEncoding.EncodeToString(s), EncodeSecret(s)}
}

// checkImport asserts the invariants of ParsePSKC and ParseCSV results.
func checkImport(t *testing.T, input []byte, p Parsed, err error, candidates []string) {
	t.Helper()
	if err != nil && (p.Tokens != nil || p.Rejected != nil || p.Skipped != nil) {
		t.Fatalf("error %v with results", err)
	}
	var texts []string
	if err != nil {
		texts = append(texts, err.Error())
	}
	rows := map[int]bool{}
	for _, set := range []struct {
		rows    []RowError
		reasons map[string]bool
	}{{p.Rejected, knownReasons}, {p.Skipped, skipReasons}} {
		for _, r := range set.rows {
			if !set.reasons[r.Reason] {
				t.Fatalf("unknown reason %q", r.Reason)
			}
			if r.Serial != "" && !validSerial(r.Serial) {
				t.Fatalf("row error with invalid serial %q", r.Serial)
			}
			if r.Row < 1 || rows[r.Row] {
				t.Fatalf("row %d numbered twice or not at all", r.Row)
			}
			rows[r.Row] = true
			texts = append(texts, r.Reason)
		}
	}
	serials := map[string]bool{}
	for _, tok := range p.Tokens {
		if tok.Row < 1 || rows[tok.Row] {
			t.Fatalf("token row %d numbered twice or not at all", tok.Row)
		}
		rows[tok.Row] = true
		if !validSerial(tok.Serial) || serials[strings.ToUpper(tok.Serial)] {
			t.Fatalf("bad or duplicate serial %q", tok.Serial)
		}
		serials[strings.ToUpper(tok.Serial)] = true
		if err := tok.Params.Validate(); err != nil {
			t.Fatalf("token params: %v", err)
		}
		if tok.Digits == 0 || tok.Period == 0 {
			t.Fatalf("token params not explicit: %+v", tok.Params)
		}
		if len(tok.Secret) < MinSecretLen || len(tok.Secret) > MaxSecretLen {
			t.Fatalf("secret length %d", len(tok.Secret))
		}
		if tok.Type != TypeTOTP && tok.Type != TypeHOTP {
			t.Fatalf("type %q", tok.Type)
		}
		candidates = append(candidates, secretForms(tok.Secret)...)
	}
	for _, txt := range texts {
		for _, c := range candidates {
			if len(c) >= 8 && strings.Contains(txt, c) {
				t.Fatalf("error text %q contains input material %q", txt, c)
			}
		}
	}
}

func keyLike(input []byte) []string {
	var out []string
	for _, m := range xmlText.FindAllSubmatch(input, -1) {
		for _, g := range m[1:] {
			s := strings.Join(strings.Fields(string(g)), "")
			if looksLikeKey.MatchString(s) && hasDigit.MatchString(s) {
				out = append(out, s)
			}
		}
	}
	return out
}

func addFixtures(f *testing.F, pattern string, add func([]byte)) {
	files, _ := filepath.Glob(filepath.Join("testdata", pattern))
	for _, name := range files {
		b, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		add(b)
	}
}

func FuzzParsePSKC(f *testing.F) {
	addFixtures(f, "*.xml", func(b []byte) {
		for mode := range uint8(3) {
			f.Add(b, mode)
		}
	})
	f.Add(buildPSKC(f, "s3cret", []string{"TOK-0001|urn:ietf:params:xml:ns:keyprov:pskc:totp|HMAC-SHA256|6|60|0123456789abcdef0123"}), uint8(3))
	psk, _ := hex.DecodeString("12345678901234567890123456789012")
	f.Fuzz(func(t *testing.T, data []byte, mode uint8) {
		var opts PSKCOptions
		switch mode % 4 {
		case 1:
			opts.PreSharedKey = psk
		case 2:
			opts.Password = "qwerty"
		case 3:
			opts.Password = "s3cret"
		}
		opts.MaxBytes = 1 << 20
		opts.MaxIterations = 5000 // keep each execution fast
		parsed, err := ParsePSKC(bytes.NewReader(data), opts)
		checkImport(t, data, parsed, err, append(keyLike(data), secretForms(psk)...))
	})
}

func FuzzParseCSV(f *testing.F) {
	addFixtures(f, "*.csv", func(b []byte) { f.Add(b) })
	f.Add([]byte(CSVHeader + "\nAB-1,\"GEZDGNBVGY3TQOJQ\nGEZDGNBVGY3TQOJQ\",SHA1,6,30\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		parsed, err := ParseCSV(bytes.NewReader(data), 1<<20)
		var cands []string
		for _, line := range strings.Split(string(data), "\n") {
			for _, field := range strings.Split(line, ",") {
				field = strings.TrimSpace(field)
				if len(field) >= 8 && hasDigit.MatchString(field) {
					cands = append(cands, field)
				}
			}
		}
		checkImport(t, data, parsed, err, cands)
		if len(parsed.Skipped) != 0 {
			t.Fatalf("csv skipped %v", parsed.Skipped)
		}
		for _, tok := range parsed.Tokens {
			if tok.Type != TypeTOTP {
				t.Fatalf("csv token type %q", tok.Type)
			}
		}
	})
}

func FuzzParseKeyURI(f *testing.F) {
	f.Add(KeyURI("Example Cloud", "alice@example.com", rfcSeed20, Params{}))
	f.Add(KeyURI("A:B&C", "x:y?z/w", rfcSeed32, Params{Algorithm: SHA256, Digits: 8, Period: 60e9}))
	f.Add("otpauth://hotp/alice?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ&counter=7")
	f.Add("otpauth://totp/ACME%20Co%3Ajohn.doe@email.com?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ&issuer=ACME%20Co")
	f.Fuzz(func(t *testing.T, uri string) {
		ki, err := ParseKeyURI(uri)
		if err != nil {
			_, q, _ := strings.Cut(uri, "secret=")
			q, _, _ = strings.Cut(q, "&")
			// Shorter values than a real secret's base32 (26 characters at
			// least) can be words of the message itself ("ecre" of "secret").
			if len(q) >= 8 && strings.Contains(err.Error(), q) {
				t.Fatalf("error %q contains the secret", err)
			}
			return
		}
		if err := ki.Params.Validate(); err != nil {
			t.Fatalf("params: %v", err)
		}
		if len(ki.Secret) < MinSecretLen || ki.Account == "" {
			t.Fatalf("bad key info %+v", ki)
		}
		if ki.Type != TypeTOTP {
			return
		}
		uri2 := KeyURI(ki.Issuer, ki.Account, ki.Secret, ki.Params)
		if len(uri2) > maxKeyURILen {
			return // escaping grew it past the limit
		}
		again, err := ParseKeyURI(uri2)
		if err != nil {
			t.Fatalf("round trip: %v", err)
		}
		if again.Issuer != ki.Issuer || again.Account != ki.Account || !bytes.Equal(again.Secret, ki.Secret) || again.Params != ki.Params {
			t.Fatalf("round trip changed %+v into %+v", ki, again)
		}
	})
}
