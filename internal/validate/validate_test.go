package validate

import (
	"errors"
	"strings"
	"testing"
)

func TestIDNumber(t *testing.T) {
	tests := []struct {
		in   string
		want error
	}{
		{"11010519491231002X", nil}, // the GB 11643 standard's worked example
		{"11010519491231002x", nil},
		{"110105194912310021", ErrIDNumber}, // wrong check character
		{"11010519491331002X", ErrIDNumber}, // month 13
		{"1101051949123100", ErrIDNumber},
		{"A1010519491231002X", ErrIDNumber},
		{"", ErrIDNumber},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := IDNumber(tt.in)
			if !errors.Is(err, tt.want) {
				t.Fatalf("IDNumber(%q) error = %v, want %v", tt.in, err, tt.want)
			}
			if err == nil && got != strings.ToUpper(tt.in) {
				t.Fatalf("IDNumber(%q) = %q", tt.in, got)
			}
		})
	}
}

func TestUSCC(t *testing.T) {
	tests := []struct {
		in   string
		want error
	}{
		{"91350100M000100Y43", nil}, // GB 32100 annex example
		{"91110000802100433B", nil},
		{"911100008021004331", ErrUSCC}, // check character changed
		{"91350100M000100Y4", ErrUSCC},
		{"91350100M000I00Y43", ErrUSCC}, // I is not in the alphabet
		{"91350100m000100y43", nil},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			if _, err := USCC(tt.in); !errors.Is(err, tt.want) {
				t.Fatalf("USCC(%q) error = %v, want %v", tt.in, err, tt.want)
			}
		})
	}
}

func TestPhone(t *testing.T) {
	for in, ok := range map[string]bool{
		"13800138000": true, "+8613800138000": true, "19912345678": true,
		"12800138000": false, "1380013800": false, "138001380001": false, "1380013800a": false, "": false,
	} {
		_, err := Phone(in)
		if (err == nil) != ok {
			t.Errorf("Phone(%q) error = %v, want ok=%v", in, err, ok)
		}
	}
}

func TestLoginID(t *testing.T) {
	tests := []struct {
		kind, id string
		ok       bool
	}{
		{"qq", "10001", true},
		{"qq", "012345", false},
		{"qq", "123456789012", false},
		{"email", "a@example.com", true},
		{"email", "Bob <a@example.com>", false},
		{"wechat", "wxid_abc123", true},
		{"wechat", "1abcdef", false},
		{"wechat_official", "gh_0123456789ab", true},
		{"sms", "13800138000", false},
	}
	for _, tt := range tests {
		if err := LoginID(tt.kind, tt.id); (err == nil) != tt.ok {
			t.Errorf("LoginID(%q, %q) = %v, want ok=%v", tt.kind, tt.id, err, tt.ok)
		}
	}
}

func TestName(t *testing.T) {
	if _, err := Name("张三"); err != nil {
		t.Fatal(err)
	}
	for _, bad := range []string{"", "  ", "a\x00b", strings.Repeat("名", 65)} {
		if _, err := Name(bad); !errors.Is(err, ErrName) {
			t.Errorf("Name(%q) = %v, want ErrName", bad, err)
		}
	}
}

// FuzzValidators checks the validators never panic and never accept input
// that fails their own normalisation.
func FuzzValidators(f *testing.F) {
	for _, s := range []string{"11010519491231002X", "91350100M000100Y43", "13800138000", "a@b.cn", "wxid_abc"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if v, err := IDNumber(s); err == nil {
			if _, err := IDNumber(v); err != nil {
				t.Fatalf("normalised ID %q rejected", v)
			}
		}
		if v, err := USCC(s); err == nil {
			if _, err := USCC(v); err != nil {
				t.Fatalf("normalised USCC %q rejected", v)
			}
		}
		if v, err := Phone(s); err == nil && len(v) != 11 {
			t.Fatalf("Phone(%q) = %q", s, v)
		}
		_, _ = Email(s)
		_, _ = Name(s)
		for _, k := range []string{"qq", "email", "wechat", "wechat_official"} {
			_ = LoginID(k, s)
		}
	})
}
