package main

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fhirguard/fhirguard/internal/audit"
	"github.com/fhirguard/fhirguard/internal/config"
	"github.com/fhirguard/fhirguard/internal/index"
	"github.com/fhirguard/fhirguard/internal/store/sqlite"
)

// runCmd runs the fhirguard command line in-process.
func runAdmin(t *testing.T, stdin string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	code = run(context.Background(), args, environment{
		stdout: &out, stderr: &errb, stdin: strings.NewReader(stdin),
		lookupEnv: func(string) (string, bool) { return "", false }, readFile: os.ReadFile,
	})
	return code, out.String(), errb.String()
}

func TestKeysRotate(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	code, out, errs := runAdmin(t, "", "keys", "rotate", "--data", dir)
	if code != exitOK || !strings.Contains(out, "new signing keys:") {
		t.Fatalf("ok/rotate: code %d\n%s\n%s", code, out, errs)
	}
	if got := adminEvents(t, dir, "key-rotation"); len(got) != 1 || !strings.Contains(got[0], strings.TrimSuffix(strings.Fields(strings.TrimPrefix(out, "new signing keys: "))[0], ",")) {
		t.Fatalf("key-rotation events %v, want one naming the new keys (%s)", got, out)
	}
	if code, _, _ := runAdmin(t, "", "keys", "spin", "--data", dir); code != exitUsage {
		t.Fatalf("fail/unknown-subcommand: code %d", code)
	}
	if code, _, _ := runAdmin(t, "", "keys", "rotate", "--data", dir, "--retain", "-1s"); code != exitUsage {
		t.Fatalf("fail/bad-retain: code %d", code)
	}
}

func TestAuthAdminCommands(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	nd := filepath.Join(dir, "seed.ndjson")
	if err := os.WriteFile(nd, []byte(`{"resourceType":"Patient","id":"pA"}
{"resourceType":"Practitioner","id":"drA"}
`), 0o600); err != nil {
		t.Fatal(err)
	}
	data := filepath.Join(dir, "data")
	if code, out, errs := runAdmin(t, "", "import", "--data", data, "--quiet", nd); code != exitOK {
		t.Fatalf("import: %d %s %s", code, out, errs)
	}

	for _, tc := range []struct {
		name  string
		stdin string
		args  []string
		code  int
		out   string
	}{
		{"ok/user-patient", "pw-alice\n", []string{"user", "add", "--data", data, "--username", "alice", "--password-stdin", "--fhir-user", "Patient/pA"}, exitOK, "user alice added"},
		{"ok/user-practitioner-roles", "pw-dr\n", []string{"user", "add", "--data", data, "--username", "drA", "--password-stdin", "--fhir-user", "Practitioner/drA", "--role", "clinician", "--role", "break-glass"}, exitOK, "user drA added"},
		{"fail/user-duplicate", "x\n", []string{"user", "add", "--data", data, "--username", "alice", "--password-stdin", "--fhir-user", "Patient/pA"}, exitError, ""},
		{"fail/user-fhiruser-missing", "x\n", []string{"user", "add", "--data", data, "--username", "bob", "--password-stdin", "--fhir-user", "Practitioner/missing"}, exitError, ""},
		{"fail/user-fhiruser-type", "x\n", []string{"user", "add", "--data", data, "--username", "bob", "--password-stdin", "--fhir-user", "Observation/o1"}, exitError, ""},
		{"fail/user-unknown-role", "x\n", []string{"user", "add", "--data", data, "--username", "bob", "--password-stdin", "--fhir-user", "Patient/pA", "--role", "god"}, exitError, ""},
		{"fail/user-empty-password", "\n", []string{"user", "add", "--data", data, "--username", "bob", "--password-stdin", "--fhir-user", "Patient/pA"}, exitError, ""},
		{"fail/user-no-password-stdin", "", []string{"user", "add", "--data", data, "--username", "bob", "--fhir-user", "Patient/pA"}, exitUsage, ""},
		{"ok/client-public", `{"client_id":"app1","client_name":"App One","redirect_uris":["http://127.0.0.1:9/cb"],"token_endpoint_auth_method":"none"}`,
			[]string{"client", "add", "--data", data, "--json", "-"}, exitOK, `"client_id": "app1"`},
		{"ok/client-confidential", `{"client_id":"app2","redirect_uris":["https://app2.example/cb"],"grant_types":["authorization_code","refresh_token"]}`,
			[]string{"client", "add", "--data", data, "--json", "-"}, exitOK, `"client_secret": "`},
		{"fail/client-duplicate", `{"client_id":"app1","redirect_uris":["https://x.example/cb"],"token_endpoint_auth_method":"none"}`,
			[]string{"client", "add", "--data", data, "--json", "-"}, exitError, ""},
		{"fail/client-http-redirect", `{"redirect_uris":["http://evil.example/cb"],"token_endpoint_auth_method":"none"}`,
			[]string{"client", "add", "--data", data, "--json", "-"}, exitError, ""},
		{"fail/client-no-json", "", []string{"client", "add", "--data", data}, exitUsage, ""},
		{"ok/client-token", "", []string{"client", "token", "--data", data}, exitOK, ""},
		{"ok/launch", "", []string{"launch", "--data", data, "--client-id", "app1", "--user", "drA", "--patient", "pA"}, exitOK, ""},
		{"fail/launch-unknown-client", "", []string{"launch", "--data", data, "--client-id", "nope", "--user", "drA", "--patient", "pA"}, exitError, ""},
		{"fail/launch-unknown-patient", "", []string{"launch", "--data", data, "--client-id", "app1", "--user", "drA", "--patient", "zz"}, exitError, ""},
		{"fail/launch-unknown-encounter", "", []string{"launch", "--data", data, "--client-id", "app1", "--user", "drA", "--patient", "pA", "--encounter", "e9"}, exitError, ""},
	} {
		code, out, errs := runAdmin(t, tc.stdin, tc.args...)
		if code != tc.code || !strings.Contains(out, tc.out) {
			t.Errorf("%s: code %d (want %d)\nstdout: %s\nstderr: %s", tc.name, code, tc.code, out, errs)
		}
		if tc.name == "ok/user-practitioner-roles" {
			if got := adminEvents(t, data, "user-added"); len(got) != 2 || !strings.Contains(got[1], `"Practitioner/drA"`) || !strings.Contains(got[1], "clinician, break-glass") {
				t.Errorf("user-added events %v, want alice's and drA's with the roles", got)
			}
		}
		if tc.name == "ok/client-token" || tc.name == "ok/launch" {
			if v := strings.TrimSpace(out); len(v) < 30 || strings.ContainsAny(v, " \n") {
				t.Errorf("%s: want one opaque value, got %q", tc.name, out)
			}
		}
	}
}

// adminEvents returns the AuditEvent JSON of the records in dir's audit log
// whose subtype is code.
func adminEvents(t *testing.T, dir, code string) []string {
	t.Helper()
	ix, err := index.New()
	if err != nil {
		t.Fatal(err)
	}
	st, err := sqlite.Open(context.Background(), sqlite.Options{Path: filepath.Join(dir, config.SQLiteFile), Indexer: ix, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	recs, err := st.AuditScan(context.Background(), 0, 1000)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for i := range recs {
		b, err := audit.EventJSON(&recs[i])
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(string(b), `"code":"`+code+`"`) {
			out = append(out, string(b))
		}
	}
	return out
}

// TestImportIsAudited: an import records one AuditEvent naming its file,
// what went in and what was rejected (a minor failure then).
func TestImportIsAudited(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	file := filepath.Join(t.TempDir(), "set.ndjson")
	if err := os.WriteFile(file, []byte(`{"resourceType":"Patient","id":"a1"}`+"\n"+`{"resourceType":"Patient","id":"a2","foo":1}`+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if code, out, errs := runAdmin(t, "", "import", "--data", dir, "--quiet", file); code != exitError || !strings.Contains(out, "imported 1 resources (1 failed)") {
		t.Fatalf("import: code %d\n%s\n%s", code, out, errs)
	}
	got := adminEvents(t, dir, "import")
	if len(got) != 1 {
		t.Fatalf("import events %v, want 1", got)
	}
	for _, want := range []string{`"code":"110107"`, `"outcome":"4"`, "1 resources imported, 1 rejected", filepath.Base(file), `"os-user:`} {
		if !strings.Contains(got[0], want) {
			t.Errorf("import event lacks %s:\n%s", want, got[0])
		}
	}
}
