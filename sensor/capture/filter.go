package capture

import (
	"bytes"
	"errors"
	"fmt"
	"os/exec"
	"strconv"
	"strings"

	"golang.org/x/net/bpf"
)

// ErrBadFilter is wrapped by CompileFilter when the expression is rejected.
var ErrBadFilter = errors.New("bad capture filter")

// dltNames maps link types to the names tcpdump's -y takes.
var dltNames = map[uint16]string{
	LinkTypeEthernet: "EN10MB",
	LinkTypeRaw:      "RAW",
}

// CompileFilter compiles a tcpdump-syntax filter for frames of linkType to a
// classic BPF program that keeps snapLen bytes of matching packets, by
// running `tcpdump -ddd` (see the package documentation for why). An empty
// expression yields a program that accepts every packet. tcpdump is the
// path of the tcpdump binary, "" to look it up in PATH. It is safe for
// concurrent use.
func CompileFilter(tcpdump, expr string, linkType uint16, snapLen int) ([]bpf.RawInstruction, error) {
	if snapLen <= 0 {
		return nil, fmt.Errorf("snap length %d: must be positive", snapLen)
	}
	if strings.TrimSpace(expr) == "" {
		return []bpf.RawInstruction{{Op: 0x06 /* BPF_RET|BPF_K */, K: uint32(snapLen)}}, nil
	}
	dlt, ok := dltNames[linkType]
	if !ok {
		return nil, fmt.Errorf("no filter support for link type %d", linkType)
	}
	if tcpdump == "" {
		p, err := exec.LookPath("tcpdump")
		if err != nil {
			return nil, fmt.Errorf("capture filters need tcpdump: %w", err)
		}
		tcpdump = p
	}
	cmd := exec.Command(tcpdump, "-ddd", "-y", dlt, "-s", strconv.Itoa(snapLen), "--", expr)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		msg := strings.TrimSpace(stderr.String())
		return nil, fmt.Errorf("%w %q: %s (%v)", ErrBadFilter, expr, msg, err)
	}
	prog, err := parseDDD(out)
	if err != nil {
		return nil, fmt.Errorf("parse tcpdump -ddd output for %q: %w", expr, err)
	}
	return prog, nil
}

// parseDDD parses tcpdump -ddd output: an instruction count, then one
// instruction a line as four decimal numbers (code, jt, jf, k).
func parseDDD(out []byte) ([]bpf.RawInstruction, error) {
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	if len(lines) == 0 || lines[0] == "" {
		return nil, errors.New("empty output")
	}
	n, err := strconv.Atoi(strings.TrimSpace(lines[0]))
	if err != nil {
		return nil, fmt.Errorf("instruction count %q: %w", lines[0], err)
	}
	if n != len(lines)-1 || n == 0 || n > 4096 {
		return nil, fmt.Errorf("count %d with %d instruction lines", n, len(lines)-1)
	}
	prog := make([]bpf.RawInstruction, n)
	for i, line := range lines[1:] {
		f := strings.Fields(line)
		if len(f) != 4 {
			return nil, fmt.Errorf("instruction %d: %q", i, line)
		}
		var v [4]uint64
		for j, bits := range []int{16, 8, 8, 32} {
			if v[j], err = strconv.ParseUint(f[j], 10, bits); err != nil {
				return nil, fmt.Errorf("instruction %d: %w", i, err)
			}
		}
		prog[i] = bpf.RawInstruction{Op: uint16(v[0]), Jt: uint8(v[1]), Jf: uint8(v[2]), K: uint32(v[3])}
	}
	return prog, nil
}
