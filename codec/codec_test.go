package codec

import (
	"bytes"
	"testing"

	commonpb "go.temporal.io/api/common/v1"
	"go.temporal.io/sdk/converter"

	"github.com/mfaflow/mfaflow/mfa"
)

type pii struct {
	Name     string
	IDNumber string
	Code     string
}

func TestRoundTripHidesContent(t *testing.T) {
	keys, err := mfa.GenerateKeyring()
	if err != nil {
		t.Fatal(err)
	}
	dc := DataConverter(keys)
	in := pii{Name: "张三", IDNumber: "11010519491231002X", Code: "493817"}
	p, err := dc.ToPayload(in)
	if err != nil {
		t.Fatal(err)
	}
	for _, secret := range []string{in.IDNumber, in.Code, "张三"} {
		if bytes.Contains(p.GetData(), []byte(secret)) {
			t.Fatalf("payload holds %q in the clear", secret)
		}
		for k, v := range p.GetMetadata() {
			if bytes.Contains(v, []byte(secret)) {
				t.Fatalf("metadata %s holds %q", k, secret)
			}
		}
	}
	var out pii
	if err := dc.FromPayload(p, &out); err != nil {
		t.Fatal(err)
	}
	if out != in {
		t.Fatalf("round trip = %+v", out)
	}
}

func TestDecodeRefusesWrongKeyAndTampering(t *testing.T) {
	k1, _ := mfa.GenerateKeyring()
	k2, _ := mfa.GenerateKeyring()
	p, err := DataConverter(k1).ToPayload("secret")
	if err != nil {
		t.Fatal(err)
	}
	var s string
	if err := DataConverter(k2).FromPayload(p, &s); err == nil {
		t.Fatal("another key ring decoded the payload")
	}
	tampered := &commonpb.Payload{Metadata: p.Metadata, Data: append([]byte(nil), p.Data...)}
	tampered.Data[len(tampered.Data)-1] ^= 1
	if _, err := (Codec{Keys: k1}).Decode([]*commonpb.Payload{tampered}); err != ErrDecode {
		t.Fatalf("tampered payload: err = %v, want ErrDecode", err)
	}
	// Rotation: a ring whose current key is new still opens old payloads.
	both, err := mfa.ParseKeyring(k2.Encode() + "," + k1.Encode())
	if err != nil {
		t.Fatal(err)
	}
	if err := DataConverter(both).FromPayload(p, &s); err != nil || s != "secret" {
		t.Fatalf("rotated ring: %q, %v", s, err)
	}
}

func TestPlainPayloadsPassThrough(t *testing.T) {
	keys, _ := mfa.GenerateKeyring()
	plain, err := converter.GetDefaultDataConverter().ToPayload(42)
	if err != nil {
		t.Fatal(err)
	}
	var n int
	if err := DataConverter(keys).FromPayload(plain, &n); err != nil || n != 42 {
		t.Fatalf("plain payload: %d, %v", n, err)
	}
}
