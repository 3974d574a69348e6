#!/usr/bin/env bash
# The three search nodes sluice's integration tests use, handled together and in parallel:
# OpenSearch 2.19 (scripts/opensearch.sh), Elasticsearch 8.19 plain and secured
# (scripts/elasticsearch.sh, scripts/elasticsearch.sh --secured).
#
#   scripts/engines.sh install   install both distributions
#   scripts/engines.sh start     start the three nodes at once, wait for all; print env lines
#   scripts/engines.sh stop      stop the three nodes and remove their data
#   scripts/engines.sh env       print `export VAR=...` lines for the running nodes
#
#   eval "$(scripts/engines.sh start)"   sets SLUICE_OPENSEARCH_URL, SLUICE_ELASTICSEARCH_URL,
#                                        SLUICE_ELASTICSEARCH_TLS_URL, SLUICE_ELASTICSEARCH_CA_CERT,
#                                        SLUICE_ELASTICSEARCH_USERNAME, SLUICE_ELASTICSEARCH_PASSWORD
#
# Ports and other settings: see the two scripts (OPENSEARCH_PORT, ELASTICSEARCH_PORT,
# ELASTICSEARCH_TLS_PORT, ...). A failed start leaves the nodes that did start running; `stop`
# stops those.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
nodes=("$here/opensearch.sh" "$here/elasticsearch.sh" "$here/elasticsearch.sh --secured")

# each CMD runs `NODE CMD` for every node in parallel (stdout discarded) and fails if any failed.
each() {
	local -a pids=()
	local node pid failed=0
	for node in "${nodes[@]}"; do
		# shellcheck disable=SC2086 # a node is a script and its flags
		$node "$1" >/dev/null &
		pids+=($!)
	done
	for pid in "${pids[@]}"; do
		wait "$pid" || failed=1
	done
	return "$failed"
}

env_lines() {
	local node
	for node in "${nodes[@]}"; do
		# shellcheck disable=SC2086
		$node env
	done
}

case "${1:-}" in
install)
	# One install per distribution; the two Elasticsearch configurations share theirs.
	"$here/opensearch.sh" install &
	os=$!
	"$here/elasticsearch.sh" install
	wait "$os"
	;;
start)
	started=$SECONDS
	each start || {
		echo "engines.sh: a node failed to start (the others run: scripts/engines.sh stop)" >&2
		exit 1
	}
	echo "engines.sh: three nodes up in $((SECONDS - started))s" >&2
	env_lines
	;;
stop) each stop ;;
env) env_lines ;;
*)
	echo "usage: $0 install|start|stop|env" >&2
	exit 2
	;;
esac
