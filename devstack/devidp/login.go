package devidp

import (
	"context"
	"errors"
	"html/template"
	"net/http"

	"github.com/mfaflow/mfaflow/i18n"
)

// login is the provider's login page: a username and password form for
// one authorization request.
type login struct {
	store       *storage
	callback    func(context.Context, string) string
	formTargets string // the origins of the client's redirect URIs
}

var loginPage = template.Must(template.New("login").Parse(`<!doctype html>
<html lang="{{.Lang}}"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{.Title}}</title>
<style>body{font-family:system-ui,"Noto Sans CJK SC",sans-serif;max-width:28rem;margin:2rem auto;padding:0 1rem;line-height:1.5}
label{display:block;margin-top:.75rem}input{width:100%;padding:.4rem;font-size:1rem;box-sizing:border-box}
button{margin-top:1rem;padding:.5rem 1rem;font-size:1rem}.error{color:#a40000}.muted{color:#555}</style></head>
<body><main>
<h1>{{.Title}}</h1>
<p class="muted">{{.Intro}}</p>
{{if .Error}}<p id="login-error" class="error" role="alert">{{.Error}}</p>{{end}}
<form method="post" action="/login">
<input type="hidden" name="id" value="{{.ID}}">
<input type="hidden" name="lang" value="{{.Lang}}">
<label for="username">{{.Username}}</label><input id="username" name="username" autocomplete="username" required>
<label for="password">{{.Password}}</label><input id="password" name="password" type="password" autocomplete="current-password" required>
<button id="sign-in" type="submit">{{.Submit}}</button>
</form>
<p class="muted">{{.Users}}</p>
</main></body></html>`))

func (l *login) render(w http.ResponseWriter, r *http.Request, id string, status int, errID string) {
	lang := i18n.Negotiate(r.FormValue("lang"), r.Header.Get("Accept-Language"))
	if c, err := r.Cookie("lang"); err == nil && r.FormValue("lang") == "" {
		lang = i18n.Negotiate(c.Value, r.Header.Get("Accept-Language"))
	}
	t := func(k string) string { return i18n.T(lang, k, nil) }
	data := map[string]any{
		"Lang": string(lang), "ID": id, "Title": t("auth.devidp.title"), "Intro": t("auth.devidp.intro"),
		"Username": t("auth.devidp.username"), "Password": t("auth.devidp.password"), "Submit": t("auth.devidp.submit"),
		"Users": t("auth.devidp.users"),
	}
	if errID != "" {
		data["Error"] = t(errID)
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	// form-action covers the redirects after the form's POST too: the
	// provider's own callback, then the relying party's.
	w.Header().Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; form-action 'self' "+l.formTargets+"; frame-ancestors 'none'")
	w.WriteHeader(status)
	_ = loginPage.Execute(w, data)
}

func (l *login) page(w http.ResponseWriter, r *http.Request) {
	id := r.URL.Query().Get("authRequestID")
	if _, err := l.store.AuthRequestByID(r.Context(), id); err != nil {
		l.render(w, r, "", http.StatusBadRequest, "auth.devidp.unknown_request")
		return
	}
	l.render(w, r, id, http.StatusOK, "")
}

func (l *login) submit(w http.ResponseWriter, r *http.Request) {
	id := r.FormValue("id")
	err := l.store.authenticate(id, r.FormValue("username"), r.FormValue("password"))
	switch {
	case errors.Is(err, errBadPassword):
		l.render(w, r, id, http.StatusUnauthorized, "auth.devidp.wrong_password")
		return
	case err != nil:
		l.render(w, r, "", http.StatusBadRequest, "auth.devidp.unknown_request")
		return
	}
	http.Redirect(w, r, l.callback(r.Context(), id), http.StatusFound)
}
