// Package flow holds the flow identity that the sensor and the collector
// share: the directional packet tuple, the canonical (direction-free) flow
// key, the Community ID v1 hash, tapir's own per-instance flow ID, and the
// flow record with its Elastic Common Schema (ECS) JSON rendering.
//
// Everything here is a value type; nothing holds goroutines or locks.
package flow
