package blob

import (
	"bytes"
	"crypto/rand"
	"errors"
	"io"
	"testing"

	"github.com/mfaflow/mfaflow/mfa"
)

func testRing(t *testing.T) *mfa.Keyring {
	t.Helper()
	k, err := mfa.GenerateKeyring()
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func seal(t *testing.T, keys KeySource, key string, data []byte) []byte {
	t.Helper()
	sr, err := newSealReader(keys, key, bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	out, err := io.ReadAll(sr)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func open(keys KeySource, key string, sealed []byte) ([]byte, error) {
	r, err := newOpenReader(keys, key, io.NopCloser(bytes.NewReader(sealed)))
	if err != nil {
		return nil, err
	}
	return io.ReadAll(r)
}

func TestSealRoundTrip(t *testing.T) {
	keys := testRing(t)
	for _, n := range []int{0, 1, sealChunk - 1, sealChunk, sealChunk + 1, 3 * sealChunk, 3*sealChunk + 17} {
		data := make([]byte, n)
		_, _ = rand.Read(data)
		sealed := seal(t, keys, "appeals/a/doc", data)
		if int64(len(sealed)) != sealedSize(int64(n)) {
			t.Fatalf("%d bytes sealed to %d, sealedSize says %d", n, len(sealed), sealedSize(int64(n)))
		}
		if got, err := openedSize(int64(len(sealed))); err != nil || got != int64(n) {
			t.Fatalf("openedSize(%d) = %d, %v; want %d", len(sealed), got, err, n)
		}
		if n >= 16 && bytes.Contains(sealed, data[:16]) {
			t.Fatalf("%d bytes: the plaintext shows in the sealed object", n)
		}
		got, err := open(keys, "appeals/a/doc", sealed)
		if err != nil || !bytes.Equal(got, data) {
			t.Fatalf("%d bytes: open = %d bytes, %v", n, len(got), err)
		}
	}
	if sealedSize(-1) != -1 {
		t.Fatal("an unknown size must stay unknown")
	}
}

func TestSealRefusesTampering(t *testing.T) {
	keys := testRing(t)
	data := make([]byte, 2*sealChunk)
	_, _ = rand.Read(data)
	sealed := seal(t, keys, "k", data)
	flipped := bytes.Clone(sealed)
	flipped[sealHeader+sealChunk+100] ^= 1
	header := bytes.Clone(sealed)
	header[sealHeader-1] ^= 1
	other := testRing(t)
	cases := map[string]struct {
		keys   KeySource
		key    string
		sealed []byte
		want   error
	}{
		"flipped byte":            {keys, "k", flipped, ErrDamaged},
		"salt changed":            {keys, "k", header, ErrDamaged},
		"cut at a chunk boundary": {keys, "k", sealed[:sealHeader+sealChunk+sealTag], ErrDamaged},
		"last chunk dropped":      {keys, "k", sealed[:len(sealed)-sealTag], ErrDamaged},
		"extra bytes":             {keys, "k", append(bytes.Clone(sealed), 0), ErrDamaged},
		"under another name":      {keys, "k2", sealed, ErrDamaged},
		"another ring":            {other, "k", sealed, ErrUnknownKey},
		"not sealed":              {keys, "k", data, ErrDamaged},
		"shorter than the header": {keys, "k", sealed[:10], ErrDamaged},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			if _, err := open(c.keys, c.key, c.sealed); !errors.Is(err, c.want) {
				t.Fatalf("open = %v, want %v", err, c.want)
			}
		})
	}
}

// TestSealAfterRotation: an object sealed before a rotation opens while the
// old key stays in the ring; new objects are sealed with the new key.
func TestSealAfterRotation(t *testing.T) {
	old := testRing(t)
	sealed := seal(t, old, "k", []byte("before the rotation"))
	next := testRing(t)
	rotated, err := mfa.ParseKeyring(next.Encode() + "," + old.Encode())
	if err != nil {
		t.Fatal(err)
	}
	if got, err := open(rotated, "k", sealed); err != nil || string(got) != "before the rotation" {
		t.Fatalf("open after rotation = %q, %v", got, err)
	}
	fresh := seal(t, rotated, "k", []byte("after"))
	if _, err := open(next, "k", fresh); err != nil {
		t.Fatalf("a new object is not sealed with the new key: %v", err)
	}
}
