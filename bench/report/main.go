// Command report writes bench/REPORT.md and its PNG charts
// (bench/report-*.png) from the benchmark harness's results:
// bench/results/latest.md (bench/run.sh), bench/results/go-bench.txt (Go
// benchmarks), bench/results/retrieval.md (bench/retrieval.sh) and
// bench/results/live.md (bench/live.sh). Run it in its own directory
// (make bench-report does):
//
//	cd bench/report && go run . [-dir ..]
//
// It is a module of its own (bench/report/go.mod), so that gonum/plot
// stays out of the main module's dependencies.
//
// A missing results file is reported in REPORT.md, not fatal. The charts
// are drawn with gonum.org/v1/plot.
package main

import (
	"bufio"
	"flag"
	"fmt"
	"image/color"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"time"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"
)

func main() {
	dir := flag.String("dir", "..", "bench directory (results/ under it; REPORT.md and report-*.png written there)")
	flag.Parse()
	if err := run(*dir); err != nil {
		fmt.Fprintln(os.Stderr, "report:", err)
		os.Exit(1)
	}
}

// table is one markdown table with the heading it sits under.
type table struct {
	heading string
	header  []string
	rows    [][]string
}

// doc is one results markdown file: its text and its tables.
type doc struct {
	text   string
	tables []table
}

func readDoc(path string) (*doc, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	d := &doc{text: string(b)}
	heading := ""
	var cur *table
	for _, line := range strings.Split(d.text, "\n") {
		line = strings.TrimSpace(line)
		if strings.HasPrefix(line, "#") {
			heading = strings.TrimSpace(strings.TrimLeft(line, "#"))
		}
		if !strings.HasPrefix(line, "|") {
			cur = nil
			continue
		}
		cells := strings.Split(strings.Trim(line, "|"), "|")
		for i := range cells {
			cells[i] = strings.TrimSpace(cells[i])
		}
		switch {
		case cur == nil:
			d.tables = append(d.tables, table{heading: heading, header: cells})
			cur = &d.tables[len(d.tables)-1]
		case strings.HasPrefix(cells[0], "---"):
		default:
			cur.rows = append(cur.rows, cells)
		}
	}
	return d, nil
}

// find returns the first table whose heading starts with prefix.
func (d *doc) find(prefix string) *table {
	if d == nil {
		return nil
	}
	for i := range d.tables {
		if strings.HasPrefix(d.tables[i].heading, prefix) {
			return &d.tables[i]
		}
	}
	return nil
}

// col returns the index of the header cell that starts with name, or -1.
func (t *table) col(name string) int {
	for i, h := range t.header {
		if strings.HasPrefix(h, name) {
			return i
		}
	}
	return -1
}

func num(s string) (float64, bool) {
	v, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
	return v, err == nil && !math.IsNaN(v)
}

// label shortens a command cell for a chart axis.
func label(cmd string) string {
	cmd = strings.Trim(cmd, "`")
	if i := strings.Index(cmd, " ("); i > 0 {
		cmd = cmd[:i]
	}
	for _, r := range []string{" -r BIG", " -r SLICE", " -w /dev/null", " -n 127.0.0.1:9 -v 9 -d -6 -m 1000000", " -q -z conv,tcp",
		" FILE", " DIR", " -i IF", " --in IF", " --out", " --flows-out /dev/null", " --silent"} {
		cmd = strings.ReplaceAll(cmd, r, "")
	}
	return strings.TrimSpace(cmd)
}

// hbar draws a horizontal bar chart of named values.
func hbar(path, title, xlabel string, names []string, vals []float64) error {
	if len(vals) == 0 {
		return fmt.Errorf("chart %s: no values", path)
	}
	p := plot.New()
	p.Title.Text = title
	p.X.Label.Text = xlabel
	p.X.Min = 0
	b, err := plotter.NewBarChart(plotter.Values(vals), vg.Points(16))
	if err != nil {
		return fmt.Errorf("chart %s: %w", path, err)
	}
	b.Horizontal = true
	b.Color = color.RGBA{R: 0x33, G: 0x66, B: 0x99, A: 0xff}
	p.Add(b, plotter.NewGrid())
	p.NominalY(names...)
	h := vg.Length(len(vals))*0.45*vg.Inch + 1.2*vg.Inch
	if err := p.Save(9*vg.Inch, h, path); err != nil {
		return fmt.Errorf("save %s: %w", path, err)
	}
	return nil
}

// tableChart charts column valCol of t against its first column.
func tableChart(path, title, xlabel string, t *table, valCol string) error {
	if t == nil {
		return fmt.Errorf("chart %s: table missing", path)
	}
	c := t.col(valCol)
	if c < 0 {
		return fmt.Errorf("chart %s: no column %q", path, valCol)
	}
	var names []string
	var vals []float64
	for _, r := range t.rows {
		if c >= len(r) {
			continue
		}
		if v, ok := num(r[c]); ok {
			names = append(names, label(r[0]))
			vals = append(vals, v)
		}
	}
	return hbar(path, title, xlabel, names, vals)
}

var benchLine = regexp.MustCompile(`^(Benchmark\S+?)(-\d+)?\s+\d+\s`)

// goBench returns, per benchmark name, the median of the values reported
// with unit.
func goBench(path, unit string) (map[string]float64, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	defer f.Close()
	all := map[string][]float64{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		m := benchLine.FindStringSubmatch(sc.Text())
		if m == nil {
			continue
		}
		fs := strings.Fields(sc.Text())
		for i := 3; i < len(fs); i++ {
			if fs[i] == unit {
				if v, ok := num(fs[i-1]); ok {
					all[m[1]] = append(all[m[1]], v)
				}
			}
		}
	}
	med := map[string]float64{}
	for k, v := range all {
		sort.Float64s(v)
		med[k] = v[(len(v)-1)/2]
	}
	return med, sc.Err()
}

// decoders charts the per-packet cost of the decoders and engine paths.
func decoders(path, gob string) error {
	ns, err := goBench(gob, "ns/packet")
	if err != nil {
		return err
	}
	cpu, err := goBench(gob, "cpu-ns/packet")
	if err != nil {
		return err
	}
	var names []string
	var vals []float64
	add := func(name, lbl string, m map[string]float64) {
		if v, ok := m[name]; ok {
			names = append(names, lbl)
			vals = append(vals, v)
		}
	}
	add("BenchmarkDecode/tapir", "decode.Decode (tapir) ns", ns)
	add("BenchmarkDecode/gopacket-dlp", "gopacket DecodingLayerParser ns", ns)
	add("BenchmarkDecode/gopacket-lazy-nocopy", "gopacket NewPacket Lazy|NoCopy ns", ns)
	add("BenchmarkDecode/gopacket-default", "gopacket NewPacket Default ns", ns)
	add("BenchmarkSensorPath/decode+flow", "engine decode+flow cpu-ns", cpu)
	add("BenchmarkSensorPath/gopacket-dlp", "engine path with DLP cpu-ns", cpu)
	add("BenchmarkSensorPath/worker", "engine worker (decode, flow, delta + S2 blocks) cpu-ns", cpu)
	add("BenchmarkSensorPath/worker-zstd", "engine worker with zstd blocks cpu-ns", cpu)
	add("BenchmarkSensorPath/gopacket-default", "engine path with gopacket Default cpu-ns", cpu)
	return hbar(path, "Per-packet cost (Go benchmarks, medians; lower is better)", "ns per packet", names, vals)
}

// drops charts drop % against the target rate, one line per capturer.
func drops(path string, t *table) error {
	if t == nil {
		return fmt.Errorf("chart %s: live table missing", path)
	}
	cr, cp := t.col("achieved pps"), t.col("drop %")
	if cr < 0 || cp < 0 {
		return fmt.Errorf("chart %s: live table columns missing", path)
	}
	series := map[string]plotter.XYs{}
	var order []string
	for _, r := range t.rows {
		rate, ok1 := num(r[cr])
		pct, ok2 := num(r[cp])
		if !ok1 || !ok2 {
			continue
		}
		n := label(r[0])
		if _, seen := series[n]; !seen {
			order = append(order, n)
		}
		series[n] = append(series[n], plotter.XY{X: rate / 1000, Y: pct})
	}
	if len(order) == 0 {
		return fmt.Errorf("chart %s: no rows", path)
	}
	p := plot.New()
	p.Title.Text = "Live capture: packets dropped vs replay rate (veth, tcpreplay)"
	p.X.Label.Text = "rate tcpreplay achieved (k packets/s)"
	p.Y.Label.Text = "dropped (% of sent)"
	p.Y.Min = 0
	p.Legend.Top = true
	p.Legend.Left = true
	p.Add(plotter.NewGrid())
	for i, n := range order {
		l, s, err := plotter.NewLinePoints(series[n])
		if err != nil {
			return fmt.Errorf("chart %s: %w", path, err)
		}
		l.Color = plotutil.Color(i)
		l.Dashes = plotutil.Dashes(i)
		s.Color = plotutil.Color(i)
		s.Shape = plotutil.Shape(i)
		p.Add(l, s)
		p.Legend.Add(n, l, s)
	}
	if err := p.Save(9*vg.Inch, 5*vg.Inch, path); err != nil {
		return fmt.Errorf("save %s: %w", path, err)
	}
	return nil
}

// liveCPU charts each capturer's CPU per received packet at each rate.
func liveCPU(path string, t *table) error {
	if t == nil {
		return fmt.Errorf("chart %s: live table missing", path)
	}
	cr, cc := t.col("target pps"), t.col("CPU ns/packet")
	if cr < 0 || cc < 0 {
		return fmt.Errorf("chart %s: live table columns missing", path)
	}
	var names []string
	var vals []float64
	for _, r := range t.rows {
		if v, ok := num(r[cc]); ok {
			names = append(names, fmt.Sprintf("%s @ %s pps", label(r[0]), r[cr]))
			vals = append(vals, v)
		}
	}
	return hbar(path, "Live capture: capturer CPU per received packet (getrusage, lower is better)", "CPU ns per packet", names, vals)
}

var tcpdumpMedian = regexp.MustCompile(`median (\d+(?:\.\d+)?) ms`)

// retrieval charts p50/p99 retrieval latency as the store grows beside
// tcpdump filtering the raw capture.
func retrieval(path string, d *doc) error {
	if d == nil || len(d.tables) == 0 {
		return fmt.Errorf("chart %s: retrieval table missing", path)
	}
	t := &d.tables[0]
	c50, c99 := t.col("p50"), t.col("p99")
	var names []string
	var vals []float64
	for _, r := range t.rows {
		holds := r[0]
		if i := strings.Index(holds, " packets"); i > 0 {
			holds = holds[:i]
		}
		if v, ok := num(r[c50]); ok {
			names, vals = append(names, "tapir p50, store of "+holds+" packets"), append(vals, v)
		}
		if v, ok := num(r[c99]); ok {
			names, vals = append(names, "tapir p99, store of "+holds+" packets"), append(vals, v)
		}
	}
	if m := tcpdumpMedian.FindStringSubmatch(d.text); m != nil {
		if v, ok := num(m[1]); ok {
			names, vals = append(names, "tcpdump -r BIG <flow filter>, median"), append(vals, v)
		}
	}
	return hbar(path, "Pcap of one flow: retrieval latency (lower is better)", "milliseconds", names, vals)
}

func machine() string {
	model, mem := "unknown CPU", "unknown memory"
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if strings.HasPrefix(l, "model name") {
				model = strings.TrimSpace(l[strings.Index(l, ":")+1:])
				break
			}
		}
	}
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if f := strings.Fields(l); len(f) >= 2 && f[0] == "MemTotal:" {
				if kb, ok := num(f[1]); ok {
					mem = fmt.Sprintf("%.1f GiB RAM", kb/1048576)
				}
			}
		}
	}
	kernel := "unknown kernel"
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		kernel = "Linux " + strings.TrimSpace(string(b))
	}
	return fmt.Sprintf("%d CPUs (nproc), %s, %s, %s, %s/%s", runtime.NumCPU(), model, mem, kernel, runtime.GOOS, runtime.GOARCH)
}

// body returns a results file's text without its title line, headings
// demoted one level.
func body(d *doc) string {
	var b strings.Builder
	for i, l := range strings.Split(strings.TrimSpace(d.text), "\n") {
		if i == 0 && strings.HasPrefix(l, "# ") {
			continue
		}
		if strings.HasPrefix(l, "#") {
			l = "#" + l
		}
		b.WriteString(l + "\n")
	}
	return strings.TrimSpace(b.String()) + "\n"
}

func run(dir string) error {
	res := filepath.Join(dir, "results")
	var missing []string
	load := func(name string) *doc {
		d, err := readDoc(filepath.Join(res, name))
		if err != nil {
			missing = append(missing, err.Error())
			return nil
		}
		return d
	}
	latest, retr, live := load("latest.md"), load("retrieval.md"), load("live.md")
	gob := filepath.Join(res, "go-bench.txt")

	var out strings.Builder
	var chartErrs []string
	chart := func(file, caption string, err error) {
		if err != nil {
			chartErrs = append(chartErrs, err.Error())
			return
		}
		fmt.Fprintf(&out, "![%s](%s)\n\n", caption, file)
	}
	png := func(name string) string { return filepath.Join(dir, name) }

	fmt.Fprintf(&out, "# tapir benchmark report\n\n")
	fmt.Fprintf(&out, "Written %s by `make bench-report` (bench/run.sh, bench/retrieval.sh, bench/live.sh, then bench/report).\n\n",
		time.Now().UTC().Format("2006-01-02 15:04 UTC"))
	fmt.Fprintf(&out, "Machine: %s. The machine is shared with other work: compare the ratios and CPU times measured in the same run, not absolute wall times.\n\n", machine())
	if len(missing) > 0 {
		fmt.Fprintf(&out, "Missing results (the corresponding sections are absent): %s.\n\n", strings.Join(missing, "; "))
	}

	if latest != nil {
		fmt.Fprintf(&out, "## Offline: whole process and Go benchmarks (bench/run.sh)\n\n")
		chart("report-cpu-big.png", "CPU seconds per tool on the big input",
			tableChart(png("report-cpu-big.png"), "CPU seconds on the big input (user+sys, lower is better)", "CPU seconds",
				latest.find("Whole process on the big input"), "CPU s"))
		chart("report-cpu-slice.png", "CPU seconds per tool on the 1M-packet slice, tshark included",
			tableChart(png("report-cpu-slice.png"), "CPU seconds on the 1M-packet slice (user+sys, lower is better)", "CPU seconds",
				latest.find("Whole process on a"), "CPU s"))
		chart("report-rss-slice.png", "Peak RSS per tool on the 1M-packet slice",
			tableChart(png("report-rss-slice.png"), "Peak RSS on the 1M-packet slice (lower is better)", "MiB",
				latest.find("Whole process on a"), "peak RSS"))
		chart("report-storage.png", "Bytes stored per byte captured, with and without the capture budget",
			tableChart(png("report-storage.png"), "Bytes stored per byte captured (big input, lower is better)", "stored / captured",
				latest.find("Storage"), "stored / captured"))
		chart("report-decode.png", "Per-packet cost of the decoders and the engine paths",
			decoders(png("report-decode.png"), gob))
		out.WriteString(body(latest) + "\n")
	}
	if retr != nil {
		fmt.Fprintf(&out, "## Retrieval by flow as the store grows (bench/retrieval.sh)\n\n")
		chart("report-retrieval.png", "Retrieval latency vs store size vs tcpdump", retrieval(png("report-retrieval.png"), retr))
		out.WriteString(body(retr) + "\n")
	}
	if live != nil {
		fmt.Fprintf(&out, "## Live capture drops (bench/live.sh)\n\n")
		lt := live.find("live")
		if lt == nil && len(live.tables) > 0 {
			lt = &live.tables[0]
		}
		chart("report-drops.png", "Drops vs replay rate per capturer", drops(png("report-drops.png"), lt))
		chart("report-live-cpu.png", "Capturer CPU per received packet at each rate", liveCPU(png("report-live-cpu.png"), lt))
		out.WriteString(body(live) + "\n")
	}
	if len(chartErrs) > 0 {
		fmt.Fprintf(&out, "Charts not drawn: %s.\n", strings.Join(chartErrs, "; "))
	}
	if err := os.WriteFile(filepath.Join(dir, "REPORT.md"), []byte(out.String()), 0o644); err != nil {
		return fmt.Errorf("write report: %w", err)
	}
	for _, e := range chartErrs {
		fmt.Fprintln(os.Stderr, "report: warning:", e)
	}
	return nil
}
