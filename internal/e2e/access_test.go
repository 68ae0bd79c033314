package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"go.temporal.io/sdk/converter"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/mfaflow/mfaflow/activities"
	"github.com/mfaflow/mfaflow/api"
	"github.com/mfaflow/mfaflow/auth"
	"github.com/mfaflow/mfaflow/codec"
	"github.com/mfaflow/mfaflow/console"
	"github.com/mfaflow/mfaflow/inventory"
	"github.com/mfaflow/mfaflow/mfa"
	"github.com/mfaflow/mfaflow/notify"
	"github.com/mfaflow/mfaflow/store"
	"github.com/mfaflow/mfaflow/store/storetest"
	"github.com/mfaflow/mfaflow/web"
)

// caller is one column of the access-control matrix: who sends the request.
type caller int

const (
	anonymous      caller = iota // no Authorization header
	consoleCaller                // the console key
	wrongConsole                 // a console key the server does not know
	applicant                    // the access token of the appeal in the path
	otherApplicant               // the access token of another appeal
	reviewer                     // a reviewer JWT
	reviewer2                    // a second reviewer's JWT
	admin                        // an admin JWT
	expiredJWT                   // an admin JWT whose exp has passed
	forgedJWT                    // an admin JWT signed with another secret
	numCallers
)

var callerNames = [numCallers]string{
	"anonymous", "console key", "wrong console key", "applicant (this appeal)", "applicant (another appeal)",
	"reviewer", "second reviewer", "admin", "expired admin JWT", "admin JWT with a bad signature",
}

func (c caller) String() string { return callerNames[c] }

// statuses holds a row's expected status for every caller.
type statuses [numCallers]int

// everyone expects code from every caller.
func everyone(code int) statuses {
	var s statuses
	for i := range s {
		s[i] = code
	}
	return s
}

// consoleOnly: the console key gets ok; every other credential, or none, is
// not a console key (401).
func consoleOnly(ok int) statuses {
	s := everyone(http.StatusUnauthorized)
	s[consoleCaller] = ok
	return s
}

// applicantOnly: the appeal's own token gets ok, another appeal's token 403,
// anything that is not an access token 401.
func applicantOnly(ok int) statuses {
	s := everyone(http.StatusUnauthorized)
	s[applicant], s[otherApplicant] = ok, http.StatusForbidden
	return s
}

// staffOnly: reviewers and admins get ok; no JWT, or one that does not
// verify, is 401.
func staffOnly(ok int) statuses {
	s := everyone(http.StatusUnauthorized)
	s[reviewer], s[reviewer2], s[admin] = ok, ok, ok
	return s
}

// adminOnly: the admin gets ok, a valid reviewer JWT 403, the rest 401.
func adminOnly(ok int) statuses {
	s := staffOnly(http.StatusForbidden)
	s[admin] = ok
	return s
}

func (s statuses) with(c caller, code int) statuses {
	s[c] = code
	return s
}

// accessRequest is what one cell sends, besides the caller's credentials.
type accessRequest struct {
	params      map[string]string // path parameters by name, every one the route has
	query       string
	json        any    // a JSON body, or
	body        []byte // a raw body with contentType
	contentType string
	// appeal is the appeal whose access token the applicant caller sends;
	// nil: the shared submitted appeal.
	appeal *accessAppeal
}

// accessRow is one request of the matrix, sent by every caller.
type accessRow struct {
	route   string // "METHOD /path" exactly as api.Server.Routes lists it
	variant string // what sets this row apart when a route has several
	dev     bool   // registered only in dev mode
	want    statuses
	// req builds the cell's request; ok says the caller is expected to
	// succeed, for rows that give each succeeding cell a fresh fixture.
	req func(f *accessFixtures, c caller, ok bool) accessRequest
}

func (r accessRow) name() string {
	if r.variant != "" {
		return r.route + " (" + r.variant + ")"
	}
	return r.route
}

// accessRows is the matrix. Every request an allowed caller sends is valid
// and succeeds. A request that changes state either works on a fixture of
// its own (accounts, devices and bindings made for that row) or, for the
// appeal rows, on a fresh appeal made for each cell expected to succeed;
// refused cells point at the shared appeal and must leave it alone. The
// claim, decision and cancel rows come last, so that a refusal that failed
// to refuse spoils no other row.
func accessRows() []accessRow {
	acct := func(id string) map[string]string { return map[string]string{"account_id": id} }
	appealParams := func(a *accessAppeal) map[string]string { return map[string]string{"appeal_id": a.id} }
	none := func(*accessFixtures, caller, bool) accessRequest { return accessRequest{} }
	return []accessRow{
		// Public operations endpoints.
		{route: "GET /healthz", want: everyone(200), req: none},
		{route: "GET /readyz", want: everyone(200), req: none},
		{route: "HEAD /healthz", want: everyone(200), req: none},
		{route: "HEAD /readyz", want: everyone(200), req: none},
		{route: "GET /metrics", want: everyone(200), req: none},
		{route: "GET /openapi.yaml", want: everyone(200), req: none},
		{route: "GET /v1", want: everyone(200), req: none},

		// Console: the console key only.
		{route: "POST /v1/accounts/:account_id/mfa/bindings", want: consoleOnly(201),
			req: func(f *accessFixtures, _ caller, _ bool) accessRequest {
				return accessRequest{params: acct(f.unbound), json: map[string]any{"device_type": "virtual"}}
			}},
		{route: "POST /v1/accounts/:account_id/mfa/bindings/:binding_id/sms-code", want: consoleOnly(200),
			req: func(f *accessFixtures, _ caller, _ bool) accessRequest {
				b := f.bindSMS
				return accessRequest{params: map[string]string{"account_id": b.account, "binding_id": b.id}, json: map[string]any{"code": b.sms}}
			}},
		{route: "GET /v1/accounts/:account_id/mfa/bindings/:binding_id/qr.png", want: consoleOnly(200),
			req: func(f *accessFixtures, _ caller, _ bool) accessRequest {
				return accessRequest{params: map[string]string{"account_id": f.bindQR.account, "binding_id": f.bindQR.id}}
			}},
		{route: "POST /v1/accounts/:account_id/mfa/bindings/:binding_id/confirm", want: consoleOnly(200),
			req: func(f *accessFixtures, _ caller, _ bool) accessRequest {
				b, now := f.bindConfirm, time.Now()
				return accessRequest{params: map[string]string{"account_id": b.account, "binding_id": b.id}, json: map[string]any{
					"code1": mfa.TOTP(b.secret, now.Add(-30*time.Second), mfa.Params{}), "code2": mfa.TOTP(b.secret, now, mfa.Params{}),
					"protection": map[string]bool{"login": false, "operation": false},
				}}
			}},
		{route: "GET /v1/accounts/:account_id/mfa/bindings/:binding_id", want: consoleOnly(200),
			req: func(f *accessFixtures, _ caller, _ bool) accessRequest {
				return accessRequest{params: map[string]string{"account_id": f.bindQR.account, "binding_id": f.bindQR.id}}
			}},
		{route: "DELETE /v1/accounts/:account_id/mfa/bindings/:binding_id", want: consoleOnly(200),
			req: func(f *accessFixtures, _ caller, _ bool) accessRequest {
				return accessRequest{params: map[string]string{"account_id": f.bindCancel.account, "binding_id": f.bindCancel.id}}
			}},
		{route: "GET /v1/accounts/:account_id/mfa", want: consoleOnly(200),
			req: func(f *accessFixtures, _ caller, _ bool) accessRequest {
				return accessRequest{params: acct(f.this.account)}
			}},
		{route: "PUT /v1/accounts/:account_id/mfa/protection", want: consoleOnly(200),
			req: func(f *accessFixtures, _ caller, _ bool) accessRequest {
				d := f.devices["protection"]
				return accessRequest{params: acct(d.account), json: map[string]any{"login": true, "operation": false, "code": d.code(0)}}
			}},
		{route: "POST /v1/accounts/:account_id/mfa/verify", want: consoleOnly(200),
			req: func(f *accessFixtures, _ caller, _ bool) accessRequest {
				d := f.devices["verify"]
				return accessRequest{params: acct(d.account), json: map[string]any{"code": d.code(0), "purpose": "login"}}
			}},
		{route: "POST /v1/accounts/:account_id/mfa/grants/consume", want: consoleOnly(200),
			req: func(f *accessFixtures, _ caller, _ bool) accessRequest {
				return accessRequest{params: acct(f.devices["grant"].account), json: map[string]any{"grant": f.grant, "operation": grantOperation}}
			}},
		{route: "POST /v1/accounts/:account_id/mfa/resync", want: consoleOnly(200),
			req: func(f *accessFixtures, _ caller, _ bool) accessRequest {
				d := f.devices["resync"]
				return accessRequest{params: acct(d.account), json: map[string]any{"code1": d.code(-1), "code2": d.code(0)}}
			}},
		{route: "DELETE /v1/accounts/:account_id/mfa/devices/:device_id", want: consoleOnly(200),
			req: func(f *accessFixtures, _ caller, _ bool) accessRequest {
				d := f.devices["unbind"]
				return accessRequest{params: map[string]string{"account_id": d.account, "device_id": d.id}, json: map[string]any{"code": d.code(0)}}
			}},
		{route: "POST /v1/accounts/:account_id/mfa/recovery-codes", want: consoleOnly(201),
			req: func(f *accessFixtures, _ caller, _ bool) accessRequest {
				d := f.devices["recovery"]
				return accessRequest{params: acct(d.account), json: map[string]any{"proof": map[string]string{"code": d.code(0)}}}
			}},
		{route: "POST /v1/accounts/:account_id/mfa/webauthn/challenge", want: consoleOnly(201),
			req: func(f *accessFixtures, _ caller, _ bool) accessRequest {
				return accessRequest{params: acct(f.keyAccount), json: map[string]any{"purpose": "step_up"}}
			}},
		{route: "POST /v1/accounts/:account_id/login-protection/verify", want: consoleOnly(200),
			req: func(f *accessFixtures, _ caller, _ bool) accessRequest {
				d := f.devices["login"]
				return accessRequest{params: acct(d.account), json: map[string]any{"code": d.code(0)}}
			}},

		// Applicants: filing is public; the rest needs the appeal's token.
		{route: "POST /v1/appeals", variant: "each cell files for an account of its own", want: everyone(201),
			req: func(f *accessFixtures, _ caller, _ bool) accessRequest {
				id, phone := f.account(store.LoginMFA)
				f.device(id, store.Virtual)
				return accessRequest{json: personalAppeal(id, phone, accessIDNumber)}
			}},
		{route: "PUT /v1/appeals/:appeal_id/documents/:doc_type", variant: "a fresh appeal collecting documents for the applicant", want: applicantOnly(201),
			req: func(f *accessFixtures, _ caller, ok bool) accessRequest {
				a := f.this
				if ok {
					a = f.appeal(appealFiled, "")
				}
				return accessRequest{params: map[string]string{"appeal_id": a.id, "doc_type": "id_holding_photo"},
					body: jpeg(2000), contentType: "image/jpeg", appeal: a}
			}},
		{route: "POST /v1/appeals/:appeal_id/submit", variant: "a fresh appeal with its document for the applicant", want: applicantOnly(202),
			req: func(f *accessFixtures, _ caller, ok bool) accessRequest {
				a := f.this
				if ok {
					a = f.appeal(appealDocumented, "")
				}
				return accessRequest{params: appealParams(a), appeal: a}
			}},
		{route: "GET /v1/appeals/:appeal_id", want: applicantOnly(200),
			req: func(f *accessFixtures, _ caller, _ bool) accessRequest {
				return accessRequest{params: appealParams(f.this)}
			}},

		// Reviewers (an admin holds every role).
		{route: "GET /v1/review/appeals", want: staffOnly(200),
			req: func(*accessFixtures, caller, bool) accessRequest {
				return accessRequest{query: "status=pending_review"}
			}},
		{route: "GET /v1/review/appeals/:appeal_id", want: staffOnly(200),
			req: func(f *accessFixtures, _ caller, _ bool) accessRequest {
				return accessRequest{params: appealParams(f.this)}
			}},
		// The signed link is the credential; the Authorization header is ignored.
		{route: "GET /v1/review/documents/:appeal_id/:doc_type", variant: "valid signed link", want: everyone(200),
			req: func(f *accessFixtures, _ caller, _ bool) accessRequest { return f.documentLink(false) }},
		{route: "GET /v1/review/documents/:appeal_id/:doc_type", variant: "link signed for another reviewer", want: everyone(403),
			req: func(f *accessFixtures, _ caller, _ bool) accessRequest { return f.documentLink(true) }},

		// Admin.
		{route: "PUT /v1/admin/accounts/:account_id", variant: "a new account", want: adminOnly(201),
			req: func(*accessFixtures, caller, bool) accessRequest {
				return accessRequest{params: acct("acm-admin-put"), json: map[string]any{
					"type": "personal", "bound_phone": "13804000001", "logins": []map[string]string{{"kind": "qq", "id": "104000001"}},
					"real_name": map[string]any{"verified": true, "name": "张三", "id_number": accessIDNumber},
				}}
			}},
		{route: "GET /v1/admin/accounts/:account_id", want: adminOnly(200),
			req: func(f *accessFixtures, _ caller, _ bool) accessRequest {
				return accessRequest{params: acct(f.this.account)}
			}},
		{route: "GET /v1/admin/audit", want: adminOnly(200),
			req: func(f *accessFixtures, _ caller, _ bool) accessRequest {
				return accessRequest{query: "account_id=" + url.QueryEscape(f.this.account)}
			}},
		{route: "POST /v1/admin/accounts/:account_id/security-center", want: adminOnly(201),
			req: func(f *accessFixtures, _ caller, _ bool) accessRequest {
				return accessRequest{params: acct(f.unprovisioned)}
			}},
		{route: "DELETE /v1/admin/accounts/:account_id/mfa/lock", want: adminOnly(200),
			req: func(f *accessFixtures, _ caller, _ bool) accessRequest {
				return accessRequest{params: acct(f.unbound)}
			}},
		{route: "GET /v1/admin/appeals", want: adminOnly(200),
			req: func(*accessFixtures, caller, bool) accessRequest {
				return accessRequest{query: "status=pending_review"}
			}},
		{route: "POST /v1/admin/hardware-tokens/import", want: adminOnly(201),
			req: func(*accessFixtures, caller, bool) accessRequest {
				secret, _ := mfa.NewSecret(nil)
				csv := "serial,secret,algorithm,digits,period\nACM-0001," + mfa.EncodeSecret(secret) + ",SHA1,6,30\n"
				return accessRequest{body: []byte(csv), contentType: "text/csv"}
			}},

		// The Temporal UI's codec server: admins only, payloads in and out.
		{route: "POST /v1/admin/codec/encode", want: adminOnly(200),
			req: func(f *accessFixtures, _ caller, _ bool) accessRequest {
				return f.codecRequest(converter.GetDefaultDataConverter())
			}},
		{route: "POST /v1/admin/codec/decode", want: adminOnly(200),
			req: func(f *accessFixtures, _ caller, _ bool) accessRequest {
				return f.codecRequest(codec.DataConverter(f.s.keys))
			}},

		// Staff sign-in (SPEC §5b). This server has no MFAFLOW_OIDC_ISSUER:
		// the sign-in routes say so to everyone, and sign-out without a
		// session cookie has nothing to end. Sessions, their CSRF token and
		// the flow against a real OpenID Provider are run in
		// web.TestStaffSignInInBrowser and api.TestStaffSession.
		{route: "GET /auth/login", want: everyone(404),
			req: func(*accessFixtures, caller, bool) accessRequest { return accessRequest{query: "return=/review"} }},
		{route: "GET /auth/callback", want: everyone(404),
			req: func(*accessFixtures, caller, bool) accessRequest { return accessRequest{query: "code=x&state=y"} }},
		{route: "GET /auth/session", want: everyone(404), req: none},
		{route: "POST /auth/logout", want: everyone(200), req: none},

		// Dev mode only, public: the dev stack listens on loopback.
		{route: "GET /dev/outbox", dev: true, want: everyone(200),
			req: func(f *accessFixtures, _ caller, _ bool) accessRequest {
				return accessRequest{query: "to=" + f.this.phone}
			}},
		{route: "GET /dev/hardware-tokens/:serial/code", dev: true, want: everyone(200),
			req: func(*accessFixtures, caller, bool) accessRequest {
				return accessRequest{params: map[string]string{"serial": accessDemoSerial}}
			}},
		{route: "GET /dev/security-center/:account_id/code", dev: true, want: everyone(200),
			req: func(f *accessFixtures, _ caller, _ bool) accessRequest {
				return accessRequest{params: acct(f.provisioned)}
			}},
		{route: "GET /console", dev: true, want: everyone(200),
			req: func(f *accessFixtures, _ caller, _ bool) accessRequest {
				return accessRequest{query: "account=" + f.this.account}
			}},

		// Web pages, in every mode: public shells whose scripts call the
		// API with the caller's own token.
		{route: "GET /appeal", want: everyone(200), req: none},
		{route: "GET /appeal/status", want: everyone(200),
			req: func(f *accessFixtures, _ caller, _ bool) accessRequest {
				return accessRequest{query: "id=" + f.this.id}
			}},
		{route: "GET /appeals/:appeal_id/owner-cancel", want: everyone(200),
			req: func(f *accessFixtures, _ caller, _ bool) accessRequest {
				return accessRequest{params: appealParams(f.this), query: "token=" + activities.OwnerCancelToken(f.s.keys, f.this.id)}
			}},
		// The SMS's short cancel link answers 303 to the owner-cancel page;
		// the matrix's client follows it, so every caller ends on the page.
		{route: "GET /c/:token", want: everyone(200),
			req: func(f *accessFixtures, _ caller, _ bool) accessRequest {
				token, _ := activities.OwnerCancelShortToken(f.s.keys, f.this.id)
				return accessRequest{params: map[string]string{"token": token}}
			}},
		{route: "GET /review", want: everyone(200), req: none},
		{route: "GET /review/case", want: everyone(200),
			req: func(f *accessFixtures, _ caller, _ bool) accessRequest {
				return accessRequest{query: "id=" + f.this.id}
			}},
		{route: "GET /static/*file", want: everyone(200),
			req: func(*accessFixtures, caller, bool) accessRequest {
				return accessRequest{params: map[string]string{"file": "pages.css"}}
			}},

		// Last: rows whose refusals, were they to fail, would change the
		// shared appeal.
		{route: "POST /v1/review/appeals/:appeal_id/claim", variant: "a fresh submitted appeal per reviewer", want: staffOnly(200),
			req: func(f *accessFixtures, _ caller, ok bool) accessRequest {
				a := f.this
				if ok {
					a = f.appeal(appealSubmitted, "")
				}
				return accessRequest{params: appealParams(a)}
			}},
		{route: "POST /v1/review/appeals/:appeal_id/decision", variant: "a fresh appeal claimed by the deciding reviewer", want: staffOnly(200),
			req: func(f *accessFixtures, c caller, ok bool) accessRequest {
				a := f.this
				if ok {
					a = f.appeal(appealSubmitted, f.tokens[c])
				}
				return accessRequest{params: appealParams(a), json: map[string]any{"decision": "reject", "reason": "the photo does not show the ID card"}}
			}},
		// The applicant's bearer token decides; the owner's path is taken
		// only without one, and then the empty body's missing token is 401.
		{route: "POST /v1/appeals/:appeal_id/cancel", variant: "applicant's access token, empty object body", want: applicantOnly(200),
			req: func(f *accessFixtures, _ caller, ok bool) accessRequest {
				a := f.this
				if ok {
					a = f.appeal(appealFiled, "")
				}
				return accessRequest{params: appealParams(a), json: map[string]any{}, appeal: a}
			}},
		// With the owner's valid cancel token in the body, anonymous cancels;
		// any bearer token still has to be the appeal's access token.
		{route: "POST /v1/appeals/:appeal_id/cancel", variant: "owner's cancel token in the body", want: applicantOnly(200).with(anonymous, 200),
			req: func(f *accessFixtures, _ caller, ok bool) accessRequest {
				a := f.this
				if ok {
					a = f.appeal(appealFiled, "")
				}
				return accessRequest{params: appealParams(a), json: map[string]any{"token": activities.OwnerCancelToken(f.s.keys, a.id)}, appeal: a}
			}},
	}
}

const (
	accessIDNumber   = "11010519491231002X"
	accessDemoSerial = "ACM-DEMO-0001"
)

var grantOperation = map[string]string{"action": "cvm:DeleteInstance", "resource": "vm-acm"}

// accessAppeal is an appeal fixture.
type accessAppeal struct {
	id, token, account, phone string
}

// accessDevice is an active device whose secret the test knows.
type accessDevice struct {
	account, id string
	secret      mfa.Secret
}

// code is the device's code for the time step steps periods from now.
func (d accessDevice) code(steps int) string {
	return mfa.TOTP(d.secret, time.Now().Add(time.Duration(steps)*30*time.Second), mfa.Params{})
}

// accessBinding is a virtual binding in progress.
type accessBinding struct {
	account, id, sms string
	secret           mfa.Secret // once the SMS code was given
}

type appealStage int

const (
	appealFiled appealStage = iota
	appealDocumented
	appealSubmitted
)

// accessFixtures is the data the matrix's requests point at.
type accessFixtures struct {
	t      *testing.T
	s      *stack
	srv    *api.Server
	n      int
	tokens [numCallers]string // the callers' credentials, but the applicants'
	// this is the appeal in the path of the applicant and reviewer rows
	// (submitted, with a document); other supplies another appeal's token.
	this, other *accessAppeal
	// unbound has no binding; bindSMS awaits its SMS code; bindQR and
	// bindConfirm await the app's codes; bindCancel awaits its SMS code and
	// is cancelled by its row.
	unbound                                  string
	bindSMS, bindQR, bindConfirm, bindCancel accessBinding
	// keyAccount has a WebAuthn key.
	keyAccount string
	// devices are the accounts of the code-taking console routes, one each
	// so that no code is spent twice.
	devices map[string]accessDevice
	grant   string
	// provisioned has a security-center app; unprovisioned has none.
	provisioned, unprovisioned string
}

// newAccessFixtures starts the product (Temporal with the production
// worker, SQLite, MinIO) behind one API server in dev mode with the web
// pages mounted as the dev stack mounts them, and sets up every fixture.
func newAccessFixtures(t *testing.T) *accessFixtures {
	t.Helper()
	st := storetest.SQLite(t)
	// Every appeal here is filed from one address: lift the per-IP limit.
	appeals := api.AppealConfig{DocumentDeadline: time.Hour, ReviewSLA: time.Hour, Retention: time.Hour, PerIPPerHour: 1000, PerAccountPerDay: 100}
	s := newStackWith(t, st, 0, appeals)
	outbox := notify.Outbox{Store: st}
	tc := s.ts.GetDefaultClient()
	srv := api.NewServer(api.Deps{
		Store:    st,
		Temporal: tc,
		ConsoleService: &console.Service{Store: st, Keys: s.keys, Notifier: outbox, Now: s.clock.Now, WebAuthn: s.wa,
			OnFactorUsed: api.FactorUsedHook(st, tc, nil)},
		Documents:        s.blobs,
		Appeals:          appeals,
		OwnerCancelToken: func(id string) string { return activities.OwnerCancelToken(s.keys, id) },
		Notifier:         outbox,
		Keys:             s.keys,
		Console:          auth.NewConsoleKeys([]string{consoleKey}),
		JWT:              &auth.Verifier{Keys: auth.HS256(jwtSecret)},
		Dev:              true,
		Web: web.NewConsole(web.ConsoleConfig{Directory: st, DevConsoleKey: consoleKey, DevLinks: true,
			DemoSerials: []string{accessDemoSerial}}),
		Pages:  web.NewPages(web.PagesConfig{}),
		Now:    s.clock.Now,
		Logger: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})),
	})
	hs := httptest.NewUnstartedServer(srv)
	hs.Listener = api.Listener(hs.Listener) // as serve and dev run it
	hs.Start()
	t.Cleanup(hs.Close)
	s.apis = []*httptest.Server{hs}

	f := &accessFixtures{t: t, s: s, srv: srv, devices: map[string]accessDevice{}}
	now := time.Now()
	sign := func(secret []byte, sub string, role string, at time.Time) string {
		tok, err := auth.SignHS256(secret, sub, []string{role}, "", time.Hour, at)
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	f.tokens = [numCallers]string{
		consoleCaller: consoleKey,
		wrongConsole:  "e2e-console-key-0123456789abcdeX",
		reviewer:      sign(jwtSecret, "rev-1", auth.RoleReviewer, now),
		reviewer2:     sign(jwtSecret, "rev-2", auth.RoleReviewer, now),
		admin:         s.admin,
		expiredJWT:    sign(jwtSecret, "admin-expired", auth.RoleAdmin, now.Add(-2*time.Hour)),
		forgedJWT:     sign([]byte("another-secret-0123456789abcdef-0123"), "admin-forged", auth.RoleAdmin, now),
	}

	f.this = f.appeal(appealSubmitted, "")
	f.other = f.appeal(appealSubmitted, "")

	f.unbound, _ = f.account(store.LoginMFA)
	f.bindSMS = f.binding(false)
	f.bindQR = f.binding(true)
	f.bindConfirm = f.binding(true)
	f.bindCancel = f.binding(false)

	for _, name := range []string{"protection", "verify", "grant", "unbind", "login", "recovery"} {
		id, _ := f.account(store.LoginMFA)
		f.devices[name] = f.device(id, store.Virtual)
	}
	id, _ := f.account(store.LoginMFA)
	f.devices["resync"] = f.device(id, store.Hardware)
	f.keyAccount, _ = f.account(store.LoginMFA)
	if _, err := st.CreateWebAuthnDevice(context.Background(), store.Device{AccountID: f.keyAccount, Name: "key"}, store.WebAuthnCredential{
		AccountID: f.keyAccount, CredentialID: []byte("acm-cred-" + f.keyAccount), UserHandle: []byte("acm-user-handle"), PublicKey: []byte{1}}); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if _, err := st.SetProtection(ctx, f.devices["verify"].account, store.Protection{Login: true}); err != nil {
		t.Fatal(err)
	}
	g := f.devices["grant"]
	if _, err := st.SetProtection(ctx, g.account, store.Protection{Operation: true}); err != nil {
		t.Fatal(err)
	}
	code, out := s.console(http.MethodPost, "/v1/accounts/"+g.account+"/mfa/verify", map[string]any{"code": g.code(0), "purpose": "operation", "operation": grantOperation})
	if code != http.StatusOK || out["grant"] == nil {
		t.Fatalf("verify for a grant = %d %v", code, out)
	}
	f.grant = out["grant"].(string)

	f.unprovisioned, _ = f.account(store.LoginSecurityCenter)
	f.provisioned, _ = f.account(store.LoginSecurityCenter)
	if code, out, _ := s.call(0, http.MethodPost, "/v1/admin/accounts/"+f.provisioned+"/security-center", s.admin, nil); code != http.StatusCreated {
		t.Fatalf("provision security center = %d %v", code, out)
	}
	secret, _ := mfa.NewSecret(nil)
	im := inventory.Importer{Store: st, Keys: s.keys}
	csv := "serial,secret,algorithm,digits,period\n" + accessDemoSerial + "," + mfa.EncodeSecret(secret) + ",SHA1,6,30\n"
	if _, err := im.Import(ctx, strings.NewReader(csv), inventory.Options{Format: inventory.CSV, BatchID: api.DemoBatchID}); err != nil {
		t.Fatal(err)
	}
	return f
}

// account puts a new personal, real-name verified account in the directory
// and returns its id and bound phone.
func (f *accessFixtures) account(method store.LoginMethod) (id, phone string) {
	f.t.Helper()
	f.n++
	id, phone = fmt.Sprintf("acm-%03d", f.n), fmt.Sprintf("1380300%04d", f.n)
	f.s.putAccount(id, phone, method)
	return id, phone
}

// device stores an active device of type typ for the account.
func (f *accessFixtures) device(accountID string, typ store.DeviceType) accessDevice {
	f.t.Helper()
	secret, err := mfa.NewSecret(nil)
	if err != nil {
		f.t.Fatal(err)
	}
	d := accessDevice{account: accountID, id: "dev-" + accountID, secret: secret}
	sealed, err := f.s.keys.Seal(secret, mfa.AAD(string(store.SealedDevices), d.id))
	if err != nil {
		f.t.Fatal(err)
	}
	dev := store.Device{ID: d.id, AccountID: accountID, Type: typ, Secret: sealed, Algorithm: "SHA1", Digits: 6, PeriodSeconds: 30, Status: store.DeviceActive}
	if typ == store.Hardware {
		dev.Serial = "ACM-HW-" + accountID[len("acm-"):]
	}
	if _, err := f.s.st.CreateDevice(context.Background(), dev); err != nil {
		f.t.Fatal(err)
	}
	return d
}

// appeal files a personal appeal for a new account with a device and takes
// it to stage; claimBy, when set, is the JWT of the reviewer who claims it.
func (f *accessFixtures) appeal(stage appealStage, claimBy string) *accessAppeal {
	f.t.Helper()
	id, phone := f.account(store.LoginMFA)
	f.device(id, store.Virtual)
	code, out, _ := f.s.call(0, http.MethodPost, "/v1/appeals", "", personalAppeal(id, phone, accessIDNumber))
	if code != http.StatusCreated {
		f.t.Fatalf("file appeal for %s = %d %v", id, code, out)
	}
	a := &accessAppeal{id: out["appeal_id"].(string), token: out["access_token"].(string), account: id, phone: phone}
	if stage >= appealDocumented {
		uploadOK(f.t, f.s, "/v1/appeals/"+a.id+"/documents/id_holding_photo", a.token, jpeg(2000))
	}
	if stage >= appealSubmitted {
		if code, out := f.s.raw(http.MethodPost, "/v1/appeals/"+a.id+"/submit", a.token, "application/json", nil, 0); code != http.StatusAccepted {
			f.t.Fatalf("submit %s = %d %v", a.id, code, out)
		}
	}
	if claimBy != "" {
		if code, out, _ := f.s.call(0, http.MethodPost, "/v1/review/appeals/"+a.id+"/claim", claimBy, nil); code != http.StatusOK {
			f.t.Fatalf("claim %s = %d %v", a.id, code, out)
		}
	}
	return a
}

// binding starts a virtual binding for a new account; withSMS also gives
// the SMS code, so that the binding awaits the app's codes.
func (f *accessFixtures) binding(withSMS bool) accessBinding {
	f.t.Helper()
	id, phone := f.account(store.LoginMFA)
	code, out := f.s.console(http.MethodPost, "/v1/accounts/"+id+"/mfa/bindings", map[string]any{"device_type": "virtual"})
	if code != http.StatusCreated {
		f.t.Fatalf("binding for %s = %d %v", id, code, out)
	}
	b := accessBinding{account: id, id: out["binding_id"].(string), sms: f.s.smsCode(phone)}
	if withSMS {
		code, out := f.s.console(http.MethodPost, "/v1/accounts/"+id+"/mfa/bindings/"+b.id+"/sms-code", map[string]any{"code": b.sms})
		if code != http.StatusOK {
			f.t.Fatalf("SMS code for %s = %d %v", id, code, out)
		}
		secret, err := mfa.DecodeSecret(out["secret"].(string))
		if err != nil {
			f.t.Fatal(err)
		}
		b.secret = secret
	}
	return b
}

// documentLink returns a fresh signed link to the shared appeal's photo, as
// rev-1's case view gives it; tampered moves it to rev-2.
func (f *accessFixtures) documentLink(tampered bool) accessRequest {
	f.t.Helper()
	code, out, _ := f.s.call(0, http.MethodGet, "/v1/review/appeals/"+f.this.id, f.tokens[reviewer], nil)
	docs, _ := out["documents"].([]any)
	if code != http.StatusOK || len(docs) == 0 {
		f.t.Fatalf("case view for a document link = %d %v", code, out)
	}
	link, _ := docs[0].(map[string]any)["url"].(string)
	u, err := url.Parse(link)
	if err != nil {
		f.t.Fatal(err)
	}
	parts := strings.Split(strings.TrimPrefix(u.Path, "/v1/review/documents/"), "/")
	if len(parts) != 2 {
		f.t.Fatalf("document link %q", link)
	}
	q := u.Query()
	if tampered {
		q.Set("r", "rev-2")
	}
	return accessRequest{params: map[string]string{"appeal_id": parts[0], "doc_type": parts[1]}, query: q.Encode()}
}

// codecRequest is a codec-server body holding one payload made by dc.
func (f *accessFixtures) codecRequest(dc converter.DataConverter) accessRequest {
	f.t.Helper()
	p, err := dc.ToPayload("access matrix")
	if err != nil {
		f.t.Fatal(err)
	}
	b, err := protojson.Marshal(p)
	if err != nil {
		f.t.Fatal(err)
	}
	return accessRequest{json: map[string]any{"payloads": []json.RawMessage{b}}}
}

// expandRoute fills the route's parameters (":name" and "*name" segments);
// every parameter needs a value and every value a parameter.
func expandRoute(pattern string, params map[string]string) (string, error) {
	segs := strings.Split(pattern, "/")
	used := 0
	for i, seg := range segs {
		if len(seg) < 2 || (seg[0] != ':' && seg[0] != '*') {
			continue
		}
		v, ok := params[seg[1:]]
		if !ok || v == "" {
			return "", fmt.Errorf("no value for %s", seg)
		}
		segs[i] = url.PathEscape(v)
		used++
	}
	if used != len(params) {
		return "", fmt.Errorf("parameters %v do not all appear in the route", params)
	}
	return strings.Join(segs, "/"), nil
}

// send sends one cell's request.
func (f *accessFixtures) send(method, path, token string, rq accessRequest) (int, http.Header, []byte) {
	f.t.Helper()
	var body io.Reader
	ct := rq.contentType
	switch {
	case rq.json != nil:
		b, err := json.Marshal(rq.json)
		if err != nil {
			f.t.Fatal(err)
		}
		body, ct = bytes.NewReader(b), "application/json"
	case rq.body != nil:
		body = bytes.NewReader(rq.body)
	}
	req, err := http.NewRequest(method, f.s.apis[0].URL+path, body)
	if err != nil {
		f.t.Fatal(err)
	}
	if ct != "" {
		req.Header.Set("Content-Type", ct)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := f.s.client.Do(req)
	if err != nil {
		f.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, raw
}

var snakeCase = regexp.MustCompile(`^[a-z][a-z0-9]*(_[a-z0-9]+)*$`)

// checkRefusal checks SPEC §5's error body: {"error":{"code","message"}}
// with a snake_case code, and nothing else in the error object but a field.
func checkRefusal(hdr http.Header, body []byte) error {
	if ct := hdr.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		return fmt.Errorf("Content-Type %q, want JSON", ct)
	}
	var top map[string]json.RawMessage
	if err := json.Unmarshal(body, &top); err != nil {
		return fmt.Errorf("body %q: %v", body, err)
	}
	var e map[string]any
	if err := json.Unmarshal(top["error"], &e); err != nil || e == nil {
		return fmt.Errorf(`body %q has no "error" object`, body)
	}
	code, _ := e["code"].(string)
	msg, _ := e["message"].(string)
	if !snakeCase.MatchString(code) || msg == "" {
		return fmt.Errorf("error %v: want a snake_case code and a message", e)
	}
	for k := range e {
		if k != "code" && k != "message" && k != "field" {
			return fmt.Errorf("error object has %q", k)
		}
	}
	return nil
}

// checkRouteCoverage fails for a registered route without a row and for a
// row whose route is not registered.
func checkRouteCoverage(t *testing.T, label string, registered []string, rows []accessRow, dev bool) {
	t.Helper()
	covered := map[string]bool{}
	for _, r := range rows {
		if dev || !r.dev {
			covered[r.route] = true
		}
	}
	have := map[string]bool{}
	for _, r := range registered {
		have[r] = true
		if !covered[r] {
			t.Errorf("%s: route %q has no row in the access-control matrix", label, r)
		}
	}
	for r := range covered {
		if !have[r] {
			t.Errorf("%s: the matrix has a row for %q, which the server does not register", label, r)
		}
	}
}

// TestAccessMatrix is SPEC §7's "every endpoint × every role": each route
// the server registers in dev mode (pages mounted) is called by every caller
// against real fixtures on the whole product, and each cell's status is
// asserted. Refusals are 401 for missing or invalid credentials and 403 for
// valid ones of the wrong role or appeal; every refusal carries the error
// body, and no cell is a 5xx. A route without a row, or a row without a
// route, fails the test.
func TestAccessMatrix(t *testing.T) {
	rows := accessRows()
	for _, r := range rows {
		for c, w := range r.want {
			if w == 0 {
				t.Fatalf("%s: no expected status for %s", r.name(), caller(c))
			}
		}
	}
	// Outside dev mode the /dev routes and the console demo page do not exist.
	prod := api.NewServer(api.Deps{Web: web.NewConsole(web.ConsoleConfig{}), Pages: web.NewPages(web.PagesConfig{})})
	checkRouteCoverage(t, "production mode", prod.Routes(), rows, false)
	for _, r := range rows {
		if !r.dev {
			continue
		}
		method, pattern, _ := strings.Cut(r.route, " ")
		path := strings.NewReplacer(":serial", "X", ":account_id", "x", "*file", "x").Replace(pattern)
		rec := httptest.NewRecorder()
		prod.ServeHTTP(rec, httptest.NewRequest(method, path, nil))
		if rec.Code != http.StatusNotFound {
			t.Errorf("production mode: %s %s = %d, want 404", method, path, rec.Code)
		} else if err := checkRefusal(rec.Header(), rec.Body.Bytes()); err != nil {
			t.Errorf("production mode: %s %s: %v", method, path, err)
		}
	}

	f := newAccessFixtures(t)
	checkRouteCoverage(t, "dev mode", f.srv.Routes(), rows, true)
	if t.Failed() {
		t.FailNow()
	}

	start := time.Now()
	var grid strings.Builder
	cells := 0
	for _, r := range rows {
		method, pattern, _ := strings.Cut(r.route, " ")
		rowStart := time.Now()
		fmt.Fprintf(&grid, "%-80s", r.name())
		for c := range numCallers {
			want := r.want[c]
			rq := r.req(f, c, want/100 == 2)
			a := rq.appeal
			if a == nil {
				a = f.this
			}
			token := f.tokens[c]
			switch c {
			case applicant:
				token = a.token
			case otherApplicant:
				token = f.other.token
			}
			path, err := expandRoute(pattern, rq.params)
			if err != nil {
				t.Fatalf("%s: %v", r.name(), err)
			}
			if rq.query != "" {
				path += "?" + rq.query
			}
			code, hdr, body := f.send(method, path, token, rq)
			cells++
			fmt.Fprintf(&grid, " %d", code)
			cell := fmt.Sprintf("%s as %s", r.name(), c)
			switch {
			case code >= 500:
				t.Errorf("%s: %d, a server error: %s", cell, code, clip(body))
			case code != want:
				t.Errorf("%s: %d, want %d: %s", cell, code, want, clip(body))
			}
			if code >= 400 {
				if err := checkRefusal(hdr, body); err != nil {
					t.Errorf("%s: refusal body: %v", cell, err)
				}
			}
			if code == http.StatusUnauthorized && hdr.Get("WWW-Authenticate") == "" {
				t.Errorf("%s: 401 without WWW-Authenticate", cell)
			}
		}
		fmt.Fprintf(&grid, "  %s\n", time.Since(rowStart).Round(time.Millisecond))
	}
	t.Logf("access matrix: %d routes, %d rows × %d callers = %d cells in %s; callers: %s\n%s",
		len(f.srv.Routes()), len(rows), numCallers, cells, time.Since(start).Round(time.Millisecond),
		strings.Join(callerNames[:], " | "), grid.String())
}

func clip(b []byte) string {
	if len(b) > 300 {
		b = b[:300]
	}
	if utf8.Valid(b) {
		return string(b)
	}
	return fmt.Sprintf("(%d bytes, not text)", len(b))
}
