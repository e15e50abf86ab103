package server

import (
	"bytes"
	"strings"
	"testing"

	"github.com/fhirguard/fhirguard/internal/config"
)

func TestNewLogger(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		cfg        config.Log
		wantPrefix string // of the first line
		wantDebug  bool
	}{
		{"ok/json-info", config.Log{Level: "info", Format: "json"}, `{"time":`, false},
		{"ok/text-debug", config.Log{Level: "debug", Format: "text"}, "time=", true},
		{"ok/warn-drops-info", config.Log{Level: "warn", Format: "json"}, "", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var buf bytes.Buffer
			l := NewLogger(&buf, tc.cfg)
			l.Debug("dbg")
			l.Info("inf")
			out := buf.String()
			if got := strings.Contains(out, "dbg"); got != tc.wantDebug {
				t.Errorf("debug logged = %v:\n%s", got, out)
			}
			if tc.wantPrefix == "" {
				if out != "" {
					t.Errorf("want nothing below warn, got %s", out)
				}
				return
			}
			if !strings.HasPrefix(out, tc.wantPrefix) || !strings.Contains(out, "inf") {
				t.Errorf("output %q", out)
			}
		})
	}
}
