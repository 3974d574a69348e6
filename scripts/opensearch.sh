#!/usr/bin/env bash
# Runs a single-node OpenSearch for sluice's integration tests.
#
#   scripts/opensearch.sh install   fetch the 2.19.6 integ-test zip from Maven Central, unpack it
#   scripts/opensearch.sh start     start a node on 127.0.0.1:$OPENSEARCH_PORT, wait until yellow
#   scripts/opensearch.sh stop      stop the node started by 'start' and remove its data
#   scripts/opensearch.sh url       print the node's URL
#   scripts/opensearch.sh env       print `export SLUICE_OPENSEARCH_URL=...` for the running node
#
# Environment:
#   SLUICE_CACHE          install root (default $HOME/.cache/sluice)
#   OPENSEARCH_PORT       HTTP port (default 9200); the transport port is picked from 9300-9399
#   OPENSEARCH_JAVA_OPTS  JVM options (default -Xms512m -Xmx512m)
#   OPENSEARCH_START_TIMEOUT  seconds to wait for yellow health (default 180)
#   SLUICE_OPENSEARCH_USER    user that runs the node when this script runs as root (default sluice-os)
#   SLUICE_OPENSEARCH_KEEP=1  keep the data and log dir on stop (its path is printed)
#   MAVEN_REPO            local Maven repository (default ~/.m2/repository)
#
# The integ-test zip carries no security plugin (its plugins/ is empty) and only the
# transport-netty4 module: plain HTTP, no auth, core mappings and APIs only (no painless, no
# reindex, no analysis-common). OpenSearch refuses to run as root, so as root the node runs as
# an unprivileged system user that owns the install and the data dir. The common part is
# scripts/lib/searchnode.sh, shared with scripts/elasticsearch.sh.
set -euo pipefail

ENGINE=opensearch
ENGINE_TITLE=OpenSearch
VERSION=2.19.6
GROUP=org.opensearch.distribution.integ-test-zip
MAIN_CLASS=org.opensearch.bootstrap.OpenSearch
ENV_PREFIX=OPENSEARCH
NODE_USER="${SLUICE_OPENSEARCH_USER:-sluice-os}"
PORT="${OPENSEARCH_PORT:-9200}"
SCHEME=http
START_TIMEOUT="${OPENSEARCH_START_TIMEOUT:-180}"
KEEP="${SLUICE_OPENSEARCH_KEEP:-}"
LOG_NAME=opensearch.sh

node_env() { printf 'export SLUICE_OPENSEARCH_URL=%q\n' "$URL"; }

# shellcheck source=lib/searchnode.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib/searchnode.sh"
node_main "$@"
