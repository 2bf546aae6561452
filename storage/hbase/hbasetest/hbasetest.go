// Package hbasetest opens HBase stores on fresh tables for tests and
// benchmarks. The cluster is named by the environment variable
// TAPIR_HBASE_ZK (its ZooKeeper quorum, e.g. 127.0.0.1:2181, which
// `make test` and `make services-up` export); without it tests skip, or
// fail when TAPIR_REQUIRE_ALL=1.
package hbasetest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"testing"
	"time"

	"github.com/tapir-sensor/tapir/internal/testenv"
	"github.com/tapir-sensor/tapir/storage/hbase"
)

// EnvZK is the environment variable holding the ZooKeeper quorum.
const EnvZK = "TAPIR_HBASE_ZK"

// ZooKeeper returns the quorum from TAPIR_HBASE_ZK, or skips t (fails it
// under TAPIR_REQUIRE_ALL=1) when unset.
func ZooKeeper(t testing.TB) string {
	t.Helper()
	zk := os.Getenv(EnvZK)
	if zk == "" {
		testenv.SkipOrFail(t, EnvZK+" is not set (start HBase with make services-up)")
	}
	return zk
}

// Config returns a configuration for a new table with a unique name
// ("tapir_test_<hex>") on the cluster of TAPIR_HBASE_ZK, pre-split into 4
// salt regions (enough to exercise the splits, quick to create).
func Config(t testing.TB) hbase.Config {
	t.Helper()
	cfg := hbase.DefaultConfig()
	cfg.ZooKeeper = ZooKeeper(t)
	var b [6]byte
	_, _ = rand.Read(b[:])
	cfg.Table = "tapir_test_" + hex.EncodeToString(b[:])
	cfg.SaltRegions = 4
	return cfg
}

// Drop registers a cleanup that drops cfg's table after the test.
func Drop(t testing.TB, cfg hbase.Config) {
	t.Helper()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := hbase.DropTable(ctx, cfg.ZooKeeper, cfg.ZKRoot, cfg.Table); err != nil {
			t.Logf("drop %s: %v", cfg.Table, err)
		}
	})
}

// Open opens a store on a new table that is dropped after the test.
func Open(t testing.TB, cfg hbase.Config) *hbase.Store {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	s, err := hbase.Open(ctx, cfg, nil, nil)
	if err != nil {
		t.Fatalf("open hbase store %s: %v", cfg.Table, err)
	}
	Drop(t, cfg)
	return s
}
