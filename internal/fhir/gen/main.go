// Command gen generates fhirguard's FHIR R4 structure tables from the
// official R4 JSON schema (fhir.schema.json).
//
// Usage (from the repository root):
//
//	go run ./internal/fhir/gen -src /work/shared/fhir-r4 -out internal/fhir
//
// It writes internal/fhir/resourcetypes_gen.go (the concrete resource types)
// and internal/fhir/spec/model_gen.go (the structure model the validator
// walks). The project builds and tests from the committed output alone.
//
// The schema we were given is the R4 4.0.1 schema as redistributed by a
// server vendor (Medplum), which appends its own resource types and data
// types and a few elements to core definitions. They are not FHIR R4, so the
// generator drops them (see vendor.go for the rules and the exact list).
package main

import (
	"flag"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
)

func main() {
	src := flag.String("src", "", "directory holding fhir.schema.json")
	out := flag.String("out", "internal/fhir", "the internal/fhir package directory to write into")
	flag.Parse()
	if err := run(*src, *out); err != nil {
		slog.Error("gen failed", "err", err)
		os.Exit(1)
	}
}

func run(src, out string) error {
	if src == "" {
		return fmt.Errorf("-src is required")
	}
	files, err := Generate(src)
	if err != nil {
		return err
	}
	for rel, b := range files {
		p := filepath.Join(out, rel)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return fmt.Errorf("create output directory: %w", err)
		}
		if err := os.WriteFile(p, b, 0o644); err != nil {
			return fmt.Errorf("write %s: %w", p, err)
		}
	}
	return nil
}
