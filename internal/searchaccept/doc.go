// Package searchaccept holds the acceptance tests and benchmarks of FHIR
// search, run through HTTP against the real server (servertest): a table
// of more than 150 queries over the checked-in data set
// testdata/clinic.ndjson with their expected results, SQL-injection
// attempts in every parameter type, paging through 10,000 matches while
// other clients insert, and search under scope narrowing. The benchmarks
// (bench_test.go) run on an imported 1,000,000-resource synthetic store
// when FHIRGUARD_SEARCH_BENCH_DATA points at one.
package searchaccept
