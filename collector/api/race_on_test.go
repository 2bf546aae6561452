//go:build race

package api

// raceDetector: built with -race, where sync.Pool drops a quarter of the
// items put back on purpose, so allocation bounds do not hold.
const raceDetector = true
