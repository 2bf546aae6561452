package hbase

import (
	"errors"
	"fmt"
	"strings"
	"time"
)

// Config configures a Store. The zero value is not valid: start from
// DefaultConfig.
type Config struct {
	// ZooKeeper is the quorum the HBase cluster registers in,
	// "host:port[,host:port...]" (standalone HBase: its own ZooKeeper,
	// 127.0.0.1:2181).
	ZooKeeper string `yaml:"zookeeper"`
	// ZKRoot is the cluster's znode parent (zookeeper.znode.parent).
	ZKRoot string `yaml:"zk_root"`
	// Table is the table name ("namespace:table" allowed). It is created
	// when missing (CreateTable false: it must exist).
	Table string `yaml:"table"`
	// CreateTable creates the table when missing.
	CreateTable bool `yaml:"create_table"`
	// SaltRegions is how many regions the packet block rows are pre-split
	// into at creation, by their salt byte (1..256).
	SaltRegions int `yaml:"salt_regions"`
	// PacketTTL is the HBase TTL of the packet family: a backstop behind
	// retention (which removes blocks exactly and remembers what it
	// removed). HBase counts it from the write time. 0: no TTL.
	PacketTTL time.Duration `yaml:"packet_ttl"`
	// PacketCompression is the packet family's HFile compression. Blocks
	// are zstd-compressed by the sensor already, so NONE is the default;
	// GZ is what standalone HBase from Maven Central can do without
	// Hadoop's native library.
	PacketCompression string `yaml:"packet_compression"`
	// IndexCompression is the index family's compression (flow records,
	// flow index, retention index, dedupe markers).
	IndexCompression string `yaml:"index_compression"`
	// TimeBucket and LongFlow: as in storage/pebble (see storage/README.md);
	// fixed when the table is created.
	TimeBucket time.Duration `yaml:"time_bucket"`
	LongFlow   time.Duration `yaml:"long_flow"`
	// Concurrency bounds the puts, gets and deletes in flight at once for
	// the whole store (gohbase's Put blocks until acknowledged; the client
	// batches concurrent calls per region server).
	Concurrency int `yaml:"concurrency"`
	// FlushInterval and RPCQueueSize: gohbase sends a region server's
	// queued calls when this many are queued or this long has passed.
	FlushInterval time.Duration `yaml:"flush_interval"`
	RPCQueueSize  int           `yaml:"rpc_queue_size"`
	// OpTimeout bounds one Write, read or Expire call while HBase does not
	// answer (gohbase retries until its context ends); the caller's
	// context may end it earlier.
	OpTimeout time.Duration `yaml:"op_timeout"`
}

// DefaultConfig returns the default configuration.
func DefaultConfig() Config {
	return Config{
		ZooKeeper:         "127.0.0.1:2181",
		ZKRoot:            "/hbase",
		Table:             "tapir",
		CreateTable:       true,
		SaltRegions:       16,
		PacketCompression: "NONE",
		IndexCompression:  "GZ",
		TimeBucket:        time.Minute,
		LongFlow:          10 * time.Minute,
		Concurrency:       512,
		FlushInterval:     time.Millisecond,
		RPCQueueSize:      100,
		OpTimeout:         30 * time.Second,
	}
}

var compressions = []string{"NONE", "GZ", "SNAPPY", "LZ4", "ZSTD", "LZO", "BZIP2"}

// Validate reports every invalid field.
func (c *Config) Validate() error {
	var errs []error
	if c.ZooKeeper == "" {
		errs = append(errs, errors.New("zookeeper: required (host:port[,host:port])"))
	}
	if !strings.HasPrefix(c.ZKRoot, "/") {
		errs = append(errs, fmt.Errorf("zk_root %q: must start with /", c.ZKRoot))
	}
	if c.Table == "" {
		errs = append(errs, errors.New("table: required"))
	}
	if c.SaltRegions < 1 || c.SaltRegions > 256 {
		errs = append(errs, fmt.Errorf("salt_regions %d: must be within 1..256", c.SaltRegions))
	}
	if c.PacketTTL < 0 || (c.PacketTTL > 0 && c.PacketTTL < time.Second) {
		errs = append(errs, fmt.Errorf("packet_ttl %v: must be 0 or at least 1s", c.PacketTTL))
	}
	for _, f := range []struct{ name, v string }{{"packet_compression", c.PacketCompression}, {"index_compression", c.IndexCompression}} {
		ok := false
		for _, k := range compressions {
			ok = ok || f.v == k
		}
		if !ok {
			errs = append(errs, fmt.Errorf("%s %q: one of %s", f.name, f.v, strings.Join(compressions, ", ")))
		}
	}
	if c.TimeBucket < time.Second {
		errs = append(errs, fmt.Errorf("time_bucket %v: must be at least 1s", c.TimeBucket))
	}
	if c.LongFlow < time.Second {
		errs = append(errs, fmt.Errorf("long_flow %v: must be at least 1s", c.LongFlow))
	}
	if c.Concurrency < 2 || c.Concurrency > 4096 {
		errs = append(errs, fmt.Errorf("concurrency %d: must be within 2..4096", c.Concurrency))
	}
	if c.FlushInterval <= 0 {
		errs = append(errs, fmt.Errorf("flush_interval %v: must be positive", c.FlushInterval))
	}
	if c.RPCQueueSize < 1 {
		errs = append(errs, fmt.Errorf("rpc_queue_size %d: must be positive", c.RPCQueueSize))
	}
	if c.OpTimeout < time.Second {
		errs = append(errs, fmt.Errorf("op_timeout %v: must be at least 1s", c.OpTimeout))
	}
	return errors.Join(errs...)
}
