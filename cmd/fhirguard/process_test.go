package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// binPath is the fhirguard binary built once for the process tests.
var binPath string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "fhirguard-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binPath = filepath.Join(dir, "fhirguard")
	build := exec.Command("go", "build", "-o", binPath, ".")
	build.Stdout, build.Stderr = os.Stdout, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "build fhirguard:", err)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// proc is one running fhirguard process.
type proc struct {
	cmd    *exec.Cmd
	url    string
	token  string // an access token for system/*.cruds (set when --data is given)
	mu     sync.Mutex
	stderr bytes.Buffer
	done   chan error
}

func (p *proc) logs() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.stderr.String()
}

// startProc runs `fhirguard serve ARGS` (JSON logs on stderr), waits for
// its "serving" log line and then for /healthz to answer 200.
func startProc(t *testing.T, args ...string) *proc {
	t.Helper()
	cmd := exec.Command(binPath, append([]string{"serve"}, args...)...)
	cmd.Env = cleanEnv()
	pr, pw := io.Pipe()
	cmd.Stderr = pw
	p := &proc{cmd: cmd, done: make(chan error, 1)}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	urlc := make(chan string, 1)
	scanned := make(chan struct{})
	go func() {
		defer close(scanned)
		sc := bufio.NewScanner(pr)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			line := sc.Text()
			p.mu.Lock()
			p.stderr.WriteString(line + "\n")
			p.mu.Unlock()
			var rec struct {
				Msg string `json:"msg"`
				URL string `json:"url"`
			}
			if json.Unmarshal([]byte(line), &rec) == nil && rec.Msg == "serving" {
				select {
				case urlc <- rec.URL:
				default:
				}
			}
		}
	}()
	go func() {
		err := cmd.Wait()
		pw.Close()
		<-scanned // every line is in p.stderr before done
		p.done <- err
	}()
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
			<-p.done
		}
	})
	select {
	case p.url = <-urlc:
	case err := <-p.done:
		p.done <- err
		t.Fatalf("fhirguard exited early (%v):\n%s", err, p.logs())
	case <-time.After(20 * time.Second):
		t.Fatalf("no serving line:\n%s", p.logs())
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp, err := http.Get(p.url + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				if data := argAfter(args, "--data"); data != "" {
					p.token = procToken(t, p, data)
				}
				return p
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("/healthz never answered 200 (%v):\n%s", err, p.logs())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// argAfter returns the value following flag in args ("" if absent).
func argAfter(args []string, flag string) string {
	for i, a := range args {
		if a == flag && i+1 < len(args) {
			return args[i+1]
		}
	}
	return ""
}

// wait waits for the process to exit and returns its exit code.
func (p *proc) wait(t *testing.T, timeout time.Duration) int {
	t.Helper()
	select {
	case <-p.done:
	case <-time.After(timeout):
		t.Fatalf("process did not exit within %v:\n%s", timeout, p.logs())
	}
	return p.cmd.ProcessState.ExitCode()
}

// cleanEnv drops FHIRGUARD_* variables of the developer's shell.
func cleanEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "FHIRGUARD_") {
			env = append(env, kv)
		}
	}
	return env
}

// runCmd runs the binary to completion and returns exit code and output.
func runCmd(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, binPath, args...)
	cmd.Env = cleanEnv()
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	if err != nil {
		ee, ok := err.(*exec.ExitError)
		if !ok {
			t.Fatalf("run %v: %v", args, err)
		}
		code = ee.ExitCode()
	}
	return code, out.String(), errb.String()
}

func TestCommandLine(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	badCfg := filepath.Join(dir, "bad.yaml")
	if err := os.WriteFile(badCfg, []byte("addr: nope\nstore: {type: postgres}\nmystery: 1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	goodCfg := filepath.Join(dir, "good.yaml")
	if err := os.WriteFile(goodCfg, []byte("addr: 127.0.0.1:0\ndev: true\nstore: {type: sqlite}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	data := filepath.Join(dir, "data")
	tests := []struct {
		name     string
		args     []string
		wantCode int
		wantOut  []string // substrings of stdout+stderr
	}{
		{"fail/serve-dev-non-loopback", []string{"serve", "--dev", "--data", data, "--addr", "0.0.0.0:0", "--insecure-http"}, 1,
			[]string{`--dev on the non-loopback address "0.0.0.0:0"`}},
		{"fail/serve-plain-http-non-loopback", []string{"serve", "--dev", "--data", data, "--addr", "0.0.0.0:0"}, 1,
			[]string{"--insecure-http"}},
		{"fail/serve-postgres", []string{"serve", "--dev", "--data", data, "--db", "postgres://127.0.0.1/test"}, 1,
			[]string{"not yet supported"}},
		{"fail/serve-redis", []string{"serve", "--dev", "--data", data, "--redis", "redis://127.0.0.1:6379"}, 1,
			[]string{"redis (--redis): not yet supported"}},
		{"fail/serve-bad-flag", []string{"serve", "--no-such-flag"}, 2, []string{"flag provided but not defined"}},
		{"fail/unknown-command", []string{"frobnicate"}, 2, []string{`unknown command "frobnicate"`, "serve"}},
		{"fail/config-validate-bad", []string{"config", "validate", "--config", badCfg}, 1, []string{
			"line 3: unknown key mystery", `addr: must be host:port, got "nope"`,
			"store.postgres.dsn: required when store.type is postgres"}},
		{"ok/config-validate-good", []string{"config", "validate", "--config", goodCfg}, 0, []string{"configuration is valid"}},
		{"ok/version", []string{"version"}, 0, []string{"fhirguard "}},
		{"ok/help", []string{"help"}, 0, []string{"usage: fhirguard"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			code, out, errOut := runCmd(t, tc.args...)
			all := out + errOut
			if code != tc.wantCode {
				t.Fatalf("exit %d, want %d:\n%s", code, tc.wantCode, all)
			}
			for _, w := range tc.wantOut {
				if !strings.Contains(all, w) {
					t.Errorf("output lacks %q:\n%s", w, all)
				}
			}
		})
	}
}

// TestDevWarns: --dev on loopback starts, says at WARN that the API is
// open, and exits 0 on SIGINT.
func TestDevWarns(t *testing.T) {
	t.Parallel()
	p := startProc(t, "--dev", "--data", t.TempDir(), "--addr", "127.0.0.1:0")
	if !strings.Contains(p.logs(), `"level":"WARN","msg":"development mode`) {
		t.Errorf("no dev-mode WARN line:\n%s", p.logs())
	}
	if err := p.cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	if code := p.wait(t, 35*time.Second); code != 0 {
		t.Fatalf("exit %d after SIGINT:\n%s", code, p.logs())
	}
}

// rawPost opens a connection and sends the headers and the first part of a
// POST body; the caller sends the rest later.
func rawPost(t *testing.T, base, token, path string, body []byte, split int) (net.Conn, *bufio.Reader) {
	t.Helper()
	host := strings.TrimPrefix(base, "http://")
	c, err := net.Dial("tcp", host)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	head := fmt.Sprintf("POST %s HTTP/1.1\r\nHost: %s\r\nAuthorization: Bearer %s\r\nContent-Type: application/fhir+json\r\nContent-Length: %d\r\n\r\n",
		path, host, token, len(body))
	if _, err := io.WriteString(c, head); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Write(body[:split]); err != nil {
		t.Fatal(err)
	}
	return c, bufio.NewReader(c)
}
