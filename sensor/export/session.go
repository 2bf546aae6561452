package export

import (
	"context"
	"errors"
	"fmt"
	"time"

	"google.golang.org/grpc"

	"github.com/tapir-sensor/tapir/proto/tapirv1"
)

// session runs one stream to addr until it fails or Stop: the hello, then
// a receiver (acks, flow control, pushed config) beside the send loop.
func (e *Exporter) session(addr string) error {
	cc, err := grpc.NewClient(addr, e.dialOpts...)
	if err != nil {
		return fmt.Errorf("dial %s: %w", addr, err)
	}
	defer cc.Close()
	ctx, cancel := context.WithCancel(e.ctx)
	defer cancel()
	st, err := cc.NewStream(ctx, streamDesc, tapirv1.Ingest_Stream_FullMethodName)
	if err != nil {
		return fmt.Errorf("open stream: %w", err)
	}
	ha, err := e.hello(st, cancel)
	if err != nil {
		return err
	}
	e.onHelloAck(addr, ha)
	recvErr := make(chan error, 1)
	go e.receive(st, recvErr, cancel)
	return e.sendLoop(ctx, st, recvErr)
}

// hello sends the sensor's hello and returns the collector's answer; no
// answer within HelloTimeout cancels the stream.
func (e *Exporter) hello(st grpc.ClientStream, cancel context.CancelFunc) (*tapirv1.HelloAck, error) {
	hello := &tapirv1.Hello{SensorId: e.cfg.SensorID, Hostname: e.cfg.Hostname, Version: e.cfg.Version,
		Capabilities: e.cfg.Capabilities, Epoch: e.epoch}
	for _, i := range e.cfg.Interfaces {
		hello.Interfaces = append(hello.Interfaces, &tapirv1.Interface{Name: i.Name, LinkType: i.LinkType, Snaplen: i.Snaplen})
	}
	helloTimer := time.AfterFunc(e.cfg.HelloTimeout, cancel)
	if err := st.SendMsg(&tapirv1.SensorMessage{Msg: &tapirv1.SensorMessage_Hello{Hello: hello}}); err != nil {
		return nil, e.streamErr(st, err)
	}
	var first tapirv1.CollectorMessage
	if err := st.RecvMsg(&first); err != nil {
		return nil, e.streamErr(st, err)
	}
	helloTimer.Stop()
	ha := first.GetHelloAck()
	if ha == nil {
		return nil, errors.New("collector answered the hello with something else")
	}
	return ha, nil
}

// onHelloAck takes the collector's durable seq as an ack (same epoch only)
// and resends the queue from its start.
func (e *Exporter) onHelloAck(addr string, ha *tapirv1.HelloAck) {
	e.log.Info("connected to collector", "collector", addr, "epoch", e.epoch, "durable_seq", ha.DurableSeq, "collector_id", ha.CollectorId)
	if ha.Epoch == e.epoch {
		e.ack(ha.DurableSeq)
	} else {
		// A collector that predates epochs: its durable seq may be another
		// spool's. Only per-batch acks count.
		e.log.Warn("collector ignores sequence epochs; its durable seq is not taken as an ack",
			"collector", addr, "epoch", e.epoch, "collector_epoch", ha.Epoch)
	}
	e.qmu.Lock()
	e.connected = true
	e.sent = 0
	e.qmu.Unlock()
}

// receive handles the collector's messages until the stream ends, then
// reports why on recvErr and cancels the stream.
func (e *Exporter) receive(st grpc.ClientStream, recvErr chan<- error, cancel context.CancelFunc) {
	for {
		var m tapirv1.CollectorMessage
		if err := st.RecvMsg(&m); err != nil {
			recvErr <- err
			cancel()
			return
		}
		e.handle(&m)
	}
}

// handle applies one collector message: an ack, flow control or a pushed
// configuration.
func (e *Exporter) handle(m *tapirv1.CollectorMessage) {
	switch x := m.Msg.(type) {
	case *tapirv1.CollectorMessage_Ack:
		e.ack(x.Ack.Seq)
	case *tapirv1.CollectorMessage_FlowControl:
		e.qmu.Lock()
		e.paused = x.FlowControl.Pause
		if n := int(x.FlowControl.MaxInflightBatches); n > 0 {
			e.inflight = min(n, e.cfg.MaxInflight)
		}
		e.qmu.Unlock()
		e.signal()
	case *tapirv1.CollectorMessage_Config:
		if e.deps.OnConfig != nil {
			e.deps.OnConfig(x.Config)
		}
	}
}

// sendLoop sends queued batches, within the in-flight window and unless
// paused, until the stream fails or ctx ends.
func (e *Exporter) sendLoop(ctx context.Context, st grpc.ClientStream, recvErr <-chan error) error {
	for {
		if next := e.nextToSend(); next != nil {
			if err := st.SendMsg(next.frame); err != nil {
				// The receiver usually holds the reason (a status with
				// trailers); wait a moment for it.
				select {
				case err := <-recvErr:
					return e.streamErr(st, err)
				case <-time.After(time.Second):
				}
				return e.streamErr(st, err)
			}
			e.nSent.Add(1)
			continue
		}
		select {
		case <-e.wake:
		case err := <-recvErr:
			return e.streamErr(st, err)
		case <-ctx.Done():
			select {
			case err := <-recvErr:
				return e.streamErr(st, err)
			default:
			}
			return ctx.Err()
		}
	}
}

// nextToSend returns the next queued batch the window allows, or nil.
func (e *Exporter) nextToSend() *item {
	e.qmu.Lock()
	defer e.qmu.Unlock()
	e.refillLocked()
	if e.paused || e.sent >= e.inflight || e.sent >= len(e.items) {
		return nil
	}
	next := e.items[e.sent]
	e.sent++
	return next
}
