package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"strings"

	"github.com/fhirguard/fhirguard/internal/clock"
	"github.com/fhirguard/fhirguard/internal/config"
	"github.com/fhirguard/fhirguard/internal/keys"
	"github.com/fhirguard/fhirguard/internal/server"
	"github.com/fhirguard/fhirguard/internal/store"
	"github.com/fhirguard/fhirguard/internal/store/sqlstore"
)

// adminStore parses an admin command's flags (the configuration flags plus
// the command's own, defined by define) and opens the auth store of the
// configured data. close must be called.
func adminStore(ctx context.Context, name string, args []string, env environment, define func(fs *flag.FlagSet)) (a *sqlstore.Auth, closeFn func(), code int) {
	a, _, _, closeFn, code = adminStores(ctx, name, args, env, define)
	return a, closeFn, code
}

// adminStores is adminStore also returning the FHIR store and the loaded
// configuration.
func adminStores(ctx context.Context, name string, args []string, env environment, define func(fs *flag.FlagSet)) (a *sqlstore.Auth, st store.Store, cfg config.Config, closeFn func(), code int) {
	fs := flag.NewFlagSet("fhirguard "+name, flag.ContinueOnError)
	fs.SetOutput(env.stderr)
	fl := config.BindFlags(fs)
	if define != nil {
		define(fs)
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil, nil, cfg, nil, exitOK
		}
		return nil, nil, cfg, nil, exitUsage
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(env.stderr, "fhirguard %s: unexpected arguments: %s\n", name, strings.Join(fs.Args(), " "))
		return nil, nil, cfg, nil, exitUsage
	}
	cfg, err := config.Load(fl, env.lookupEnv, env.readFile)
	if err != nil {
		fmt.Fprintf(env.stderr, "fhirguard %s: %v\n", name, err)
		return nil, nil, cfg, nil, exitError
	}
	logger := server.NewLogger(env.stderr, config.Log{Level: "warn", Format: cfg.Log.Format})
	st, err = server.OpenStore(ctx, cfg, clock.System{}, logger)
	if err != nil {
		fmt.Fprintf(env.stderr, "fhirguard %s: %v\n", name, err)
		return nil, nil, cfg, nil, exitError
	}
	a, err = server.AuthStore(st)
	if err != nil {
		_ = st.Close()
		fmt.Fprintf(env.stderr, "fhirguard %s: %v\n", name, err)
		return nil, nil, cfg, nil, exitError
	}
	return a, st, cfg, func() { _ = st.Close() }, exitOK
}

// runKeys is `fhirguard keys rotate --data DIR [--retain D]`: new signing
// keys; the old ones stay published until tokens they signed have expired.
func runKeys(ctx context.Context, args []string, env environment) int {
	if len(args) == 0 || args[0] != "rotate" {
		fmt.Fprintln(env.stderr, "usage: fhirguard keys rotate [--data DIR | --config FILE] [--retain DURATION]")
		return exitUsage
	}
	var retain *durationFlag
	a, st, cfg, closeFn, code := adminStores(ctx, "keys rotate", args[1:], env, func(fs *flag.FlagSet) {
		retain = &durationFlag{d: keys.DefaultRetain}
		fs.Var(retain, "retain", "how long the retired keys stay published (longer than any token they signed)")
	})
	if a == nil {
		return code
	}
	defer closeFn()
	kids, err := keys.Rotate(ctx, a, clock.System{}.Now(), retain.d)
	if err != nil {
		fmt.Fprintf(env.stderr, "fhirguard keys rotate: %v\n", err)
		return exitError
	}
	fmt.Fprintf(env.stdout, "new signing keys: %s (old keys stay published for %s)\n", strings.Join(kids, ", "), retain.d)
	if err := recordAdmin(ctx, st, cfg, "keys rotate", keyRotationEvent(kids)); err != nil {
		fmt.Fprintf(env.stderr, "fhirguard keys rotate: the keys were rotated, but %v\n", err)
		return exitError
	}
	return exitOK
}
