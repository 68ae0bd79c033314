package web

import (
	"html/template"
	"io/fs"
	"net/http"
	"net/url"
	"regexp"
	"sort"
	"strings"
	"sync"

	"github.com/mfaflow/mfaflow/i18n"
)

// langCookie remembers the language a reader chose with the switcher.
const langCookie = "lang"

// pageLang picks the language of a page: ?lang= (which the switcher's links
// carry, and which is remembered in the lang cookie for a year), then the
// cookie, then Accept-Language, then zh-CN.
func pageLang(w http.ResponseWriter, r *http.Request) i18n.Lang {
	w.Header().Add("Vary", "Accept-Language, Cookie")
	if q := r.URL.Query().Get("lang"); q != "" {
		if l, ok := i18n.Parse(q); ok {
			http.SetCookie(w, &http.Cookie{Name: langCookie, Value: string(l), Path: "/", MaxAge: 365 * 24 * 3600,
				HttpOnly: true, Secure: r.TLS != nil, SameSite: http.SameSiteLaxMode})
			return l
		}
	}
	explicit := ""
	if c, err := r.Cookie(langCookie); err == nil {
		explicit = c.Value
	}
	return i18n.Negotiate(explicit, r.Header.Get("Accept-Language"))
}

// langLink is one entry of the language switcher.
type langLink struct {
	Lang    i18n.Lang
	Label   string // the language's own name: 中文, English
	Href    string // this page with ?lang=
	Current bool
}

// texts is the language part of every page's data: templates call
// {{.T "page.key"}} (or $.T inside range), and the page's scripts read
// Dict, the catalog texts they use, from a JSON block.
type texts struct {
	Lang   i18n.Lang
	Switch []langLink
	Dict   map[string]string
}

// T returns the catalog text id in the page's language; kv are template
// variables as name, value pairs.
func (x texts) T(id string, kv ...any) string {
	var data map[string]any
	if len(kv) > 0 {
		data = make(map[string]any, len(kv)/2)
		for i := 0; i+1 < len(kv); i += 2 {
			if k, ok := kv[i].(string); ok {
				data[k] = kv[i+1]
			}
		}
	}
	return i18n.T(x.Lang, id, data)
}

// HTML is T for a catalog text with inline markup (<strong>, <code>): the
// catalogs are ours, compiled into the binary, and their variables are
// escaped before they are put in.
func (x texts) HTML(id string, kv ...any) template.HTML {
	for i := 1; i < len(kv); i += 2 {
		if s, ok := kv[i].(string); ok {
			kv[i] = template.HTMLEscapeString(s)
		}
	}
	return template.HTML(x.T(id, kv...)) //nolint:gosec // catalog text, variables escaped above
}

// newTexts returns the texts of a page in language l whose scripts are
// scripts (under static/).
func newTexts(r *http.Request, l i18n.Lang, scripts ...string) texts {
	x := texts{Lang: l, Dict: scriptDict(l, scripts)}
	for _, o := range i18n.Langs {
		q := url.Values{}
		for k, v := range r.URL.Query() {
			if k != "lang" {
				q[k] = v
			}
		}
		q.Set("lang", string(o))
		x.Switch = append(x.Switch, langLink{Lang: o, Label: i18n.T(o, "lang_name", nil), Href: r.URL.Path + "?" + q.Encode(), Current: o == l})
	}
	return x
}

// scriptKey finds the catalog keys a script uses: every string literal
// "page.…" in it. Keys the scripts build at run time are written out as
// literals in the script (tables of keys), so this finds them too.
var scriptKey = regexp.MustCompile(`"(page\.[A-Za-z0-9_.]+[A-Za-z0-9_])"`)

var (
	scriptKeysOnce sync.Once
	scriptKeysBy   map[string][]string // script name → keys
	dictCache      sync.Map            // lang + scripts → map[string]string
)

// scriptKeys returns the catalog keys each embedded script uses.
func scriptKeys() map[string][]string {
	scriptKeysOnce.Do(func() {
		scriptKeysBy = map[string][]string{}
		files, _ := fs.Glob(staticFS, "static/*.js")
		for _, f := range files {
			src, err := staticFS.ReadFile(f)
			if err != nil {
				continue
			}
			seen := map[string]bool{}
			var keys []string
			for _, m := range scriptKey.FindAllSubmatch(src, -1) {
				k := string(m[1])
				if !seen[k] {
					seen[k] = true
					keys = append(keys, k)
				}
			}
			sort.Strings(keys)
			scriptKeysBy[strings.TrimPrefix(f, "static/")] = keys
		}
	})
	return scriptKeysBy
}

// scriptDict returns the catalog texts the scripts use, in language l.
func scriptDict(l i18n.Lang, scripts []string) map[string]string {
	ck := string(l) + "|" + strings.Join(scripts, ",")
	if v, ok := dictCache.Load(ck); ok {
		return v.(map[string]string)
	}
	d := map[string]string{}
	all := scriptKeys()
	for _, s := range scripts {
		for _, k := range all[s] {
			if i18n.Has(l, k) {
				d[k] = i18n.T(l, k, nil)
				continue
			}
			// A counted text (the scripts' plural(key, n)): key_one, key_other.
			for _, f := range []string{k + "_one", k + "_other"} {
				if i18n.Has(l, f) {
					d[f] = i18n.T(l, f, nil)
				}
			}
		}
	}
	dictCache.Store(ck, d)
	return d
}
