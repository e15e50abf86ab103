package config

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"regexp"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// EnvPrefix prefixes every environment variable fhirguard reads.
const EnvPrefix = "FHIRGUARD_"

// Flags are the configuration flags of `fhirguard serve` (and `config
// validate`) bound to a flag.FlagSet. Only flags given on the command line
// override the file and the environment.
type Flags struct {
	fs *flag.FlagSet

	ConfigFile string

	addr, data, baseURL, db, redis string
	tlsCert, tlsKey                string
	logLevel, logFormat            string
	dev, tlsSelfSigned, insecure   bool
	maxBody                        int64
	maxBundle                      int
}

// BindFlags defines the configuration flags on fs.
func BindFlags(fs *flag.FlagSet) *Flags {
	f := &Flags{fs: fs}
	d := Default()
	fs.StringVar(&f.ConfigFile, "config", "", "YAML configuration file (env "+EnvPrefix+"CONFIG)")
	fs.StringVar(&f.addr, "addr", d.Addr, "listen address host:port")
	fs.StringVar(&f.data, "data", d.DataDir, "data directory (the SQLite database lives inside)")
	fs.StringVar(&f.baseURL, "base-url", "", "public server root URL {B}; the FHIR base is {B}/fhir (default: derived from --addr)")
	fs.BoolVar(&f.dev, "dev", false, "development mode: open client registration, loopback addresses only")
	fs.StringVar(&f.db, "db", "", "database: postgres://… (so far for the audit commands only, not serve) or sqlite:PATH (default: sqlite in --data)")
	fs.StringVar(&f.redis, "redis", "", "redis://… for state shared by replicas (not yet supported)")
	fs.StringVar(&f.tlsCert, "tls-cert", "", "TLS certificate chain, PEM file")
	fs.StringVar(&f.tlsKey, "tls-key", "", "TLS private key, PEM file")
	fs.BoolVar(&f.tlsSelfSigned, "tls-self-signed", false, "serve TLS with an in-memory self-signed certificate (testing only)")
	fs.BoolVar(&f.insecure, "insecure-http", false, "allow plain HTTP on a non-loopback address")
	fs.Int64Var(&f.maxBody, "max-body-bytes", d.MaxBodyBytes, "request body limit in bytes")
	fs.IntVar(&f.maxBundle, "max-bundle-entries", d.MaxBundleEntries, "batch/transaction entry limit")
	fs.StringVar(&f.logLevel, "log-level", d.Log.Level, "log level: debug, info, warn, error")
	fs.StringVar(&f.logFormat, "log-format", d.Log.Format, "log format: json or text")
	return f
}

// Load builds the configuration: defaults < YAML file < FHIRGUARD_*
// environment < flags set on the command line. lookupEnv is os.LookupEnv
// in production; readFile is os.ReadFile. The result is not validated: call
// Validate. f may be nil (no flags).
func Load(f *Flags, lookupEnv func(string) (string, bool), readFile func(string) ([]byte, error)) (Config, error) {
	cfg := Default()
	if lookupEnv == nil {
		lookupEnv = func(string) (string, bool) { return "", false }
	}

	file := ""
	if v, ok := lookupEnv(EnvPrefix + "CONFIG"); ok {
		file = v
	}
	if f != nil && f.ConfigFile != "" {
		file = f.ConfigFile
	}
	if file != "" {
		b, err := readFile(file)
		if err != nil {
			return cfg, fmt.Errorf("config file: %w", err)
		}
		if err := DecodeYAML(b, &cfg); err != nil {
			return cfg, fmt.Errorf("config file %s: %w", file, err)
		}
	}

	var errs []error
	errs = append(errs, applyEnv(&cfg, lookupEnv)...)
	if f != nil {
		errs = append(errs, f.apply(&cfg)...)
	}
	return cfg, errors.Join(errs...)
}

// DecodeYAML decodes one YAML document strictly (unknown keys are errors)
// on top of the values already in cfg.
func DecodeYAML(b []byte, cfg *Config) error {
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(cfg); err != nil {
		if errors.Is(err, io.EOF) {
			return nil // empty file: defaults
		}
		return yamlError(err)
	}
	var extra any
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		return errors.New("only one YAML document is allowed")
	}
	return nil
}

var (
	reUnknownField = regexp.MustCompile(`field (\S+) not found in type \S+`)
	reCannotDecode = regexp.MustCompile(`cannot unmarshal !!(\w+) ` + "`" + `([^` + "`" + `]*)` + "`" + ` into (\S+)`)
)

// yamlError rewrites yaml.v3 errors without Go type names.
func yamlError(err error) error {
	var te *yaml.TypeError
	if !errors.As(err, &te) {
		return errors.New(strings.TrimPrefix(err.Error(), "yaml: "))
	}
	var errs []error
	for _, m := range te.Errors {
		m = reUnknownField.ReplaceAllString(m, "unknown key $1")
		m = reCannotDecode.ReplaceAllStringFunc(m, func(s string) string {
			sub := reCannotDecode.FindStringSubmatch(s)
			return fmt.Sprintf("cannot use %s %q here (want %s)", sub[1], sub[2], goTypeWord(sub[3]))
		})
		errs = append(errs, errors.New(m))
	}
	return errors.Join(errs...)
}

func goTypeWord(t string) string {
	switch {
	case t == "bool":
		return "true or false"
	case strings.HasPrefix(t, "int"), strings.HasPrefix(t, "uint"):
		return "an integer"
	case t == "string":
		return "a string"
	default:
		return "a mapping"
	}
}

// envVars lists every environment variable and how it applies.
type envVar struct {
	name  string
	apply func(c *Config, v string) error
}

func envVars() []envVar {
	str := func(dst func(c *Config) *string) func(*Config, string) error {
		return func(c *Config, v string) error { *dst(c) = v; return nil }
	}
	boolean := func(dst func(c *Config) *bool) func(*Config, string) error {
		return func(c *Config, v string) error {
			b, err := strconv.ParseBool(v)
			if err != nil {
				return fmt.Errorf("want true or false, got %q", v)
			}
			*dst(c) = b
			return nil
		}
	}
	return []envVar{
		{"ADDR", str(func(c *Config) *string { return &c.Addr })},
		{"DATA", str(func(c *Config) *string { return &c.DataDir })},
		{"BASE_URL", str(func(c *Config) *string { return &c.BaseURL })},
		{"DEV", boolean(func(c *Config) *bool { return &c.Dev })},
		{"INSECURE_HTTP", boolean(func(c *Config) *bool { return &c.InsecureHTTP })},
		{"DB", applyDB},
		{"REDIS", str(func(c *Config) *string { return &c.Redis.URL })},
		{"TLS_CERT", str(func(c *Config) *string { return &c.TLS.Cert })},
		{"TLS_KEY", str(func(c *Config) *string { return &c.TLS.Key })},
		{"TLS_SELF_SIGNED", boolean(func(c *Config) *bool { return &c.TLS.SelfSigned })},
		{"LOG_LEVEL", str(func(c *Config) *string { return &c.Log.Level })},
		{"LOG_FORMAT", str(func(c *Config) *string { return &c.Log.Format })},
		{"MAX_BODY_BYTES", func(c *Config, v string) error {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				return fmt.Errorf("want an integer, got %q", v)
			}
			c.MaxBodyBytes = n
			return nil
		}},
		{"MAX_BUNDLE_ENTRIES", func(c *Config, v string) error {
			n, err := strconv.Atoi(v)
			if err != nil {
				return fmt.Errorf("want an integer, got %q", v)
			}
			c.MaxBundleEntries = n
			return nil
		}},
		{"AUDIT_STREAM", func(c *Config, v string) error { c.Audit.Stream = v; return nil }},
	}
}

// EnvNames lists the environment variables Load reads (for documentation
// and tests).
func EnvNames() []string {
	names := []string{EnvPrefix + "CONFIG"}
	for _, e := range envVars() {
		names = append(names, EnvPrefix+e.name)
	}
	return names
}

func applyEnv(c *Config, lookupEnv func(string) (string, bool)) []error {
	var errs []error
	for _, e := range envVars() {
		v, ok := lookupEnv(EnvPrefix + e.name)
		if !ok {
			continue
		}
		if err := e.apply(c, v); err != nil {
			errs = append(errs, fmt.Errorf("%s%s: %w", EnvPrefix, e.name, err))
		}
	}
	return errs
}

// applyDB maps --db / FHIRGUARD_DB onto the store union.
func applyDB(c *Config, v string) error {
	switch {
	case strings.HasPrefix(v, "postgres://"), strings.HasPrefix(v, "postgresql://"):
		c.Store = Store{Type: StorePostgres, Postgres: &PostgresStore{DSN: v}}
	case v == "sqlite":
		c.Store = Store{Type: StoreSQLite}
	case strings.HasPrefix(v, "sqlite:"):
		c.Store = Store{Type: StoreSQLite, SQLite: &SQLiteStore{Path: strings.TrimPrefix(v, "sqlite:")}}
	default:
		return errors.New("must be postgres://… or sqlite:PATH")
	}
	return nil
}

func (f *Flags) apply(c *Config) []error {
	var errs []error
	f.fs.Visit(func(fl *flag.Flag) {
		switch fl.Name {
		case "addr":
			c.Addr = f.addr
		case "data":
			c.DataDir = f.data
		case "base-url":
			c.BaseURL = f.baseURL
		case "dev":
			c.Dev = f.dev
		case "db":
			if err := applyDB(c, f.db); err != nil {
				errs = append(errs, fmt.Errorf("--db: %w", err))
			}
		case "redis":
			c.Redis.URL = f.redis
		case "tls-cert":
			c.TLS.Cert = f.tlsCert
		case "tls-key":
			c.TLS.Key = f.tlsKey
		case "tls-self-signed":
			c.TLS.SelfSigned = f.tlsSelfSigned
		case "insecure-http":
			c.InsecureHTTP = f.insecure
		case "max-body-bytes":
			c.MaxBodyBytes = f.maxBody
		case "max-bundle-entries":
			c.MaxBundleEntries = f.maxBundle
		case "log-level":
			c.Log.Level = f.logLevel
		case "log-format":
			c.Log.Format = f.logFormat
		}
	})
	return errs
}
