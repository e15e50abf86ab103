// Command synth writes a deterministic synthetic FHIR R4 data set as NDJSON,
// for benchmarks and tests: `go run ./cmd/synth -patients 10000 -per 100 > set.ndjson`.
package main

import (
	"bufio"
	"flag"
	"fmt"
	"os"

	"github.com/fhirguard/fhirguard/internal/synth"
)

func main() {
	patients := flag.Int("patients", 100, "number of patients")
	per := flag.Int("per", 100, "approximate resources per patient besides the Patient")
	seed := flag.Uint64("seed", 1, "random seed (same seed, same data)")
	flag.Parse()
	w := bufio.NewWriterSize(os.Stdout, 1<<20)
	n, err := synth.New(synth.Options{Patients: *patients, PerPatient: *per, Seed: *seed}).WriteNDJSON(w)
	if err == nil {
		err = w.Flush()
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "synth:", err)
		os.Exit(1)
	}
	fmt.Fprintf(os.Stderr, "synth: wrote %d resources\n", n)
}
