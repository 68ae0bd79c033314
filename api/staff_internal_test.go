package api

import "testing"

func TestReturnPath(t *testing.T) {
	for _, tt := range []struct{ in, want string }{
		{"", "/review"},
		{"/review/case?id=apl_Xk3b9QmZ0aLp", "/review/case?id=apl_Xk3b9QmZ0aLp"},
		{"/review?status=todo&lang=en", "/review?status=todo&lang=en"},
		{"https://evil.example/", "/review"},
		{"//evil.example/review", "/review"},
		{"/\\evil.example", "/review"},
		{"/review\\..\\x", "/review"},
		{"review", "/review"},
		{"javascript:alert(1)", "/review"},
		{"/review\r\nSet-Cookie: x=y", "/review"},
		{"/" + string(make([]byte, 600)), "/review"},
	} {
		if got := returnPath(tt.in); got != tt.want {
			t.Errorf("returnPath(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}
