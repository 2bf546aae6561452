package main

import (
	"errors"
	"flag"
	"fmt"
	"io"

	"github.com/klauspost/compress/s2"

	"github.com/tapir-sensor/tapir/sensor/capture"
)

// floor does a part of the sensor's work on a capture file, to show what
// that part alone costs in whole-process CPU time (run it under
// `benchtool rusage`):
//
//	-mode read: read every packet with the sensor's own file reader
//	            (capture.OpenFile) and touch its first byte;
//	-mode s2:   the same, and S2-compress the packets' bytes in file
//	            order, -chunk bytes at a time, as one block each.
//
// Neither decodes a packet, tracks a flow or groups packets by flow; the
// sensor does all of that on top. It prints the packet count and the
// compressed size.
func floor(args []string) error {
	fl := flag.NewFlagSet("floor", flag.ExitOnError)
	mode := fl.String("mode", "read", "read | s2")
	chunk := fl.Int("chunk", 8<<10, "bytes compressed as one block (-mode s2)")
	if err := fl.Parse(args); err != nil {
		return err
	}
	if fl.NArg() != 1 {
		return errors.New("floor: want one capture file")
	}
	if *mode != "read" && *mode != "s2" {
		return fmt.Errorf("floor: unknown mode %q", *mode)
	}
	if *chunk < 1 {
		return fmt.Errorf("floor: chunk %d is not positive", *chunk)
	}
	src, err := capture.OpenFile(fl.Arg(0))
	if err != nil {
		return err
	}
	defer src.Close()
	var (
		packets, touched, compressed int
		buf                          = make([]byte, 0, 2**chunk)
		out                          = make([]byte, s2.MaxEncodedLen(2**chunk))
	)
	for {
		data, _, err := src.ReadPacket()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return fmt.Errorf("floor: %w", err)
		}
		packets++
		if *mode == "read" {
			if len(data) > 0 {
				touched += int(data[0])
			}
			continue
		}
		buf = append(buf, data...)
		if len(buf) >= *chunk {
			compressed += len(s2.Encode(out, buf))
			buf = buf[:0]
		}
	}
	if len(buf) > 0 {
		compressed += len(s2.Encode(out, buf))
	}
	fmt.Printf("packets %d compressed_bytes %d touched %d\n", packets, compressed, touched)
	return nil
}
