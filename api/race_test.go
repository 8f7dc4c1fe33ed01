//go:build race

package api_test

// raceDetector: the tests run under the race detector, which slows the
// embedded store in the test's process several times over.
const raceDetector = true
