package pgtest

import (
	"fmt"
	"strings"
	"testing"
)

// stop ends Schema's run on a fake skip or failure, as runtime.Goexit
// does for the real ones.
type stop struct{}

// outcome records how Schema ended a test.
type outcome struct {
	testing.TB
	skipped, failed string
}

func (o *outcome) Helper()                           {}
func (o *outcome) Skip(args ...any)                  { o.skipped = fmt.Sprint(args...); panic(stop{}) }
func (o *outcome) Fatal(args ...any)                 { o.failed = fmt.Sprint(args...); panic(stop{}) }
func (o *outcome) Fatalf(format string, args ...any) { o.Fatal(fmt.Sprintf(format, args...)) }

func schemaOutcome(t *testing.T) (o *outcome) {
	o = &outcome{TB: t}
	defer func() {
		if r := recover(); r != nil && r != (stop{}) {
			panic(r)
		}
	}()
	Schema(o)
	return o
}

// TestUnreachable: without a reachable server the test skips with what to
// start, and with CI=true it fails instead.
func TestUnreachable(t *testing.T) {
	t.Setenv(EnvDSN, "postgres://postgres@127.0.0.1:1/test?sslmode=disable&connect_timeout=2")
	t.Run("ok/skip-locally", func(t *testing.T) {
		t.Setenv("CI", "")
		o := schemaOutcome(t)
		if o.failed != "" || !strings.Contains(o.skipped, "start PostgreSQL") || !strings.Contains(o.skipped, EnvDSN) {
			t.Fatalf("skipped %q, failed %q", o.skipped, o.failed)
		}
	})
	t.Run("fail/ci", func(t *testing.T) {
		t.Setenv("CI", "true")
		o := schemaOutcome(t)
		if o.skipped != "" || !strings.Contains(o.failed, "CI=true") {
			t.Fatalf("skipped %q, failed %q", o.skipped, o.failed)
		}
	})
}

// TestWithParam sets parameters in both DSN forms.
func TestWithParam(t *testing.T) {
	tests := []struct{ name, dsn, want string }{
		{"ok/url", "postgres://u@h:5432/test?sslmode=disable", "postgres://u@h:5432/test?search_path=fg_x&sslmode=disable"},
		{"ok/keyword-value", "host=h dbname=test", "host=h dbname=test search_path=fg_x"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := WithSearchPath(tc.dsn, "fg_x")
			if err != nil || got != tc.want {
				t.Fatalf("%q, %v; want %q", got, err, tc.want)
			}
		})
	}
	if _, err := WithSearchPath("postgres://[::1", "x"); err == nil {
		t.Fatal("a bad URL accepted")
	}
}
