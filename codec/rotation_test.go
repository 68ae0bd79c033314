package codec

import (
	"errors"
	"testing"

	commonpb "go.temporal.io/api/common/v1"

	"github.com/mfaflow/mfaflow/mfa"
)

// TestDecodeAfterRotation: a payload sealed before a rotation decodes with
// the rotated ring (new key first, old key second) while its key is in the
// ring, names its key in the metadata, and stops decoding once the key is
// removed; new payloads are sealed with the new key.
func TestDecodeAfterRotation(t *testing.T) {
	old, err := mfa.GenerateKeyring()
	if err != nil {
		t.Fatal(err)
	}
	newer, err := mfa.GenerateKeyring()
	if err != nil {
		t.Fatal(err)
	}
	rotated, err := mfa.ParseKeyring(newer.Encode() + "," + old.Encode())
	if err != nil {
		t.Fatal(err)
	}
	in := pii{Name: "张三", IDNumber: "11010519491231002X", Code: "493817"}
	p, err := DataConverter(old).ToPayload(in)
	if err != nil {
		t.Fatal(err)
	}
	if got := string(p.GetMetadata()[MetadataKeyID]); got != old.CurrentID() {
		t.Fatalf("payload names key %q, want %q", got, old.CurrentID())
	}
	var out pii
	if err := DataConverter(rotated).FromPayload(p, &out); err != nil || out != in {
		t.Fatalf("after rotation: %+v, %v", out, err)
	}
	np, err := DataConverter(rotated).ToPayload(in)
	if err != nil {
		t.Fatal(err)
	}
	if got := string(np.GetMetadata()[MetadataKeyID]); got != newer.CurrentID() {
		t.Fatalf("new payload names key %q, want the new key %q", got, newer.CurrentID())
	}
	if _, err := (Codec{Keys: newer}).Decode([]*commonpb.Payload{p}); !errors.Is(err, ErrDecode) {
		t.Fatalf("old key removed: err = %v, want ErrDecode", err)
	}
}
