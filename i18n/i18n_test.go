package i18n

import (
	"io/fs"
	"path"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	goi18n "github.com/nicksnyder/go-i18n/v2/i18n"
	"github.com/pelletier/go-toml/v2"
)

var tmplVar = regexp.MustCompile(`\{\{\s*\.(\w+)`)

// catalog reads every locales/<area>.<lang>.toml into area → lang → id → variables.
func catalog(t *testing.T) map[string]map[string]map[string][]string {
	t.Helper()
	files, err := fs.Glob(locales, "locales/*.toml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no catalogs: %v", err)
	}
	out := map[string]map[string]map[string][]string{}
	for _, f := range files {
		base := strings.TrimSuffix(path.Base(f), ".toml")
		dot := strings.Index(base, ".")
		if dot < 0 {
			t.Fatalf("%s: want <area>.<lang>.toml", f)
		}
		area, lang := base[:dot], base[dot+1:]
		if _, ok := Parse(lang); !ok || (lang != string(ZH) && lang != string(EN)) {
			t.Fatalf("%s: language %q is neither zh-CN nor en", f, lang)
		}
		buf, _ := locales.ReadFile(f)
		mf, err := goi18n.ParseMessageFileBytes(buf, f, map[string]goi18n.UnmarshalFunc{"toml": toml.Unmarshal})
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		if out[area] == nil {
			out[area] = map[string]map[string][]string{}
		}
		ids := map[string][]string{}
		for _, m := range mf.Messages {
			var vars []string
			for _, s := range []string{m.Zero, m.One, m.Two, m.Few, m.Many, m.Other} {
				for _, v := range tmplVar.FindAllStringSubmatch(s, -1) {
					vars = append(vars, v[1])
				}
			}
			sort.Strings(vars)
			ids[m.ID] = compact(vars)
			if strings.TrimSpace(m.Other) == "" {
				t.Errorf("%s: %s is empty", f, m.ID)
			}
		}
		out[area][lang] = ids
	}
	return out
}

func compact(s []string) []string {
	var out []string
	for i, v := range s {
		if i == 0 || v != s[i-1] {
			out = append(out, v)
		}
	}
	return out
}

// TestCatalogsComplete fails when a message exists in one language and not
// the other, when an area lacks a language, when the two translations use
// different template variables, or when an id is in two areas.
func TestCatalogsComplete(t *testing.T) {
	cat := catalog(t)
	seen := map[string]string{}
	total := 0
	for area, langs := range cat {
		zh, en := langs[string(ZH)], langs[string(EN)]
		if zh == nil || en == nil {
			t.Errorf("area %s: needs both %s.zh-CN.toml and %s.en.toml", area, area, area)
			continue
		}
		for id, vars := range zh {
			total++
			if prev, ok := seen[id]; ok {
				t.Errorf("%s is in both %s and %s", id, prev, area)
			}
			seen[id] = area
			ev, ok := en[id]
			if !ok {
				t.Errorf("%s: %s has no en text", area, id)
				continue
			}
			if strings.Join(vars, ",") != strings.Join(ev, ",") {
				t.Errorf("%s: %s uses {%s} in zh-CN but {%s} in en", area, id, strings.Join(vars, ","), strings.Join(ev, ","))
			}
		}
		for id := range en {
			if _, ok := zh[id]; !ok {
				t.Errorf("%s: %s has no zh-CN text", area, id)
			}
		}
	}
	// Every message resolves through the bundle in both languages.
	for id := range seen {
		for _, l := range Langs {
			if !Has(l, id) {
				t.Errorf("%s: bundle has no %s", id, l)
			}
		}
	}
	t.Logf("%d messages in %d areas, each in zh-CN and en", total, len(cat))
}

func TestNegotiate(t *testing.T) {
	for _, c := range []struct {
		explicit, accept string
		want             Lang
	}{
		{"", "", ZH},
		{"", "zh-CN,zh;q=0.9,en;q=0.8", ZH},
		{"", "en-US,en;q=0.9", EN},
		{"", "en-GB", EN},
		{"", "zh-TW", ZH},
		{"", "fr-FR", ZH},
		{"", "fr-FR,en;q=0.5", EN},
		{"", "garbage;;;", ZH},
		{"en", "zh-CN", EN},
		{"zh-CN", "en", ZH},
		{"xx", "en", EN},
	} {
		if got := Negotiate(c.explicit, c.accept); got != c.want {
			t.Errorf("Negotiate(%q, %q) = %s, want %s", c.explicit, c.accept, got, c.want)
		}
	}
}

func TestTUnknownKeyShowsTheKey(t *testing.T) {
	if got := T(ZH, "no.such.key", nil); got != "no.such.key" {
		t.Fatalf("T of a missing key = %q", got)
	}
	if got := T(EN, "lang_name", nil); got != "English" {
		t.Fatalf("T(en, lang_name) = %q", got)
	}
	if got := T(ZH, "lang_name", nil); got != "中文" {
		t.Fatalf("T(zh-CN, lang_name) = %q", got)
	}
}

func TestTime(t *testing.T) {
	at := time.Date(2026, 12, 9, 15, 27, 0, 0, time.UTC)
	for _, c := range []struct {
		l    Lang
		zone string
		want string
	}{
		{ZH, "", "2026年12月9日 23:27（UTC+8）"},
		{EN, "", "9 Dec 2026, 23:27 (UTC+8)"},
		{EN, "Europe/London", "9 Dec 2026, 15:27 (UTC+0)"},
		{ZH, "Asia/Kolkata", "2026年12月9日 20:57（UTC+5:30）"},
		{EN, "Not/AZone", "9 Dec 2026, 23:27 (UTC+8)"},
	} {
		if got := Time(c.l, at, c.zone); got != c.want {
			t.Errorf("Time(%s, %q) = %q, want %q", c.l, c.zone, got, c.want)
		}
	}
}
