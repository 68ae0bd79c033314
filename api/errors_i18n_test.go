package api

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
	"unicode"

	"github.com/gin-gonic/gin"
	"go.yaml.in/yaml/v3"

	"github.com/mfaflow/mfaflow/i18n"
)

// answeredCodes returns every error code the server can answer: the error
// table's, each errorf's and Error literal's in the package, each code
// constant's, and each code a response of openapi.yaml lists.
func answeredCodes(t *testing.T) []string {
	t.Helper()
	codes := map[string]bool{"invalid_field": true, "unknown_field": true, "locked": true, "method_not_allowed": true}
	for _, m := range errorMap {
		codes[m.code] = true
	}
	files, _ := filepath.Glob("*.go")
	literal := regexp.MustCompile(`(?:errorf\(|Status:\s*)http\.Status\w+,\s*(?:Code:\s*)?"([a-z_]+)"`)
	constant := regexp.MustCompile(`\bcode\w*(?:,\s*\w+)*\s*:?=\s*"([a-z_]+)"`)
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		src, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, re := range []*regexp.Regexp{literal, constant} {
			for _, m := range re.FindAllSubmatch(src, -1) {
				codes[string(m[1])] = true
			}
		}
	}
	var doc any
	if err := yaml.Unmarshal(openapiYAML, &doc); err != nil {
		t.Fatal(err)
	}
	var walk func(v any)
	walk = func(v any) {
		switch x := v.(type) {
		case map[string]any:
			if c, ok := x["code"].(map[string]any); ok {
				if enum, ok := c["enum"].([]any); ok {
					for _, e := range enum {
						if s, ok := e.(string); ok {
							codes[s] = true
						}
					}
				}
			}
			for _, y := range x {
				walk(y)
			}
		case []any:
			for _, y := range x {
				walk(y)
			}
		}
	}
	walk(doc)
	out := make([]string, 0, len(codes))
	for c := range codes {
		out = append(out, c)
	}
	sort.Strings(out)
	return out
}

func hasHan(s string) bool {
	return strings.IndexFunc(s, func(r rune) bool { return unicode.Is(unicode.Han, r) }) >= 0
}

// TestErrorMessagesBothLanguages fails when a code the server can answer
// has no message in zh-CN or en (i18n/locales/errors.*.toml), when the
// Chinese one has no Chinese or the English one has, or when a message
// shows a raw key or template.
func TestErrorMessagesBothLanguages(t *testing.T) {
	codes := answeredCodes(t)
	if len(codes) < 55 {
		t.Fatalf("found %d codes, want every one the server answers", len(codes))
	}
	for _, code := range append(codes, "locked_hard") {
		for _, l := range i18n.Langs {
			id := "error." + code
			if !i18n.Has(l, id) {
				t.Errorf("%s: no %s message for code %s", id, l, code)
				continue
			}
			for _, field := range []string{"", "bound_phone"} {
				msg := (&Error{Code: code, Field: field, Key: id}).LocalMessage(l)
				switch {
				case strings.HasPrefix(msg, "error.") || strings.Contains(msg, "{{") || strings.Contains(msg, "<no value>"):
					t.Errorf("%s %s: raw key or template: %q", l, code, msg)
				case hasHan(msg) != (l == i18n.ZH):
					t.Errorf("%s %s: message in the wrong language: %q", l, code, msg)
				case field != "" && (code == "invalid_field" || code == "unknown_field") && !strings.Contains(msg, field):
					t.Errorf("%s %s: the message does not name the field: %q", l, code, msg)
				}
			}
		}
	}
	t.Logf("%d codes, each with a message in zh-CN and en", len(codes))
}

// TestErrorLanguage answers errors through fail on a real HTTP server:
// Chinese without Accept-Language and for zh, English for en (the call
// site's own sentence), Chinese for a language that is neither; the field
// stays, Retry-After and the code do not change with the language.
func TestErrorLanguage(t *testing.T) {
	gin.SetMode(gin.TestMode)
	r := gin.New()
	r.GET("/field", func(c *gin.Context) {
		fail(c, nil, invalidField("bound_phone", "must be a mainland mobile number"))
	})
	r.GET("/locked", func(c *gin.Context) {
		e := errorf(http.StatusTooManyRequests, "locked", "too many wrong codes; try again later")
		e.RetryAfter = 30_000_000_000
		fail(c, nil, e)
	})
	srv := httptest.NewServer(r)
	defer srv.Close()
	for _, c := range []struct {
		path, accept string
		zh           bool
		message      string
	}{
		{"/field", "", true, "字段 bound_phone 的值无效，请检查后重试。"},
		{"/field", "zh-CN,zh;q=0.9", true, "字段 bound_phone 的值无效，请检查后重试。"},
		{"/field", "en-US,en;q=0.9", false, "must be a mainland mobile number"},
		{"/field", "fr-FR", true, ""},
		{"/field", "fr-FR,en;q=0.5", false, ""},
		{"/locked", "zh-CN", true, "验证码错误次数过多，请稍后再试。"},
		{"/locked", "en", false, "too many wrong codes; try again later"},
	} {
		req, _ := http.NewRequest(http.MethodGet, srv.URL+c.path, nil)
		if c.accept != "" {
			req.Header.Set("Accept-Language", c.accept)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var body struct {
			Error struct{ Code, Message, Field string }
		}
		err = json.NewDecoder(resp.Body).Decode(&body)
		resp.Body.Close()
		if err != nil {
			t.Fatal(err)
		}
		e := body.Error
		if hasHan(e.Message) != c.zh || (c.message != "" && e.Message != c.message) {
			t.Errorf("GET %s with Accept-Language %q: message %q", c.path, c.accept, e.Message)
		}
		if c.path == "/field" && (e.Code != "invalid_field" || e.Field != "bound_phone" || resp.StatusCode != http.StatusBadRequest) {
			t.Errorf("GET %s with %q: %d %+v", c.path, c.accept, resp.StatusCode, e)
		}
		if c.path == "/locked" && (e.Code != "locked" || resp.Header.Get("Retry-After") != "30") {
			t.Errorf("GET %s with %q: %+v, Retry-After %q", c.path, c.accept, e, resp.Header.Get("Retry-After"))
		}
		if !strings.Contains(resp.Header.Get("Vary"), "Accept-Language") {
			t.Errorf("GET %s: Vary %q, want Accept-Language", c.path, resp.Header.Get("Vary"))
		}
	}
}
