#!/usr/bin/env bash
# Copies HBase's jars (deploy/hbase/pom.xml) from Maven Central into
# <repo>/.cache/jars/hbase with Maven, once; ~/.m2 caches the downloads.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
jars=$root/.cache/jars/hbase
if [ -f "$jars/.done" ] && [ "$jars/.done" -nt "$here/pom.xml" ]; then exit 0; fi
rm -rf "$jars"
mvn -q -B -f "$here/pom.xml" dependency:copy-dependencies \
  -DoutputDirectory="$jars" -DincludeScope=runtime
touch "$jars/.done"
