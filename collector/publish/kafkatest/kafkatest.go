// Package kafkatest gives tests the Kafka broker named by the environment
// variable TAPIR_KAFKA (host:port, e.g. 127.0.0.1:9092, which `make test`
// and `make services-up` export), unique topic names, and a consumer that
// reads a topic from the beginning. Without TAPIR_KAFKA tests skip, or fail
// when TAPIR_REQUIRE_ALL=1.
package kafkatest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/tapir-sensor/tapir/collector/publish"
	"github.com/tapir-sensor/tapir/internal/testenv"
)

// EnvBrokers is the environment variable naming the broker.
const EnvBrokers = "TAPIR_KAFKA"

// Brokers returns the brokers of TAPIR_KAFKA, or skips t (fails it under
// TAPIR_REQUIRE_ALL=1) when unset.
func Brokers(t testing.TB) []string {
	t.Helper()
	b := os.Getenv(EnvBrokers)
	if b == "" {
		testenv.SkipOrFail(t, EnvBrokers+" is not set (start Kafka with make services-up)")
	}
	return strings.Split(b, ",")
}

// Config returns a publisher configuration on the test broker with
// unique topic names ("tapir-test-<hex>.flows" ...), deleted after the test.
func Config(t testing.TB) publish.Config {
	t.Helper()
	cfg := publish.DefaultConfig()
	cfg.Brokers = Brokers(t)
	var b [6]byte
	_, _ = rand.Read(b[:])
	p := "tapir-test-" + hex.EncodeToString(b[:])
	cfg.Topics = publish.Topics{Flows: p + ".flows", Health: p + ".health", Alerts: p + ".alerts"}
	cfg.Partitions = 3
	t.Cleanup(func() {
		cl, err := kgo.NewClient(kgo.SeedBrokers(cfg.Brokers...))
		if err != nil {
			return
		}
		defer cl.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		_, _ = kadm.NewClient(cl).DeleteTopics(ctx, cfg.Topics.Flows, cfg.Topics.Health, cfg.Topics.Alerts)
	})
	return cfg
}

// ReadAll consumes topic from the beginning with franz-go until want
// records arrived and then quiet passed with nothing new, or timeout
// passed. It returns every record read, in partition order.
func ReadAll(t testing.TB, brokers []string, topic string, want int, quiet, timeout time.Duration) []*kgo.Record {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatalf("kafka consumer: %v", err)
	}
	defer cl.Close()
	deadline := time.Now().Add(timeout)
	var out []*kgo.Record
	for time.Now().Before(deadline) {
		wait := quiet
		if len(out) < want {
			wait = time.Until(deadline)
		}
		ctx, cancel := context.WithTimeout(context.Background(), wait)
		fs := cl.PollFetches(ctx)
		cancel()
		if errs := fs.Errors(); len(errs) > 0 {
			for _, e := range errs {
				if e.Err != context.DeadlineExceeded && e.Err != context.Canceled {
					t.Fatalf("consume %s: %v", topic, e.Err)
				}
			}
		}
		n := 0
		fs.EachRecord(func(r *kgo.Record) { out = append(out, r); n++ })
		if n == 0 && len(out) >= want {
			break
		}
	}
	return out
}

// Kcat reads topic from the beginning to its current end with kcat (the
// Debian package, an outside client) and returns one "key<TAB>value" line
// per record. Values must not hold newlines (ECS JSON does not).
func Kcat(t testing.TB, brokers []string, topic string) []string {
	t.Helper()
	path := testenv.Tool(t, "kcat")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, path, "-b", strings.Join(brokers, ","), "-C", "-t", topic,
		"-o", "beginning", "-e", "-q", "-f", "%k\t%s\n").Output()
	if err != nil {
		t.Fatalf("kcat: %v", err)
	}
	s := strings.TrimSuffix(string(out), "\n")
	if s == "" {
		return nil
	}
	return strings.Split(s, "\n")
}
