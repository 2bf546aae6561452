// Package linktest holds test helpers for the sensor-to-collector link
// that depend only on the shared core (proto/, flow/, block/) and
// internal/: an in-process fake collector serving tapir.v1.Ingest over
// mTLS into an in-memory store, a throwaway PKI, and flow records and
// packet blocks derived from a real capture. The sensor's tests use it in
// place of the collector's real ingest server, so that nothing under
// sensor/ imports collector/ or storage/. It is for tests only.
package linktest
