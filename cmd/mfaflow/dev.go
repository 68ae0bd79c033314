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
	"strings"
	"time"

	"go.temporal.io/sdk/client"
	sdklog "go.temporal.io/sdk/log"
	sdkworker "go.temporal.io/sdk/worker"

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

type devPorts struct {
	temporal, ui, s3 int
}

// runDev runs the whole product in one process: embedded Temporal (SQLite
// file), an embedded S3 server, the SQLite app store, the worker and the API.
func runDev(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	var ports devPorts
	cfg, help, err := loadConfig("dev", args, getenv, stdout, func(fs *flag.FlagSet) {
		fs.IntVar(&ports.temporal, "temporal-port", 7233, "embedded Temporal frontend port (0: pick a free one)")
		fs.IntVar(&ports.ui, "ui-port", 8233, "Temporal Web UI port (0: pick a free one, -1: no UI)")
		fs.IntVar(&ports.s3, "s3-port", 9000, "embedded S3 server port (0: pick a free one)")
	})
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
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	sec, first, err := loadDevSecrets(filepath.Join(dataDir, "dev-secrets.json"))
	if err != nil {
		return err
	}
	if cfg.SecretKeys == "" {
		cfg.SecretKeys = sec.SecretKeys
	}
	s3, err := devstack.StartS3(ctx, devstack.S3Config{
		Dir:       filepath.Join(dataDir, "s3"),
		Addr:      fmt.Sprintf("127.0.0.1:%d", ports.s3),
		AccessKey: sec.S3AccessKey,
		SecretKey: sec.S3SecretKey,
		Logger:    log.With("component", "s3"),
	})
	if err != nil {
		return err
	}
	defer s3.Stop()

	tsrv, err := devstack.StartTemporal(ctx, devstack.TemporalConfig{
		DataDir:          filepath.Join(dataDir, "temporal"),
		FrontendPort:     ports.temporal,
		UIPort:           ports.ui,
		Namespace:        cfg.TemporalNamespace,
		SearchAttributes: workflows.SearchAttributes,
		Logger:           log.With("component", "temporal"),
	})
	if err != nil {
		return err
	}
	defer tsrv.Stop()

	db, err := sqlitestore.Open(ctx, filepath.Join(dataDir, "mfaflow.db"))
	if err != nil {
		return err
	}
	defer db.Close()
	if err := db.Migrate(ctx); err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	seeded, err := seedDemoAccounts(ctx, db)
	if err != nil {
		return err
	}

	keys, err := parseKeyring(cfg)
	if err != nil {
		return err
	}
	serials, err := importDemoTokens(ctx, db, keys)
	if err != nil {
		return err
	}
	scSvc := consoleService(db, keys, notify.Outbox{Store: db}, nil, log, nil)
	for _, a := range demoAccounts {
		// Every account has the platform's security-center app; ordinary
		// accounts log in with it.
		if _, _, err := scSvc.ProvisionSecurityCenter(ctx, a.ID); err != nil && !errors.Is(err, store.ErrConflict) {
			return fmt.Errorf("demo security center: %w", err)
		}
	}

	// The embedded gateway stores objects as it is sent them and ignores
	// SSE-S3, so documents are sealed here with the key ring instead: at
	// rest they are encrypted as in production.
	blobs := &blobRef{cfg: blob.Config{Endpoint: s3.Endpoint(), AccessKey: sec.S3AccessKey, SecretKey: sec.S3SecretKey, Bucket: cfg.S3Bucket, Seal: keys}}
	if _, err := blobs.Get(ctx); err != nil {
		return err
	}

	tc, err := client.DialContext(ctx, codec.ClientOptions(keys, client.Options{
		HostPort:  tsrv.FrontendAddr(),
		Namespace: tsrv.Namespace(),
		Logger:    sdklog.NewStructuredLogger(slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))),
	}))
	if err != nil {
		return fmt.Errorf("temporal client: %w", err)
	}
	defer tc.Close()

	ln, err := net.Listen("tcp", cfg.HTTPAddr)
	if err != nil {
		return fmt.Errorf("MFAFLOW_HTTP_ADDR: %w", err)
	}
	apiURL := hostURL(ln.Addr())
	wa, err := devWebAuthn(cfg, ln.Addr())
	if err != nil {
		ln.Close()
		return err
	}
	outbox := notify.Outbox{Store: db}
	acts := newActivities(db, keys, outbox, blobs, wa)
	wctx, stopWorker := context.WithCancel(ctx)
	werr := make(chan error, 1)
	go func() { werr <- worker.Run(wctx, tc, acts, sdkworker.Options{}) }()
	defer func() { stopWorker(); <-werr }()

	publicURL := cfg.PublicURL
	if publicURL == "" {
		publicURL = apiURL
	}
	deps := api.Deps{
		Store:            db,
		Temporal:         tc,
		ConsoleService:   consoleService(db, keys, outbox, tc, log.With("component", "console"), wa),
		Documents:        blobs,
		Appeals:          appealConfig(cfg, publicURL),
		OwnerCancelToken: ownerCancelToken(keys),
		Notifier:         outbox,
		Ready:            readyChecks(db, blobs, tc),
		Keys:             keys,
		Console:          auth.NewConsoleKeys([]string{sec.ConsoleKey}),
		JWT:              &auth.Verifier{Keys: auth.HS256(sec.JWTSecret), Leeway: 30 * time.Second},
		Logger:           log.With("component", "api"),
		Dev:              true,
		Web: web.NewConsole(web.ConsoleConfig{Directory: db, Accounts: demoAccountIDs(), DevConsoleKey: sec.ConsoleKey,
			DevLinks: true, DemoSerials: serials, Logger: log.With("component", "web")}),
		Pages: web.NewPages(web.PagesConfig{DevReviewerToken: sec.ReviewerToken, MaxDocument: appealConfig(cfg, publicURL).MaxDocument,
			Logger: log.With("component", "web")}),
		TrustedProxies: cfg.TrustedProxies,
	}
	metricsSetup(cfg, &deps, true)
	srv := api.NewServer(deps)
	printBanner(stdout, apiURL, dataDir, tsrv, s3.Endpoint(), cfg.S3Bucket, sec, first, seeded, serials)
	err = withMetrics(ctx, cfg, deps, "dev", stdout, func(ctx context.Context) error { return serveListener(ctx, ln, srv) })
	fmt.Fprintln(stdout, "mfaflow dev: shutting down")
	return err
}

func printBanner(w io.Writer, apiURL, dataDir string, t *devstack.Temporal, s3, bucket string, sec devSecrets, first bool, seeded, serials []string) {
	state := "restarted; everything in the data dir was kept"
	if first {
		state = "first start; keys, tokens and demo accounts were created"
	}
	ui := t.UIAddr()
	if ui == "" {
		ui = "(off)"
	} else {
		ui = "http://" + ui
	}
	fmt.Fprintf(w, `
mfaflow dev is running (%s)

  API            %s
  readiness      %s/readyz
  console demo   %s/console      (bind a device, verify login and operations;
                 security keys need the localhost name: %s/console)
  appeal form    %s/appeal       (lost phone: file an unbind appeal; status at /appeal/status)
  review queue   %s/review       (reviewers; the page carries the reviewer JWT below)
  outbox         %s/dev/outbox   (SMS codes and e-mails the dev notifier captured)
  OpenAPI        %s/openapi.yaml
  Temporal       %s  (namespace %q)
  Temporal UI    %s
  S3 (embedded)  http://%s  (bucket %q)
  data dir       %s

  console API key   %s
  reviewer JWT      %s
  reviewer 2 JWT    %s
  admin JWT         %s

  demo accounts     demo-personal (real-name verified), demo-unverified (not verified),
                    demo-enterprise (enterprise, verified)
`, state, apiURL, apiURL, apiURL, localhostURL(apiURL), apiURL, apiURL, apiURL, apiURL, t.FrontendAddr(), t.Namespace(), ui, s3, bucket, dataDir,
		sec.ConsoleKey, sec.ReviewerToken, sec.Reviewer2, sec.AdminToken)
	if len(seeded) > 0 {
		fmt.Fprintf(w, "                    (seeded now: %v)\n", seeded)
	}
	fmt.Fprintf(w, "\n  demo token cards  %s\n                    read one: GET %s/dev/hardware-tokens/%s/code\n", strings.Join(serials, " "), apiURL, serials[0])
	fmt.Fprintf(w, "  security center   GET %s/dev/security-center/demo-unverified/code  (the login code of ordinary accounts)\n", apiURL)
	fmt.Fprintf(w, "\n  try: curl -H 'Authorization: Bearer %s' %s/v1/admin/accounts/demo-personal\n\nPress Ctrl-C to stop.\n", sec.AdminToken, apiURL)
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
	now := time.Now()
	for _, t := range []struct {
		dst   *string
		sub   string
		roles []string
	}{
		{&s.ReviewerToken, "reviewer-1", []string{auth.RoleReviewer}},
		{&s.Reviewer2, "reviewer-2", []string{auth.RoleReviewer}},
		{&s.AdminToken, "admin-1", []string{auth.RoleAdmin}},
	} {
		if *t.dst, err = auth.SignHS256([]byte(s.JWTSecret), t.sub, t.roles, "", devTokenTTL, now); err != nil {
			return s, false, err
		}
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

// devWebAuthn is the dev stack's relying party: the configured one, or RP
// ID "localhost" (go-webauthn refuses an IP address) with the dev URL on
// localhost and 127.0.0.1 as origins; browsers need http://localhost:<port>.
func devWebAuthn(cfg config.Config, addr net.Addr) (*mfa.WebAuthn, error) {
	if cfg.WebAuthnRPID != "" {
		return webAuthn(cfg)
	}
	_, port, _ := net.SplitHostPort(addr.String())
	cfg.WebAuthnRPID, cfg.WebAuthnRPName = "localhost", "mfaflow (dev)"
	cfg.WebAuthnOrigins = []string{"http://localhost:" + port, "http://127.0.0.1:" + port}
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
