package api

import (
	"net/http"
	"strconv"
	"time"

	"github.com/tapir-sensor/tapir/collector/registry"
)

// SensorHistory is the fleet's recent history per sensor
// (collector/registry.Registry has it); the API uses it when
// Dependencies.Sensors provides it.
type SensorHistory interface {
	// History returns a sensor's samples at or after since, oldest
	// first, and whether the sensor is known.
	History(id string, since time.Time) ([]registry.Sample, bool)
}

// maxHistoryMinutes bounds the history one request asks for (the
// registry keeps 24 h by default).
const maxHistoryMinutes = 24 * 60

// routeFleet registers
//
//	GET /api/v1/sensors/{id}/history[?minutes=N]   role flows:read
//
// answering the sensor's samples of the last N minutes (default 60, at
// most 1440), oldest first: [{"time", "packets_per_s", "bytes_per_s",
// "drops": {"ring", "budget", "blocks", "spool"}, "spool_bytes",
// "connected", "last_seen"}, ...]; 404 not_found for a sensor this
// collector does not know.
func (s *Server) routeFleet() {
	s.mux.Handle("GET /api/v1/sensors/{id}/history", s.route("sensor_history", RoleFlowsRead, false, s.handleSensorHistory))
}

func (s *Server) handleSensorHistory(c *call) {
	minutes := 60
	if m := c.r.URL.Query().Get("minutes"); m != "" {
		n, err := strconv.Atoi(m)
		if err != nil || n <= 0 || n > maxHistoryMinutes {
			s.fail(c, http.StatusBadRequest, "bad_request", "minutes must be within 1..1440", nil)
			return
		}
		minutes = n
	}
	h, ok := s.deps.Sensors.(SensorHistory)
	if !ok {
		s.fail(c, http.StatusNotFound, "not_found", "sensor unknown", nil)
		return
	}
	samples, known := h.History(c.r.PathValue("id"), s.deps.Now().Add(-time.Duration(minutes)*time.Minute))
	if !known {
		s.fail(c, http.StatusNotFound, "not_found", "sensor unknown", nil)
		return
	}
	if samples == nil {
		samples = []registry.Sample{}
	}
	s.answerJSON(c, samples)
}
