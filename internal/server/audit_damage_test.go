package server_test

import (
	"database/sql"
	"encoding/json"
	"net/http"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/fhirguard/fhirguard/internal/config"
	"github.com/fhirguard/fhirguard/internal/server/servertest"
	"github.com/fhirguard/fhirguard/internal/store/sqlite"
)

// TestDamagedAuditRecordThroughFHIR: audit records whose storage was
// damaged, read through the FHIR API (read, vread, search, $access-log),
// answer a 500 OperationOutcome saying so — no internals — and the damage
// is logged as an error.
func TestDamagedAuditRecordThroughFHIR(t *testing.T) {
	t.Parallel()
	ts := servertest.Start(t)
	if status, body, _ := do(t, ts, "PUT", "/Patient/pA", `{"resourceType":"Patient","id":"pA"}`); status != 201 {
		t.Fatalf("create: %d %s", status, body)
	}
	for range 3 {
		if status, body, _ := do(t, ts, "GET", "/Patient/pA", ""); status != 200 {
			t.Fatalf("read: %d %s", status, body)
		}
	}
	db, err := sql.Open("sqlite", sqlite.AuditPath(filepath.Join(ts.DataDir, config.SQLiteFile))+"?_pragma=busy_timeout(5000)")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	// Damage the block holding the patient's read events (the newest one
	// that holds a read of Patient/pA is enough; damage every block: the
	// searches below must meet one).
	var first int64
	if err := db.QueryRow(`SELECT min(first_seq) FROM audit_blocks`).Scan(&first); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`UPDATE audit_blocks SET data = substr(data, 1, length(data) - 5)`); err != nil {
		t.Fatal(err)
	}
	internals := regexp.MustCompile(`goroutine|panic|\.go:|SELECT|sqlite|pgx|store:|decode|corrupt`)
	for _, tc := range []struct{ name, path string }{
		{"fail/read-damaged", "/AuditEvent/" + strconv.FormatInt(first, 10)},
		{"fail/vread-damaged", "/AuditEvent/" + strconv.FormatInt(first, 10) + "/_history/1"},
		{"fail/search-damaged", "/AuditEvent?_count=1000"},
		{"fail/patient-search-damaged", "/AuditEvent?patient=Patient/pA"},
		{"fail/access-log-damaged", "/Patient/pA/$access-log"},
	} {
		status, body, hdr := do(t, ts, "GET", tc.path, "")
		var oo struct {
			ResourceType string `json:"resourceType"`
			Issue        []struct {
				Code        string `json:"code"`
				Diagnostics string `json:"diagnostics"`
			} `json:"issue"`
		}
		if err := json.Unmarshal(body, &oo); err != nil || oo.ResourceType != "OperationOutcome" || len(oo.Issue) != 1 {
			t.Errorf("%s: want an OperationOutcome, got %d %s", tc.name, status, body)
			continue
		}
		diag := oo.Issue[0].Diagnostics
		if status != http.StatusInternalServerError || oo.Issue[0].Code != "exception" ||
			!strings.Contains(diag, "audit log is damaged") || !strings.Contains(diag, hdr.Get("X-Request-Id")) {
			t.Errorf("%s: %d %s, want 500 exception saying the audit log is damaged, with the request id", tc.name, status, body)
		}
		if internals.MatchString(diag) {
			t.Errorf("%s: internals in the diagnostics: %s", tc.name, diag)
		}
	}
	logs := ts.Logs()
	if !strings.Contains(logs, `"level":"ERROR"`) || !strings.Contains(logs, "cannot be decoded") {
		t.Errorf("the damage is not logged as an error:\n%s", logs)
	}
}
