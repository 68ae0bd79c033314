// Package i18n holds every text a person reads, in zh-CN (the default) and en.
//
// The catalogs are TOML files under locales/, one pair per area:
// <area>.zh-CN.toml and <area>.en.toml (pages, messages, errors…). They are
// read with github.com/nicksnyder/go-i18n/v2, chosen over golang.org/x/text's
// message catalogs because its files are plain TOML a translator can edit
// without a code generator, it carries CLDR plural rules for both languages,
// and a missing message is an error we can test for rather than a silent
// fallback. TestCatalogsComplete fails when a key is missing in either
// language or when the two disagree on a message's template variables.
package i18n

import (
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"strings"
	"sync"
	"time"
	_ "time/tzdata" // Asia/Shanghai and every account zone, also in minimal images

	goi18n "github.com/nicksnyder/go-i18n/v2/i18n"
	"github.com/pelletier/go-toml/v2"
	"golang.org/x/text/language"
)

// Lang is a supported language tag: ZH or EN.
type Lang string

// The supported languages. ZH is the default.
const (
	ZH Lang = "zh-CN"
	EN Lang = "en"
)

// DefaultZone is the time zone a reader gets when nothing names one.
const DefaultZone = "Asia/Shanghai"

// Langs lists the supported languages, the default first.
var Langs = []Lang{ZH, EN}

//go:embed locales/*.toml
var locales embed.FS

var (
	once    sync.Once
	bundle  *goi18n.Bundle
	loadErr error
	matcher = language.NewMatcher([]language.Tag{language.MustParse(string(ZH)), language.English})
	locs    sync.Map // Lang → *goi18n.Localizer
)

func load() {
	bundle = goi18n.NewBundle(language.MustParse(string(ZH)))
	bundle.RegisterUnmarshalFunc("toml", toml.Unmarshal)
	files, err := fs.Glob(locales, "locales/*.toml")
	if err != nil {
		loadErr = err
		return
	}
	for _, f := range files {
		buf, err := locales.ReadFile(f)
		if err != nil {
			loadErr = err
			return
		}
		if _, err := bundle.ParseMessageFileBytes(buf, path.Base(f)); err != nil {
			loadErr = fmt.Errorf("i18n: %s: %w", f, err)
			return
		}
	}
}

func localizer(l Lang) *goi18n.Localizer {
	once.Do(load)
	if loadErr != nil {
		panic(loadErr) // the catalogs are embedded: a parse error is a build defect, caught by the tests
	}
	if v, ok := locs.Load(l); ok {
		return v.(*goi18n.Localizer)
	}
	v, _ := locs.LoadOrStore(l, goi18n.NewLocalizer(bundle, string(l)))
	return v.(*goi18n.Localizer)
}

// Parse returns the supported language s names ("zh", "zh-CN", "zh-Hans",
// "en", "en-GB"…), and false when it names neither.
func Parse(s string) (Lang, bool) {
	s = strings.TrimSpace(s)
	if s == "" {
		return "", false
	}
	tag, err := language.Parse(s)
	if err != nil {
		return "", false
	}
	base, _ := tag.Base()
	switch base.String() {
	case "zh":
		return ZH, true
	case "en":
		return EN, true
	}
	return "", false
}

// Or returns the supported language s names, or def when it names none.
func Or(s string, def Lang) Lang {
	if l, ok := Parse(s); ok {
		return l
	}
	return def
}

// Negotiate picks a page's language: the explicit choice (a switcher's
// cookie or query parameter) when it names a supported language, then the
// Accept-Language header, then zh-CN.
func Negotiate(explicit, acceptLanguage string) Lang {
	if l, ok := Parse(explicit); ok {
		return l
	}
	if acceptLanguage == "" {
		return ZH
	}
	tags, _, err := language.ParseAcceptLanguage(acceptLanguage)
	if err != nil || len(tags) == 0 {
		return ZH
	}
	_, idx, conf := matcher.Match(tags...)
	if conf == language.No {
		return ZH
	}
	if idx == 1 {
		return EN
	}
	return ZH
}

// T returns message id in l, with data filling its template. A message the
// catalog lacks comes back as its id, so a missing key shows up in tests
// (and in no page: TestCatalogsComplete and the page tests look for it).
func T(l Lang, id string, data map[string]any) string {
	s, err := localizer(l).Localize(&goi18n.LocalizeConfig{MessageID: id, TemplateData: data})
	if err != nil {
		return id
	}
	return s
}

// N is T for a counted message: count chooses the plural form and is
// available to the template as .Count.
func N(l Lang, id string, count int, data map[string]any) string {
	if data == nil {
		data = map[string]any{}
	}
	data["Count"] = count
	s, err := localizer(l).Localize(&goi18n.LocalizeConfig{MessageID: id, TemplateData: data, PluralCount: count})
	if err != nil {
		return id
	}
	return s
}

// Has reports whether the catalog of l holds message id.
func Has(l Lang, id string) bool {
	_, err := localizer(l).Localize(&goi18n.LocalizeConfig{MessageID: id})
	var nf *goi18n.MessageNotFoundErr
	return !errors.As(err, &nf)
}

// Zone returns the location name names, or Asia/Shanghai when name is
// empty or unknown.
func Zone(name string) *time.Location {
	if name != "" {
		if loc, err := time.LoadLocation(name); err == nil {
			return loc
		}
	}
	loc, _ := time.LoadLocation(DefaultZone)
	return loc
}

// Time formats t for a reader of l in zone (an IANA name; empty means
// Asia/Shanghai): "2026年12月9日 23:27（UTC+8）" or "9 Dec 2026, 23:27 (UTC+8)".
func Time(l Lang, t time.Time, zone string) string {
	t = t.In(Zone(zone))
	_, off := t.Zone()
	utc := "UTC" + offset(off)
	if l == EN {
		return t.Format("2 Jan 2006, 15:04") + " (" + utc + ")"
	}
	return fmt.Sprintf("%d年%d月%d日 %s（%s）", t.Year(), int(t.Month()), t.Day(), t.Format("15:04"), utc)
}

func offset(sec int) string {
	sign := "+"
	if sec < 0 {
		sign, sec = "-", -sec
	}
	h, m := sec/3600, sec%3600/60
	if m == 0 {
		return fmt.Sprintf("%s%d", sign, h)
	}
	return fmt.Sprintf("%s%d:%02d", sign, h, m)
}
