// Package grafana holds tapir's Grafana dashboard (tapir.json). It has no
// code: its test checks that every metric the dashboard queries is one the
// daemons export, so the dashboard cannot rot when a metric is renamed.
package grafana
