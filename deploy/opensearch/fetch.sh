#!/usr/bin/env bash
# Copies OpenSearch's jars from Maven Central into
# <repo>/.cache/jars/opensearch with Maven, once (~/.m2 caches the downloads):
#   lib/                core, plugin classloader, log4j-core (pom.xml)
#   modules/<name>/     each module's jars that lib/ lacks (a jar in both is
#                       "jar hell" and stops the node) and a hand-written
#                       plugin-descriptor.properties (the Maven jars ship none)
#                       and, where the module needs more than the default
#                       sandbox, its plugin-security.policy (as in OpenSearch's
#                       sources, modules/<name>/src/main/plugin-metadata)
#   bin/, plugins/      empty; the node insists that they exist
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
home=$root/.cache/jars/opensearch
if [ -f "$home/.done" ] && [ "$home/.done" -nt "$here/pom.xml" ] && [ "$home/.done" -nt "$0" ]; then exit 0; fi
version=$(sed -n 's:.*<opensearch.version>\(.*\)</opensearch.version>.*:\1:p' "$here/pom.xml")
rm -rf "$home"
mkdir -p "$home/lib" "$home/modules" "$home/bin" "$home/plugins"
mvn -q -B -f "$here/pom.xml" dependency:copy-dependencies \
  -DoutputDirectory="$home/lib" -DincludeScope=runtime

# name|artifact|classname|extended plugins
modules='transport-netty4|transport-netty4-client|org.opensearch.transport.Netty4Plugin|
lang-painless|lang-painless|org.opensearch.painless.PainlessPlugin|
analysis-common|analysis-common|org.opensearch.analysis.common.CommonAnalysisPlugin|lang-painless
mapper-extras|mapper-extras-client|org.opensearch.index.mapper.MapperExtrasPlugin|
reindex|reindex-client|org.opensearch.index.reindex.ReindexPlugin|'
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
while IFS='|' read -r name artifact class extended; do
  dir=$home/modules/$name
  mkdir -p "$dir"
  cat >"$tmp/$name.xml" <<POM
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>io.github.tapir-sensor</groupId>
  <artifactId>tapir-opensearch-$name</artifactId>
  <version>1</version>
  <packaging>pom</packaging>
  <dependencies>
    <dependency>
      <groupId>org.opensearch.plugin</groupId>
      <artifactId>$artifact</artifactId>
      <version>$version</version>
    </dependency>
  </dependencies>
</project>
POM
  mvn -q -B -f "$tmp/$name.xml" dependency:copy-dependencies \
    -DoutputDirectory="$dir" -DincludeScope=runtime
  for jar in "$dir"/*.jar; do
    [ -e "$home/lib/$(basename "$jar")" ] && rm -f "$jar"
  done
  cat >"$dir/plugin-descriptor.properties" <<PROPS
description=$name (Maven Central jars, descriptor written by tapir's deploy/opensearch/fetch.sh)
version=$version
name=$name
classname=$class
java.version=17
opensearch.version=$version
extended.plugins=$extended
has.native.controller=false
PROPS
done <<<"$modules"
cat >"$home/modules/lang-painless/plugin-security.policy" <<'POLICY'
grant {
  // generates classes at runtime, finds the classloaders of allowlisted classes
  permission java.lang.RuntimePermission "createClassLoader";
  permission java.lang.RuntimePermission "getClassLoader";
};
POLICY
cat >"$home/modules/transport-netty4/plugin-security.policy" <<'POLICY'
grant {
  // netty: reads the socket backlog, makes and accepts connections, sets
  // its threads' context classloader (without getClassLoader a stopping
  // node waits 30 s on netty's global event executor)
  permission java.io.FilePermission "/proc/sys/net/core/somaxconn", "read";
  permission java.net.SocketPermission "*", "accept,connect";
  permission java.lang.RuntimePermission "setContextClassLoader";
  permission java.lang.RuntimePermission "getClassLoader";
  permission java.util.PropertyPermission "sun.nio.ch.bugLevel", "write";
  permission java.lang.RuntimePermission "accessDeclaredMembers";
  permission java.lang.reflect.ReflectPermission "suppressAccessChecks";
};
POLICY
touch "$home/.done"
