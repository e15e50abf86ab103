// Command gen generates internal/fhir/searchparam/tables_gen.go from the
// official FHIR R4 definitions: the SearchParameter Bundle, the US Core
// search parameters, the Patient CompartmentDefinition and the JSON schema
// (for the list of resource types).
//
// Usage (from the repository root):
//
//	go run ./internal/fhir/searchparam/gen -src ../shared/fhir-r4 -out internal/fhir/searchparam/tables_gen.go
package main

import (
	"flag"
	"fmt"
	"log/slog"
	"os"
)

func main() {
	src := flag.String("src", "../shared/fhir-r4", "directory holding search-parameters.json, search-parameters-uscore.json, compartmentdefinition-patient.json, fhir.schema.json")
	out := flag.String("out", "internal/fhir/searchparam/tables_gen.go", "output Go file")
	flag.Parse()
	code, err := Generate(*src)
	if err != nil {
		slog.Error("generate search parameter tables", "err", err)
		os.Exit(1)
	}
	if err := os.WriteFile(*out, code, 0o644); err != nil {
		slog.Error("write tables", "err", err)
		os.Exit(1)
	}
	fmt.Fprintf(os.Stderr, "wrote %s (%d bytes)\n", *out, len(code))
}
