//go:build race

package engine

// raceEnabled: the race detector slows fork and exec tenfold, so timing checks only log.
const raceEnabled = true
