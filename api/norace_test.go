//go:build !race

package api_test

// raceDetector: see race_test.go.
const raceDetector = false
