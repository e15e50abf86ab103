// Command fhirguard is the fhirguard binary: a FHIR R4 server with the HL7
// FHIR security framework built in, and its admin commands. This package
// only parses subcommands and flags; the logic lives in internal/server and
// the other internal packages.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

// Exit codes.
const (
	exitOK    = 0
	exitError = 1 // runtime failure, or refused configuration
	exitUsage = 2 // bad command line
)

// command is one subcommand. Add new ones (import, user, client, …) to
// commands() with their own file.
type command struct {
	name    string
	summary string
	run     func(ctx context.Context, args []string, env environment) int
}

// environment is what a command may touch of the process.
type environment struct {
	stdout, stderr io.Writer
	stdin          io.Reader
	lookupEnv      func(string) (string, bool)
	readFile       func(string) ([]byte, error)
}

func commands() []command {
	return []command{
		{"serve", "run the FHIR server", runServe},
		{"import", "import Bundle/NDJSON files into the store, ids kept", runImport},
		{"config", "config validate --config FILE: check a configuration", runConfig},
		{"client", "client add --json FILE | client token: register a client, or an initial access token", runClient},
		{"user", "user add --username U --password-stdin --fhir-user T/ID [--role R]...", runUser},
		{"launch", "launch --client-id C --user U --patient P [--encounter E]: an EHR launch value", runLaunch},
		{"keys", "keys rotate: new signing keys (old ones stay published until their tokens expire)", runKeys},
		{"audit", "audit verify|btg|prune: check the audit chain, review break-the-glass accesses, apply retention", runAudit},
		{"version", "print the version", runVersion},
	}
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], environment{
		stdout: os.Stdout, stderr: os.Stderr, stdin: os.Stdin, lookupEnv: os.LookupEnv, readFile: os.ReadFile,
	})
	stop()
	os.Exit(code)
}

func run(ctx context.Context, args []string, env environment) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		usage(env.stderr)
		if len(args) == 0 {
			return exitUsage
		}
		return exitOK
	}
	for _, c := range commands() {
		if c.name == args[0] {
			return c.run(ctx, args[1:], env)
		}
	}
	fmt.Fprintf(env.stderr, "fhirguard: unknown command %q\n\n", args[0])
	usage(env.stderr)
	return exitUsage
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "usage: fhirguard <command> [flags]")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "commands:")
	for _, c := range commands() {
		fmt.Fprintf(w, "  %-9s %s\n", c.name, c.summary)
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Run 'fhirguard <command> -h' for the flags of a command.")
}
