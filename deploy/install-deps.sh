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
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi
echo "installing: ${missing[*]}"
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO=sudo
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
