package main

import (
	"bytes"
	"context"
	"os"
	"strings"
	"testing"
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
	if code, _, _ := runAdmin(t, "", "keys", "spin", "--data", dir); code != exitUsage {
		t.Fatalf("fail/unknown-subcommand: code %d", code)
	}
	if code, _, _ := runAdmin(t, "", "keys", "rotate", "--data", dir, "--retain", "-1s"); code != exitUsage {
		t.Fatalf("fail/bad-retain: code %d", code)
	}
}
