// Package config owns fhirguard's one configuration struct: its defaults,
// loading from a strict YAML file, FHIRGUARD_* environment variables and
// command-line flags (in that order of precedence, lowest first), and
// Validate, which lists every problem at once, each prefixed by its path.
//
// Validate is pure (no I/O): it does not open files, resolve names or
// connect anywhere. CheckExposure is the separate, equally pure rule for
// what may be served safely today.
package config

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"strconv"
	"strings"

	"github.com/fhirguard/fhirguard/internal/httpx"
)

// Store types.
const (
	StoreSQLite   = "sqlite"
	StorePostgres = "postgres"
)

// Defaults.
const (
	DefaultAddr             = "127.0.0.1:8080"
	DefaultDataDir          = "./data"
	DefaultMaxBodyBytes     = 10 << 20
	DefaultMaxBundleEntries = 1000
	// SQLiteFile is the database file name inside the data directory.
	SQLiteFile = "fhirguard.db"

	maxMaxBodyBytes     = 1 << 30
	maxMaxBundleEntries = 100000
)

// Config is everything fhirguard serve needs.
type Config struct {
	// Addr is the listen address host:port (port 0 = any free port).
	Addr string `yaml:"addr"`
	// DataDir holds the SQLite database and other local state.
	DataDir string `yaml:"data_dir"`
	// BaseURL is the public server root {B} (FHIR base is {B}/fhir); empty
	// = derived from Addr and TLS.
	BaseURL string `yaml:"base_url"`
	// Dev enables development mode: open dynamic client registration (no
	// initial access token) and demo-friendly defaults; loopback addresses
	// only. Every FHIR request still needs a valid access token.
	Dev bool `yaml:"dev"`
	// InsecureHTTP allows plain HTTP on a non-loopback address
	// (TRANSPORT-03).
	InsecureHTTP bool `yaml:"insecure_http"`
	// MaxBodyBytes limits request bodies (RESIL-03).
	MaxBodyBytes int64 `yaml:"max_body_bytes"`
	// MaxBundleEntries limits batch/transaction size.
	MaxBundleEntries int `yaml:"max_bundle_entries"`
	// DenyMode is the answer to a request the token does not permit:
	// "403" (forbidden) or "404" (as if the target did not exist).
	DenyMode string `yaml:"deny_mode"`

	Log   Log   `yaml:"log"`
	TLS   TLS   `yaml:"tls"`
	Store Store `yaml:"store"`
	Redis Redis `yaml:"redis"`
	Auth  Auth  `yaml:"auth"`
	Audit Audit `yaml:"audit"`
	CORS  CORS  `yaml:"cors"`
}

// CORS configures cross-origin access for browser apps (RESIL-05).
type CORS struct {
	// AllowedOrigins are the exact web origins (scheme://host[:port])
	// whose scripts may call the FHIR API and the token, revocation,
	// introspection, userinfo and registration endpoints. Empty = CORS
	// off there (discovery and the JWKS are readable from any origin
	// regardless; login and consent pages never allow cross-origin use).
	AllowedOrigins []string `yaml:"allowed_origins"`
}

// Enabled reports whether any origin is allowed.
func (c CORS) Enabled() bool { return len(c.AllowedOrigins) > 0 }

// DefaultAuditRetentionDays is how long audit records are kept by default
// (six years, AUDIT-08).
const DefaultAuditRetentionDays = 6 * 365

// Audit configures the audit trail. The hash-chained log itself always
// lives in the store; these are its extras.
type Audit struct {
	// Stream sends every committed record, with its chain hash, as one
	// JSON line to a SIEM collector: "" (off), "stdout", or a file path
	// (appended). Delivery is at least once: a restart resumes after the
	// last line written.
	Stream string `yaml:"stream"`
	// RetentionDays is how long records are kept: `fhirguard audit prune`
	// without --before removes older ones (0 = the default).
	RetentionDays int `yaml:"retention_days"`
}

// Auth configures the authorization server.
type Auth struct {
	// JWKSURIHosts are the hosts (host or host:port) whose https jwks_uri
	// a client may register; the server fetches keys from nowhere else
	// (SSRF guard, AUTHN-09).
	JWKSURIHosts []string `yaml:"jwks_uri_hosts"`
}

// Log configures the process logger.
type Log struct {
	Level  string `yaml:"level"`  // debug | info | warn | error
	Format string `yaml:"format"` // json | text
}

// TLS configures HTTPS serving. Cert and Key are PEM file paths.
type TLS struct {
	Cert       string `yaml:"cert"`
	Key        string `yaml:"key"`
	SelfSigned bool   `yaml:"self_signed"`
}

// Enabled reports whether the server serves HTTPS.
func (t TLS) Enabled() bool { return t.SelfSigned || t.Cert != "" || t.Key != "" }

// Store is the tagged union choosing the storage backend.
type Store struct {
	Type     string         `yaml:"type"` // sqlite | postgres
	SQLite   *SQLiteStore   `yaml:"sqlite,omitempty"`
	Postgres *PostgresStore `yaml:"postgres,omitempty"`
}

// SQLiteStore is the embedded store.
type SQLiteStore struct {
	// Path of the database file; empty = DataDir/fhirguard.db.
	Path string `yaml:"path"`
	// Synchronous is the durability of a commit: "full" (default; an
	// acknowledged write survives power loss) or "normal" (it survives a
	// crash or kill -9 of the process, not power loss; faster serial writes).
	Synchronous string `yaml:"synchronous"`
}

// PostgresStore is the PostgreSQL store (not yet supported by serve).
type PostgresStore struct {
	DSN string `yaml:"dsn"`
}

// Redis is the shared-state service for replicas (not yet supported).
type Redis struct {
	URL string `yaml:"url"`
}

// Default returns the built-in defaults.
func Default() Config {
	return Config{
		Addr:             DefaultAddr,
		DataDir:          DefaultDataDir,
		MaxBodyBytes:     DefaultMaxBodyBytes,
		MaxBundleEntries: DefaultMaxBundleEntries,
		DenyMode:         "403",
		Log:              Log{Level: "info", Format: "json"},
		Store:            Store{Type: StoreSQLite},
		Audit:            Audit{RetentionDays: DefaultAuditRetentionDays},
	}
}

// SQLitePath is the SQLite database file the config selects.
func (c *Config) SQLitePath() string {
	if c.Store.SQLite != nil && c.Store.SQLite.Path != "" {
		return c.Store.SQLite.Path
	}
	return strings.TrimRight(c.DataDir, "/") + "/" + SQLiteFile
}

// Validate checks the whole config and returns every problem joined
// (errors.Join), each prefixed by its path, e.g.
// "store.postgres.dsn: required when store.type is postgres". It does no
// I/O.
func (c *Config) Validate() error {
	var errs []error
	add := func(path, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", path, fmt.Sprintf(format, args...)))
	}

	if _, _, err := splitAddr(c.Addr); err != nil {
		add("addr", "%v", err)
	}
	if c.BaseURL != "" {
		if err := checkBaseURL(c.BaseURL); err != nil {
			add("base_url", "%v", err)
		} else if c.TLS.Enabled() && strings.HasPrefix(c.BaseURL, "http://") {
			add("base_url", "must be https when TLS is enabled")
		}
	}
	if c.MaxBodyBytes <= 0 || c.MaxBodyBytes > maxMaxBodyBytes {
		add("max_body_bytes", "must be between 1 and %d, got %d", maxMaxBodyBytes, c.MaxBodyBytes)
	}
	if c.MaxBundleEntries <= 0 || c.MaxBundleEntries > maxMaxBundleEntries {
		add("max_bundle_entries", "must be between 1 and %d, got %d", maxMaxBundleEntries, c.MaxBundleEntries)
	}
	switch c.DenyMode {
	case "403", "404":
	default:
		add("deny_mode", "must be 403 or 404, got %q", c.DenyMode)
	}
	switch c.Log.Level {
	case "debug", "info", "warn", "error":
	default:
		add("log.level", "must be one of debug, info, warn, error, got %q", c.Log.Level)
	}
	switch c.Log.Format {
	case "json", "text":
	default:
		add("log.format", "must be json or text, got %q", c.Log.Format)
	}

	// TLS: a certificate pair, or self-signed, or nothing.
	switch {
	case c.TLS.SelfSigned && (c.TLS.Cert != "" || c.TLS.Key != ""):
		add("tls.self_signed", "cannot be combined with tls.cert/tls.key")
	case c.TLS.Cert != "" && c.TLS.Key == "":
		add("tls.key", "required when tls.cert is set")
	case c.TLS.Key != "" && c.TLS.Cert == "":
		add("tls.cert", "required when tls.key is set")
	}
	if c.TLS.Enabled() && c.InsecureHTTP {
		add("insecure_http", "cannot be combined with TLS")
	}

	// Store: a tagged union.
	switch c.Store.Type {
	case StoreSQLite:
		if c.Store.Postgres != nil {
			add("store.postgres", "set but store.type is sqlite")
		}
		if c.Store.SQLite != nil {
			switch strings.ToLower(c.Store.SQLite.Synchronous) {
			case "", "full", "normal":
			default:
				add("store.sqlite.synchronous", "must be full or normal")
			}
		}
		if (c.Store.SQLite == nil || c.Store.SQLite.Path == "") && strings.TrimSpace(c.DataDir) == "" {
			add("data_dir", "required when store.type is sqlite and store.sqlite.path is empty")
		}
	case StorePostgres:
		if c.Store.SQLite != nil {
			add("store.sqlite", "set but store.type is postgres")
		}
		switch {
		case c.Store.Postgres == nil || c.Store.Postgres.DSN == "":
			add("store.postgres.dsn", "required when store.type is postgres")
		case !strings.Contains(c.Store.Postgres.DSN, "://") && strings.Contains(c.Store.Postgres.DSN, "="):
			// keyword/value form ("host=… dbname=…"), checked when opened
		default:
			if err := checkURL(c.Store.Postgres.DSN, "postgres", "postgresql"); err != nil {
				add("store.postgres.dsn", "%v", err)
			}
		}
	case "":
		add("store.type", "required (sqlite or postgres)")
	default:
		add("store.type", "must be sqlite or postgres, got %q", c.Store.Type)
	}

	for i, h := range c.Auth.JWKSURIHosts {
		if h == "" || strings.ContainsAny(h, "/ ?#@") {
			add(fmt.Sprintf("auth.jwks_uri_hosts[%d]", i), "must be a host or host:port, got %q", h)
		}
	}

	for i, o := range c.CORS.AllowedOrigins {
		if _, ok := httpx.NormalizeOrigin(o); !ok {
			add(fmt.Sprintf("cors.allowed_origins[%d]", i), "must be an origin scheme://host[:port] (http or https, no path; \"*\" and \"null\" are not allowed), got %q", o)
		}
	}

	if c.Audit.RetentionDays < 0 {
		add("audit.retention_days", "must not be negative, got %d", c.Audit.RetentionDays)
	}
	if s := c.Audit.Stream; s != "" && s != "stdout" && strings.ContainsAny(s, "\x00\n") {
		add("audit.stream", "must be stdout or a file path")
	}

	if c.Redis.URL != "" {
		if err := checkURL(c.Redis.URL, "redis", "rediss"); err != nil {
			add("redis.url", "%v", err)
		}
	}
	return errors.Join(errs...)
}

// ErrExposure marks the errors of CheckExposure.
var ErrExposure = errors.New("refusing to serve")

// CheckExposure is the rule for what may be served (pure, no I/O):
//
//   - Dev (open client registration) only on a loopback address;
//   - plain HTTP on a non-loopback address requires InsecureHTTP
//     (TRANSPORT-03).
//
// The FHIR API itself always requires an access token.
func (c *Config) CheckExposure() error {
	host, _, err := splitAddr(c.Addr)
	if err != nil {
		return fmt.Errorf("%w: addr: %v", ErrExposure, err)
	}
	loop := IsLoopbackHost(host)
	var errs []error
	if !c.TLS.Enabled() && !loop && !c.InsecureHTTP {
		errs = append(errs, fmt.Errorf("%w: plain HTTP on the non-loopback address %q: use --tls-cert/--tls-key (or --tls-self-signed), or opt in with --insecure-http", ErrExposure, c.Addr))
	}
	if c.Dev && !loop {
		errs = append(errs, fmt.Errorf("%w: --dev on the non-loopback address %q: development mode opens client registration to anyone who can connect; use --dev only on a loopback address", ErrExposure, c.Addr))
	}
	return errors.Join(errs...)
}

// IsLoopbackHost reports whether host (from host:port) is a loopback
// address: an IP in 127.0.0.0/8 or ::1, or the name "localhost". An empty
// host (all interfaces) is not loopback.
func IsLoopbackHost(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.IsLoopback()
}

func splitAddr(addr string) (host string, port int, err error) {
	if addr == "" {
		return "", 0, errors.New("required (host:port)")
	}
	h, p, err := net.SplitHostPort(addr)
	if err != nil {
		return "", 0, fmt.Errorf("must be host:port, got %q", addr)
	}
	n, err := strconv.Atoi(p)
	if err != nil || n < 0 || n > 65535 {
		return "", 0, fmt.Errorf("port must be a number from 0 to 65535, got %q", p)
	}
	return h, n, nil
}

func checkBaseURL(s string) error {
	u, err := url.Parse(s)
	if err != nil {
		return errors.New("not a valid URL")
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return fmt.Errorf("must be an absolute http or https URL, got %q", s)
	}
	if u.Host == "" {
		return errors.New("must include a host")
	}
	if u.User != nil || u.RawQuery != "" || u.Fragment != "" || u.ForceQuery {
		return errors.New("must not contain user info, a query or a fragment")
	}
	return nil
}

// checkURL checks that s is a URL with one of schemes. Its text is never
// echoed: a DSN may hold a password.
func checkURL(s string, schemes ...string) error {
	u, err := url.Parse(s)
	if err != nil {
		return fmt.Errorf("must be a %s:// URL", schemes[0])
	}
	for _, sc := range schemes {
		if u.Scheme == sc {
			if u.Host == "" && u.Opaque == "" {
				return errors.New("must include a host")
			}
			return nil
		}
	}
	return fmt.Errorf("must be a %s:// URL", schemes[0])
}

// NormalizedBaseURL returns BaseURL without trailing slashes.
func (c *Config) NormalizedBaseURL() string { return strings.TrimRight(c.BaseURL, "/") }
