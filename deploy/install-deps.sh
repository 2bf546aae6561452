#!/usr/bin/env bash
# Installs the Debian packages tapir's build, tests, demo and benchmarks use.
# Idempotent: does nothing when everything is already there.
set -euo pipefail
pkgs=(tshark tcpdump tcpreplay softflowd nfdump kcat iproute2 ethtool protobuf-compiler clang llvm libbpf-dev bpftool iperf3 netsniff-ng wireshark-common)
# Kafka and HBase for the integration tests and benchmarks (deploy/kafka,
# deploy/hbase): a JDK to run them, Maven to fetch their jars, curl for checks.
pkgs+=(openjdk-17-jre-headless maven curl)
# systemd-analyze for the unit checks (deploy/systemd).
pkgs+=(systemd)
# Headless Chromium (and a font) for the web console's browser tests (systest/console).
pkgs+=(chromium fonts-dejavu-core)
# golangci-lint for make lint (pinned; built from the Go module proxy into
# .cache/tools, one directory per version so a new pin reinstalls).
golangci_version=v2.15.0
root=$(cd "$(dirname "$0")/.." && pwd)

install_debian() {
  local missing=() p
  for p in "${pkgs[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return
  echo "installing: ${missing[*]}"
  local sudo=""
  [ "$(id -u)" -eq 0 ] || sudo=sudo
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

install_golangci_lint() {
  local dir=$root/.cache/tools/golangci-lint-$golangci_version
  if [ ! -x "$dir/golangci-lint" ]; then
    echo "installing: golangci-lint $golangci_version"
    GOBIN=$dir go install "github.com/golangci/golangci-lint/v2/cmd/golangci-lint@$golangci_version"
  fi
  ln -sfn "$dir/golangci-lint" "$root/.cache/tools/golangci-lint"
}

install_debian
install_golangci_lint
