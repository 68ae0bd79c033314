package config_test

import (
	"errors"
	"flag"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mfaflow/mfaflow/internal/config"
)

const (
	day       = 24 * time.Hour
	consoleK1 = "console-key-0123456789abcdef"
	consoleK2 = "console-key-fedcba9876543210"
	secret32  = "0123456789abcdef0123456789abcdef"
	secret40  = "s3cr3t-value-that-is-long-enough-0123456"
)

// env returns a getenv function over m.
func env(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

// mustLoad loads the config and fails the test on error.
func mustLoad(t *testing.T, args []string, m map[string]string) (config.Config, []string) {
	t.Helper()
	c, rest, err := config.Load("mfaflow", args, env(m))
	if err != nil {
		t.Fatalf("Load(%q) error = %v", args, err)
	}
	return c, rest
}

// flagOf returns the flag name of the environment variable name.
func flagOf(t *testing.T, name string) string {
	t.Helper()
	for _, v := range config.Vars {
		if v.Env == name {
			return v.Flag
		}
	}
	t.Fatalf("no Var with Env %q", name)
	return ""
}

func TestDefaults(t *testing.T) {
	want := config.Config{
		HTTPAddr:          "127.0.0.1:8080",
		AppealCooldown:    24 * time.Hour,
		DocumentDeadline:  7 * day,
		ReviewSLA:         72 * time.Hour,
		Retention:         180 * day,
		FourEyes:          config.FourEyesEnterprise,
		TemporalNamespace: "default",
		S3Bucket:          "mfaflow-documents",
	}
	if got := config.Defaults(); !reflect.DeepEqual(got, want) {
		t.Errorf("Defaults() = %+v, want %+v", got, want)
	}
	tests := []struct {
		name string
		env  map[string]string
		args []string
	}{
		{"nothing set", nil, nil},
		{"empty values are ignored", map[string]string{"MFAFLOW_REVIEW_SLA": "", "S3_BUCKET": "", "MFAFLOW_HTTP_ADDR": ""}, nil},
		{"unrelated variables are ignored", map[string]string{"HOME": "/root", "MFAFLOW_UNKNOWN": "x"}, []string{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, rest := mustLoad(t, tt.args, tt.env)
			if !reflect.DeepEqual(got, want) {
				t.Errorf("Load() = %+v, want the defaults %+v", got, want)
			}
			if len(rest) != 0 {
				t.Errorf("Load() rest = %q, want none", rest)
			}
		})
	}
}

// fullEnv sets every variable; fullConfig is what it loads to.
var (
	fullEnv = map[string]string{
		"MFAFLOW_HTTP_ADDR":          ":0",
		"MFAFLOW_DATA_DIR":           "/var/lib/mfaflow",
		"MFAFLOW_CONSOLE_API_KEYS":   " " + consoleK1 + " , ," + consoleK2 + ",",
		"MFAFLOW_JWT_HS256_SECRET":   secret32,
		"MFAFLOW_JWKS_URL":           "https://idp.example.com/.well-known/jwks.json",
		"MFAFLOW_JWT_ISSUER":         "https://idp.example.com/",
		"MFAFLOW_JWT_AUDIENCE":       "mfaflow",
		"MFAFLOW_SECRET_KEYS":        "k1:AAAA,k0:BBBB",
		"MFAFLOW_APPEAL_COOLDOWN":    "0",
		"MFAFLOW_DOCUMENT_DEADLINE":  "14d",
		"MFAFLOW_REVIEW_SLA":         "1h30m",
		"MFAFLOW_RETENTION":          "365d",
		"MFAFLOW_FOUR_EYES":          "all",
		"TEMPORAL_ADDRESS":           "temporal:7233",
		"TEMPORAL_NAMESPACE":         "mfaflow",
		"MFAFLOW_BUILD_ID":           "3f9c2e1-dirty-0a1b2c3d4e5f",
		"DATABASE_URL":               "postgres://mfa:pw@db:5432/mfaflow?sslmode=disable",
		"S3_ENDPOINT":                "minio:9000",
		"S3_ACCESS_KEY":              "minio",
		"S3_SECRET_KEY":              "minio-secret",
		"S3_BUCKET":                  "appeal-docs.v2",
		"S3_USE_TLS":                 "true",
		"MFAFLOW_NOTIFIER_URL":       "http://notifier:8081/send",
		"MFAFLOW_NOTIFIER_SECRET":    secret40,
		"MFAFLOW_CONSOLE_URL":        "https://console.example.com/hooks/revoke",
		"MFAFLOW_CONSOLE_SECRET":     secret32,
		"MFAFLOW_PUBLIC_URL":         "https://mfa.example.com",
		"MFAFLOW_TRUSTED_PROXIES":    " 10.0.0.0/8, 192.168.1.7 ,,fd00::/8, 2001:db8::1",
		"MFAFLOW_METRICS_ADDR":       "0.0.0.0:9090",
		"MFAFLOW_METRICS_TOKEN":      secret40,
		"MFAFLOW_WEBAUTHN_RP_ID":     "console.example.com",
		"MFAFLOW_WEBAUTHN_RP_NAME":   "Example Cloud",
		"MFAFLOW_WEBAUTHN_ORIGINS":   "https://console.example.com/, https://console.example.cn",
		"MFAFLOW_WEBAUTHN_AAGUIDS":   "CB69481E-8FF7-4039-93EC-0A2729A154A8",
		"MFAFLOW_OIDC_ISSUER":        "https://idp.example.com/",
		"MFAFLOW_OIDC_CLIENT_ID":     "mfaflow-pages",
		"MFAFLOW_OIDC_CLIENT_SECRET": "client-secret",
		"MFAFLOW_OIDC_ROLES_CLAIM":   "groups",
	}
	fullConfig = config.Config{
		HTTPAddr:          ":0",
		DataDir:           "/var/lib/mfaflow",
		ConsoleAPIKeys:    []string{consoleK1, consoleK2},
		JWTSecret:         secret32,
		JWKSURL:           "https://idp.example.com/.well-known/jwks.json",
		JWTIssuer:         "https://idp.example.com/",
		JWTAudience:       "mfaflow",
		SecretKeys:        "k1:AAAA,k0:BBBB",
		AppealCooldown:    0,
		DocumentDeadline:  14 * day,
		ReviewSLA:         90 * time.Minute,
		Retention:         365 * day,
		FourEyes:          config.FourEyesAll,
		TemporalAddress:   "temporal:7233",
		TemporalNamespace: "mfaflow",
		BuildID:           "3f9c2e1-dirty-0a1b2c3d4e5f",
		DatabaseURL:       "postgres://mfa:pw@db:5432/mfaflow?sslmode=disable",
		S3Endpoint:        "minio:9000",
		S3AccessKey:       "minio",
		S3SecretKey:       "minio-secret",
		S3Bucket:          "appeal-docs.v2",
		S3UseTLS:          true,
		NotifierURL:       "http://notifier:8081/send",
		NotifierSecret:    secret40,
		ConsoleURL:        "https://console.example.com/hooks/revoke",
		ConsoleSecret:     secret32,
		PublicURL:         "https://mfa.example.com",
		TrustedProxies:    []string{"10.0.0.0/8", "192.168.1.7/32", "fd00::/8", "2001:db8::1/128"},
		MetricsAddr:       "0.0.0.0:9090",
		MetricsToken:      secret40,
		WebAuthnRPID:      "console.example.com",
		WebAuthnRPName:    "Example Cloud",
		WebAuthnOrigins:   []string{"https://console.example.com", "https://console.example.cn"},
		WebAuthnAAGUIDs:   []string{"cb69481e-8ff7-4039-93ec-0a2729a154a8"},
		OIDCIssuer:        "https://idp.example.com/",
		OIDCClientID:      "mfaflow-pages",
		OIDCClientSecret:  "client-secret",
		OIDCRolesClaim:    "groups",
	}
)

func TestLoadEnvAll(t *testing.T) {
	if len(fullEnv) != len(config.Vars) {
		t.Fatalf("fullEnv sets %d variables, Vars has %d", len(fullEnv), len(config.Vars))
	}
	got, _ := mustLoad(t, nil, fullEnv)
	if !reflect.DeepEqual(got, fullConfig) {
		t.Errorf("Load() = %+v\nwant %+v", got, fullConfig)
	}
}

func TestLoadFlagsAll(t *testing.T) {
	var args []string
	for _, v := range config.Vars {
		args = append(args, "-"+v.Flag+"="+fullEnv[v.Env])
	}
	got, _ := mustLoad(t, args, nil)
	if !reflect.DeepEqual(got, fullConfig) {
		t.Errorf("Load() = %+v\nwant %+v", got, fullConfig)
	}
}

func TestLoadEnvValues(t *testing.T) {
	tests := []struct {
		name  string
		env   string
		value string
		check func(c config.Config) any // returns the loaded field
		want  any
	}{
		{"cooldown 0", "MFAFLOW_APPEAL_COOLDOWN", "0", func(c config.Config) any { return c.AppealCooldown }, time.Duration(0)},
		{"cooldown 0d", "MFAFLOW_APPEAL_COOLDOWN", "0d", func(c config.Config) any { return c.AppealCooldown }, time.Duration(0)},
		{"cooldown 0s", "MFAFLOW_APPEAL_COOLDOWN", "0s", func(c config.Config) any { return c.AppealCooldown }, time.Duration(0)},
		{"cooldown 12h", "MFAFLOW_APPEAL_COOLDOWN", "12h", func(c config.Config) any { return c.AppealCooldown }, 12 * time.Hour},
		{"deadline 7d", "MFAFLOW_DOCUMENT_DEADLINE", "7d", func(c config.Config) any { return c.DocumentDeadline }, 7 * day},
		{"deadline 1d", "MFAFLOW_DOCUMENT_DEADLINE", "1d", func(c config.Config) any { return c.DocumentDeadline }, day},
		{"review SLA 90m", "MFAFLOW_REVIEW_SLA", "90m", func(c config.Config) any { return c.ReviewSLA }, 90 * time.Minute},
		{"review SLA 48h", "MFAFLOW_REVIEW_SLA", "48h", func(c config.Config) any { return c.ReviewSLA }, 48 * time.Hour},
		{"review SLA 1ns", "MFAFLOW_REVIEW_SLA", "1ns", func(c config.Config) any { return c.ReviewSLA }, time.Nanosecond},
		{"retention 36500d", "MFAFLOW_RETENTION", "36500d", func(c config.Config) any { return c.Retention }, 36500 * day},
		{"four eyes none", "MFAFLOW_FOUR_EYES", "none", func(c config.Config) any { return c.FourEyes }, config.FourEyesNone},
		{"four eyes enterprise", "MFAFLOW_FOUR_EYES", "enterprise", func(c config.Config) any { return c.FourEyes }, config.FourEyesEnterprise},
		{"TLS 1", "S3_USE_TLS", "1", func(c config.Config) any { return c.S3UseTLS }, true},
		{"TLS false", "S3_USE_TLS", "false", func(c config.Config) any { return c.S3UseTLS }, false},
		{"one console key", "MFAFLOW_CONSOLE_API_KEYS", consoleK1, func(c config.Config) any { return c.ConsoleAPIKeys }, []string{consoleK1}},
		{"HTTP addr with IPv6 host", "MFAFLOW_HTTP_ADDR", "[::1]:8443", func(c config.Config) any { return c.HTTPAddr }, "[::1]:8443"},
		{"postgresql scheme", "DATABASE_URL", "postgresql://db/mfaflow", func(c config.Config) any { return c.DatabaseURL }, "postgresql://db/mfaflow"},
		{"bucket of 3 chars", "S3_BUCKET", "abc", func(c config.Config) any { return c.S3Bucket }, "abc"},
		{"bucket of 63 chars", "S3_BUCKET", strings.Repeat("a", 63), func(c config.Config) any { return c.S3Bucket }, strings.Repeat("a", 63)},
		{"HS256 secret of exactly 32 bytes", "MFAFLOW_JWT_HS256_SECRET", secret32, func(c config.Config) any { return c.JWTSecret }, secret32},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, _ := mustLoad(t, nil, map[string]string{tt.env: tt.value})
			if got := tt.check(c); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("%s=%q loaded as %v, want %v", tt.env, tt.value, got, tt.want)
			}
			c, _ = mustLoad(t, []string{"-" + flagOf(t, tt.env), tt.value}, nil)
			if got := tt.check(c); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("-%s %q loaded as %v, want %v", flagOf(t, tt.env), tt.value, got, tt.want)
			}
		})
	}
}

func TestLoadFlagsOverrideEnv(t *testing.T) {
	e := map[string]string{
		"MFAFLOW_REVIEW_SLA":       "48h",
		"MFAFLOW_HTTP_ADDR":        "0.0.0.0:8080",
		"MFAFLOW_CONSOLE_API_KEYS": consoleK1,
		"MFAFLOW_FOUR_EYES":        "none",
		"S3_USE_TLS":               "true",
		"MFAFLOW_APPEAL_COOLDOWN":  "1h",
	}
	tests := []struct {
		name     string
		args     []string
		check    func(c config.Config) any
		want     any
		wantRest []string
	}{
		{"env only", nil, func(c config.Config) any { return c.ReviewSLA }, 48 * time.Hour, nil},
		{"flag wins", []string{"-review-sla", "24h"}, func(c config.Config) any { return c.ReviewSLA }, 24 * time.Hour, nil},
		{"double dash and =", []string{"--review-sla=3d"}, func(c config.Config) any { return c.ReviewSLA }, 3 * day, nil},
		{"last flag wins", []string{"-review-sla", "1h", "-review-sla", "2h"}, func(c config.Config) any { return c.ReviewSLA }, 2 * time.Hour, nil},
		{"addr", []string{"-http-addr", "127.0.0.1:0"}, func(c config.Config) any { return c.HTTPAddr }, "127.0.0.1:0", nil},
		{"keys replaced, not merged", []string{"-console-api-keys", consoleK2}, func(c config.Config) any { return c.ConsoleAPIKeys }, []string{consoleK2}, nil},
		{"four eyes", []string{"-four-eyes", "all"}, func(c config.Config) any { return c.FourEyes }, config.FourEyesAll, nil},
		{"TLS off", []string{"-s3-use-tls", "false"}, func(c config.Config) any { return c.S3UseTLS }, false, nil},
		{"cooldown 0", []string{"-appeal-cooldown", "0"}, func(c config.Config) any { return c.AppealCooldown }, time.Duration(0), nil},
		{"untouched value keeps env", []string{"-four-eyes", "all"}, func(c config.Config) any { return c.ReviewSLA }, 48 * time.Hour, nil},
		{
			name:     "rest returned",
			args:     []string{"-review-sla", "6h", "serve", "-review-sla", "1h"},
			check:    func(c config.Config) any { return c.ReviewSLA },
			want:     6 * time.Hour,
			wantRest: []string{"serve", "-review-sla", "1h"},
		},
		{
			name:     "flags end at --",
			args:     []string{"--", "-review-sla", "1h"},
			check:    func(c config.Config) any { return c.ReviewSLA },
			want:     48 * time.Hour,
			wantRest: []string{"-review-sla", "1h"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, rest := mustLoad(t, tt.args, e)
			if got := tt.check(c); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Load(%q) gave %v, want %v", tt.args, got, tt.want)
			}
			if !slices.Equal(rest, tt.wantRest) && (len(rest) != 0 || len(tt.wantRest) != 0) {
				t.Errorf("Load(%q) rest = %q, want %q", tt.args, rest, tt.wantRest)
			}
		})
	}
}

// secretVars are the variables whose values must never appear in an error.
var secretVars = map[string]bool{
	"MFAFLOW_JWT_HS256_SECRET": true,
	"S3_SECRET_KEY":            true,
	"MFAFLOW_CONSOLE_API_KEYS": true,
	"MFAFLOW_NOTIFIER_SECRET":  true,
	"MFAFLOW_CONSOLE_SECRET":   true,
	"MFAFLOW_METRICS_TOKEN":    true,
	"DATABASE_URL":             true, // may carry a password
}

func TestLoadBadValues(t *testing.T) {
	tests := []struct {
		env   string
		value string
	}{
		{"MFAFLOW_HTTP_ADDR", "localhost"},
		{"MFAFLOW_HTTP_ADDR", "localhost:http"},
		{"MFAFLOW_HTTP_ADDR", "localhost:65536"},
		{"MFAFLOW_HTTP_ADDR", "localhost:-1"},
		{"MFAFLOW_HTTP_ADDR", "localhost:"},
		{"MFAFLOW_CONSOLE_API_KEYS", "short-console-key-123"},
		{"MFAFLOW_CONSOLE_API_KEYS", consoleK1 + ",tiny-key-value"},
		{"MFAFLOW_CONSOLE_API_KEYS", " , ,"},
		{"MFAFLOW_JWT_HS256_SECRET", secret32[:31]},
		{"MFAFLOW_JWT_HS256_SECRET", "hunter2"},
		{"MFAFLOW_JWKS_URL", "ftp://idp.example.com/jwks"},
		{"MFAFLOW_JWKS_URL", "idp.example.com/jwks"},
		{"MFAFLOW_JWKS_URL", "https://"},
		{"MFAFLOW_JWKS_URL", "http://[::1"},
		{"MFAFLOW_APPEAL_COOLDOWN", "-1h"},
		{"MFAFLOW_APPEAL_COOLDOWN", "-1d"},
		{"MFAFLOW_APPEAL_COOLDOWN", "soon"},
		{"MFAFLOW_DOCUMENT_DEADLINE", "0"},
		{"MFAFLOW_DOCUMENT_DEADLINE", "1w"},
		{"MFAFLOW_REVIEW_SLA", "0"},
		{"MFAFLOW_REVIEW_SLA", "0d"},
		{"MFAFLOW_REVIEW_SLA", "0s"},
		{"MFAFLOW_REVIEW_SLA", "-72h"},
		{"MFAFLOW_REVIEW_SLA", "72"},
		{"MFAFLOW_REVIEW_SLA", "3 days"},
		{"MFAFLOW_REVIEW_SLA", "1.5d"},
		{"MFAFLOW_RETENTION", "36501d"},
		{"MFAFLOW_RETENTION", "d"},
		{"MFAFLOW_RETENTION", "1y"},
		{"MFAFLOW_FOUR_EYES", "ENTERPRISE"},
		{"MFAFLOW_FOUR_EYES", "some"},
		{"TEMPORAL_ADDRESS", "temporal"},
		{"TEMPORAL_NAMESPACE", "   "},
		{"MFAFLOW_BUILD_ID", "__internal"},
		{"MFAFLOW_BUILD_ID", "v1 2"},
		{"MFAFLOW_BUILD_ID", strings.Repeat("a", 129)},
		{"DATABASE_URL", "mysql://mfa:pw-s3cret@db/mfaflow"},
		{"DATABASE_URL", "host=db user=mfa password=pw-s3cret"},
		{"S3_ENDPOINT", "minio"},
		{"S3_ACCESS_KEY", " \t "},
		{"S3_SECRET_KEY", " \t "},
		{"S3_BUCKET", "ab"},
		{"S3_BUCKET", strings.Repeat("a", 64)},
		{"S3_BUCKET", "Appeal-Docs"},
		{"S3_BUCKET", "appeal_docs"},
		{"S3_USE_TLS", "yes"},
		{"MFAFLOW_NOTIFIER_URL", "mailto:ops@example.com"},
		{"MFAFLOW_NOTIFIER_SECRET", "notifier-secret-too-short"},
		{"MFAFLOW_CONSOLE_URL", "//console/revoke"},
		{"MFAFLOW_CONSOLE_SECRET", "console-secret-too-short"},
		{"MFAFLOW_PUBLIC_URL", "mfa.example.com"},
		{"MFAFLOW_JWT_ISSUER", " \t "},
		{"MFAFLOW_JWT_AUDIENCE", "  "},
		{"MFAFLOW_TRUSTED_PROXIES", "10.0.0.0/33"},
		{"MFAFLOW_TRUSTED_PROXIES", "proxy.internal"},
		{"MFAFLOW_TRUSTED_PROXIES", "10.0.0.0/8,0.0.0.0/0"},
		{"MFAFLOW_TRUSTED_PROXIES", "::/0"},
		{"MFAFLOW_TRUSTED_PROXIES", " , "},
		{"MFAFLOW_METRICS_ADDR", "9090"},
		{"MFAFLOW_METRICS_TOKEN", "metrics-s3cret-too-short"},
		{"MFAFLOW_WEBAUTHN_RP_ID", "127.0.0.1"},
		{"MFAFLOW_WEBAUTHN_RP_ID", "https://console.example.com"},
		{"MFAFLOW_WEBAUTHN_RP_ID", "console.example.com:443"},
		{"MFAFLOW_WEBAUTHN_RP_NAME", " \t "},
		{"MFAFLOW_WEBAUTHN_ORIGINS", "console.example.com"},
		{"MFAFLOW_WEBAUTHN_ORIGINS", " , "},
		{"MFAFLOW_WEBAUTHN_AAGUIDS", "yubikey"},
		{"MFAFLOW_OIDC_ISSUER", "idp.example.com"},
		{"MFAFLOW_OIDC_CLIENT_ID", " \t "},
		{"MFAFLOW_OIDC_CLIENT_SECRET", "  "},
		{"MFAFLOW_OIDC_ROLES_CLAIM", " "},
	}
	// Variables that accept any non-empty value.
	free := map[string]bool{"MFAFLOW_DATA_DIR": true, "MFAFLOW_SECRET_KEYS": true}
	covered := map[string]bool{}
	for _, tt := range tests {
		covered[tt.env] = true
	}
	for _, v := range config.Vars {
		if !covered[v.Env] && !free[v.Env] {
			t.Errorf("no bad-value case for %s", v.Env)
		}
	}

	for _, tt := range tests {
		t.Run(tt.env+"="+tt.value, func(t *testing.T) {
			fl := flagOf(t, tt.env)
			runs := []struct {
				name   string
				args   []string
				env    map[string]string
				prefix string
			}{
				{"env", nil, map[string]string{tt.env: tt.value}, tt.env + ": "},
				{"flag", []string{"-" + fl, tt.value}, nil, "-" + fl + ": "},
				{"flag=", []string{"-" + fl + "=" + tt.value}, nil, "-" + fl + ": "},
				{"flag after a good flag", []string{"-data-dir", "/tmp", "-" + fl, tt.value}, nil, "-" + fl + ": "},
			}
			for _, r := range runs {
				_, rest, err := config.Load("mfaflow", r.args, env(r.env))
				if err == nil {
					t.Fatalf("%s: Load() error = nil, want an error", r.name)
				}
				msg := err.Error()
				if !strings.HasPrefix(msg, r.prefix) {
					t.Errorf("%s: error %q does not start with %q", r.name, msg, r.prefix)
				}
				if strings.Contains(msg, "\n") {
					t.Errorf("%s: error %q is not one line", r.name, msg)
				}
				if secretVars[tt.env] {
					for _, part := range append(strings.Split(tt.value, ","), tt.value) {
						if part = strings.TrimSpace(part); part != "" && strings.Contains(msg, part) {
							t.Errorf("%s: error %q echoes the secret value", r.name, msg)
						}
					}
				}
				if secretVars[tt.env] && strings.Contains(msg, "s3cret") {
					t.Errorf("%s: error %q echoes part of the secret value", r.name, msg)
				}
				if rest != nil {
					t.Errorf("%s: rest = %q, want nil on error", r.name, rest)
				}
			}
		})
	}
}

func TestLoadBadEnvWithGoodFlag(t *testing.T) {
	// The environment is read before flags, so a bad variable is reported
	// even when a flag would override it.
	_, _, err := config.Load("mfaflow", []string{"-review-sla", "1h"}, env(map[string]string{"MFAFLOW_REVIEW_SLA": "0"}))
	if err == nil || !strings.HasPrefix(err.Error(), "MFAFLOW_REVIEW_SLA: ") {
		t.Fatalf("Load() error = %v, want one naming MFAFLOW_REVIEW_SLA", err)
	}
}

func TestLoadFlagErrors(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		is      error
		contain string
	}{
		{"help", []string{"-h"}, flag.ErrHelp, ""},
		{"unknown flag", []string{"-no-such-flag", "x"}, nil, "no-such-flag"},
		{"missing argument", []string{"-jwt-hs256-secret"}, nil, "jwt-hs256-secret"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := config.Load("mfaflow", tt.args, env(nil))
			if err == nil {
				t.Fatal("Load() error = nil, want an error")
			}
			if tt.is != nil && !errors.Is(err, tt.is) {
				t.Errorf("Load() error = %v, want %v", err, tt.is)
			}
			if !strings.Contains(err.Error(), tt.contain) {
				t.Errorf("Load() error = %q, want it to contain %q", err, tt.contain)
			}
		})
	}
}

func TestParseDuration(t *testing.T) {
	tests := []struct {
		in      string
		want    time.Duration
		wantErr bool
	}{
		{"0", 0, false},
		{"0d", 0, false},
		{"1d", day, false},
		{"7d", 7 * day, false},
		{"36500d", 36500 * day, false},
		{"90m", 90 * time.Minute, false},
		{"1h30m", 90 * time.Minute, false},
		{"72h", 72 * time.Hour, false},
		{"-5m", -5 * time.Minute, false},
		{"1.5h", 90 * time.Minute, false},
		{"", 0, true},
		{"d", 0, true},
		{"-1d", 0, true},
		{"36501d", 0, true},
		{"1.5d", 0, true},
		{"7 d", 0, true},
		{"7D", 0, true},
		{"1d12h", 0, true},
		{"seven", 0, true},
		{"72", 0, true},
		{"99999999999999h", 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := config.ParseDuration(tt.in)
			if (err != nil) != tt.wantErr {
				t.Fatalf("ParseDuration(%q) error = %v, wantErr %v", tt.in, err, tt.wantErr)
			}
			if got != tt.want {
				t.Errorf("ParseDuration(%q) = %v, want %v", tt.in, got, tt.want)
			}
		})
	}
}

func TestRequireProduction(t *testing.T) {
	full := func() config.Config {
		c := config.Defaults()
		c.TemporalAddress = "temporal:7233"
		c.DatabaseURL = "postgres://db/mfaflow"
		c.S3Endpoint = "minio:9000"
		c.S3AccessKey = "minio"
		c.S3SecretKey = "minio-secret"
		c.SecretKeys = "k1:AAAA"
		c.ConsoleAPIKeys = []string{consoleK1}
		c.JWTSecret = secret32
		c.NotifierURL = "http://notifier/send"
		c.NotifierSecret = secret32
		c.PublicURL = "https://mfa.example.com"
		c.ConsoleURL = config.ConsoleURLNone
		return c
	}
	tests := []struct {
		name     string
		change   func(c *config.Config)
		needHTTP bool
		want     string // the error's prefix; "" for no error
	}{
		{"complete, serve", nil, true, ""},
		{"complete, worker", nil, false, ""},
		{"no temporal", func(c *config.Config) { c.TemporalAddress = "" }, true, "TEMPORAL_ADDRESS: "},
		{"no database", func(c *config.Config) { c.DatabaseURL = "" }, true, "DATABASE_URL: "},
		{"no S3 endpoint", func(c *config.Config) { c.S3Endpoint = "" }, true, "S3_ENDPOINT: "},
		{"no S3 access key", func(c *config.Config) { c.S3AccessKey = "" }, true, "S3_ACCESS_KEY: "},
		{"no S3 secret key", func(c *config.Config) { c.S3SecretKey = "" }, true, "S3_SECRET_KEY: "},
		{"no secret keys", func(c *config.Config) { c.SecretKeys = "" }, false, "MFAFLOW_SECRET_KEYS: "},
		{"no console keys, serve", func(c *config.Config) { c.ConsoleAPIKeys = nil }, true, "MFAFLOW_CONSOLE_API_KEYS: "},
		{"no console keys, worker", func(c *config.Config) { c.ConsoleAPIKeys = nil }, false, ""},
		{"no JWT source, serve", func(c *config.Config) { c.JWTSecret = "" }, true, "MFAFLOW_JWT_HS256_SECRET or MFAFLOW_JWKS_URL: "},
		{"no JWT source, worker", func(c *config.Config) { c.JWTSecret = "" }, false, ""},
		{"JWKS instead of secret", func(c *config.Config) {
			c.JWTSecret, c.JWKSURL, c.JWTIssuer, c.JWTAudience = "", "https://idp/jwks", "https://idp/", "mfaflow"
		}, true, ""},
		{"JWKS without issuer", func(c *config.Config) { c.JWKSURL, c.JWTAudience = "https://idp/jwks", "mfaflow" }, true, "MFAFLOW_JWT_ISSUER: "},
		{"JWKS without audience", func(c *config.Config) { c.JWKSURL, c.JWTIssuer = "https://idp/jwks", "https://idp/" }, true, "MFAFLOW_JWT_AUDIENCE: "},
		{"JWKS alone", func(c *config.Config) { c.JWTSecret, c.JWKSURL = "", "https://idp/jwks" }, true, "MFAFLOW_JWT_ISSUER: "},
		{"JWKS without issuer, worker", func(c *config.Config) { c.JWKSURL = "https://idp/jwks" }, false, ""},
		{"no public URL, serve", func(c *config.Config) { c.PublicURL = "" }, true, "MFAFLOW_PUBLIC_URL: "},
		{"no public URL, worker", func(c *config.Config) { c.PublicURL = "" }, false, "MFAFLOW_PUBLIC_URL: "},
		{"no notifier URL", func(c *config.Config) { c.NotifierURL = "" }, false, "MFAFLOW_NOTIFIER_URL: "},
		{"no notifier secret", func(c *config.Config) { c.NotifierSecret = "" }, true, "MFAFLOW_NOTIFIER_SECRET: "},
		{"console URL without secret", func(c *config.Config) { c.ConsoleURL = "https://console/revoke" }, true, "MFAFLOW_CONSOLE_SECRET: "},
		{"console URL with secret", func(c *config.Config) { c.ConsoleURL = "https://console/revoke"; c.ConsoleSecret = secret32 }, true, ""},
		{"no console URL", func(c *config.Config) { c.ConsoleURL = "" }, false, "MFAFLOW_CONSOLE_URL: "},
		{"console URL none: no session revocation, said explicitly", func(c *config.Config) { c.ConsoleURL = config.ConsoleURLNone }, false, ""},
		{"console secret without URL", func(c *config.Config) { c.ConsoleSecret = secret32; c.ConsoleURL = config.ConsoleURLNone }, true, ""},
		{
			name:     "several missing: first named",
			change:   func(c *config.Config) { c.DatabaseURL = ""; c.S3SecretKey = ""; c.NotifierURL = "" },
			needHTTP: true,
			want:     "DATABASE_URL: ",
		},
		{
			name:     "several missing after the core: console keys first",
			change:   func(c *config.Config) { c.ConsoleAPIKeys = nil; c.JWTSecret = ""; c.NotifierSecret = "" },
			needHTTP: true,
			want:     "MFAFLOW_CONSOLE_API_KEYS: ",
		},
		{"nothing set", func(c *config.Config) { *c = config.Defaults() }, true, "TEMPORAL_ADDRESS: "},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := full()
			if tt.change != nil {
				tt.change(&c)
			}
			err := c.RequireProduction(tt.needHTTP)
			if tt.want == "" {
				if err != nil {
					t.Fatalf("RequireProduction(%v) error = %v", tt.needHTTP, err)
				}
				return
			}
			if err == nil || !strings.HasPrefix(err.Error(), tt.want) {
				t.Fatalf("RequireProduction(%v) error = %v, want prefix %q", tt.needHTTP, err, tt.want)
			}
		})
	}
}

func TestVars(t *testing.T) {
	envs, flags := map[string]bool{}, map[string]bool{}
	for _, v := range config.Vars {
		if envs[v.Env] || flags[v.Flag] {
			t.Errorf("duplicate Var %s / -%s", v.Env, v.Flag)
		}
		envs[v.Env], flags[v.Flag] = true, true
		if v.Env == "" || v.Flag == "" || v.Help == "" {
			t.Errorf("Var %+v lacks a name, flag or help", v)
		}
		if v.Env != strings.ToUpper(v.Env) || v.Flag != strings.ToLower(v.Flag) {
			t.Errorf("Var %s / -%s: want an upper-case variable and a lower-case flag", v.Env, v.Flag)
		}
	}
}

func TestUsage(t *testing.T) {
	u := config.Usage()
	lines := strings.Split(strings.TrimSuffix(u, "\n"), "\n")
	if len(lines) != len(config.Vars) {
		t.Fatalf("Usage() has %d lines, want %d:\n%s", len(lines), len(config.Vars), u)
	}
	for i, v := range config.Vars {
		t.Run(v.Env, func(t *testing.T) {
			line := lines[i]
			for _, want := range []string{"-" + v.Flag + " ", "$" + v.Env + " ", v.Help} {
				if !strings.Contains(line, want) {
					t.Errorf("Usage() line %q lacks %q", line, want)
				}
			}
		})
	}
}
