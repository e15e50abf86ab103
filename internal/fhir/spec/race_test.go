//go:build race

package spec

// raceEnabled: the race detector slows Load about tenfold.
const raceEnabled = true
