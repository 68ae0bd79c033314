// Package config reads mfaflow's settings from environment variables, each of
// which can also be given as a flag. A wrong setting is a one-line error that
// names the variable.
package config

import (
	"errors"
	"flag"
	"fmt"
	"net"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// FourEyes policies: which approvals need two distinct reviewers.
const (
	FourEyesEnterprise = "enterprise"
	FourEyesAll        = "all"
	FourEyesNone       = "none"
)

// Config is every setting of every subcommand. Zero values are filled by Defaults.
type Config struct {
	HTTPAddr       string
	DataDir        string
	ConsoleAPIKeys []string
	JWTSecret      string
	JWKSURL        string
	JWTIssuer      string // "iss" of the IdP's tokens; required with JWKSURL
	JWTAudience    string // mfaflow's "aud" at the IdP; required with JWKSURL
	SecretKeys     string // key ring "id:base64key,…"; parsed by the mfa package

	AppealCooldown   time.Duration
	DocumentDeadline time.Duration
	ReviewSLA        time.Duration
	Retention        time.Duration
	FourEyes         string

	TemporalAddress   string
	TemporalNamespace string

	DatabaseURL string

	S3Endpoint  string
	S3AccessKey string
	S3SecretKey string
	S3Bucket    string
	S3UseTLS    bool

	NotifierURL    string // the platform notifier's webhook (SMS and email)
	NotifierSecret string // HMAC key for the notifier webhook
	ConsoleURL     string // the console's session-revocation webhook
	ConsoleSecret  string // HMAC key for the console webhook
	PublicURL      string // base URL used in links sent to users

	// TrustedProxies are the CIDRs of the reverse proxies whose
	// X-Forwarded-For names the client; none: forwarded headers are ignored.
	TrustedProxies []string
	// MetricsAddr serves /metrics on a listener of its own (and not on the
	// API's); MetricsToken is the bearer token /metrics on the API's
	// listener asks for instead.
	MetricsAddr  string
	MetricsToken string

	// WebAuthn relying party (the console's domain): security keys are
	// off in serve/worker while WebAuthnRPID is empty.
	WebAuthnRPID    string
	WebAuthnRPName  string
	WebAuthnOrigins []string
	WebAuthnAAGUIDs []string

	// Staff sign-in to the pages through the company IdP (OpenID Connect,
	// SPEC §5b): off while OIDCIssuer is empty. OIDCRolesClaim names the
	// ID-token claim holding "reviewer"/"admin"; empty: "roles".
	OIDCIssuer       string
	OIDCClientID     string
	OIDCClientSecret string
	OIDCRolesClaim   string

	// BuildID is the worker's build id in the Worker Deployment "mfaflow";
	// empty: the binary's VCS revision (worker.DefaultBuildID).
	BuildID string
}

// ConsoleURLNone is the MFAFLOW_CONSOLE_URL that runs production without
// session revocation after an unbind, said explicitly.
const ConsoleURLNone = "none"

// Defaults returns the documented defaults.
func Defaults() Config {
	return Config{
		HTTPAddr:          "127.0.0.1:8080",
		AppealCooldown:    24 * time.Hour,
		DocumentDeadline:  7 * 24 * time.Hour,
		ReviewSLA:         72 * time.Hour,
		Retention:         180 * 24 * time.Hour,
		FourEyes:          FourEyesEnterprise,
		TemporalNamespace: "default",
		S3Bucket:          "mfaflow-documents",
	}
}

// Var describes one setting: its environment variable, flag name and help.
type Var struct {
	Env  string
	Flag string
	Help string
	set  func(c *Config, v string) error
}

// Vars lists every environment variable the binary reads. The compose-file
// test checks the compose services pass only these.
var Vars = []Var{
	{"MFAFLOW_HTTP_ADDR", "http-addr", "HTTP listen address (port 0 picks a free port)", func(c *Config, v string) error { return hostPort(&c.HTTPAddr, v) }},
	{"MFAFLOW_DATA_DIR", "data-dir", "data directory of the dev stack", func(c *Config, v string) error { c.DataDir = v; return nil }},
	{"MFAFLOW_CONSOLE_API_KEYS", "console-api-keys", "comma-separated bearer keys for the console", func(c *Config, v string) error { return keyList(&c.ConsoleAPIKeys, v) }},
	{"MFAFLOW_JWT_HS256_SECRET", "jwt-hs256-secret", "HS256 secret for reviewer/admin JWTs", func(c *Config, v string) error { return minLen(&c.JWTSecret, v, 32) }},
	{"MFAFLOW_JWKS_URL", "jwks-url", "JWKS URL of the company IdP", func(c *Config, v string) error { return httpURL(&c.JWKSURL, v) }},
	{"MFAFLOW_JWT_ISSUER", "jwt-issuer", "issuer (iss) of the IdP's tokens, checked exactly; required with the JWKS URL", func(c *Config, v string) error { return nonEmpty(&c.JWTIssuer, v) }},
	{"MFAFLOW_JWT_AUDIENCE", "jwt-audience", "audience (aud) the IdP's tokens must name for mfaflow; required with the JWKS URL", func(c *Config, v string) error { return nonEmpty(&c.JWTAudience, v) }},
	{"MFAFLOW_SECRET_KEYS", "secret-keys", "key ring for device secrets: id:base64key,… (first encrypts)", func(c *Config, v string) error { c.SecretKeys = v; return nil }},
	{"MFAFLOW_APPEAL_COOLDOWN", "appeal-cooldown", "cool-down after approval (0 allowed)", func(c *Config, v string) error { return duration(&c.AppealCooldown, v, true) }},
	{"MFAFLOW_DOCUMENT_DEADLINE", "document-deadline", "deadline for appeal documents", func(c *Config, v string) error { return duration(&c.DocumentDeadline, v, false) }},
	{"MFAFLOW_REVIEW_SLA", "review-sla", "review SLA before escalation", func(c *Config, v string) error { return duration(&c.ReviewSLA, v, false) }},
	{"MFAFLOW_RETENTION", "retention", "how long documents are kept after an appeal closes", func(c *Config, v string) error { return duration(&c.Retention, v, false) }},
	{"MFAFLOW_FOUR_EYES", "four-eyes", "enterprise|all|none", func(c *Config, v string) error {
		return oneOf(&c.FourEyes, v, FourEyesEnterprise, FourEyesAll, FourEyesNone)
	}},
	{"TEMPORAL_ADDRESS", "temporal-address", "Temporal frontend host:port", func(c *Config, v string) error { return hostPort(&c.TemporalAddress, v) }},
	{"TEMPORAL_NAMESPACE", "temporal-namespace", "Temporal namespace", func(c *Config, v string) error { return nonEmpty(&c.TemporalNamespace, v) }},
	{"MFAFLOW_BUILD_ID", "build-id", "worker build id in the Worker Deployment mfaflow (default: the binary's VCS revision)", func(c *Config, v string) error { return buildID(&c.BuildID, v) }},
	{"DATABASE_URL", "database-url", "PostgreSQL URL (postgres://…)", func(c *Config, v string) error { return pgURL(&c.DatabaseURL, v) }},
	{"S3_ENDPOINT", "s3-endpoint", "S3/MinIO endpoint host:port", func(c *Config, v string) error { return hostPort(&c.S3Endpoint, v) }},
	{"S3_ACCESS_KEY", "s3-access-key", "S3 access key", func(c *Config, v string) error { return nonEmpty(&c.S3AccessKey, v) }},
	{"S3_SECRET_KEY", "s3-secret-key", "S3 secret key", func(c *Config, v string) error { return nonEmpty(&c.S3SecretKey, v) }},
	{"S3_BUCKET", "s3-bucket", "bucket for appeal documents", func(c *Config, v string) error { return bucket(&c.S3Bucket, v) }},
	{"S3_USE_TLS", "s3-use-tls", "use TLS to reach S3 (true|false)", func(c *Config, v string) error { return boolean(&c.S3UseTLS, v) }},
	{"MFAFLOW_NOTIFIER_URL", "notifier-url", "webhook of the platform notifier (SMS, email)", func(c *Config, v string) error { return httpURL(&c.NotifierURL, v) }},
	{"MFAFLOW_NOTIFIER_SECRET", "notifier-secret", "HMAC key for the notifier webhook", func(c *Config, v string) error { return minLen(&c.NotifierSecret, v, 32) }},
	{"MFAFLOW_CONSOLE_URL", "console-url", `console webhook that revokes sessions after an unbind, or "none" to run without session revocation`, func(c *Config, v string) error {
		if strings.TrimSpace(v) == ConsoleURLNone {
			c.ConsoleURL = ConsoleURLNone
			return nil
		}
		return httpURL(&c.ConsoleURL, v)
	}},
	{"MFAFLOW_CONSOLE_SECRET", "console-secret", "HMAC key for the console webhook", func(c *Config, v string) error { return minLen(&c.ConsoleSecret, v, 32) }},
	{"MFAFLOW_PUBLIC_URL", "public-url", "public base URL used in links sent to users", func(c *Config, v string) error { return httpURL(&c.PublicURL, v) }},
	{"MFAFLOW_TRUSTED_PROXIES", "trusted-proxies", "comma-separated CIDRs of the reverse proxies whose X-Forwarded-For is believed (none: forwarded headers are ignored)", func(c *Config, v string) error {
		return cidrList(&c.TrustedProxies, v)
	}},
	{"MFAFLOW_METRICS_ADDR", "metrics-addr", "serve /metrics on this host:port instead of the API listener", func(c *Config, v string) error { return hostPort(&c.MetricsAddr, v) }},
	{"MFAFLOW_METRICS_TOKEN", "metrics-token", "bearer token for /metrics on the API listener (when no metrics address is set)", func(c *Config, v string) error { return minLen(&c.MetricsToken, v, 32) }},
	{"MFAFLOW_WEBAUTHN_RP_ID", "webauthn-rp-id", "WebAuthn relying party id: the console's domain (not an IP address)", func(c *Config, v string) error { return rpID(&c.WebAuthnRPID, v) }},
	{"MFAFLOW_WEBAUTHN_RP_NAME", "webauthn-rp-name", "WebAuthn relying party name shown by browsers", func(c *Config, v string) error { return nonEmpty(&c.WebAuthnRPName, v) }},
	{"MFAFLOW_WEBAUTHN_ORIGINS", "webauthn-origins", "comma-separated console origins allowed for WebAuthn (https://console.example.com)", func(c *Config, v string) error {
		return urlList(&c.WebAuthnOrigins, v)
	}},
	{"MFAFLOW_WEBAUTHN_AAGUIDS", "webauthn-aaguids", "optional comma-separated allow-list of authenticator models (AAGUIDs)", func(c *Config, v string) error {
		return aaguidList(&c.WebAuthnAAGUIDs, v)
	}},
	{"MFAFLOW_OIDC_ISSUER", "oidc-issuer", "issuer URL of the company IdP for staff sign-in to the pages (OpenID Connect); empty: pages take a pasted JWT", func(c *Config, v string) error { return httpURL(&c.OIDCIssuer, v) }},
	{"MFAFLOW_OIDC_CLIENT_ID", "oidc-client-id", "mfaflow's client id at the IdP; required with the issuer", func(c *Config, v string) error { return nonEmpty(&c.OIDCClientID, v) }},
	{"MFAFLOW_OIDC_CLIENT_SECRET", "oidc-client-secret", "mfaflow's client secret at the IdP", func(c *Config, v string) error { return nonEmpty(&c.OIDCClientSecret, v) }},
	{"MFAFLOW_OIDC_ROLES_CLAIM", "oidc-roles-claim", `ID-token claim holding the "reviewer"/"admin" roles (default roles)`, func(c *Config, v string) error { return nonEmpty(&c.OIDCRolesClaim, v) }},
}

// RequireOIDC checks that an OIDC issuer comes with a client id.
func (c Config) RequireOIDC() error {
	if c.OIDCIssuer != "" && c.OIDCClientID == "" {
		return errors.New("MFAFLOW_OIDC_CLIENT_ID: required with MFAFLOW_OIDC_ISSUER")
	}
	return nil
}

// cidrList parses comma-separated CIDRs; a bare address stands for itself
// (/32 or /128). A range holding every address is refused: it would let any
// client name its own IP.
func cidrList(dst *[]string, v string) error {
	var out []string
	for _, s := range strings.Split(v, ",") {
		s = strings.TrimSpace(s)
		if s == "" {
			continue
		}
		if !strings.Contains(s, "/") {
			ip := net.ParseIP(s)
			if ip == nil {
				return fmt.Errorf("want CIDRs such as 10.0.0.0/8, got %q", s)
			}
			if ip.To4() != nil {
				s = ip.String() + "/32"
			} else {
				s = ip.String() + "/128"
			}
		}
		_, n, err := net.ParseCIDR(s)
		if err != nil {
			return fmt.Errorf("want CIDRs such as 10.0.0.0/8, got %q", s)
		}
		if ones, _ := n.Mask.Size(); ones == 0 {
			return fmt.Errorf("%q trusts every address, so any client could set its own IP", s)
		}
		out = append(out, n.String())
	}
	if len(out) == 0 {
		return errors.New("no CIDR given")
	}
	*dst = out
	return nil
}

var buildIDPattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._+-]{0,127}$`)

// buildID checks a worker build id: what Temporal accepts and a shell
// passes unquoted.
func buildID(dst *string, v string) error {
	v = strings.TrimSpace(v)
	if !buildIDPattern.MatchString(v) {
		return errors.New("want up to 128 letters, digits, '.', '_', '+' or '-', starting with a letter or digit")
	}
	*dst = v
	return nil
}

var rpIDPattern = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*$`)

// rpID checks a WebAuthn relying party id: a domain name, not an IP
// address, a URL or a port.
func rpID(dst *string, v string) error {
	v = strings.TrimSpace(v)
	if net.ParseIP(v) != nil {
		return errors.New("must be a domain name; WebAuthn refuses an IP address")
	}
	if len(v) > 253 || !rpIDPattern.MatchString(v) {
		return errors.New("must be a lower-case domain name such as console.example.com, without scheme or port")
	}
	*dst = v
	return nil
}

var aaguidPattern = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)

// aaguidList parses a comma-separated list of AAGUIDs (UUIDs).
func aaguidList(dst *[]string, v string) error {
	var out []string
	for _, s := range strings.Split(v, ",") {
		s = strings.TrimSpace(s)
		if s == "" {
			continue
		}
		if !aaguidPattern.MatchString(s) {
			return errors.New("each AAGUID is a UUID such as cb69481e-8ff7-4039-93ec-0a2729a154a8")
		}
		out = append(out, strings.ToLower(s))
	}
	if len(out) == 0 {
		return errors.New("no AAGUID given")
	}
	*dst = out
	return nil
}

// urlList parses a comma-separated list of http(s) origins.
func urlList(dst *[]string, v string) error {
	var out []string
	for _, s := range strings.Split(v, ",") {
		s = strings.TrimSpace(s)
		if s == "" {
			continue
		}
		var u string
		if err := httpURL(&u, s); err != nil {
			return err
		}
		out = append(out, strings.TrimRight(u, "/"))
	}
	if len(out) == 0 {
		return errors.New("at least one origin")
	}
	*dst = out
	return nil
}

// Load fills a Config from defaults, then environment variables, then flags in
// args (flags win). It returns the remaining arguments. Errors name the
// variable or flag and never echo a secret value.
func Load(name string, args []string, getenv func(string) string) (Config, []string, error) {
	return LoadWith(name, args, getenv, nil)
}

// LoadWith is Load with extra flags of one subcommand, registered by extra on
// the same flag set.
func LoadWith(name string, args []string, getenv func(string) string, extra func(*flag.FlagSet)) (Config, []string, error) {
	return load(name, args, getenv, Vars, extra)
}

// LoadOnly is LoadWith for a subcommand that honours only the variables
// named in names (mfaflow dev): the others are neither read from the
// environment nor accepted as flags. A name that is no variable panics.
func LoadOnly(name string, args []string, getenv func(string) string, names []string, extra func(*flag.FlagSet)) (Config, []string, error) {
	return load(name, args, getenv, Only(names), extra)
}

// Only returns the variables named in names, in the order of Vars. A name
// that is no variable panics: it is a programming error.
func Only(names []string) []Var {
	want := map[string]bool{}
	for _, n := range names {
		want[n] = true
	}
	var out []Var
	for _, v := range Vars {
		if want[v.Env] {
			out = append(out, v)
			delete(want, v.Env)
		}
	}
	for n := range want {
		panic("config: no variable " + n)
	}
	return out
}

func load(name string, args []string, getenv func(string) string, vars []Var, extra func(*flag.FlagSet)) (Config, []string, error) {
	c := Defaults()
	for _, v := range vars {
		if s := getenv(v.Env); s != "" {
			if err := v.set(&c, s); err != nil {
				return c, nil, fmt.Errorf("%s: %w", v.Env, err)
			}
		}
	}
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(new(strings.Builder))
	var ferr error
	for _, v := range vars {
		v := v
		fs.Func(v.Flag, v.Help+" ($"+v.Env+")", func(s string) error {
			if err := v.set(&c, s); err != nil {
				ferr = fmt.Errorf("-%s: %w", v.Flag, err)
				return ferr
			}
			return nil
		})
	}
	if extra != nil {
		extra(fs)
	}
	if err := fs.Parse(args); err != nil {
		if ferr != nil {
			return c, nil, ferr
		}
		return c, nil, err
	}
	return c, fs.Args(), nil
}

// Usage describes every variable, for help output.
func Usage() string { return UsageOf(Vars) }

// UsageOf describes vars, each with its default when it has one, for help
// output.
func UsageOf(vars []Var) string {
	var b strings.Builder
	for _, v := range vars {
		help := v.Help
		if d := defaultText[v.Env]; d != "" {
			help += " (default " + d + ")"
		}
		fmt.Fprintf(&b, "  -%-20s $%-26s %s\n", v.Flag, v.Env, help)
	}
	return b.String()
}

// defaultText shows the defaults of Defaults in help output.
var defaultText = map[string]string{
	"MFAFLOW_HTTP_ADDR":         "127.0.0.1:8080",
	"MFAFLOW_DATA_DIR":          ".mfaflow-dev",
	"MFAFLOW_APPEAL_COOLDOWN":   "24h",
	"MFAFLOW_DOCUMENT_DEADLINE": "7d",
	"MFAFLOW_REVIEW_SLA":        "72h",
	"MFAFLOW_RETENTION":         "180d",
	"MFAFLOW_FOUR_EYES":         "enterprise",
	"TEMPORAL_NAMESPACE":        "default",
	"S3_BUCKET":                 "mfaflow-documents",
	"S3_USE_TLS":                "false",
}

// RequireProduction checks what serve and worker need outside the dev stack.
// The error names the first missing variable.
func (c Config) RequireProduction(needHTTP bool) error {
	missing := func(env string) error { return fmt.Errorf("%s: required", env) }
	switch {
	case c.TemporalAddress == "":
		return missing("TEMPORAL_ADDRESS")
	case c.DatabaseURL == "":
		return missing("DATABASE_URL")
	case c.S3Endpoint == "":
		return missing("S3_ENDPOINT")
	case c.S3AccessKey == "":
		return missing("S3_ACCESS_KEY")
	case c.S3SecretKey == "":
		return missing("S3_SECRET_KEY")
	case c.SecretKeys == "":
		return missing("MFAFLOW_SECRET_KEYS")
	}
	if needHTTP {
		if len(c.ConsoleAPIKeys) == 0 {
			return missing("MFAFLOW_CONSOLE_API_KEYS")
		}
		if c.JWTSecret == "" && c.JWKSURL == "" {
			return errors.New("MFAFLOW_JWT_HS256_SECRET or MFAFLOW_JWKS_URL: one is required")
		}
		if err := c.RequireJWKS(); err != nil {
			return err
		}
		if err := c.RequireOIDC(); err != nil {
			return err
		}
	}
	if c.PublicURL == "" {
		return fmt.Errorf("MFAFLOW_PUBLIC_URL: required (links in SMS and e-mail must be absolute)")
	}
	if c.NotifierURL == "" {
		return missing("MFAFLOW_NOTIFIER_URL")
	}
	if c.NotifierSecret == "" {
		return missing("MFAFLOW_NOTIFIER_SECRET")
	}
	if c.ConsoleURL == "" {
		return fmt.Errorf(`MFAFLOW_CONSOLE_URL: required: the console's session-revocation webhook, or "none" to run without session revocation`)
	}
	if c.ConsoleURL != ConsoleURLNone && c.ConsoleSecret == "" {
		return missing("MFAFLOW_CONSOLE_SECRET")
	}
	if c.WebAuthnRPID != "" && len(c.WebAuthnOrigins) == 0 {
		return fmt.Errorf("MFAFLOW_WEBAUTHN_ORIGINS: required with MFAFLOW_WEBAUTHN_RP_ID")
	}
	return nil
}

// RequireJWKS checks that a JWKS URL comes with the issuer and audience
// every token is checked against. The error names the missing variable.
func (c Config) RequireJWKS() error {
	if c.JWKSURL == "" {
		return nil
	}
	if c.JWTIssuer == "" {
		return errors.New("MFAFLOW_JWT_ISSUER: required with MFAFLOW_JWKS_URL")
	}
	if c.JWTAudience == "" {
		return errors.New("MFAFLOW_JWT_AUDIENCE: required with MFAFLOW_JWKS_URL")
	}
	return nil
}

// ParseDuration accepts Go durations ("90m", "1h30m") and whole days ("7d").
func ParseDuration(s string) (time.Duration, error) {
	if d, ok := strings.CutSuffix(s, "d"); ok {
		n, err := strconv.Atoi(d)
		if err != nil || n < 0 || n > 36500 {
			return 0, fmt.Errorf("invalid duration %q", s)
		}
		return time.Duration(n) * 24 * time.Hour, nil
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("invalid duration %q (use e.g. 90m, 72h or 7d)", s)
	}
	return v, nil
}

func duration(dst *time.Duration, v string, zeroOK bool) error {
	d, err := ParseDuration(v)
	if err != nil {
		return err
	}
	if d < 0 || (d == 0 && !zeroOK) {
		return fmt.Errorf("must be positive, got %q", v)
	}
	*dst = d
	return nil
}

func hostPort(dst *string, v string) error {
	host, port, err := net.SplitHostPort(v)
	if err != nil {
		return fmt.Errorf("want host:port, got %q", v)
	}
	n, err := strconv.Atoi(port)
	if err != nil || n < 0 || n > 65535 {
		return fmt.Errorf("invalid port in %q", v)
	}
	_ = host
	*dst = v
	return nil
}

func httpURL(dst *string, v string) error {
	u, err := url.Parse(v)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return errors.New("want an http(s) URL")
	}
	*dst = v
	return nil
}

func pgURL(dst *string, v string) error {
	u, err := url.Parse(v)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
		return errors.New("want a postgres:// URL")
	}
	*dst = v
	return nil
}

func keyList(dst *[]string, v string) error {
	var keys []string
	for _, k := range strings.Split(v, ",") {
		k = strings.TrimSpace(k)
		if k == "" {
			continue
		}
		if len(k) < 24 {
			return errors.New("each key must be at least 24 characters")
		}
		keys = append(keys, k)
	}
	if len(keys) == 0 {
		return errors.New("no key given")
	}
	*dst = keys
	return nil
}

func minLen(dst *string, v string, n int) error {
	if len(v) < n {
		return fmt.Errorf("must be at least %d bytes", n)
	}
	*dst = v
	return nil
}

func nonEmpty(dst *string, v string) error {
	if strings.TrimSpace(v) == "" {
		return errors.New("must not be empty")
	}
	*dst = v
	return nil
}

func oneOf(dst *string, v string, allowed ...string) error {
	for _, a := range allowed {
		if v == a {
			*dst = v
			return nil
		}
	}
	return fmt.Errorf("want one of %s, got %q", strings.Join(allowed, "|"), v)
}

func boolean(dst *bool, v string) error {
	b, err := strconv.ParseBool(v)
	if err != nil {
		return fmt.Errorf("want true or false, got %q", v)
	}
	*dst = b
	return nil
}

func bucket(dst *string, v string) error {
	if len(v) < 3 || len(v) > 63 || strings.Trim(v, "abcdefghijklmnopqrstuvwxyz0123456789.-") != "" {
		return fmt.Errorf("invalid bucket name %q", v)
	}
	*dst = v
	return nil
}
