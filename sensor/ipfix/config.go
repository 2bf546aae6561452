package ipfix

import (
	"errors"
	"fmt"
	"net"
	"time"
)

// DocumentationPEN is the private enterprise number tapir's own
// information elements are exported under by default: 32473, which IANA
// reserves for documentation and examples (RFC 5612). tapir has no PEN
// of its own; a deployment that registers one sets enterprise_number.
const DocumentationPEN = 32473

// Config of the IPFIX exporter (the output.ipfix section of the
// sensor configuration).
type Config struct {
	// Collector is the IPFIX collector's UDP address (host:port).
	Collector string `yaml:"collector"`
	// TemplateRefresh is how often templates are resent (RFC 7011
	// section 8.4: over UDP templates are resent periodically). Default 30s.
	TemplateRefresh time.Duration `yaml:"template_refresh"`
	// TemplateRefreshMessages resends the templates every so many
	// messages as well; 0 resends on time only. Default 50.
	TemplateRefreshMessages int `yaml:"template_refresh_messages"`
	// ObservationDomain is the observation domain id in every message
	// header. Default 1.
	ObservationDomain uint32 `yaml:"observation_domain"`
	// MTU bounds the size of one IPFIX message (the UDP payload).
	// Default 1400, at least 512.
	MTU int `yaml:"mtu"`
	// ExportUpdates exports the periodic updates of long flows too (as
	// delta counts since the previous report of the flow); by default
	// only final records go out.
	ExportUpdates bool `yaml:"export_updates"`
	// EnterpriseNumber is the PEN of the tapir elements (communityId,
	// tapirFlowId). Default DocumentationPEN (a placeholder).
	EnterpriseNumber uint32 `yaml:"enterprise_number"`
	// FlushInterval bounds how long a record waits in a part-filled
	// message. Default 1s.
	FlushInterval time.Duration `yaml:"flush_interval"`
	// QueueMessages bounds the messages waiting for the socket; when the
	// queue stays full for QueueWait the message is dropped and counted.
	// Defaults 1024 and 10ms.
	QueueMessages int           `yaml:"queue_messages"`
	QueueWait     time.Duration `yaml:"queue_wait"`
}

// DefaultConfig returns the defaults; Collector must still be set.
func DefaultConfig() Config {
	return Config{
		TemplateRefresh:         30 * time.Second,
		TemplateRefreshMessages: 50,
		ObservationDomain:       1,
		MTU:                     1400,
		EnterpriseNumber:        DocumentationPEN,
		FlushInterval:           time.Second,
		QueueMessages:           1024,
		QueueWait:               10 * time.Millisecond,
	}
}

// ErrInvalid wraps every configuration error.
var ErrInvalid = errors.New("invalid ipfix config")

// minMTU leaves room for a header, both templates and a record with the
// longest Community ID.
const minMTU = 512

// Validate checks the configuration; an empty Collector is valid only
// when the exporter is not used (Validate is called when it is).
func (c *Config) Validate() error {
	if c.Collector != "" {
		if _, _, err := net.SplitHostPort(c.Collector); err != nil {
			return fmt.Errorf("%w: collector %q: %v", ErrInvalid, c.Collector, err)
		}
	}
	switch {
	case c.TemplateRefresh <= 0:
		return fmt.Errorf("%w: template_refresh %v must be positive", ErrInvalid, c.TemplateRefresh)
	case c.TemplateRefreshMessages < 0:
		return fmt.Errorf("%w: template_refresh_messages %d is negative", ErrInvalid, c.TemplateRefreshMessages)
	case c.MTU < minMTU || c.MTU > 65535-28:
		return fmt.Errorf("%w: mtu %d not in [%d, %d]", ErrInvalid, c.MTU, minMTU, 65535-28)
	case c.EnterpriseNumber == 0:
		return fmt.Errorf("%w: enterprise_number must not be 0", ErrInvalid)
	case c.FlushInterval <= 0:
		return fmt.Errorf("%w: flush_interval %v must be positive", ErrInvalid, c.FlushInterval)
	case c.QueueMessages < 1:
		return fmt.Errorf("%w: queue_messages %d < 1", ErrInvalid, c.QueueMessages)
	case c.QueueWait < 0:
		return fmt.Errorf("%w: queue_wait %v is negative", ErrInvalid, c.QueueWait)
	}
	return nil
}
