package api

import (
	"io"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/tapir-sensor/tapir/internal/testenv"
)

// BenchmarkRetrieveFlow measures the latency of pulling one flow's pcap
// by Community ID through the HTTP API over loopback, from a Pebble store
// holding the first N connections of zeek/echo-connections.pcap.gz (500
// TCP connections, 82,582 packets). It reports p50 and p99.
func BenchmarkRetrieveFlow(b *testing.B) {
	path := testenv.Plain(b, testenv.Pcap(b, "zeek/echo-connections.pcap.gz"))
	all := loadCapture(b, path, []string{"s1"}, 64)
	for _, n := range []int{50, 500} {
		if n > len(all.flows) {
			continue
		}
		b.Run("flows="+strconv.Itoa(n), func(b *testing.B) {
			c := *all
			c.flows = all.flows[:n]
			st := openStore(b)
			writeBatches(b, st, c.batches(true))
			ts := startServer(b, st, c.last.Add(time.Minute), nil)
			client := &http.Client{}
			lat := make([]time.Duration, 0, b.N)
			var bytes int64
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				cf := c.flows[i%len(c.flows)]
				req, _ := http.NewRequest("GET", ts.base+"/api/v1/pcap?flow="+url.QueryEscape(cf.rec.CommunityID), nil)
				req.Header.Set("Authorization", "Bearer "+tokAlice)
				t0 := time.Now()
				resp, err := client.Do(req)
				if err != nil {
					b.Fatal(err)
				}
				n, _ := io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				lat = append(lat, time.Since(t0))
				if resp.StatusCode != 200 {
					b.Fatalf("status %d", resp.StatusCode)
				}
				bytes += n
			}
			b.StopTimer()
			slices.Sort(lat)
			b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
			b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-µs")
			b.ReportMetric(float64(bytes)/float64(b.N), "bytes/flow")
		})
	}
}
