// Command benchtool holds the small helpers of tapir's benchmark harness
// (bench/run.sh, bench/mkbig.sh) that shell tools do not cover portably:
//
//	benchtool rusage -o FILE -- CMD [ARGS...]
//	    runs CMD, waits for it and writes one line to FILE:
//	    "user_s sys_s maxrss_kib wall_s exit_code". CMD's output passes
//	    through. The exit code is benchtool's own.
//	benchtool retime [-gap DURATION] < IN.pcap > OUT.pcap
//	    rewrites the timestamps of a classic pcap stream so they never go
//	    backwards and no gap exceeds DURATION (default 1s); gaps shorter
//	    than that keep their length. mergecap -a of copies of captures
//	    from different years becomes one continuous, ordered capture.
//	benchtool stepback -slices N [-step D] IN.pcap OUT.pcap
//	    cuts IN into N slices and shifts each back in time (to the first
//	    packet's time, or by i*D): a capture whose clock steps back N-1
//	    times (the clock-step benchmark and test).
//	benchtool sumsize DIR
//	    prints the total size in bytes of the regular files under DIR.
//	benchtool retrieve -api URL -token T -ids FILE [-metrics URL] [-o FILE]
//	    pcap retrieval latency by flow over one keep-alive connection,
//	    after a warm-up pass; prints p50/p99 in ms (bench/retrieval.sh).
//	benchtool floor [-mode read|s2] [-chunk N] FILE
//	    a part of the sensor's work alone (read the capture with the
//	    sensor's reader; with -mode s2 also S2-compress the packet bytes
//	    in N-byte chunks), to measure under rusage what that part costs.
//	benchtool settle -metrics URL [-quiet D]
//	    waits until the collector's Pebble store has no flush or
//	    compaction running and none has finished for D.
package main

import (
	"bufio"
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"
)

func main() {
	if len(os.Args) < 2 {
		usage()
	}
	var err error
	switch os.Args[1] {
	case "rusage":
		err = rusage(os.Args[2:])
	case "retime":
		err = retime(os.Args[2:])
	case "stepback":
		err = stepback(os.Args[2:])
	case "sumsize":
		err = sumsize(os.Args[2:])
	case "retrieve":
		err = retrieve(os.Args[2:])
	case "settle":
		err = settle(os.Args[2:])
	case "floor":
		err = floor(os.Args[2:])
	case "hbasedrop":
		err = hbasedrop(os.Args[2:])
	default:
		usage()
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "benchtool:", err)
		os.Exit(1)
	}
}

func usage() {
	fmt.Fprintln(os.Stderr, "usage: benchtool rusage -o FILE -- CMD [ARGS...] | retime [-gap D] <in >out | stepback -slices N IN OUT | sumsize DIR | retrieve -api URL -token T -ids FILE | settle -metrics URL | floor [-mode read|s2] FILE | hbasedrop -zk Q -table T")
	os.Exit(2)
}

// rusage runs a command and records its CPU time and peak RSS.
func rusage(args []string) error {
	fl := flag.NewFlagSet("rusage", flag.ExitOnError)
	out := fl.String("o", "", "write the result line to FILE (default stderr)")
	if err := fl.Parse(args); err != nil {
		return err
	}
	cmdArgs := fl.Args()
	if len(cmdArgs) == 0 {
		return errors.New("rusage: no command")
	}
	cmd := exec.Command(cmdArgs[0], cmdArgs[1:]...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	start := time.Now()
	runErr := cmd.Run()
	wall := time.Since(start)
	if cmd.ProcessState == nil {
		return fmt.Errorf("run %s: %w", cmdArgs[0], runErr)
	}
	ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage)
	if !ok {
		return errors.New("rusage: not available on this platform")
	}
	tv := func(t syscall.Timeval) float64 { return float64(t.Sec) + float64(t.Usec)/1e6 }
	line := fmt.Sprintf("%.3f %.3f %d %.3f %d\n", tv(ru.Utime), tv(ru.Stime), ru.Maxrss,
		wall.Seconds(), cmd.ProcessState.ExitCode())
	if *out == "" {
		_, err := os.Stderr.WriteString(line)
		return err
	}
	return os.WriteFile(*out, []byte(line), 0o644)
}

// pcapTimeFormat reads a classic pcap header's magic: the byte order
// and the nanoseconds per sub-second unit (1000 for microseconds).
func pcapTimeFormat(hdr []byte) (binary.ByteOrder, int64, error) {
	switch m := binary.LittleEndian.Uint32(hdr); m {
	case 0xa1b2c3d4:
		return binary.LittleEndian, 1000, nil
	case 0xa1b23c4d:
		return binary.LittleEndian, 1, nil
	case 0xd4c3b2a1:
		return binary.BigEndian, 1000, nil
	case 0x4d3cb2a1:
		return binary.BigEndian, 1, nil
	default:
		return nil, 0, fmt.Errorf("not a classic pcap stream (magic %#x)", m)
	}
}

// retime makes a classic pcap's timestamps monotonic with bounded gaps.
func retime(args []string) error {
	fl := flag.NewFlagSet("retime", flag.ExitOnError)
	gap := fl.Duration("gap", time.Second, "largest gap kept between packets")
	if err := fl.Parse(args); err != nil {
		return err
	}
	r := bufio.NewReaderSize(os.Stdin, 1<<20)
	w := bufio.NewWriterSize(os.Stdout, 1<<20)
	hdr := make([]byte, 24)
	if _, err := io.ReadFull(r, hdr); err != nil {
		return fmt.Errorf("read pcap header: %w", err)
	}
	bo, unit, err := pcapTimeFormat(hdr)
	if err != nil {
		return err
	}
	if _, err := w.Write(hdr); err != nil {
		return err
	}
	rec := make([]byte, 16)
	buf := make([]byte, 0, 1<<16)
	var prevIn, prevOut int64
	first := true
	maxGap := gap.Nanoseconds()
	for {
		if _, err := io.ReadFull(r, rec); err != nil {
			if errors.Is(err, io.EOF) {
				break
			}
			return fmt.Errorf("read record header: %w", err)
		}
		in := int64(bo.Uint32(rec[0:]))*1e9 + int64(bo.Uint32(rec[4:]))*unit
		out := in
		if !first {
			d := min(max(in-prevIn, 0), maxGap)
			out = prevOut + d
		}
		first = false
		prevIn, prevOut = in, out
		bo.PutUint32(rec[0:], uint32(out/1e9))
		bo.PutUint32(rec[4:], uint32(out%1e9/unit))
		n := int(bo.Uint32(rec[8:]))
		if n > 1<<26 {
			return fmt.Errorf("record of %d bytes", n)
		}
		if cap(buf) < n {
			buf = make([]byte, n)
		}
		buf = buf[:n]
		if _, err := io.ReadFull(r, buf); err != nil {
			return fmt.Errorf("read record: %w", err)
		}
		if _, err := w.Write(rec); err != nil {
			return err
		}
		if _, err := w.Write(buf); err != nil {
			return err
		}
	}
	return w.Flush()
}

// sumsize prints the total size of the regular files under a directory.
func sumsize(args []string) error {
	if len(args) != 1 {
		return errors.New("sumsize: want one directory")
	}
	var total int64
	err := filepath.WalkDir(args[0], func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.Type().IsRegular() {
			fi, err := d.Info()
			if err != nil {
				return err
			}
			total += fi.Size()
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("sumsize: %w", err)
	}
	fmt.Println(total)
	return nil
}
