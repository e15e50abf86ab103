// Package e2e holds fhirguard's end-to-end acceptance tests: each starts the
// real server in-process (servertest.Start) on a loopback port and speaks
// HTTP to it like any client. The package has no non-test code.
package e2e
