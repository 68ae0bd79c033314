package main

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"go.temporal.io/sdk/client"
	sdklog "go.temporal.io/sdk/log"

	"github.com/mfaflow/mfaflow/api"
	"github.com/mfaflow/mfaflow/auth"
	"github.com/mfaflow/mfaflow/blob"
	"github.com/mfaflow/mfaflow/codec"
	"github.com/mfaflow/mfaflow/devstack"
	"github.com/mfaflow/mfaflow/internal/config"
	"github.com/mfaflow/mfaflow/inventory"
	"github.com/mfaflow/mfaflow/mfa"
	"github.com/mfaflow/mfaflow/notify"
	"github.com/mfaflow/mfaflow/store"
	"github.com/mfaflow/mfaflow/store/pgstore"
	"github.com/mfaflow/mfaflow/store/sqlitestore"
	"github.com/mfaflow/mfaflow/web"
	"github.com/mfaflow/mfaflow/worker"
	"github.com/mfaflow/mfaflow/workflows"
)

// devSecrets are generated on the first start and kept in the data dir, so
// keys and tokens stay the same across restarts.
type devSecrets struct {
	ConsoleKey    string `json:"console_key"`
	JWTSecret     string `json:"jwt_secret"`
	S3AccessKey   string `json:"s3_access_key"`
	S3SecretKey   string `json:"s3_secret_key"`
	SecretKeys    string `json:"secret_keys"`
	ReviewerToken string `json:"reviewer_token"`
	Reviewer2     string `json:"reviewer2_token"`
	AdminToken    string `json:"admin_token"`
}

const devTokenTTL = 365 * 24 * time.Hour

// devSettings are the settings mfaflow dev honours: all that "mfaflow dev
// -h" lists, and only these are read. TestDevSettingsHonoured checks each
// one changes what dev does; a setting added here needs a check there.
var devSettings = []string{
	"MFAFLOW_HTTP_ADDR", "MFAFLOW_DATA_DIR",
	"MFAFLOW_CONSOLE_API_KEYS", "MFAFLOW_JWT_HS256_SECRET", "MFAFLOW_JWKS_URL", "MFAFLOW_JWT_ISSUER", "MFAFLOW_JWT_AUDIENCE",
	"MFAFLOW_SECRET_KEYS",
	"MFAFLOW_APPEAL_COOLDOWN", "MFAFLOW_DOCUMENT_DEADLINE", "MFAFLOW_REVIEW_SLA", "MFAFLOW_RETENTION", "MFAFLOW_FOUR_EYES",
	"TEMPORAL_ADDRESS", "TEMPORAL_NAMESPACE", "MFAFLOW_BUILD_ID",
	"DATABASE_URL",
	"S3_ENDPOINT", "S3_ACCESS_KEY", "S3_SECRET_KEY", "S3_BUCKET", "S3_USE_TLS",
	"MFAFLOW_NOTIFIER_URL", "MFAFLOW_NOTIFIER_SECRET", "MFAFLOW_CONSOLE_URL", "MFAFLOW_CONSOLE_SECRET",
	"MFAFLOW_PUBLIC_URL", "MFAFLOW_TRUSTED_PROXIES", "MFAFLOW_METRICS_ADDR", "MFAFLOW_METRICS_TOKEN",
	"MFAFLOW_WEBAUTHN_RP_ID", "MFAFLOW_WEBAUTHN_RP_NAME", "MFAFLOW_WEBAUTHN_ORIGINS", "MFAFLOW_WEBAUTHN_AAGUIDS",
	"MFAFLOW_OIDC_ISSUER", "MFAFLOW_OIDC_CLIENT_ID", "MFAFLOW_OIDC_CLIENT_SECRET", "MFAFLOW_OIDC_ROLES_CLAIM",
}

// devPorts are the embedded servers' ports (flags only).
type devPorts struct {
	temporal, ui, s3 int
	uiGiven          bool // -ui-port was on the command line
}

// flags registers the port flags on fs.
func (p *devPorts) flags(fs *flag.FlagSet) {
	fs.IntVar(&p.temporal, "temporal-port", 7233, "embedded Temporal frontend port (0: pick a free one; unused with TEMPORAL_ADDRESS)")
	p.ui = 8233
	fs.Var(givenInt{&p.ui, &p.uiGiven}, "ui-port", "Temporal Web UI port (0: pick a free one, -1: no UI); with TEMPORAL_ADDRESS, a UI for that server starts only when this is given")
	fs.IntVar(&p.s3, "s3-port", 9000, "embedded S3 server port (0: pick a free one; unused with S3_ENDPOINT)")
}

// givenInt is an int flag that records that it was given.
type givenInt struct {
	n     *int
	given *bool
}

func (g givenInt) String() string {
	if g.n == nil {
		return "0"
	}
	return strconv.Itoa(*g.n)
}

func (g givenInt) Set(s string) error {
	n, err := strconv.Atoi(s)
	if err != nil {
		return errors.New("not a number")
	}
	*g.n, *g.given = n, true
	return nil
}

// portFlag names the flag of the port a devstack.PortError is about.
func portFlag(err error) error {
	var pe *devstack.PortError
	if !errors.As(err, &pe) {
		return err
	}
	name := map[string]string{devstack.ServerTemporal: "-temporal-port", devstack.ServerUI: "-ui-port", devstack.ServerS3: "-s3-port"}[pe.Server]
	return fmt.Errorf("%s: %s is in use (%v); pick another port, or 0 for a free one", name, pe.Addr, pe.Err)
}

// loadDevConfig reads dev's settings (devSettings and the port flags); -h
// prints them with their defaults.
func loadDevConfig(args []string, getenv func(string) string, stdout io.Writer, ports *devPorts) (config.Config, bool, error) {
	for _, a := range args {
		if a == "-h" || a == "-help" || a == "--help" {
			fmt.Fprintf(stdout, "mfaflow dev settings (environment variable or flag); dev needs none of them:\n%s", config.UsageOf(config.Only(devSettings)))
			fs := flag.NewFlagSet("dev", flag.ContinueOnError)
			ports.flags(fs)
			fmt.Fprintln(stdout, "\nports of the embedded servers (flags; the banner prints every address):")
			fs.VisitAll(func(f *flag.Flag) {
				fmt.Fprintf(stdout, "  -%-20s %s (default %s)\n", f.Name, f.Usage, f.DefValue)
			})
			fmt.Fprint(stdout, `
Given TEMPORAL_ADDRESS, DATABASE_URL or S3_ENDPOINT, dev uses that server instead of its embedded one.
With TEMPORAL_ADDRESS, give dev a namespace no other mfaflow uses: its worker makes its build current there.
Given console keys, a JWT secret or a JWKS URL, dev uses them instead of the generated ones (with a JWKS
URL the banner has no reviewer tokens: they come from the IdP). Given MFAFLOW_OIDC_ISSUER, staff sign in
to the pages there instead of at the embedded OpenID Provider. Given notifier or console webhook URLs,
those messages go there instead of the outbox at /dev/outbox.
`)
			return config.Config{}, true, nil
		}
	}
	cfg, rest, err := config.LoadOnly("dev", args, getenv, devSettings, ports.flags)
	if err != nil {
		return cfg, false, err
	}
	if len(rest) > 0 {
		return cfg, false, fmt.Errorf("unexpected argument %q", rest[0])
	}
	return cfg, false, devRequire(cfg)
}

// devRequire checks the settings that only make sense together.
func devRequire(cfg config.Config) error {
	if cfg.S3Endpoint != "" && (cfg.S3AccessKey == "" || cfg.S3SecretKey == "") {
		return errors.New("S3_ACCESS_KEY and S3_SECRET_KEY: required with S3_ENDPOINT")
	}
	if err := cfg.RequireJWKS(); err != nil {
		return err
	}
	if err := cfg.RequireOIDC(); err != nil {
		return err
	}
	if cfg.NotifierURL != "" && cfg.NotifierSecret == "" {
		return errors.New("MFAFLOW_NOTIFIER_SECRET: required with MFAFLOW_NOTIFIER_URL")
	}
	if cfg.ConsoleURL != "" && cfg.ConsoleURL != config.ConsoleURLNone && cfg.ConsoleSecret == "" {
		return errors.New("MFAFLOW_CONSOLE_SECRET: required with MFAFLOW_CONSOLE_URL")
	}
	return nil
}

// devStore is the app store dev runs on: SQLite, or PostgreSQL with DATABASE_URL.
type devStore interface {
	store.Store
	Migrate(ctx context.Context) error
	Close() error
}

// devBanner is what the banner shows.
type devBanner struct {
	apiURL, dataDir            string
	temporal, namespace, ui    string
	temporalGiven              bool
	s3, bucket                 string
	s3Given                    bool
	database                   string
	consoleKey                 string // "" when given by MFAFLOW_CONSOLE_API_KEYS
	reviewer, reviewer2, admin string // "" with a JWKS URL
	notifier, console          string // where messages go
	first                      bool
	seeded, serials            []string
}

// runDev runs the whole product in one process: embedded Temporal (SQLite
// file), an embedded S3 server, the SQLite app store, the worker and the
// API. TEMPORAL_ADDRESS, S3_ENDPOINT and DATABASE_URL replace the embedded
// parts; given keys, secrets and webhooks are used (devSettings).
func runDev(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	var ports devPorts
	cfg, help, err := loadDevConfig(args, getenv, stdout, &ports)
	if err != nil || help {
		return err
	}
	if cfg.DataDir == "" {
		cfg.DataDir = ".mfaflow-dev"
	}
	// Every path must be absolute: the embedded S3 server changes the working directory.
	dataDir, err := filepath.Abs(cfg.DataDir)
	if err != nil {
		return fmt.Errorf("MFAFLOW_DATA_DIR: %w", err)
	}
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return fmt.Errorf("MFAFLOW_DATA_DIR: %w", err)
	}
	// The API's address first: a busy one stops dev before anything starts.
	ln, err := net.Listen("tcp", cfg.HTTPAddr)
	if err != nil {
		return fmt.Errorf("-http-addr (MFAFLOW_HTTP_ADDR) %s: %w", cfg.HTTPAddr, err)
	}
	defer ln.Close()
	apiURL := hostURL(ln.Addr())
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	sec, first, err := loadDevSecrets(filepath.Join(dataDir, "dev-secrets.json"))
	if err != nil {
		return err
	}
	if cfg.SecretKeys == "" {
		cfg.SecretKeys = sec.SecretKeys
	}
	keys, err := parseKeyring(cfg)
	if err != nil {
		return err
	}
	b := devBanner{apiURL: apiURL, dataDir: dataDir, bucket: cfg.S3Bucket, first: first}

	// Documents: S3_ENDPOINT, or the embedded S3 server. The embedded
	// gateway stores objects as it is sent them and ignores SSE-S3, so dev
	// seals documents with the key ring in both cases: at rest they are
	// encrypted as in production.
	blobCfg := blob.Config{Endpoint: cfg.S3Endpoint, AccessKey: cfg.S3AccessKey, SecretKey: cfg.S3SecretKey, Bucket: cfg.S3Bucket, UseTLS: cfg.S3UseTLS, Seal: keys}
	if cfg.S3Endpoint == "" {
		s3, err := devstack.StartS3(ctx, devstack.S3Config{
			Dir:       filepath.Join(dataDir, "s3"),
			Addr:      fmt.Sprintf("127.0.0.1:%d", ports.s3),
			AccessKey: sec.S3AccessKey,
			SecretKey: sec.S3SecretKey,
			Logger:    log.With("component", "s3"),
		})
		if err != nil {
			return portFlag(err)
		}
		defer s3.Stop()
		blobCfg.Endpoint, blobCfg.AccessKey, blobCfg.SecretKey, blobCfg.UseTLS = s3.Endpoint(), sec.S3AccessKey, sec.S3SecretKey, false
	}
	b.s3, b.s3Given = blobCfg.Endpoint, cfg.S3Endpoint != ""

	// Workflows: TEMPORAL_ADDRESS, or the embedded Temporal server.
	if cfg.TemporalAddress == "" {
		tsrv, err := devstack.StartTemporal(ctx, devstack.TemporalConfig{
			DataDir:          filepath.Join(dataDir, "temporal"),
			FrontendPort:     ports.temporal,
			UIPort:           ports.ui,
			Namespace:        cfg.TemporalNamespace,
			SearchAttributes: workflows.SearchAttributes,
			Logger:           log.With("component", "temporal"),
		})
		if err != nil {
			return portFlag(err)
		}
		defer tsrv.Stop()
		b.temporal, b.namespace, b.ui = tsrv.FrontendAddr(), tsrv.Namespace(), tsrv.UIAddr()
	} else {
		// The namespace must exist; its search attributes are added when missing.
		nctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
		err := devstack.EnsureNamespace(nctx, cfg.TemporalAddress, cfg.TemporalNamespace, workflows.SearchAttributes, log.With("component", "temporal"))
		cancel()
		if err != nil {
			return fmt.Errorf("TEMPORAL_ADDRESS: %w", err)
		}
		b.temporal, b.namespace, b.temporalGiven = cfg.TemporalAddress, cfg.TemporalNamespace, true
		// A server of one's own often has its UI on the default port
		// (temporal server start-dev does): start one only when asked.
		if ports.uiGiven && ports.ui >= 0 {
			ui, err := devstack.StartUI(ctx, devstack.UIConfig{Port: ports.ui, Frontend: cfg.TemporalAddress, Namespace: cfg.TemporalNamespace, Logger: log.With("component", "temporal-ui")})
			if err != nil {
				return portFlag(err)
			}
			defer ui.Stop()
			b.ui = ui.Addr()
		}
	}

	// The app store: DATABASE_URL, or the SQLite file.
	var db devStore
	if cfg.DatabaseURL != "" {
		pg, err := pgstore.Open(ctx, cfg.DatabaseURL)
		if err != nil {
			return fmt.Errorf("DATABASE_URL: %w", err)
		}
		db, b.database = pg, "PostgreSQL (DATABASE_URL)"
	} else {
		path := filepath.Join(dataDir, "mfaflow.db")
		lite, err := sqlitestore.Open(ctx, path)
		if err != nil {
			return err
		}
		db, b.database = lite, "SQLite "+path
	}
	defer db.Close()
	if err := db.Migrate(ctx); err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	if b.seeded, err = seedDemoAccounts(ctx, db); err != nil {
		return err
	}
	if b.serials, err = importDemoTokens(ctx, db, keys); err != nil {
		return err
	}

	// Messages: the outbox, unless webhooks are given.
	outbox := notify.Outbox{Store: db}
	var notifier notify.Notifier = outbox
	b.notifier, b.console = apiURL+"/dev/outbox", apiURL+"/dev/outbox"
	if cfg.NotifierURL != "" || cfg.ConsoleURL != "" {
		r := notify.Router{Default: outbox, Channels: map[string]notify.Notifier{}}
		if cfg.NotifierURL != "" {
			r.Default, b.notifier = notify.Webhook{URL: cfg.NotifierURL, Secret: []byte(cfg.NotifierSecret)}, cfg.NotifierURL+" (MFAFLOW_NOTIFIER_URL)"
		}
		switch cfg.ConsoleURL {
		case "":
		case config.ConsoleURLNone:
			r.Channels[notify.Console], b.console = noSessionRevocation{}, "none (MFAFLOW_CONSOLE_URL=none)"
		default:
			r.Channels[notify.Console], b.console = notify.Webhook{URL: cfg.ConsoleURL, Secret: []byte(cfg.ConsoleSecret)}, cfg.ConsoleURL+" (MFAFLOW_CONSOLE_URL)"
		}
		notifier = r
	}

	scSvc := consoleService(db, keys, notifier, nil, log, nil)
	for _, a := range demoAccounts {
		// Every account has the platform's security-center app; ordinary
		// accounts log in with it.
		if _, _, err := scSvc.ProvisionSecurityCenter(ctx, a.ID); err != nil && !errors.Is(err, store.ErrConflict) {
			return fmt.Errorf("demo security center: %w", err)
		}
	}

	blobs := &blobRef{cfg: blobCfg}
	if _, err := blobs.Get(ctx); err != nil {
		if cfg.S3Endpoint != "" {
			return fmt.Errorf("S3_ENDPOINT: %w", err)
		}
		return err
	}

	tc, err := client.DialContext(ctx, codec.ClientOptions(keys, client.Options{
		HostPort:  b.temporal,
		Namespace: b.namespace,
		Logger:    sdklog.NewStructuredLogger(slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))),
	}))
	if err != nil {
		return fmt.Errorf("temporal client: %w", err)
	}
	defer tc.Close()

	wa, err := devWebAuthn(cfg, ln.Addr())
	if err != nil {
		return err
	}
	acts := newActivities(db, keys, notifier, blobs, wa)
	wctx, stopWorker := context.WithCancel(ctx)
	werr := make(chan error, 1)
	// The dev worker is versioned like production's, as build "dev" unless
	// MFAFLOW_BUILD_ID names another, and makes itself current: appeals
	// left open in a kept data directory go on after a restart.
	build := cfg.BuildID
	if build == "" {
		build = "dev"
	}
	go func() { werr <- worker.RunCurrent(wctx, tc, acts, worker.Options(build)) }()
	defer func() { stopWorker(); <-werr }()

	// Console keys and reviewer tokens: the given ones, else the generated.
	consoleKeys := cfg.ConsoleAPIKeys
	if len(consoleKeys) == 0 {
		consoleKeys, b.consoleKey = []string{sec.ConsoleKey}, sec.ConsoleKey
	}
	jwt := &auth.Verifier{Keys: auth.HS256(sec.JWTSecret), Leeway: 30 * time.Second}
	b.reviewer, b.reviewer2, b.admin = sec.ReviewerToken, sec.Reviewer2, sec.AdminToken
	switch {
	case cfg.JWKSURL != "":
		jwt, b.reviewer, b.reviewer2, b.admin = jwtVerifier(cfg), "", "", ""
	case cfg.JWTSecret != "":
		jwt = jwtVerifier(cfg)
		if b.reviewer, b.reviewer2, b.admin, err = devTokens(cfg.JWTSecret, time.Now()); err != nil {
			return err
		}
	}

	publicURL := cfg.PublicURL
	if publicURL == "" {
		publicURL = apiURL
	}
	deps := api.Deps{
		Store:            db,
		Temporal:         tc,
		ConsoleService:   consoleService(db, keys, notifier, tc, log.With("component", "console"), wa),
		Documents:        blobs,
		Appeals:          appealConfig(cfg, publicURL),
		OwnerCancelToken: ownerCancelToken(keys),
		Notifier:         notifier,
		Ready:            readyChecks(db, blobs, tc),
		Keys:             keys,
		Console:          auth.NewConsoleKeys(consoleKeys),
		JWT:              jwt,
		Logger:           log.With("component", "api"),
		Dev:              true,
		Web: web.NewConsole(web.ConsoleConfig{Directory: db, Accounts: demoAccountIDs(), DevConsoleKey: consoleKeys[0],
			DevLinks: true, DemoSerials: b.serials, Logger: log.With("component", "web")}),
		Pages: web.NewPages(web.PagesConfig{DevReviewerToken: b.reviewer, MaxDocument: appealConfig(cfg, publicURL).MaxDocument,
			Logger: log.With("component", "web")}),
		TrustedProxies: cfg.TrustedProxies,
	}
	// ---- staff sign-in (issue 13 item 2, SPEC §5b; devStaffSignIn in serve.go):
	// the given MFAFLOW_OIDC_* or an embedded dev OpenID Provider. ----
	staffBanner, stopIDP, err := devStaffSignIn(cfg, publicURL, &deps)
	if err != nil {
		return err
	}
	defer stopIDP()
	// ---- end staff sign-in ----
	metricsSetup(cfg, &deps, true)
	srv := api.NewServer(deps)
	printBanner(stdout, b)
	fmt.Fprint(stdout, staffBanner) // staff sign-in (issue 13 item 2)
	err = withMetrics(ctx, cfg, deps, "dev", stdout, func(ctx context.Context) error { return serveListener(ctx, ln, srv) })
	fmt.Fprintln(stdout, "mfaflow dev: shutting down")
	return err
}

// devTokens signs the dev stack's reviewer, second reviewer and admin
// tokens with secret.
func devTokens(secret string, now time.Time) (reviewer, reviewer2, admin string, err error) {
	for _, t := range []struct {
		dst   *string
		sub   string
		roles []string
	}{
		{&reviewer, "reviewer-1", []string{auth.RoleReviewer}},
		{&reviewer2, "reviewer-2", []string{auth.RoleReviewer}},
		{&admin, "admin-1", []string{auth.RoleAdmin}},
	} {
		if *t.dst, err = auth.SignHS256([]byte(secret), t.sub, t.roles, "", devTokenTTL, now); err != nil {
			return "", "", "", err
		}
	}
	return reviewer, reviewer2, admin, nil
}

func printBanner(w io.Writer, b devBanner) {
	state := "restarted; everything in the data dir was kept"
	if b.first {
		state = "first start; keys, tokens and demo accounts were created"
	}
	ui := "(off)"
	switch {
	case b.ui != "":
		ui = "http://" + b.ui
	case b.temporalGiven:
		ui = "(not started: use your Temporal server's own, or give -ui-port for one here)"
	}
	temporal := fmt.Sprintf("%s  (namespace %q, embedded)", b.temporal, b.namespace)
	if b.temporalGiven {
		temporal = fmt.Sprintf("%s  (namespace %q, TEMPORAL_ADDRESS)", b.temporal, b.namespace)
	}
	s3 := fmt.Sprintf("S3 (embedded)  http://%s  (bucket %q)", b.s3, b.bucket)
	if b.s3Given {
		s3 = fmt.Sprintf("S3             %s  (bucket %q, S3_ENDPOINT)", b.s3, b.bucket)
	}
	or := func(s, alt string) string {
		if s == "" {
			return alt
		}
		return s
	}
	fmt.Fprintf(w, `
mfaflow dev is running (%s)

  API            %s/v1  (an index; the contract: %s/openapi.yaml)
  readiness      %s/readyz
  console demo   %s/console      (bind a device, verify login and operations;
                 security keys need the localhost name: %s/console)
  appeal form    %s/appeal       (lost phone: file an unbind appeal; status at /appeal/status)
  review queue   %s/review       (reviewers; the page carries the reviewer JWT below)
  SMS, e-mail    %s
  session hook   %s
  Temporal       %s
  Temporal UI    %s
  %s
  database       %s
  data dir       %s

  console API key   %s
  reviewer JWT      %s
  reviewer 2 JWT    %s
  admin JWT         %s
`, state, b.apiURL, b.apiURL, b.apiURL, b.apiURL, localhostURL(b.apiURL), b.apiURL, b.apiURL, b.notifier, b.console, temporal, ui, s3, b.database, b.dataDir,
		or(b.consoleKey, "(given by MFAFLOW_CONSOLE_API_KEYS)"), or(b.reviewer, "(from your IdP: MFAFLOW_JWKS_URL)"),
		or(b.reviewer2, "(from your IdP)"), or(b.admin, "(from your IdP)"))
	fmt.Fprintf(w, "\n  demo accounts (an appeal gives these details, and any mainland mobile number as its contact phone)\n")
	for _, a := range demoAccounts {
		fmt.Fprintf(w, "    %-16s %s\n", a.ID, demoAccountText(a))
	}
	if len(b.seeded) > 0 {
		fmt.Fprintf(w, "                     (seeded now: %v)\n", b.seeded)
	}
	fmt.Fprintf(w, "\n  demo token cards  %s\n                    read one: GET %s/dev/hardware-tokens/%s/code\n", strings.Join(b.serials, " "), b.apiURL, b.serials[0])
	fmt.Fprintf(w, "  security center   GET %s/dev/security-center/demo-unverified/code  (the login code of ordinary accounts)\n", b.apiURL)
	fmt.Fprintf(w, "\n  for the curl of the README's \"Try it\" (paste into the shell you run them in):\n    %s\n", exportLine(b))
	fmt.Fprint(w, "\nPress Ctrl-C to stop.\n")
}

// exportLine sets the shell variables the README's curl commands use: API,
// and KEY, REVIEWER, REVIEWER2 and ADMIN when the dev stack made them (not
// when they come from MFAFLOW_CONSOLE_API_KEYS or the IdP).
func exportLine(b devBanner) string {
	vars := []string{"API=" + b.apiURL}
	for _, v := range []struct{ name, val string }{{"KEY", b.consoleKey}, {"REVIEWER", b.reviewer}, {"REVIEWER2", b.reviewer2}, {"ADMIN", b.admin}} {
		if v.val != "" {
			vars = append(vars, v.name+"="+v.val)
		}
	}
	return "export " + strings.Join(vars, " ")
}

// demoAccountText is a demo account's details as an appeal gives them.
func demoAccountText(a store.Account) string {
	var parts []string
	if a.Type == store.Enterprise {
		parts = append(parts, "enterprise")
	} else {
		parts = append(parts, "personal")
	}
	if a.RealName.Verified {
		parts = append(parts, "real-name verified")
	} else {
		parts = append(parts, "NOT real-name verified (an appeal is refused)")
	}
	for _, l := range a.Logins {
		parts = append(parts, fmt.Sprintf("login %s %s", l.Kind, l.ID))
	}
	parts = append(parts, "bound phone "+a.BoundPhone)
	if a.RealName.Verified {
		parts = append(parts, "name "+a.RealName.Name, "ID number "+a.RealName.IDNumber)
	}
	if a.Company.Name != "" {
		parts = append(parts, "company "+a.Company.Name, "credit code "+a.Company.RegNumber)
	}
	return strings.Join(parts, ", ")
}

// loadDevSecrets reads the dev stack's keys, generating them on first start.
func loadDevSecrets(path string) (devSecrets, bool, error) {
	var s devSecrets
	b, err := os.ReadFile(path)
	if err == nil {
		if err := json.Unmarshal(b, &s); err != nil {
			return s, false, fmt.Errorf("%s: corrupt: %w", path, err)
		}
		return s, false, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return s, false, err
	}
	ring, err := mfa.GenerateKeyring()
	if err != nil {
		return s, false, err
	}
	s = devSecrets{
		ConsoleKey:  "dev-console-" + randToken(24),
		JWTSecret:   randToken(32),
		S3AccessKey: "mfaflowdev" + randToken(6),
		S3SecretKey: randToken(30),
		SecretKeys:  ring.Encode(),
	}
	if s.ReviewerToken, s.Reviewer2, s.AdminToken, err = devTokens(s.JWTSecret, time.Now()); err != nil {
		return s, false, err
	}
	b, err = json.MarshalIndent(s, "", "  ")
	if err != nil {
		return s, false, err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return s, false, err
	}
	return s, true, os.Rename(tmp, path)
}

func randToken(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)[:n]
}

// demoAccounts are seeded into the account directory on first start.
var demoAccounts = []store.Account{
	{
		ID: "demo-personal", Type: store.Personal, BoundPhone: "13800138000", Email: "personal@example.com",
		Logins:      []store.Login{{Kind: store.LoginQQ, ID: "10001"}},
		RealName:    store.RealName{Verified: true, Name: "张三", IDNumber: "11010519491231002X"},
		LoginMethod: store.LoginMFA,
	},
	{
		ID: "demo-unverified", Type: store.Personal, BoundPhone: "13900139000",
		Logins:      []store.Login{{Kind: store.LoginWeChat, ID: "wxid_demo01"}},
		LoginMethod: store.LoginSecurityCenter,
	},
	{
		ID: "demo-enterprise", Type: store.Enterprise, BoundPhone: "13700137000", Email: "ops@example.com",
		Logins:      []store.Login{{Kind: store.LoginEmail, ID: "ops@example.com"}, {Kind: store.LoginWeChatOfficial, ID: "gh_0123456789ab"}},
		RealName:    store.RealName{Verified: true, Name: "李四", IDNumber: "110101199003071233"},
		Company:     store.Company{Name: "示例科技有限公司", RegNumber: "91350100M000100Y43"},
		LoginMethod: store.LoginMFA,
	},
}

// demoAccountIDs are the demo accounts' ids, offered by the console demo page.
func demoAccountIDs() []string {
	ids := make([]string, len(demoAccounts))
	for i, a := range demoAccounts {
		ids[i] = a.ID
	}
	return ids
}

// demoSerials are the dev stack's demo token cards.
var demoSerials = []string{"MFAD-0001", "MFAD-0002", "MFAD-0003", "MFAD-0004", "MFAD-0005"}

// importDemoTokens imports the demo batch when it is missing, through the
// same importer as the admin API, and returns the demo serials.
func importDemoTokens(ctx context.Context, st store.Store, keys *mfa.Keyring) ([]string, error) {
	if _, err := st.GetToken(ctx, demoSerials[0]); err == nil {
		return demoSerials, nil
	} else if !errors.Is(err, store.ErrNotFound) {
		return nil, err
	}
	var csv strings.Builder
	csv.WriteString("serial,secret,algorithm,digits,period\n")
	for _, s := range demoSerials {
		secret, err := mfa.NewSecret(nil)
		if err != nil {
			return nil, err
		}
		fmt.Fprintf(&csv, "%s,%s,SHA1,6,30\n", s, mfa.EncodeSecret(secret))
	}
	im := inventory.Importer{Store: st, Keys: keys}
	if _, err := im.Import(ctx, strings.NewReader(csv.String()), inventory.Options{Format: inventory.CSV, BatchID: api.DemoBatchID, Actor: "system"}); err != nil {
		return nil, fmt.Errorf("demo tokens: %w", err)
	}
	return demoSerials, nil
}

// seedDemoAccounts adds the demo accounts that are missing and returns their ids.
func seedDemoAccounts(ctx context.Context, st store.Store) ([]string, error) {
	var added []string
	for _, a := range demoAccounts {
		_, err := st.GetAccount(ctx, a.ID)
		if err == nil {
			continue
		}
		if !errors.Is(err, store.ErrNotFound) {
			return nil, err
		}
		if _, err := st.PutAccount(ctx, a); err != nil {
			return nil, err
		}
		if _, err := st.AppendAudit(ctx, store.AuditEntry{Actor: "system", Action: "account.seed", Outcome: "ok", AccountID: a.ID}); err != nil {
			return nil, err
		}
		added = append(added, a.ID)
	}
	return added, nil
}

// devWebAuthn is the dev stack's relying party: the configured one, with
// what is not configured filled in: RP ID "localhost" (go-webauthn refuses
// an IP address), name "mfaflow (dev)", and the dev URL on localhost and
// 127.0.0.1 as origins; browsers need http://localhost:<port>.
func devWebAuthn(cfg config.Config, addr net.Addr) (*mfa.WebAuthn, error) {
	_, port, _ := net.SplitHostPort(addr.String())
	if cfg.WebAuthnRPID == "" {
		cfg.WebAuthnRPID = "localhost"
	}
	if cfg.WebAuthnRPName == "" {
		cfg.WebAuthnRPName = "mfaflow (dev)"
	}
	if len(cfg.WebAuthnOrigins) == 0 {
		cfg.WebAuthnOrigins = []string{"http://localhost:" + port, "http://127.0.0.1:" + port}
	}
	return webAuthn(cfg)
}

// localhostURL is u with its host named localhost, the WebAuthn RP ID of
// the dev stack (browsers refuse security keys on an IP address).
func localhostURL(u string) string {
	rest, ok := strings.CutPrefix(u, "http://")
	if !ok {
		return u
	}
	_, port, err := net.SplitHostPort(rest)
	if err != nil {
		return u
	}
	return "http://localhost:" + port
}
