package store_test

import (
	"testing"

	"github.com/mfaflow/mfaflow/store"
)

func TestTokenHash(t *testing.T) {
	tests := []struct{ token, want string }{
		// FIPS 180-2 test vectors.
		{"abc", "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"},
		{"", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"},
	}
	for _, tt := range tests {
		if got := store.TokenHash(tt.token); got != tt.want {
			t.Errorf("TokenHash(%q) = %s, want %s", tt.token, got, tt.want)
		}
		if got := store.GrantID(tt.token); got != tt.want {
			t.Errorf("GrantID(%q) = %s, want %s", tt.token, got, tt.want)
		}
	}
}
