package main

import (
	"context"
	"errors"
	"flag"
	"time"

	"github.com/tapir-sensor/tapir/storage/hbase"
)

// hbasedrop disables and deletes an HBase table (bench/hbase-ingest.sh
// drops the table of each run, so runs do not pile up memstores).
func hbasedrop(args []string) error {
	fl := flag.NewFlagSet("hbasedrop", flag.ExitOnError)
	zk := fl.String("zk", "127.0.0.1:2181", "ZooKeeper quorum")
	root := fl.String("zk-root", "/hbase", "znode parent")
	table := fl.String("table", "", "table to drop")
	_ = fl.Parse(args)
	if *table == "" {
		return errors.New("hbasedrop: -table is required")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	return hbase.DropTable(ctx, *zk, *root, *table)
}
