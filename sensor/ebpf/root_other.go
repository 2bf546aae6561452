//go:build !linux

package ebpf

import (
	"errors"
	"log/slog"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tapir-sensor/tapir/sensor/output"
)

// ErrUnsupported is returned by Start on platforms without eBPF.
var ErrUnsupported = errors.New("eBPF data path needs Linux")

// Params are the settings the data path shares with the flow table.
type Params struct {
	BudgetBytes   int64
	SnapLen       int
	CommunitySeed uint16
}

// Dependencies of a Datapath.
type Dependencies struct {
	Logger     *slog.Logger
	Registerer prometheus.Registerer
}

// Datapath is a stub that never starts.
type Datapath struct{ pins *Pins }

// New validates the configuration.
func New(cfg Config, params Params, _ Dependencies) (*Datapath, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	p, err := NewPins(cfg.Pins, params.CommunitySeed)
	return &Datapath{pins: p}, err
}

// Start always fails: the sensor falls back to the userspace budget.
func (d *Datapath) Start([]string) error { return ErrUnsupported }

// Pins returns the configured pins.
func (d *Datapath) Pins() *Pins { return d.pins }

// SetPins replaces the pins.
func (d *Datapath) SetPins(c PinConfig) error {
	p, err := NewPins(c, 0)
	if err == nil {
		d.pins = p
	}
	return err
}

// SocketFilterFD returns -1.
func (d *Datapath) SocketFilterFD() int { return -1 }

// WrapSink returns a MergeSink over no kernel (never called).
func (d *Datapath) WrapSink(next output.Sink) output.Sink { return next }

// Stop does nothing.
func (d *Datapath) Stop() error { return nil }
