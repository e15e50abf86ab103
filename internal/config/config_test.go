package config

import (
	"errors"
	"flag"
	"io/fs"
	"strings"
	"testing"
)

func TestValidate(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		edit func(c *Config)
		want []string // every line of the joined error, in order; nil = valid
	}{
		{"ok/defaults", func(c *Config) {}, nil},
		{"ok/sqlite-path", func(c *Config) { c.Store.SQLite = &SQLiteStore{Path: "/var/lib/x.db"}; c.DataDir = "" }, nil},
		{"ok/postgres-url", func(c *Config) {
			c.Store = Store{Type: StorePostgres, Postgres: &PostgresStore{DSN: "postgres://u:secret@db:5432/fhir"}}
		}, nil},
		{"ok/postgres-keyword-dsn", func(c *Config) {
			c.Store = Store{Type: StorePostgres, Postgres: &PostgresStore{DSN: "host=db dbname=fhir"}}
		}, nil},
		{"ok/tls-pair-https-base", func(c *Config) {
			c.TLS = TLS{Cert: "c.pem", Key: "k.pem"}
			c.BaseURL = "https://fhir.example.org/"
		}, nil},
		{"ok/tls-self-signed", func(c *Config) { c.TLS.SelfSigned = true }, nil},
		{"ok/ipv6-port-zero", func(c *Config) { c.Addr = "[::1]:0" }, nil},
		{"ok/redis", func(c *Config) { c.Redis.URL = "redis://127.0.0.1:6379/0" }, nil},
		{"ok/cors-origins", func(c *Config) { c.CORS.AllowedOrigins = []string{"https://app1.example", "http://localhost:3000"} }, nil},
		{"fail/cors-bad-origins", func(c *Config) {
			c.CORS.AllowedOrigins = []string{"*", "null", "https://app1.example/path", "ftp://x.example", "http://:"}
		}, []string{
			`cors.allowed_origins[0]: must be an origin scheme://host[:port] (http or https, no path; "*" and "null" are not allowed), got "*"`,
			`cors.allowed_origins[1]: must be an origin scheme://host[:port] (http or https, no path; "*" and "null" are not allowed), got "null"`,
			`cors.allowed_origins[2]: must be an origin scheme://host[:port] (http or https, no path; "*" and "null" are not allowed), got "https://app1.example/path"`,
			`cors.allowed_origins[3]: must be an origin scheme://host[:port] (http or https, no path; "*" and "null" are not allowed), got "ftp://x.example"`,
			`cors.allowed_origins[4]: must be an origin scheme://host[:port] (http or https, no path; "*" and "null" are not allowed), got "http://:"`,
		}},
		{"ok/sqlite-synchronous-normal", func(c *Config) {
			c.Store = Store{Type: StoreSQLite, SQLite: &SQLiteStore{Synchronous: "normal"}}
		}, nil},
		{"fail/sqlite-synchronous-off", func(c *Config) {
			c.Store = Store{Type: StoreSQLite, SQLite: &SQLiteStore{Synchronous: "off"}}
		}, []string{"store.sqlite.synchronous: must be full or normal"}},
		{"fail/postgres-without-dsn", func(c *Config) { c.Store = Store{Type: StorePostgres} },
			[]string{"store.postgres.dsn: required when store.type is postgres"}},
		{"fail/postgres-bad-scheme-not-echoed", func(c *Config) {
			c.Store = Store{Type: StorePostgres, Postgres: &PostgresStore{DSN: "mysql://u:hunter2@db/x"}}
		}, []string{"store.postgres.dsn: must be a postgres:// URL"}},
		{"fail/union-both-set", func(c *Config) {
			c.Store = Store{Type: StoreSQLite, SQLite: &SQLiteStore{}, Postgres: &PostgresStore{DSN: "postgres://db/x"}}
		}, []string{"store.postgres: set but store.type is sqlite"}},
		{"fail/union-sqlite-under-postgres", func(c *Config) {
			c.Store = Store{Type: StorePostgres, SQLite: &SQLiteStore{}, Postgres: &PostgresStore{DSN: "postgres://db/x"}}
		}, []string{"store.sqlite: set but store.type is postgres"}},
		{"fail/store-type-unknown", func(c *Config) { c.Store.Type = "mongo" },
			[]string{`store.type: must be sqlite or postgres, got "mongo"`}},
		{"fail/store-type-empty", func(c *Config) { c.Store.Type = "" },
			[]string{"store.type: required (sqlite or postgres)"}},
		{"fail/no-data-dir", func(c *Config) { c.DataDir = " " },
			[]string{"data_dir: required when store.type is sqlite and store.sqlite.path is empty"}},
		{"fail/addr-no-port", func(c *Config) { c.Addr = "localhost" },
			[]string{`addr: must be host:port, got "localhost"`}},
		{"fail/addr-bad-port", func(c *Config) { c.Addr = "127.0.0.1:99999" },
			[]string{`addr: port must be a number from 0 to 65535, got "99999"`}},
		{"fail/addr-empty", func(c *Config) { c.Addr = "" }, []string{"addr: required (host:port)"}},
		{"fail/base-url-relative", func(c *Config) { c.BaseURL = "/fhir" },
			[]string{`base_url: must be an absolute http or https URL, got "/fhir"`}},
		{"fail/base-url-query", func(c *Config) { c.BaseURL = "https://x.example/?a=1" },
			[]string{"base_url: must not contain user info, a query or a fragment"}},
		{"fail/base-url-http-with-tls", func(c *Config) { c.BaseURL = "http://x.example"; c.TLS.SelfSigned = true },
			[]string{"base_url: must be https when TLS is enabled"}},
		{"fail/limits", func(c *Config) { c.MaxBodyBytes = 0; c.MaxBundleEntries = -1 }, []string{
			"max_body_bytes: must be between 1 and 1073741824, got 0",
			"max_bundle_entries: must be between 1 and 100000, got -1",
		}},
		{"fail/log", func(c *Config) { c.Log = Log{Level: "verbose", Format: "xml"} }, []string{
			`log.level: must be one of debug, info, warn, error, got "verbose"`,
			`log.format: must be json or text, got "xml"`,
		}},
		{"fail/tls-cert-without-key", func(c *Config) { c.TLS.Cert = "c.pem" }, []string{"tls.key: required when tls.cert is set"}},
		{"fail/tls-key-without-cert", func(c *Config) { c.TLS.Key = "k.pem" }, []string{"tls.cert: required when tls.key is set"}},
		{"fail/tls-self-signed-and-pair", func(c *Config) { c.TLS = TLS{Cert: "c", Key: "k", SelfSigned: true} },
			[]string{"tls.self_signed: cannot be combined with tls.cert/tls.key"}},
		{"fail/tls-and-insecure-http", func(c *Config) { c.TLS.SelfSigned = true; c.InsecureHTTP = true },
			[]string{"insecure_http: cannot be combined with TLS"}},
		{"fail/redis-scheme", func(c *Config) { c.Redis.URL = "http://cache" },
			[]string{"redis.url: must be a redis:// URL"}},
		{"fail/everything-at-once", func(c *Config) {
			c.Addr = "nope"
			c.Store = Store{Type: StorePostgres}
			c.Log.Level = "loud"
		}, []string{
			`addr: must be host:port, got "nope"`,
			`log.level: must be one of debug, info, warn, error, got "loud"`,
			"store.postgres.dsn: required when store.type is postgres",
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c := Default()
			tc.edit(&c)
			err := c.Validate()
			if tc.want == nil {
				if err != nil {
					t.Fatalf("unexpected error:\n%v", err)
				}
				return
			}
			if err == nil {
				t.Fatal("no error")
			}
			if got := strings.Split(err.Error(), "\n"); strings.Join(got, "\n") != strings.Join(tc.want, "\n") {
				t.Fatalf("errors:\n%s\nwant:\n%s", err, strings.Join(tc.want, "\n"))
			}
			if strings.Contains(err.Error(), "hunter2") {
				t.Error("a secret was echoed")
			}
		})
	}
}

func TestCheckExposure(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		edit func(c *Config)
		want []string // substrings, each must appear; nil = allowed
	}{
		{"ok/dev-loopback", func(c *Config) { c.Dev = true }, nil},
		{"ok/dev-localhost", func(c *Config) { c.Dev = true; c.Addr = "localhost:0" }, nil},
		{"ok/dev-ipv6-loopback", func(c *Config) { c.Dev = true; c.Addr = "[::1]:8080" }, nil},
		{"ok/dev-127-x", func(c *Config) { c.Dev = true; c.Addr = "127.1.2.3:8080" }, nil},
		{"ok/no-dev", func(c *Config) {}, nil},
		{"ok/no-dev-all-interfaces-tls", func(c *Config) { c.Addr = ":8443"; c.TLS.SelfSigned = true }, nil},
		{"fail/dev-all-interfaces-tls", func(c *Config) { c.Dev = true; c.Addr = ":8080"; c.TLS.SelfSigned = true },
			[]string{`--dev on the non-loopback address ":8080"`}},
		{"fail/plain-http-non-loopback", func(c *Config) { c.Dev = true; c.Addr = "0.0.0.0:8080" }, []string{
			`plain HTTP on the non-loopback address "0.0.0.0:8080"`, "--insecure-http",
			`--dev on the non-loopback address "0.0.0.0:8080"`}},
		{"fail/insecure-http-still-needs-loopback-dev", func(c *Config) { c.Dev = true; c.Addr = "10.1.2.3:80"; c.InsecureHTTP = true },
			[]string{`--dev on the non-loopback address "10.1.2.3:80"`}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c := Default()
			tc.edit(&c)
			err := c.CheckExposure()
			if tc.want == nil {
				if err != nil {
					t.Fatalf("unexpected: %v", err)
				}
				return
			}
			if err == nil || !errors.Is(err, ErrExposure) {
				t.Fatalf("err = %v, want ErrExposure", err)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error lacks %q:\n%v", w, err)
				}
			}
			if strings.Contains(tc.name, "insecure-http-still") && strings.Contains(err.Error(), "plain HTTP") {
				t.Errorf("--insecure-http was ignored: %v", err)
			}
		})
	}
}

func fakeEnv(m map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}

func fakeFiles(m map[string]string) func(string) ([]byte, error) {
	return func(name string) ([]byte, error) {
		if v, ok := m[name]; ok {
			return []byte(v), nil
		}
		return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrNotExist}
	}
}

func TestLoadPrecedence(t *testing.T) {
	t.Parallel()
	files := fakeFiles(map[string]string{
		"a.yaml": `
addr: 127.0.0.1:9000
data_dir: /from/file
base_url: http://file.example
max_body_bytes: 2048
log: {level: debug, format: text}
store:
  type: sqlite
  sqlite: {path: /file/db.sqlite}
`,
	})
	env := fakeEnv(map[string]string{
		"FHIRGUARD_DATA":     "/from/env",
		"FHIRGUARD_BASE_URL": "http://env.example",
		"FHIRGUARD_DEV":      "true",
		"FHIRGUARD_CONFIG":   "a.yaml",
	})
	fsFlags := flag.NewFlagSet("serve", flag.ContinueOnError)
	fl := BindFlags(fsFlags)
	if err := fsFlags.Parse([]string{"--base-url", "http://flag.example", "--max-bundle-entries", "7"}); err != nil {
		t.Fatal(err)
	}
	c, err := Load(fl, env, files)
	if err != nil {
		t.Fatal(err)
	}
	checks := []struct{ name, got, want string }{
		{"addr (file)", c.Addr, "127.0.0.1:9000"},
		{"data_dir (env over file)", c.DataDir, "/from/env"},
		{"base_url (flag over env)", c.BaseURL, "http://flag.example"},
		{"log.level (file)", c.Log.Level, "debug"},
		{"sqlite path (file)", c.SQLitePath(), "/file/db.sqlite"},
	}
	for _, ch := range checks {
		if ch.got != ch.want {
			t.Errorf("%s = %q, want %q", ch.name, ch.got, ch.want)
		}
	}
	if !c.Dev || c.MaxBodyBytes != 2048 || c.MaxBundleEntries != 7 {
		t.Errorf("dev %v max_body %d max_bundle %d", c.Dev, c.MaxBodyBytes, c.MaxBundleEntries)
	}
	// Unset flags keep their defaults out of the way: --addr was not given,
	// so the file's addr stays.
	if err := c.Validate(); err != nil {
		t.Errorf("validate: %v", err)
	}
}

func TestLoad(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		file  string
		env   map[string]string
		args  []string
		check func(t *testing.T, c Config)
		want  []string // error substrings; nil = no error
	}{
		{name: "ok/no-file-defaults", check: func(t *testing.T, c Config) {
			if c.Addr != DefaultAddr || c.SQLitePath() != "./data/fhirguard.db" || c.Dev {
				t.Errorf("%+v", c)
			}
		}},
		{name: "ok/empty-file", file: "", args: []string{"--config", "empty.yaml"}},
		{name: "ok/db-flag-postgres", args: []string{"--db", "postgres://db/x"}, check: func(t *testing.T, c Config) {
			if c.Store.Type != StorePostgres || c.Store.Postgres.DSN != "postgres://db/x" || c.Store.SQLite != nil {
				t.Errorf("%+v", c.Store)
			}
		}},
		{name: "ok/db-env-sqlite-path", env: map[string]string{"FHIRGUARD_DB": "sqlite:/x.db"}, check: func(t *testing.T, c Config) {
			if c.SQLitePath() != "/x.db" {
				t.Errorf("%s", c.SQLitePath())
			}
		}},
		{name: "ok/flags", args: []string{"--addr", "127.0.0.1:0", "--dev", "--tls-self-signed", "--insecure-http=false",
			"--redis", "redis://r:6379", "--tls-cert", "c", "--tls-key", "k", "--max-body-bytes", "5", "--data", "/d",
			"--log-level", "warn", "--log-format", "text"},
			check: func(t *testing.T, c Config) {
				want := TLS{Cert: "c", Key: "k", SelfSigned: true}
				if c.Addr != "127.0.0.1:0" || !c.Dev || c.TLS != want || c.Redis.URL != "redis://r:6379" ||
					c.MaxBodyBytes != 5 || c.DataDir != "/d" || c.Log != (Log{"warn", "text"}) {
					t.Errorf("%+v", c)
				}
			}},
		{name: "fail/unknown-key", file: "addr: 127.0.0.1:1\nstorage: {}\n", args: []string{"--config", "f.yaml"},
			want: []string{"config file f.yaml: line 2: unknown key storage"}},
		{name: "fail/unknown-nested-key", file: "store:\n  type: sqlite\n  sqlite: {file: x}\n", args: []string{"--config", "f.yaml"},
			want: []string{"line 3: unknown key file"}},
		{name: "fail/wrong-type", file: "dev: maybe\nmax_body_bytes: lots\n", args: []string{"--config", "f.yaml"},
			want: []string{`line 1: cannot use str "maybe" here (want true or false)`, `line 2: cannot use str "lots" here (want an integer)`}},
		{name: "fail/two-documents", file: "dev: true\n---\ndev: false\n", args: []string{"--config", "f.yaml"},
			want: []string{"only one YAML document is allowed"}},
		{name: "fail/missing-file", args: []string{"--config", "nope.yaml"}, want: []string{"config file: open nope.yaml"}},
		{name: "fail/env-values", env: map[string]string{"FHIRGUARD_DEV": "yes please", "FHIRGUARD_MAX_BODY_BYTES": "10MB"},
			want: []string{`FHIRGUARD_DEV: want true or false, got "yes please"`, `FHIRGUARD_MAX_BODY_BYTES: want an integer, got "10MB"`}},
		{name: "fail/db-flag", args: []string{"--db", "mysql://x"}, want: []string{"--db: must be postgres://… or sqlite:PATH"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			fset := flag.NewFlagSet("serve", flag.ContinueOnError)
			fl := BindFlags(fset)
			if err := fset.Parse(tc.args); err != nil {
				t.Fatal(err)
			}
			c, err := Load(fl, fakeEnv(tc.env), fakeFiles(map[string]string{"f.yaml": tc.file, "empty.yaml": ""}))
			if tc.want == nil {
				if err != nil {
					t.Fatalf("unexpected: %v", err)
				}
				if tc.check != nil {
					tc.check(t, c)
				}
				return
			}
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error lacks %q:\n%v", w, err)
				}
			}
			if strings.Contains(err.Error(), "config.Config") {
				t.Errorf("Go type names in %v", err)
			}
		})
	}
}

func TestEnvNamesDocumented(t *testing.T) {
	t.Parallel()
	names := EnvNames()
	if len(names) != 16 || names[0] != "FHIRGUARD_CONFIG" {
		t.Fatalf("env names changed; update README: %v", names)
	}
}
