package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"runtime/debug"
	"strings"

	"github.com/fhirguard/fhirguard/internal/config"
	"github.com/fhirguard/fhirguard/internal/server"
)

// loadConfig parses the configuration flags of a command and loads the
// configuration (defaults < --config file < FHIRGUARD_* env < flags). On
// a load error it returns what could be loaded, exitError and false.
func loadConfig(name string, args []string, env environment) (config.Config, int, bool) {
	fs := flag.NewFlagSet("fhirguard "+name, flag.ContinueOnError)
	fs.SetOutput(env.stderr)
	fl := config.BindFlags(fs)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return config.Config{}, exitOK, false
		}
		return config.Config{}, exitUsage, false
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(env.stderr, "fhirguard %s: unexpected arguments: %s\n", name, strings.Join(fs.Args(), " "))
		return config.Config{}, exitUsage, false
	}
	cfg, err := config.Load(fl, env.lookupEnv, env.readFile)
	if err != nil {
		fmt.Fprintf(env.stderr, "fhirguard %s: %v\n", name, err)
		return cfg, exitError, false
	}
	return cfg, exitOK, true
}

func runServe(ctx context.Context, args []string, env environment) int {
	cfg, code, ok := loadConfig("serve", args, env)
	if !ok {
		return code
	}
	logger := server.NewLogger(env.stderr, cfg.Log)
	srv, err := server.New(ctx, cfg, logger)
	if err != nil {
		fmt.Fprintf(env.stderr, "fhirguard serve: %v\n", err)
		return exitError
	}
	if err := srv.Serve(ctx); err != nil {
		fmt.Fprintf(env.stderr, "fhirguard serve: %v\n", err)
		return exitError
	}
	return exitOK
}

func runConfig(ctx context.Context, args []string, env environment) int {
	if len(args) == 0 || args[0] != "validate" {
		fmt.Fprintln(env.stderr, "usage: fhirguard config validate --config FILE [flags]")
		return exitUsage
	}
	cfg, code, ok := loadConfig("config validate", args[1:], env)
	if code == exitUsage {
		return code
	}
	// Report the validation problems of what could be loaded too, so one
	// run lists every error.
	if err := cfg.Validate(); err != nil {
		for _, line := range strings.Split(err.Error(), "\n") {
			fmt.Fprintln(env.stderr, line)
		}
		return exitError
	}
	if !ok {
		return code
	}
	fmt.Fprintln(env.stdout, "configuration is valid")
	return exitOK
}

func runVersion(ctx context.Context, args []string, env environment) int {
	version, goVersion := "(devel)", ""
	if bi, ok := debug.ReadBuildInfo(); ok {
		if bi.Main.Version != "" {
			version = bi.Main.Version
		}
		goVersion = bi.GoVersion
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" {
				version += " " + s.Value
			}
		}
	}
	fmt.Fprintf(env.stdout, "fhirguard %s %s\n", version, goVersion)
	return exitOK
}
