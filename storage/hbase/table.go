package hbase

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/tsuna/gohbase"
	"github.com/tsuna/gohbase/hrpc"

	"github.com/tapir-sensor/tapir/storage/rowkey"
)

// Column families and the one qualifier every row uses.
const (
	familyPackets = "p" // packet block rows (table byte 'b'): large cells, TTL
	familyIndex   = "i" // everything else: records, flow index, retention index, markers
	qualifier     = "v"
)

// SplitKeys returns the region boundaries the table is created with: the
// packet block rows split into saltRegions ranges of their salt byte, and
// one region boundary before each other keyspace.
func SplitKeys(saltRegions int) [][]byte {
	var keys [][]byte
	for _, t := range []rowkey.Table{rowkey.TableBlockAge, rowkey.TableBlocks} {
		keys = append(keys, []byte{byte(t)})
	}
	for i := 1; i < saltRegions; i++ {
		keys = append(keys, []byte{byte(rowkey.TableBlocks), byte(i * 256 / saltRegions)})
	}
	for _, t := range []rowkey.Table{rowkey.TableCommunity, rowkey.TableDedupe, rowkey.TableFlowID,
		rowkey.TableLongRecords, rowkey.TableMeta, rowkey.TableRecords, rowkey.TableSeq, rowkey.TableExpired} {
		keys = append(keys, []byte{byte(t)})
	}
	return keys
}

// families returns the column family attributes of a new table.
func families(cfg *Config) map[string]map[string]string {
	ttl := "2147483647" // HBase's FOREVER
	if cfg.PacketTTL > 0 {
		ttl = strconv.FormatInt(int64(cfg.PacketTTL.Seconds()), 10)
	}
	return map[string]map[string]string{
		familyPackets: {
			"VERSIONS":    "1",
			"TTL":         ttl,
			"COMPRESSION": cfg.PacketCompression,
			// Cells are whole blocks, read once per retrieval: large HFile
			// blocks, no caching of blocks on read, no bloom needed for
			// prefix scans.
			"BLOCKSIZE":           "1048576",
			"BLOCKCACHE":          "false",
			"BLOOMFILTER":         "NONE",
			"DATA_BLOCK_ENCODING": "NONE",
		},
		familyIndex: {
			"VERSIONS":            "1",
			"COMPRESSION":         cfg.IndexCompression,
			"BLOOMFILTER":         "ROW",
			"DATA_BLOCK_ENCODING": "FAST_DIFF",
		},
	}
}

// ensureTable creates the table when it does not exist.
func ensureTable(ctx context.Context, cfg *Config, opts []gohbase.Option) error {
	admin := gohbase.NewAdminClient(cfg.ZooKeeper, opts...)
	ct := hrpc.NewCreateTable(ctx, []byte(cfg.Table), families(cfg), hrpc.SplitKeys(SplitKeys(cfg.SaltRegions)))
	err := admin.CreateTable(ct)
	if err != nil && !strings.Contains(err.Error(), "TableExistsException") {
		return fmt.Errorf("create table %s: %w", cfg.Table, err)
	}
	return nil
}

// DropTable disables and deletes a table (tests and benchmarks use it to
// clean up; tapir never drops its table itself).
func DropTable(ctx context.Context, zkQuorum, zkRoot, table string) error {
	admin := gohbase.NewAdminClient(zkQuorum, gohbase.ZookeeperRoot(zkRoot))
	if err := admin.DisableTable(hrpc.NewDisableTable(ctx, []byte(table))); err != nil {
		return fmt.Errorf("disable table %s: %w", table, err)
	}
	if err := admin.DeleteTable(hrpc.NewDeleteTable(ctx, []byte(table))); err != nil {
		return fmt.Errorf("delete table %s: %w", table, err)
	}
	return nil
}
