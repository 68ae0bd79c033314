package web

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"strings"
	"testing"
	"unicode"

	"github.com/mfaflow/mfaflow/i18n"
	"github.com/mfaflow/mfaflow/store"
)

// directory is an in-memory account directory for the console page.
type directory map[string]store.Account

func (d directory) GetAccount(_ context.Context, id string) (store.Account, error) {
	if a, ok := d[id]; ok {
		return a, nil
	}
	return store.Account{}, store.ErrNotFound
}

// langPages are every page, with a query that fills its dynamic parts.
var langPages = []string{
	"/appeal", "/appeal?id=apl_x", "/appeal?id=bad", "/appeal/status?id=apl_x", "/appeals/apl_x/owner-cancel?token=" + strings.Repeat("A", 43),
	"/appeals/apl_x/owner-cancel", "/review", "/review?status=in_review", "/review/case?id=apl_x", "/review/case", "/console", "/console?account=nobody",
}

// rawKey is a catalog key as it would show untranslated.
var rawKey = regexp.MustCompile(`\bpage\.[a-z_]+\.[a-z_.]+|\blang_name\b`)

var dictBlock = regexp.MustCompile(`(?s)<script type="application/json" id="i18n-dict">(.*?)</script>`)

func langHandler() http.Handler {
	pages := NewPages(PagesConfig{})
	console := NewConsole(ConsoleConfig{Directory: directory{"demo": {ID: "demo", Type: store.Personal, BoundPhone: "13800138000", LoginMethod: store.LoginMFA}},
		Accounts: []string{"demo"}, DevLinks: true, DemoSerials: []string{"MFAD-0001"}})
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, "/console") {
			console.ServeHTTP(w, r)
			return
		}
		pages.ServeHTTP(w, r)
	})
}

func fetchPage(t *testing.T, h http.Handler, target string, header map[string]string) (*http.Response, string) {
	t.Helper()
	req := httptest.NewRequest(http.MethodGet, target, nil)
	for k, v := range header {
		req.Header.Set(k, v)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	res := rec.Result()
	b, _ := io.ReadAll(res.Body)
	if res.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %d", target, res.StatusCode)
	}
	return res, string(b)
}

func han(s string) int {
	n := 0
	for _, r := range s {
		if unicode.Is(unicode.Han, r) {
			n++
		}
	}
	return n
}

// TestPagesNoRawKeys renders every page in both languages: <html lang> is
// the language, no catalog key shows raw, the texts for the scripts are
// all there and translated, a Chinese page is in Chinese and an English one
// has no Chinese beyond the switcher's 中文.
func TestPagesNoRawKeys(t *testing.T) {
	h := langHandler()
	for _, path := range langPages {
		for _, l := range i18n.Langs {
			_, body := fetchPage(t, h, path, map[string]string{"Accept-Language": string(l)})
			if !strings.Contains(body, `<html lang="`+string(l)+`">`) {
				t.Errorf("%s [%s]: no <html lang=%q>", path, l, l)
			}
			m := dictBlock.FindStringSubmatch(body)
			if m == nil {
				t.Errorf("%s [%s]: no texts for the scripts", path, l)
				continue
			}
			var dict map[string]string
			if err := json.Unmarshal([]byte(m[1]), &dict); err != nil {
				t.Errorf("%s [%s]: texts: %v", path, l, err)
			}
			for k, v := range dict {
				if v == k || rawKey.MatchString(v) || strings.Contains(v, "<no value>") {
					t.Errorf("%s [%s]: script text %s = %q", path, l, k, v)
				}
			}
			rest := dictBlock.ReplaceAllString(body, "")
			if k := rawKey.FindString(rest); k != "" {
				t.Errorf("%s [%s]: raw key %q in the page", path, l, k)
			}
			if strings.Contains(rest, "<no value>") {
				t.Errorf("%s [%s]: a template variable is missing", path, l)
			}
			text := tagRE.ReplaceAllString(rest, " ")
			switch l {
			case i18n.ZH:
				if han(text) < 15 {
					t.Errorf("%s [zh-CN]: only %d Chinese characters", path, han(text))
				}
			case i18n.EN:
				if n := han(strings.ReplaceAll(text, "中文", "")); n > 0 {
					t.Errorf("%s [en]: %d Chinese characters", path, n)
				}
			}
		}
	}
}

var tagRE = regexp.MustCompile(`(?s)<[^>]*>`)

// TestPageLanguageChoice: ?lang= wins and is remembered in the lang cookie,
// the cookie wins over Accept-Language, which wins over the default zh-CN.
func TestPageLanguageChoice(t *testing.T) {
	h := langHandler()
	tests := []struct {
		name   string
		target string
		header map[string]string
		want   i18n.Lang
	}{
		{"default", "/appeal", nil, i18n.ZH},
		{"accept-language en", "/appeal", map[string]string{"Accept-Language": "en-US,en;q=0.9"}, i18n.EN},
		{"accept-language zh", "/appeal", map[string]string{"Accept-Language": "zh-CN,zh;q=0.9,en;q=0.5"}, i18n.ZH},
		{"accept-language other", "/appeal", map[string]string{"Accept-Language": "fr"}, i18n.ZH},
		{"cookie over header", "/review", map[string]string{"Accept-Language": "en", "Cookie": "lang=zh-CN"}, i18n.ZH},
		{"query over cookie", "/console?lang=en", map[string]string{"Accept-Language": "zh-CN", "Cookie": "lang=zh-CN"}, i18n.EN},
		{"bad query ignored", "/appeal/status?lang=xx", map[string]string{"Accept-Language": "en"}, i18n.EN},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, body := fetchPage(t, h, tt.target, tt.header)
			if !strings.Contains(body, `<html lang="`+string(tt.want)+`">`) {
				t.Errorf("want %s", tt.want)
			}
			var set *http.Cookie
			for _, c := range res.Cookies() {
				if c.Name == langCookie {
					set = c
				}
			}
			if strings.Contains(tt.target, "lang=en") {
				if set == nil || set.Value != "en" || set.Path != "/" || set.MaxAge <= 0 || set.SameSite != http.SameSiteLaxMode {
					t.Errorf("?lang=en set cookie %+v", set)
				}
			} else if set != nil {
				t.Errorf("cookie set without ?lang=: %+v", set)
			}
			// The switcher links to this page in the other language, keeping its query.
			other := i18n.EN
			if tt.want == i18n.EN {
				other = i18n.ZH
			}
			if !strings.Contains(body, `hreflang="`+string(other)+`"`) || !strings.Contains(body, `aria-current="true"`) {
				t.Errorf("no switcher to %s", other)
			}
		})
	}
	_, body := fetchPage(t, h, "/review/case?id=apl_x", nil)
	if !strings.Contains(body, `href="/review/case?id=apl_x&amp;lang=en"`) {
		t.Errorf("the switcher does not keep the query: %s", regexp.MustCompile(`<nav class="langswitch".*?</nav>`).FindString(body))
	}
}

var jsPlaceholder = regexp.MustCompile(`\{(\w+)\}`)

// TestScriptKeys: every catalog key the scripts name exists in both
// languages (a counted one as _one and _other), and the two languages fill
// the same {placeholders}.
func TestScriptKeys(t *testing.T) {
	keys := scriptKeys()
	if len(keys["common.js"]) < 10 || len(keys["console.js"]) < 10 {
		t.Fatalf("too few keys found in the scripts: %d in common.js, %d in console.js", len(keys["common.js"]), len(keys["console.js"]))
	}
	for script, ks := range keys {
		for _, k := range ks {
			forms := []string{k}
			if !i18n.Has(i18n.ZH, k) && !i18n.Has(i18n.EN, k) {
				forms = []string{k + "_one", k + "_other"}
			}
			for _, f := range forms {
				var vars [][]string
				for _, l := range i18n.Langs {
					if !i18n.Has(l, f) {
						t.Errorf("%s: %s missing in %s", script, f, l)
						continue
					}
					v := i18n.T(l, f, nil)
					if strings.Contains(v, "{{") {
						t.Errorf("%s: %s [%s] is a Go template; scripts fill {name}", script, f, l)
					}
					var names []string
					for _, m := range jsPlaceholder.FindAllStringSubmatch(v, -1) {
						names = append(names, m[1])
					}
					slices.Sort(names)
					vars = append(vars, slices.Compact(names))
				}
				if len(vars) == 2 && !slices.Equal(vars[0], vars[1]) {
					t.Errorf("%s: %s fills %v in zh-CN but %v in en", script, f, vars[0], vars[1])
				}
			}
		}
	}
}
