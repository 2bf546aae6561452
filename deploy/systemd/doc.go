// Package systemd holds tapir's systemd units (tapir-sensor.service,
// tapir-collector.service) and the sysusers.d file of their user. It has no
// code: its test checks the units (required hardening keys, capabilities,
// the commands they run) and, where systemd-analyze exists, verifies them.
package systemd
