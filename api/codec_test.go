package api

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"go.temporal.io/sdk/converter"

	"github.com/mfaflow/mfaflow/auth"
	"github.com/mfaflow/mfaflow/codec"
	"github.com/mfaflow/mfaflow/mfa"
	"github.com/mfaflow/mfaflow/store/storetest"
)

// TestCodecServer decrypts a payload for an admin and refuses others.
func TestCodecServer(t *testing.T) {
	keys, _ := mfa.GenerateKeyring()
	secret := []byte(strings.Repeat("s", 32))
	srv := httptest.NewServer(NewServer(Deps{Store: storetest.SQLite(t), Keys: keys, JWT: &auth.Verifier{Keys: auth.HS256(secret)}}))
	defer srv.Close()
	p, err := codec.DataConverter(keys).ToPayload("张三 11010519491231002X")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := json.Marshal(map[string]any{"payloads": []any{json.RawMessage(mustProtoJSON(t, p))}})
	post := func(tok string) (int, string) {
		req, _ := http.NewRequest(http.MethodPost, srv.URL+"/v1/admin/codec/decode", bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		if tok != "" {
			req.Header.Set("Authorization", "Bearer "+tok)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b := new(bytes.Buffer)
		_, _ = b.ReadFrom(resp.Body)
		return resp.StatusCode, b.String()
	}
	if code, _ := post(""); code != http.StatusUnauthorized {
		t.Fatalf("anonymous decode = %d", code)
	}
	rev, _ := auth.SignHS256(secret, "rev", []string{auth.RoleReviewer}, "", time.Hour, time.Now())
	if code, _ := post(rev); code != http.StatusForbidden {
		t.Fatalf("reviewer decode = %d", code)
	}
	adm, _ := auth.SignHS256(secret, "adm", []string{auth.RoleAdmin}, "", time.Hour, time.Now())
	code, out := post(adm)
	if code != http.StatusOK || strings.Contains(out, "binary/mfaflow-encrypted") {
		t.Fatalf("admin decode = %d %s", code, out)
	}
	var dec struct {
		Payloads []json.RawMessage `json:"payloads"`
	}
	if err := json.Unmarshal([]byte(out), &dec); err != nil || len(dec.Payloads) != 1 {
		t.Fatalf("decode answer %s", out)
	}
	var got string
	pl := mustFromProtoJSON(t, dec.Payloads[0])
	if err := converter.GetDefaultDataConverter().FromPayload(pl, &got); err != nil || got != "张三 11010519491231002X" {
		t.Fatalf("decoded %q, %v", got, err)
	}
}
