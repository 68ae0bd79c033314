package web_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/chromedp"

	"github.com/mfaflow/mfaflow/i18n"
)

// axeVersion is the axe-core release scripts/test-deps.sh fetches (pinned
// with its SHA-256) into .cache/axe-core/.
const axeVersion = "4.10.3"

var (
	axeOnce sync.Once
	axeJS   string
	axeErr  error
)

// axeSource returns axe.min.js: $MFAFLOW_AXE_JS, else the copy
// scripts/test-deps.sh keeps in the repository's .cache/axe-core/. The
// accessibility check is part of the browser tests, so without it they
// fail (make deps fetches it).
func axeSource(t *testing.T) string {
	t.Helper()
	axeOnce.Do(func() {
		path := os.Getenv("MFAFLOW_AXE_JS")
		if path == "" {
			path = filepath.Join("..", ".cache", "axe-core", "axe-"+axeVersion+".min.js")
		}
		b, err := os.ReadFile(path)
		if err != nil {
			axeErr = fmt.Errorf("axe-core %s is needed for the accessibility check and is not at %s (run scripts/test-deps.sh, or set MFAFLOW_AXE_JS): %w", axeVersion, path, err)
			return
		}
		axeJS = string(b)
	})
	if axeErr != nil {
		t.Fatal(axeErr)
	}
	return axeJS
}

// catalogText is the text of key in l as a page's script shows it: the
// catalog's text with {name} filled from kv (name, value pairs).
func catalogText(l i18n.Lang, key string, kv ...string) string {
	s := i18n.T(l, key, nil)
	for i := 0; i+1 < len(kv); i += 2 {
		s = strings.ReplaceAll(s, "{"+kv[i]+"}", kv[i+1])
	}
	return s
}

// axeViolation is one serious or critical finding of axe-core.
type axeViolation struct {
	ID      string   `json:"id"`
	Impact  string   `json:"impact"`
	Help    string   `json:"help"`
	Targets []string `json:"targets"`
}

// axeCheck runs axe-core on the page as it is and fails the test on every
// serious or critical violation.
func (b *browser) axeCheck(name string) {
	b.t.Helper()
	src := axeSource(b.t)
	ctx, cancel := context.WithTimeout(b.ctx, 60*time.Second)
	defer cancel()
	if _, err := chromedp.Run(ctx, chromedp.Evaluate[chromedp.Void](`typeof axe === "undefined" ? (0, eval)(`+jsString(src)+`) : undefined`)); err != nil {
		b.t.Fatalf("%s: inject axe-core: %v", name, err)
	}
	js := `axe.run(document, {resultTypes: ["violations"]}).then((r) => JSON.stringify(r.violations
		.filter((v) => v.impact === "serious" || v.impact === "critical")
		.map((v) => ({id: v.id, impact: v.impact, help: v.help, targets: v.nodes.map((n) => String(n.target)).slice(0, 5)}))))`
	out, err := chromedp.Run(ctx, chromedp.Evaluate[string](js, chromedp.EvalAwaitPromise))
	if err != nil {
		b.t.Fatalf("%s: axe-core: %v", name, err)
	}
	var vs []axeViolation
	if err := json.Unmarshal([]byte(out), &vs); err != nil {
		b.t.Fatalf("%s: axe-core answer %q: %v", name, out, err)
	}
	for _, v := range vs {
		b.t.Errorf("%s: axe-core %s (%s): %s at %s", name, v.ID, v.Impact, v.Help, strings.Join(v.Targets, "; "))
	}
}

var rawKeyInPage = regexp.MustCompile(`\bpage\.[a-z_]+\.[A-Za-z_]+`)

// checkPage checks the page as it is in language l: <html lang>, no raw
// catalog key in its text, its favicon, Chinese on a zh-CN page; then, at 1280 px and
// at 375 px wide, axe-core finds nothing serious or critical, nothing
// overflows sideways at 375 px, and a screenshot is saved at each width.
func (b *browser) checkPage(l i18n.Lang, name string) {
	b.t.Helper()
	name = string(l) + "-" + name
	if got := eval[string](b, `document.documentElement.lang`); got != string(l) {
		b.t.Errorf("%s: <html lang=%q>, want %q", name, got, l)
	}
	text := eval[string](b, `document.body.innerText`)
	if k := rawKeyInPage.FindString(text); k != "" {
		b.t.Errorf("%s: the page shows the raw catalog key %s", name, k)
	}
	if strings.Contains(text, "<no value>") {
		b.t.Errorf("%s: a text lacks a template variable", name)
	}
	ctx, cancel := context.WithTimeout(b.ctx, 20*time.Second)
	icon, err := chromedp.Run(ctx, chromedp.Evaluate[string](`(async () => { const l = document.querySelector('link[rel="icon"]');
		if (!l) { return "no icon link"; } const r = await fetch(l.href); return r.ok ? r.headers.get("Content-Type") : "status " + r.status; })()`, chromedp.EvalAwaitPromise))
	cancel()
	if err != nil || !strings.HasPrefix(icon, "image/svg+xml") {
		b.t.Errorf("%s: the favicon: %q (%v)", name, icon, err)
	}
	if l == i18n.ZH {
		han := 0
		for _, r := range text {
			if r >= 0x4e00 && r <= 0x9fff {
				han++
			}
		}
		if han < 20 {
			b.t.Errorf("%s: only %d Chinese characters on a zh-CN page: %q", name, han, text)
		}
	}
	wide := eval[int](b, `window.innerWidth`)
	for _, w := range []int64{1280, 375} {
		b.do(fmt.Sprintf("%d px wide", w), chromedp.EmulateViewport(w, 900))
		b.waitJS(fmt.Sprintf("the layout settles at %d px", w), fmt.Sprintf(`window.innerWidth === %d`, w), 10*time.Second)
		if w == 375 {
			if sw := eval[int](b, `document.documentElement.scrollWidth`); sw > 375 {
				b.t.Errorf("%s: the page is %d px wide at a 375 px viewport", name, sw)
			}
		}
		b.axeCheck(fmt.Sprintf("%s at %d px", name, w))
		b.screenshot(fmt.Sprintf("%s-%d", name, w))
	}
	b.restoreWidth(wide)
}

// restoreWidth ends the viewport emulation and waits until the window is
// wide again and laid out (two frames), so that a click after it lands
// where the element now is.
func (b *browser) restoreWidth(wide int) {
	b.t.Helper()
	b.do("restore the width", chromedp.Func(func(ctx context.Context, _ *chromedp.Target) error {
		_, err := chromedp.Call(ctx, emulation.ClearDeviceMetricsOverride, cdp.Empty{})
		return err
	}))
	b.waitJS("the window's width is back", fmt.Sprintf(`window.innerWidth === %d`, wide), 10*time.Second)
	ctx, cancel := context.WithTimeout(b.ctx, 10*time.Second)
	defer cancel()
	if _, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`new Promise((ok) => requestAnimationFrame(() => requestAnimationFrame(() => ok(true))))`, chromedp.EvalAwaitPromise)); err != nil {
		b.t.Fatalf("wait for the layout: %v", err)
	}
}
