package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/fhirguard/fhirguard/internal/authz"
	"github.com/fhirguard/fhirguard/internal/clock"
)

// runClient is `fhirguard client add --json FILE` (an RFC 7591 document in,
// the registration JSON out, client_secret shown once) and `fhirguard
// client token [--ttl D]` (an initial access token for dynamic
// registration).
func runClient(ctx context.Context, args []string, env environment) int {
	usage := func() int {
		fmt.Fprintln(env.stderr, "usage: fhirguard client add [--data DIR] --json FILE")
		fmt.Fprintln(env.stderr, "       fhirguard client token [--data DIR] [--ttl DURATION]")
		return exitUsage
	}
	if len(args) == 0 {
		return usage()
	}
	switch args[0] {
	case "add":
		var file *string
		a, st, cfg, closeFn, code := adminStores(ctx, "client add", args[1:], env, func(fs *flag.FlagSet) {
			file = fs.String("json", "", "RFC 7591 registration document (JSON file, - for stdin)")
		})
		if a == nil {
			return code
		}
		defer closeFn()
		if *file == "" {
			fmt.Fprintln(env.stderr, "fhirguard client add: --json FILE is required")
			return exitUsage
		}
		doc, err := readInput(*file, env)
		if err != nil {
			fmt.Fprintf(env.stderr, "fhirguard client add: %v\n", err)
			return exitError
		}
		adm := &authz.Admin{Store: a, Resources: st, Clock: clock.System{}}
		hosts := append(jwksHosts(env), cfg.Auth.JWKSURIHosts...)
		reg, err := adm.Register(ctx, doc, authz.RegistrationPolicy{AllowClientID: true, JWKSURIHosts: hosts})
		if err != nil {
			fmt.Fprintf(env.stderr, "fhirguard client add: %v\n", err)
			return exitError
		}
		enc := json.NewEncoder(env.stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(reg); err != nil {
			return exitError
		}
		return exitOK
	case "token":
		var ttl *durationFlag
		a, st, _, closeFn, code := adminStores(ctx, "client token", args[1:], env, func(fs *flag.FlagSet) {
			ttl = &durationFlag{d: authz.DefaultIATLifetime}
			fs.Var(ttl, "ttl", "how long the token may be used")
		})
		if a == nil {
			return code
		}
		defer closeFn()
		adm := &authz.Admin{Store: a, Resources: st, Clock: clock.System{}}
		tok, exp, err := adm.NewInitialAccessToken(ctx, ttl.d)
		if err != nil {
			fmt.Fprintf(env.stderr, "fhirguard client token: %v\n", err)
			return exitError
		}
		fmt.Fprintln(env.stdout, tok)
		fmt.Fprintf(env.stderr, "initial access token for one registration, valid until %s\n", exp.Format(time.RFC3339))
		return exitOK
	}
	return usage()
}

// jwksHosts reads the jwks_uri allowlist (FHIRGUARD_JWKS_URI_HOSTS,
// comma-separated) for the CLI.
func jwksHosts(env environment) []string {
	v, _ := env.lookupEnv("FHIRGUARD_JWKS_URI_HOSTS")
	var out []string
	for _, h := range strings.Split(v, ",") {
		if h = strings.ToLower(strings.TrimSpace(h)); h != "" {
			out = append(out, h)
		}
	}
	return out
}

func readInput(file string, env environment) ([]byte, error) {
	const maxDoc = 1 << 20
	var r io.Reader
	if file == "-" {
		r = env.stdin
	} else {
		f, err := os.Open(file)
		if err != nil {
			return nil, err
		}
		defer f.Close()
		r = f
	}
	b, err := io.ReadAll(io.LimitReader(r, maxDoc+1))
	if err != nil {
		return nil, err
	}
	if len(b) > maxDoc {
		return nil, errors.New("the document is larger than 1 MiB")
	}
	return b, nil
}

// runUser is `fhirguard user add --username U --password-stdin --fhir-user
// Patient/ID|Practitioner/ID [--role R]…`.
func runUser(ctx context.Context, args []string, env environment) int {
	if len(args) == 0 || args[0] != "add" {
		fmt.Fprintln(env.stderr, "usage: fhirguard user add [--data DIR] --username U --password-stdin --fhir-user Patient/ID|Practitioner/ID [--role R]...")
		return exitUsage
	}
	var username, fhirUser *string
	var pwStdin *bool
	var roles stringsFlag
	a, st, cfg, closeFn, code := adminStores(ctx, "user add", args[1:], env, func(fs *flag.FlagSet) {
		username = fs.String("username", "", "login name")
		pwStdin = fs.Bool("password-stdin", false, "read the password from the first line of standard input")
		fhirUser = fs.String("fhir-user", "", "the FHIR resource the user is: Patient/ID, Practitioner/ID, RelatedPerson/ID or Person/ID (must exist)")
		fs.Var(&roles, "role", "role (repeatable): "+strings.Join(authz.Roles(), ", "))
	})
	if a == nil {
		return code
	}
	defer closeFn()
	if *username == "" || *fhirUser == "" || !*pwStdin {
		fmt.Fprintln(env.stderr, "fhirguard user add: --username, --fhir-user and --password-stdin are required")
		return exitUsage
	}
	line, err := bufio.NewReader(io.LimitReader(env.stdin, 4096)).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		fmt.Fprintf(env.stderr, "fhirguard user add: read password: %v\n", err)
		return exitError
	}
	pw := strings.TrimRight(line, "\r\n")
	if pw == "" {
		fmt.Fprintln(env.stderr, "fhirguard user add: empty password on standard input")
		return exitError
	}
	adm := &authz.Admin{Store: a, Resources: st, Clock: clock.System{}}
	if err := adm.AddUser(ctx, authz.NewUser{Username: *username, Password: pw, FHIRUser: *fhirUser, Roles: roles}); err != nil {
		fmt.Fprintf(env.stderr, "fhirguard user add: %v\n", err)
		return exitError
	}
	fmt.Fprintf(env.stdout, "user %s added (%s)\n", *username, *fhirUser)
	if err := recordAdmin(ctx, st, cfg, "user add", userAddedEvent(*username, *fhirUser, roles)); err != nil {
		fmt.Fprintf(env.stderr, "fhirguard user add: the user was added, but %v\n", err)
		return exitError
	}
	return exitOK
}

// runLaunch is `fhirguard launch --client-id C --user U --patient P
// [--encounter E]`: prints a one-time EHR launch value.
func runLaunch(ctx context.Context, args []string, env environment) int {
	var clientID, user, patient, encounter *string
	a, st, _, closeFn, code := adminStores(ctx, "launch", args, env, func(fs *flag.FlagSet) {
		clientID = fs.String("client-id", "", "the client the launch is for")
		user = fs.String("user", "", "the user launching")
		patient = fs.String("patient", "", "patient id in context")
		encounter = fs.String("encounter", "", "encounter id in context")
	})
	if a == nil {
		return code
	}
	defer closeFn()
	if *clientID == "" || *user == "" || *patient == "" {
		fmt.Fprintln(env.stderr, "usage: fhirguard launch [--data DIR] --client-id C --user U --patient P [--encounter E]")
		return exitUsage
	}
	adm := &authz.Admin{Store: a, Resources: st, Clock: clock.System{}}
	v, err := adm.NewLaunch(ctx, *clientID, *user, *patient, *encounter)
	if err != nil {
		fmt.Fprintf(env.stderr, "fhirguard launch: %v\n", err)
		return exitError
	}
	fmt.Fprintln(env.stdout, v)
	return exitOK
}
