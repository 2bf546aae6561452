package main

import (
	"bufio"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/http/httptrace"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// retrieve measures pcap retrieval by flow over one keep-alive HTTP
// connection:
//
//	benchtool retrieve -api URL -token T -ids FILE [-metrics URL] [-warmup=true] [-o LAT.tsv]
//
// Each line of FILE is a Community ID or flow ID. A warm-up pass requests
// every ID once (not measured: it opens the connection and brings the
// server to the state a running collector is in), then the measured pass
// requests each ID once more, in the same order, and records per request:
// (-rounds times over the list) the time from sending the request to the last body byte, the time to
// the response header, and the server's Server-Timing (store lookup,
// block scan). Any answer other than 200 with a non-empty pcap is an
// error. It prints on stdout "p50 p99 store_p50 store_p99 first_p50
// first_p99" (ms: total; the server's store lookup + block scan; the
// warm-up pass's total), and on stderr the
// percentiles of every component and, with -metrics, what Pebble did
// during the measured pass (block cache hits and misses, block bytes read
// from files, compactions that ran).
func retrieve(args []string) error {
	fl := flag.NewFlagSet("retrieve", flag.ExitOnError)
	api := fl.String("api", "", "collector API base URL (http://host:port)")
	token := fl.String("token", "", "bearer token")
	ids := fl.String("ids", "", "file of flow IDs, one per line")
	metrics := fl.String("metrics", "", "collector metrics URL (optional)")
	warmup := fl.Bool("warmup", true, "request every ID once before measuring")
	out := fl.String("o", "", "write per-request latencies (TSV) to FILE")
	rounds := fl.Int("rounds", 1, "timed passes over the IDs (percentiles over all of them)")
	if err := fl.Parse(args); err != nil {
		return err
	}
	if *api == "" || *ids == "" {
		return errors.New("retrieve: -api and -ids are required")
	}
	list, err := readLines(*ids)
	if err != nil {
		return err
	}
	if len(list) == 0 {
		return errors.New("retrieve: no IDs")
	}
	r := newRetriever(*api, *token)
	defer r.close()
	var first []time.Duration
	if *warmup {
		if first, err = r.warmUp(list); err != nil {
			return err
		}
	}
	var before map[string]float64
	if *metrics != "" {
		if before, err = scrape(*metrics); err != nil {
			return err
		}
	}
	cpu0 := selfCPU()
	samples, elapsed, err := r.measure(list, *rounds)
	if err != nil {
		return err
	}
	clientCPU := selfCPU() - cpu0
	if *out != "" {
		if err := writeSamples(*out, list, samples); err != nil {
			return err
		}
	}
	total := reportLatencies(samples, elapsed)
	if *metrics != "" {
		after, err := scrape(*metrics)
		if err != nil {
			return err
		}
		reportPebble(before, after)
		reportProcess(before, after, clientCPU, len(samples))
	} else {
		reportProcess(nil, nil, clientCPU, len(samples))
	}
	store := sortedCol(samples, func(s sample) time.Duration { return s.lookup + s.scan })
	if len(first) == 0 {
		first = total
	}
	fmt.Printf("%.2f %.2f %.2f %.2f %.2f %.2f\n", ms(pct(total, 0.50)), ms(pct(total, 0.99)),
		ms(pct(store, 0.50)), ms(pct(store, 0.99)), ms(pct(first, 0.50)), ms(pct(first, 0.99)))
	return nil
}

// sample is one pcap request's timings.
type sample struct {
	total, header, lookup, scan time.Duration
	bytes                       int64
	reused                      bool
}

// retriever requests flows' pcaps over one kept-alive connection: the
// measurement is the server's answer, not a TCP handshake or a process
// start per request.
type retriever struct {
	tr         *http.Transport
	client     *http.Client
	api, token string
}

func newRetriever(api, token string) *retriever {
	tr := &http.Transport{MaxIdleConns: 1, MaxIdleConnsPerHost: 1, MaxConnsPerHost: 1,
		DisableCompression: true, IdleConnTimeout: time.Minute}
	return &retriever{tr: tr, client: &http.Client{Transport: tr, Timeout: time.Minute}, api: api, token: token}
}

func (r *retriever) close() { r.tr.CloseIdleConnections() }

// get requests one flow's pcap and times it.
func (r *retriever) get(id string) (sample, error) {
	var s sample
	req, err := http.NewRequest(http.MethodGet, r.api+"/api/v1/pcap?flow="+url.QueryEscape(id), nil)
	if err != nil {
		return s, err
	}
	req.Header.Set("Authorization", "Bearer "+r.token)
	var t0, th time.Time
	req = req.WithContext(httptrace.WithClientTrace(req.Context(), &httptrace.ClientTrace{
		GotConn:              func(i httptrace.GotConnInfo) { s.reused = i.Reused },
		GotFirstResponseByte: func() { th = time.Now() },
	}))
	t0 = time.Now()
	resp, err := r.client.Do(req)
	if err != nil {
		return s, fmt.Errorf("get %s: %w", id, err)
	}
	n, err := io.Copy(io.Discard, resp.Body)
	s.total = time.Since(t0)
	resp.Body.Close()
	if err != nil {
		return s, fmt.Errorf("get %s: body: %w", id, err)
	}
	if resp.StatusCode != http.StatusOK || n <= 24 {
		return s, fmt.Errorf("get %s: status %d, %d bytes", id, resp.StatusCode, n)
	}
	s.header, s.bytes = th.Sub(t0), n
	s.lookup, s.scan = serverTiming(resp.Header.Get("Server-Timing"))
	return s, nil
}

// warmUp requests every ID once and reports the sorted latencies. The
// warm-up pass is each flow's first retrieval since the collector
// started: its blocks are not in Pebble's block cache yet. Its latencies
// are reported too (not in the result line).
func (r *retriever) warmUp(list []string) ([]time.Duration, error) {
	first := make([]time.Duration, 0, len(list))
	for _, id := range list {
		s, err := r.get(id)
		if err != nil {
			return nil, fmt.Errorf("warm-up: %w", err)
		}
		first = append(first, s.total)
	}
	slices.Sort(first)
	printPercentiles("warm-up pass total", first)
	return first, nil
}

// measure makes rounds timed passes over the IDs.
func (r *retriever) measure(list []string, rounds int) ([]sample, time.Duration, error) {
	samples := make([]sample, 0, rounds*len(list))
	start := time.Now()
	for range max(rounds, 1) {
		for _, id := range list {
			s, err := r.get(id)
			if err != nil {
				return nil, 0, err
			}
			samples = append(samples, s)
		}
	}
	return samples, time.Since(start), nil
}

// writeSamples writes the per-request latencies as TSV.
func writeSamples(path string, list []string, samples []sample) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	defer f.Close()
	w := bufio.NewWriter(f)
	fmt.Fprintln(w, "id\ttotal_ms\theader_ms\tlookup_ms\tscan_ms\tbytes\treused")
	for i, s := range samples {
		fmt.Fprintf(w, "%s\t%.3f\t%.3f\t%.3f\t%.3f\t%d\t%t\n", list[i%len(list)], ms(s.total), ms(s.header), ms(s.lookup), ms(s.scan), s.bytes, s.reused)
	}
	return w.Flush()
}

// reportLatencies prints the pass's percentiles per phase and returns
// the sorted total latencies.
func reportLatencies(samples []sample, elapsed time.Duration) []time.Duration {
	reused := 0
	for _, s := range samples {
		if s.reused {
			reused++
		}
	}
	total := sortedCol(samples, func(s sample) time.Duration { return s.total })
	fmt.Fprintf(os.Stderr, "retrieve: %d requests in %.1f s, %d on a reused connection\n", len(samples), elapsed.Seconds(), reused)
	for _, c := range []struct {
		name string
		v    []time.Duration
	}{
		{"total", total},
		{"to header", sortedCol(samples, func(s sample) time.Duration { return s.header })},
		{"server lookup", sortedCol(samples, func(s sample) time.Duration { return s.lookup })},
		{"server scan", sortedCol(samples, func(s sample) time.Duration { return s.scan })},
		{"rest (HTTP, merge, write)", sortedCol(samples, func(s sample) time.Duration { return s.total - s.lookup - s.scan })},
	} {
		printPercentiles(c.name, c.v)
	}
	return total
}

// printPercentiles prints one phase's percentiles of sorted latencies.
func printPercentiles(name string, v []time.Duration) {
	fmt.Fprintf(os.Stderr, "retrieve: %-26s p50 %7.3f  p90 %7.3f  p99 %7.3f  max %7.3f ms\n", name,
		ms(pct(v, 0.50)), ms(pct(v, 0.90)), ms(pct(v, 0.99)), ms(v[len(v)-1]))
}

// sortedCol is one timing of every sample, sorted.
func sortedCol(samples []sample, f func(sample) time.Duration) []time.Duration {
	v := make([]time.Duration, len(samples))
	for i, s := range samples {
		v[i] = f(s)
	}
	slices.Sort(v)
	return v
}

// reportPebble prints what the embedded store did during the pass, from
// two scrapes of the collector's metrics.
func reportPebble(before, after map[string]float64) {
	d := func(k string) float64 { return after[k] - before[k] }
	hits, miss := d("tapir_pebble_block_cache_hits_total"), d("tapir_pebble_block_cache_misses_total")
	fmt.Fprintf(os.Stderr, "retrieve: pebble during the pass: read amp %.0f, L0..L6 files %s, block cache %.0f hits / %.0f misses (%.1f%% hits), "+
		"iterator block bytes %.1f MiB cached / %.1f MiB read from files in %.3f s, compactions %.0f, flushes %.0f, in progress at end %.0f\n",
		after["tapir_pebble_read_amp"], levels(after), hits, miss, 100*hits/math.Max(hits+miss, 1),
		d(`tapir_pebble_read_block_bytes_total{cached="true"}`)/(1<<20), d(`tapir_pebble_read_block_bytes_total{cached="false"}`)/(1<<20),
		d("tapir_pebble_read_block_seconds_total"), d("tapir_pebble_compactions_total"), d("tapir_pebble_flushes_total"),
		after["tapir_pebble_compactions_in_progress"])
}

// reportProcess prints what the timed pass cost in CPU, per request: the
// benchmark client's own (user + system, from getrusage) and, from two
// scrapes of the collector's metrics (nil: not scraped), the collector
// process's, with the Go garbage collector's cycles and pauses and the
// collector's Go heap after the pass. It tells a server that works more
// per request at a larger store from a client or a machine that is
// slower.
func reportProcess(before, after map[string]float64, client time.Duration, n int) {
	perReq := func(d float64) float64 { return d / float64(max(n, 1)) }
	fmt.Fprintf(os.Stderr, "retrieve: client CPU %.3f ms/request", perReq(ms(client)))
	if after != nil {
		d := func(k string) float64 { return after[k] - before[k] }
		fmt.Fprintf(os.Stderr, ", collector CPU %.3f ms/request, GC %.0f cycles (pauses %.2f ms in all), Go heap %.0f MiB in use after (%.0f MiB heap goal), %.0f goroutines",
			perReq(1000*d("process_cpu_seconds_total")), d("go_gc_duration_seconds_count"), 1000*d("go_gc_duration_seconds_sum"),
			after["go_memstats_heap_inuse_bytes"]/(1<<20), after["go_memstats_next_gc_bytes"]/(1<<20),
			after["go_goroutines"])
	}
	fmt.Fprintln(os.Stderr)
}

// selfCPU is this process's CPU time so far (user + system).
func selfCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// settle waits until Pebble's background work has settled, read from the
// collector's metrics: no flush or compaction running, and the flush and
// compaction counters unchanged for -quiet. It prints what it waited and
// the LSM shape on stderr.
//
//	benchtool settle -metrics URL [-quiet 20s] [-timeout 1h]
func settle(args []string) error {
	fl := flag.NewFlagSet("settle", flag.ExitOnError)
	murl := fl.String("metrics", "", "collector metrics URL")
	quiet := fl.Duration("quiet", 20*time.Second, "how long nothing must change")
	timeout := fl.Duration("timeout", time.Hour, "give up after")
	if err := fl.Parse(args); err != nil {
		return err
	}
	start := time.Now()
	var last string
	stable := start
	for {
		m, err := scrape(*murl)
		if err != nil {
			return err
		}
		busy := m["tapir_pebble_compactions_in_progress"]+m["tapir_pebble_flushes_in_progress"] > 0
		state := fmt.Sprintf("%.0f/%.0f", m["tapir_pebble_compactions_total"], m["tapir_pebble_flushes_total"])
		if busy || state != last {
			stable, last = time.Now(), state
		}
		if !busy && time.Since(stable) >= *quiet {
			fmt.Fprintf(os.Stderr, "settle: settled after %.0f s: read amp %.0f, L0..L6 files %s, compaction debt %.0f MiB, %.0f compactions so far\n",
				time.Since(start).Seconds(), m["tapir_pebble_read_amp"], levels(m), m["tapir_pebble_compaction_debt_bytes"]/(1<<20),
				m["tapir_pebble_compactions_total"])
			return nil
		}
		if time.Since(start) > *timeout {
			return fmt.Errorf("settle: still busy after %v (compactions/flushes %s)", *timeout, state)
		}
		time.Sleep(time.Second)
	}
}

func levels(m map[string]float64) string {
	var b strings.Builder
	for i := range 7 {
		if i > 0 {
			b.WriteByte('/')
		}
		b.WriteString(strconv.Itoa(int(m[fmt.Sprintf(`tapir_pebble_level_files{level="%d"}`, i)])))
	}
	return b.String()
}

// scrape reads a Prometheus text exposition into name{labels} -> value.
func scrape(u string) (map[string]float64, error) {
	resp, err := http.Get(u)
	if err != nil {
		return nil, fmt.Errorf("scrape %s: %w", u, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("scrape %s: status %d", u, resp.StatusCode)
	}
	m := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<16), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		if i < 0 {
			continue
		}
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			continue
		}
		m[line[:i]] = v
	}
	return m, sc.Err()
}

// serverTiming parses "lookup;dur=X, scan;dur=Y" (ms).
func serverTiming(h string) (lookup, scan time.Duration) {
	for _, part := range strings.Split(h, ",") {
		name, dur, ok := strings.Cut(strings.TrimSpace(part), ";dur=")
		if !ok {
			continue
		}
		f, err := strconv.ParseFloat(dur, 64)
		if err != nil {
			continue
		}
		d := time.Duration(f * 1e6)
		switch name {
		case "lookup":
			lookup = d
		case "scan":
			scan = d
		}
	}
	return lookup, scan
}

func readLines(path string) ([]string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, l := range strings.Split(string(b), "\n") {
		if l = strings.TrimSpace(l); l != "" {
			out = append(out, l)
		}
	}
	return out, nil
}

// pct is the nearest-rank percentile of sorted v.
func pct(v []time.Duration, p float64) time.Duration {
	i := int(math.Ceil(p*float64(len(v)))) - 1
	return v[max(0, min(i, len(v)-1))]
}

func ms(d time.Duration) float64 { return float64(d) / 1e6 }
