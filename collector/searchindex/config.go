package searchindex

import (
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"
)

// Config configures the indexer. URLs empty disables it.
type Config struct {
	// URLs are the OpenSearch nodes' HTTP(S) endpoints, e.g.
	// https://search-1:9200; empty disables indexing. The indexer reads
	// the flows topic of the kafka section, so kafka.brokers must be set.
	URLs []string `yaml:"urls"`
	// Username authenticates with HTTP basic auth (the security plugin's
	// internal users) with the password in PasswordFile; empty: no
	// authentication.
	Username string `yaml:"username"`
	// PasswordFile holds the password of Username (one line).
	PasswordFile string `yaml:"password_file"`
	// CAFile verifies the nodes' TLS certificates (PEM); empty: the
	// system roots.
	CAFile string `yaml:"ca_file"`
	// IndexPrefix names the daily indices: <prefix>YYYY.MM.DD, the UTC day
	// the flow was first seen (from its flow ID), so every segment of a
	// flow lands in one index. The index template matches tapir-flows-*.
	IndexPrefix string `yaml:"index_prefix"`
	// ConsumerGroup is the indexer's own Kafka consumer group on the
	// flows topic; offsets are committed only after OpenSearch accepted
	// every record up to them (at least once).
	ConsumerGroup string `yaml:"consumer_group"`
	// BulkMaxRecords bounds the records read from Kafka per poll and
	// written per _bulk request.
	BulkMaxRecords int `yaml:"bulk_max_records"`
	// BulkMaxBytes bounds the body of one _bulk request.
	BulkMaxBytes int `yaml:"bulk_max_bytes"`
	// RequestTimeout bounds one _bulk request.
	RequestTimeout time.Duration `yaml:"request_timeout"`
	// RetryMin is the first backoff (doubling, with jitter) before
	// retrying a failed _bulk request or the documents OpenSearch refused
	// for a transient reason (429, 5xx). Retries go on until they
	// succeed: Kafka holds the records meanwhile, and no more are read.
	RetryMin time.Duration `yaml:"retry_min"`
	// RetryMax caps the backoff between retries.
	RetryMax time.Duration `yaml:"retry_max"`
	// RetentionDays deletes the daily indices older than this many days
	// (checked at start and every hour); 0 keeps them. The
	// index-management plugin (ISM) can do it instead where installed.
	RetentionDays int `yaml:"retention_days"`
}

// DefaultConfig returns the defaults (indexing disabled: no URLs).
func DefaultConfig() Config {
	return Config{
		IndexPrefix:    "tapir-flows-",
		ConsumerGroup:  "tapir-opensearch",
		BulkMaxRecords: 2000,
		BulkMaxBytes:   8 << 20,
		RequestTimeout: 30 * time.Second,
		RetryMin:       200 * time.Millisecond,
		RetryMax:       10 * time.Second,
		RetentionDays:  30,
	}
}

// Enabled reports whether OpenSearch URLs are configured.
func (c *Config) Enabled() bool { return len(c.URLs) > 0 }

// Validate reports every invalid field.
func (c *Config) Validate() error {
	var errs []error
	for _, u := range c.URLs {
		p, err := url.Parse(u)
		if err != nil || (p.Scheme != "http" && p.Scheme != "https") || p.Host == "" {
			errs = append(errs, fmt.Errorf("urls: %q is not an http(s) URL", u))
		}
	}
	if c.IndexPrefix == "" || strings.ToLower(c.IndexPrefix) != c.IndexPrefix || strings.ContainsAny(c.IndexPrefix, ` "*\<|,>/?#:`) ||
		strings.HasPrefix(c.IndexPrefix, "_") || strings.HasPrefix(c.IndexPrefix, "-") {
		errs = append(errs, fmt.Errorf("index_prefix %q: lower case, no spaces or any of \"*\\<|,>/?#:, not starting with _ or -", c.IndexPrefix))
	}
	if c.ConsumerGroup == "" {
		errs = append(errs, errors.New("consumer_group is empty"))
	}
	if c.BulkMaxRecords < 1 {
		errs = append(errs, fmt.Errorf("bulk_max_records %d: must be positive", c.BulkMaxRecords))
	}
	if c.BulkMaxBytes < 1<<16 {
		errs = append(errs, fmt.Errorf("bulk_max_bytes %d: at least 64 KiB", c.BulkMaxBytes))
	}
	if c.RequestTimeout < time.Second {
		errs = append(errs, fmt.Errorf("request_timeout %v: at least 1s", c.RequestTimeout))
	}
	if c.RetryMin <= 0 || c.RetryMax < c.RetryMin {
		errs = append(errs, fmt.Errorf("retry_min %v, retry_max %v: 0 < retry_min <= retry_max", c.RetryMin, c.RetryMax))
	}
	if c.RetentionDays < 0 {
		errs = append(errs, fmt.Errorf("retention_days %d: 0 (keep) or more", c.RetentionDays))
	}
	return errors.Join(errs...)
}
