// Command gen generates the tables of internal/fhir/searchparam (tables_gen.go and
// params*_gen.go) from the
// official FHIR R4 definitions: the SearchParameter Bundle, the US Core
// search parameters, the Patient CompartmentDefinition and the JSON schema
// (for the list of resource types).
//
// Usage (from the repository root):
//
//	go run ./internal/fhir/searchparam/gen -src ../shared/fhir-r4 -dir internal/fhir/searchparam
package main

import (
	"flag"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
)

func main() {
	src := flag.String("src", "../shared/fhir-r4", "directory holding search-parameters.json, search-parameters-uscore.json, compartmentdefinition-patient.json, fhir.schema.json")
	dir := flag.String("dir", "internal/fhir/searchparam", "directory of the generated Go files")
	flag.Parse()
	code, err := Generate(*src)
	if err != nil {
		slog.Error("generate search parameter tables", "err", err)
		os.Exit(1)
	}
	old, _ := filepath.Glob(filepath.Join(*dir, "params*_gen.go"))
	for _, f := range old {
		if err := os.Remove(f); err != nil {
			slog.Error("remove old tables", "err", err)
			os.Exit(1)
		}
	}
	for name, src := range code {
		path := filepath.Join(*dir, name)
		if err := os.WriteFile(path, src, 0o644); err != nil {
			slog.Error("write tables", "err", err)
			os.Exit(1)
		}
		fmt.Fprintf(os.Stderr, "wrote %s (%d bytes)\n", path, len(src))
	}
}
