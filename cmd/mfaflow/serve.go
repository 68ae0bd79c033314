package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/url"
	"strings"

	"github.com/mfaflow/mfaflow/api"
	"github.com/mfaflow/mfaflow/auth"
	"github.com/mfaflow/mfaflow/blob"
	"github.com/mfaflow/mfaflow/devstack/devidp"
	"github.com/mfaflow/mfaflow/internal/config"
	"github.com/mfaflow/mfaflow/web"
)

// runServe runs the HTTP API against the production servers.
func runServe(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	cfg, help, err := loadConfig("serve", args, getenv, stdout, nil)
	if err != nil || help {
		return err
	}
	if err := cfg.RequireProduction(true); err != nil {
		return err
	}
	keys, err := parseKeyring(cfg)
	if err != nil {
		return err
	}
	log := newLogger(stderr)
	db, err := openPostgres(ctx, cfg, false)
	if err != nil {
		return err
	}
	defer db.Close()
	tc, err := dialTemporal(cfg, keys, log)
	if err != nil {
		return err
	}
	defer tc.Close()
	blobs := &blobRef{cfg: blob.Config{Endpoint: cfg.S3Endpoint, AccessKey: cfg.S3AccessKey, SecretKey: cfg.S3SecretKey, Bucket: cfg.S3Bucket, UseTLS: cfg.S3UseTLS, Encrypt: true}}
	notifier := productionNotifier(cfg)
	wa, err := webAuthn(cfg)
	if err != nil {
		return err
	}
	oidc, err := staffOIDC(cfg, cfg.PublicURL)
	if err != nil {
		return err
	}
	deps := api.Deps{
		Store:            db,
		Temporal:         tc,
		ConsoleService:   consoleService(db, keys, notifier, tc, log, wa),
		Documents:        blobs,
		Appeals:          appealConfig(cfg, cfg.PublicURL),
		OwnerCancelToken: ownerCancelToken(keys),
		Notifier:         notifier,
		Ready:            readyChecks(db, blobs, tc),
		Keys:             keys,
		Console:          auth.NewConsoleKeys(cfg.ConsoleAPIKeys),
		JWT:              jwtVerifier(cfg),
		OIDC:             oidc,
		Logger:           log,
		Pages:            web.NewPages(web.PagesConfig{MaxDocument: appealConfig(cfg, cfg.PublicURL).MaxDocument, Logger: log.With("component", "web")}),
		TrustedProxies:   cfg.TrustedProxies,
	}
	metricsSetup(cfg, &deps, false)
	if cfg.MetricsAddr == "" && cfg.MetricsToken == "" {
		log.Info("metrics are off: set MFAFLOW_METRICS_ADDR or MFAFLOW_METRICS_TOKEN to serve /metrics")
	}
	srv := api.NewServer(deps)
	return withMetrics(ctx, cfg, deps, "serve", stdout, func(ctx context.Context) error {
		return serveHTTP(ctx, cfg.HTTPAddr, srv, func(a net.Addr) {
			fmt.Fprintf(stdout, "mfaflow serve: listening on %s\n", hostURL(a))
		})
	})
}

// staffOIDC is the staff sign-in's relying party (SPEC §5b) when
// MFAFLOW_OIDC_ISSUER is set, with its callback under publicURL; nil when
// it is not.
func staffOIDC(cfg config.Config, publicURL string) (*auth.OIDC, error) {
	if cfg.OIDCIssuer == "" {
		return nil, nil
	}
	if err := cfg.RequireOIDC(); err != nil {
		return nil, err
	}
	return auth.NewOIDC(auth.OIDCConfig{Issuer: cfg.OIDCIssuer, ClientID: cfg.OIDCClientID, ClientSecret: cfg.OIDCClientSecret,
		RolesClaim: cfg.OIDCRolesClaim, RedirectURL: strings.TrimRight(publicURL, "/") + "/auth/callback"})
}

// devStaffSignIn sets up the dev stack's staff sign-in on deps: the given
// MFAFLOW_OIDC_* settings, else an embedded OpenID Provider (devidp) on a
// free loopback port with two reviewers and an admin. Over plain http on a
// loopback address the staff cookies go without the Secure flag (a browser
// would not send them back over http otherwise), which the banner says. It
// returns the banner's lines and a function that stops the provider.
func devStaffSignIn(cfg config.Config, publicURL string, deps *api.Deps) (banner string, stop func(), err error) {
	stop = func() {}
	if u, perr := url.Parse(publicURL); perr == nil && u.Scheme == "http" {
		if ip := net.ParseIP(u.Hostname()); u.Hostname() == "localhost" || (ip != nil && ip.IsLoopback()) {
			deps.InsecureSessionCookie = true
		}
	}
	cookie := "HttpOnly, Secure, SameSite=Strict"
	if deps.InsecureSessionCookie {
		cookie = "HttpOnly, SameSite=Strict, NOT Secure: plain http on loopback, dev only"
	}
	callback := strings.TrimRight(publicURL, "/") + "/auth/callback"
	if cfg.OIDCIssuer != "" {
		if deps.OIDC, err = staffOIDC(cfg, publicURL); err != nil {
			return "", stop, err
		}
		return fmt.Sprintf("\n  staff sign-in     %s/auth/login  (IdP %s, MFAFLOW_OIDC_ISSUER; callback %s)\n                    session cookie: %s\n",
			strings.TrimRight(publicURL, "/"), cfg.OIDCIssuer, callback, cookie), stop, nil
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", stop, fmt.Errorf("dev identity provider: %w", err)
	}
	client := devidp.Client{ID: "mfaflow-dev", Secret: randToken(32), RedirectURIs: []string{callback}}
	users := devidp.DevUsers()
	idp, err := devidp.Start(ln, devidp.Config{Client: client, Users: users, RolesClaim: cfg.OIDCRolesClaim})
	if err != nil {
		_ = ln.Close()
		return "", stop, err
	}
	deps.OIDC, err = auth.NewOIDC(auth.OIDCConfig{Issuer: idp.Issuer, ClientID: client.ID, ClientSecret: client.Secret,
		RolesClaim: cfg.OIDCRolesClaim, RedirectURL: callback})
	if err != nil {
		_ = idp.Close()
		return "", stop, err
	}
	var b strings.Builder
	fmt.Fprintf(&b, "\n  staff sign-in     %s/auth/login  (the review page's \"sign in\" button)\n", strings.TrimRight(publicURL, "/"))
	fmt.Fprintf(&b, "  dev IdP (OIDC)    %s  (embedded; set MFAFLOW_OIDC_ISSUER for your own)\n", idp.Issuer)
	fmt.Fprintf(&b, "                    session cookie: %s\n", cookie)
	for _, u := range users {
		fmt.Fprintf(&b, "    %-12s password %-16s %s\n", u.Username, u.Password, strings.Join(u.Roles, ","))
	}
	return b.String(), func() { _ = idp.Close() }, nil
}
