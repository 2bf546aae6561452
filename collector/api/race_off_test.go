//go:build !race

package api

// raceDetector: built with -race (see race_on_test.go).
const raceDetector = false
