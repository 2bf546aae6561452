// Package console holds the browser tests of the collector's web console:
// Chromium (headless, driven by chromedp) against the real tapir-collector
// fed by the real tapir-sensor with shared captures, every answer checked
// against tshark on the original capture. The tests skip when chromium is
// absent (make deps installs it; under TAPIR_REQUIRE_ALL=1 they fail).
//
// `go test ./systest/console -run TestScreenshots -args -screenshots=DIR`
// (make screenshots) writes a PNG of each page into DIR;
// BenchmarkConsolePageTiming (bench/console.sh) measures navigation to
// first paint and to results shown.
package console
