#!/usr/bin/env bash
# The main job end to end, on one machine (`make demo`):
#
#   1. a search engine: ELASTICSEARCH_URL if it is set (it must answer), else a local OpenSearch
#      node started with scripts/opensearch.sh on 127.0.0.1:$OPENSEARCH_PORT
#   2. a local S3 server (versitygw, scripts/demo-s3.sh) with the generated sample data
#      (go run ./internal/demodata): access logs and app events as NDJSON (plain, gzip, zstd;
#      one object large enough to be split into chunks), orders as CSV, a few broken lines
#   3. `sluice dev`: an embedded Temporal server and a worker
#   4. `sluice ingest --wait` of the logs, then of the CSV, with the progress line
#   5. the counts (checked against what the generator wrote), a sample search, the dead letters
#
# It stops everything it started when it ends, fails or is interrupted (Ctrl-C), and leaves
# alone what it did not start. With ELASTICSEARCH_URL the indices stay for you to explore;
# the demo deletes its own indices ($DEMO_INDEX-*) there before it loads them again.
#
# Environment (defaults in brackets):
#   ELASTICSEARCH_URL    use this cluster instead of starting a node (ELASTICSEARCH_API_KEY or
#                        ELASTICSEARCH_USERNAME/_PASSWORD and ELASTICSEARCH_CA_CERT as for sluice)
#   OPENSEARCH_PORT      port of the node the demo starts [9200]
#   DEMO_S3_PORT         port of the S3 server [7070]
#   DEMO_TEMPORAL_PORT   port of the Temporal server of `sluice dev` [7233]
#   DEMO_INDEX           prefix of the indices [sluice-demo]: <prefix>-logs, <prefix>-orders
#   DEMO_CHUNK_SIZE      --chunk-size of the logs backfill [512KiB]
#   DEMO_ACCESS_LINES    records in the large access log object [12000]
#   DEMO_KEEP=1          keep the run directory (logs of sluice dev, S3 server and OpenSearch)
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
SLUICE=$ROOT/bin/sluice
OPENSEARCH_SH=$ROOT/scripts/opensearch.sh
DEMO_S3_SH=$ROOT/scripts/demo-s3.sh

export OPENSEARCH_PORT=${OPENSEARCH_PORT:-9200}
export DEMO_S3_PORT=${DEMO_S3_PORT:-7070}
TEMPORAL_PORT=${DEMO_TEMPORAL_PORT:-7233}
TEMPORAL_ADDRESS=127.0.0.1:$TEMPORAL_PORT
INDEX=${DEMO_INDEX:-sluice-demo}
LOGS_INDEX=$INDEX-logs
ORDERS_INDEX=$INDEX-orders
CHUNK_SIZE=${DEMO_CHUNK_SIZE:-512KiB}
ACCESS_LINES=${DEMO_ACCESS_LINES:-12000}
DEV_START_TIMEOUT=60 # seconds for sluice dev to poll its task queue
STOP_TIMEOUT=30      # seconds for sluice dev to stop after SIGTERM

# What the demo started, for cleanup: only these are stopped.
STARTED_OPENSEARCH=
STARTED_S3=
DEV_PID=
RUN_DIR=
BEGAN=$SECONDS

# die says in one line what is wrong and how to fix it.
die() { printf 'make demo: %s\n' "$*" >&2; exit 1; }
step() { printf '\n==> %s\n' "$*"; }
# redact hides user:password@ in a URL before it is printed.
redact() { sed -E 's#//[^/@]*@#//***@#g' <<<"$1"; }
port_busy() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# es_auth prints curl config lines with the credentials sluice reads from the environment, so
# that they reach curl on a pipe and never on its command line.
es_auth() {
	if [ -n "${ELASTICSEARCH_API_KEY:-}" ]; then
		printf 'header = "Authorization: ApiKey %s"\n' "$ELASTICSEARCH_API_KEY"
	elif [ -n "${ELASTICSEARCH_USERNAME:-}" ]; then
		printf 'user = "%s:%s"\n' "$ELASTICSEARCH_USERNAME" "${ELASTICSEARCH_PASSWORD:-}"
	fi
	if [ -n "${ELASTICSEARCH_CA_CERT:-}" ]; then
		printf 'cacert = "%s"\n' "$ELASTICSEARCH_CA_CERT"
	fi
}

# es PATH [curl args...]: a request to the search engine.
es() {
	local path=$1
	shift
	curl -fsS --max-time 30 -K <(es_auth) "$@" "$ES_URL/$path"
}

# curl_shown prints the start of a curl command for the reader to paste: the credentials and
# CA appear as the variables they come from, never as their values.
curl_shown() {
	local s='curl -s'
	if [ -n "${ELASTICSEARCH_CA_CERT:-}" ]; then s+=' --cacert "$ELASTICSEARCH_CA_CERT"'; fi
	if [ -n "${ELASTICSEARCH_API_KEY:-}" ]; then
		s+=' -H "Authorization: ApiKey $ELASTICSEARCH_API_KEY"'
	elif [ -n "${ELASTICSEARCH_USERNAME:-}" ]; then
		s+=' -u "$ELASTICSEARCH_USERNAME:$ELASTICSEARCH_PASSWORD"'
	fi
	printf '%s' "$s"
}

es_count() { es "$1/_count" | sed -E 's/.*"count":([0-9]+).*/\1/'; }

cleanup() {
	local rc=$?
	trap '' INT TERM # a second Ctrl-C must not leave a node running
	local stopped=()
	if [ -n "$DEV_PID" ] && kill -0 "$DEV_PID" 2>/dev/null; then
		kill -TERM "$DEV_PID" 2>/dev/null || true
		local deadline=$((SECONDS + STOP_TIMEOUT))
		while kill -0 "$DEV_PID" 2>/dev/null && ((SECONDS < deadline)); do sleep 0.2; done
		if kill -0 "$DEV_PID" 2>/dev/null; then kill -KILL "$DEV_PID" 2>/dev/null || true; fi
		wait "$DEV_PID" 2>/dev/null || true
		stopped+=("sluice dev")
	fi
	if [ -n "$STARTED_S3" ]; then
		"$DEMO_S3_SH" stop || true
		stopped+=("the S3 server")
	fi
	if [ -n "$STARTED_OPENSEARCH" ]; then
		"$OPENSEARCH_SH" stop 2>/dev/null || echo "make demo: stopping OpenSearch failed; run: OPENSEARCH_PORT=$OPENSEARCH_PORT $OPENSEARCH_SH stop" >&2
		stopped+=("OpenSearch")
	fi
	if [ -n "$RUN_DIR" ]; then
		if [ "${DEMO_KEEP:-}" = 1 ] || { [ "$rc" -ne 0 ] && [ "$rc" -ne 130 ]; }; then
			echo "make demo: logs kept in $RUN_DIR"
		else
			rm -rf "$RUN_DIR"
		fi
	fi
	[ "$rc" -ne 130 ] || echo "make demo: interrupted"
	if ((${#stopped[@]} > 0)); then
		local IFS=,
		echo "make demo: stopped ${stopped[*]}" | sed 's/,/, /g'
	fi
	exit "$rc"
}

# preflight checks everything the demo needs before it starts anything, and says in one line
# what is missing.
preflight() {
	command -v curl >/dev/null || die "curl not found: install curl (apt-get install curl)"
	command -v go >/dev/null || die "go not found: install Go 1.26 (https://go.dev/dl/), then run 'make setup'"
	[ -x "$SLUICE" ] && [ -x "$ROOT/bin/sluice-dev" ] || die "bin/sluice is not built: run 'make setup'"
	command -v versitygw >/dev/null || [ -x "$(go env GOPATH)/bin/versitygw" ] ||
		die "versitygw (the S3 server) not found: run 'make setup'"
	if port_busy "$DEMO_S3_PORT"; then
		die "port $DEMO_S3_PORT (S3 server) is taken by another program: set DEMO_S3_PORT to a free port"
	fi
	if port_busy "$TEMPORAL_PORT"; then
		die "port $TEMPORAL_PORT (Temporal) is taken by another program: set DEMO_TEMPORAL_PORT to a free port"
	fi
	if [ -n "${ELASTICSEARCH_URL:-}" ]; then
		ES_URL=${ELASTICSEARCH_URL%%,*}
		ES_URL=${ES_URL%/}
		es "_cluster/health" -o /dev/null 2>/dev/null ||
			die "ELASTICSEARCH_URL=$(redact "$ES_URL") does not answer: start it, or unset ELASTICSEARCH_URL to let the demo start OpenSearch"
		return
	fi
	ES_URL=http://127.0.0.1:$OPENSEARCH_PORT
	if port_busy "$OPENSEARCH_PORT"; then
		die "port $OPENSEARCH_PORT is taken: set ELASTICSEARCH_URL=$ES_URL to use what answers there, or OPENSEARCH_PORT to a free port"
	fi
	compgen -G "${SLUICE_CACHE:-$HOME/.cache/sluice}/opensearch-*/.sluice-installed" >/dev/null ||
		die "OpenSearch is not installed: run 'make setup' (or set ELASTICSEARCH_URL to a running cluster)"
	[ -n "${OPENSEARCH_JAVA_HOME:-}${JAVA_HOME:-}" ] || command -v java >/dev/null ||
		die "java not found: install a JDK 17 (apt-get install openjdk-17-jdk-headless), or set ELASTICSEARCH_URL to a running cluster"
}

start_search_engine() {
	if [ -n "${ELASTICSEARCH_URL:-}" ]; then
		step "search engine: $(redact "$ES_URL") (ELASTICSEARCH_URL; not started by the demo)"
	else
		step "search engine: starting OpenSearch on 127.0.0.1:$OPENSEARCH_PORT (scripts/opensearch.sh)"
		STARTED_OPENSEARCH=1
		"$OPENSEARCH_SH" start >/dev/null
	fi
	echo "removing indices left by an earlier demo: $LOGS_INDEX*, $ORDERS_INDEX*"
	es "$LOGS_INDEX,$LOGS_INDEX-dead-letters,$ORDERS_INDEX,$ORDERS_INDEX-dead-letters?ignore_unavailable=true" \
		-X DELETE -o /dev/null
}

start_s3() {
	step "S3 server: versitygw on 127.0.0.1:$DEMO_S3_PORT with the sample data"
	export DEMO_DIR=$RUN_DIR/s3
	STARTED_S3=1
	"$DEMO_S3_SH" start
	eval "$("$DEMO_S3_SH" env)"
	(cd "$ROOT" && go run ./internal/demodata -out "$RUN_DIR/data" -access-lines "$ACCESS_LINES") >"$RUN_DIR/manifest"
	"$DEMO_S3_SH" upload "$RUN_DIR/data" >/dev/null
	grep -v = "$RUN_DIR/manifest" | sed 's#^  #  s3://demo/#'
	local k v
	while IFS== read -r k v; do
		case $k in NDJSON_GOOD | NDJSON_BAD | CSV_GOOD | CSV_BAD) printf -v "$k" '%s' "$v" ;; esac
	done <"$RUN_DIR/manifest"
}

start_dev() {
	step "sluice dev: Temporal server on $TEMPORAL_ADDRESS and a worker (log: $RUN_DIR/dev.log)"
	"$SLUICE" dev --port "$TEMPORAL_PORT" --data-dir "$RUN_DIR/temporal" \
		--es-url "${ELASTICSEARCH_URL:-$ES_URL}" --s3-endpoint "$AWS_ENDPOINT_URL_S3" >"$RUN_DIR/dev.log" 2>&1 &
	DEV_PID=$!
	local deadline=$((SECONDS + DEV_START_TIMEOUT))
	until grep -q 'worker polling task queue' "$RUN_DIR/dev.log"; do
		if ! kill -0 "$DEV_PID" 2>/dev/null; then
			DEV_PID=
			tail -n 5 "$RUN_DIR/dev.log" >&2
			die "sluice dev exited at start (above: the end of its log)"
		fi
		((SECONDS < deadline)) || die "sluice dev did not start its worker within ${DEV_START_TIMEOUT}s (log: $RUN_DIR/dev.log)"
		sleep 0.2
	done
	grep '^sluice dev:' "$RUN_DIR/dev.log" | grep -v 'press Ctrl-C' || true
}

# ingest runs `sluice ingest --wait` with the given flags and shows the command first. Its
# warning that no worker polls the task queue is dropped: the demo has just seen its worker
# start, and the server can take a moment to list a poller that started a moment ago. The
# progress line is on stdout and untouched.
ingest() {
	step "sluice ingest $* --wait"
	local rc=0
	"$SLUICE" ingest --temporal-address "$TEMPORAL_ADDRESS" "$@" --wait \
		2> >(grep --line-buffered -v 'warning: no worker has polled task queue' >&2) || rc=$?
	case $rc in
	0) ;;
	130) exit 130 ;; # Ctrl-C: cleanup stops sluice dev, and the backfill with it
	*) die "sluice ingest exited with $rc (worker log: $RUN_DIR/dev.log)" ;;
	esac
}

check_counts() {
	step "counts"
	es "$LOGS_INDEX,$LOGS_INDEX-dead-letters,$ORDERS_INDEX,$ORDERS_INDEX-dead-letters/_refresh?ignore_unavailable=true" -X POST -o /dev/null
	local ok=1 name want got
	for name in "$LOGS_INDEX:$NDJSON_GOOD" "$LOGS_INDEX-dead-letters:$NDJSON_BAD" \
		"$ORDERS_INDEX:$CSV_GOOD" "$ORDERS_INDEX-dead-letters:$CSV_BAD"; do
		want=${name##*:}
		name=${name%:*}
		got=$(es_count "$name")
		printf '  %-32s %6s documents' "$name" "$got"
		if [ "$got" = "$want" ]; then
			echo "  (as generated)"
		else
			echo "  (generated: $want)"
			ok=
		fi
	done
	[ -n "$ok" ] || die "the index does not hold what the generator wrote (worker log: $RUN_DIR/dev.log)"
}

show_search() {
	local query='{"size":1,"_source":["@timestamp","url.path","http.response.status_code","client.ip"],
 "query":{"range":{"http.response.status_code":{"gte":500}}},"sort":[{"@timestamp":"desc"}],
 "aggs":{"paths":{"terms":{"field":"url.path.keyword","size":3}}}}'
	step "a search: server errors (5xx), the latest and the top paths"
	echo "$(curl_shown) '$(redact "$ES_URL")/$LOGS_INDEX/_search?pretty' -H 'Content-Type: application/json' -d '$(tr -d '\n' <<<"$query")'"
	es "$LOGS_INDEX/_search?pretty&filter_path=hits.total.value,hits.hits._source,aggregations.paths.buckets" \
		-H 'Content-Type: application/json' -d "$query"
}

show_dead_letters() {
	step "dead letters: in the indices $LOGS_INDEX-dead-letters and $ORDERS_INDEX-dead-letters"
	echo "(each holds the record as it was read, the reason, the object and the offset; one of them:)"
	echo "$(curl_shown) '$(redact "$ES_URL")/$LOGS_INDEX-dead-letters/_search?pretty&size=1'"
	es "$LOGS_INDEX-dead-letters/_search?pretty&size=1&sort=offset:asc&filter_path=hits.hits._source"
	echo "all of them (object, offset, status, error):"
	local doc
	es "$LOGS_INDEX-dead-letters,$ORDERS_INDEX-dead-letters/_search?size=20&sort=object:asc,offset:asc&_source=object,offset,status,error_type" |
		grep -o '"_source":{[^}]*}' | while IFS= read -r doc; do
		printf '  %-50s %8s  %s  %s\n' "$(field object "$doc")" "$(field offset "$doc")" \
			"$(field status "$doc")" "$(field error_type "$doc")"
	done
}

# field NAME JSON prints the value of a flat field of a JSON object (no nesting, no escapes).
field() { grep -o "\"$1\":\"\?[^\",}]*" <<<"$2" | sed -E 's/^"[^"]*":"?//'; }

main() {
	preflight
	trap cleanup EXIT
	trap 'exit 130' INT
	trap 'exit 143' TERM
	RUN_DIR=$(mktemp -d "${TMPDIR:-/tmp}/sluice-demo.XXXXXX")
	echo "sluice demo: S3 -> Temporal -> $( [ -n "${ELASTICSEARCH_URL:-}" ] && echo "your cluster" || echo OpenSearch); everything it starts is stopped at the end or on Ctrl-C"
	start_search_engine
	start_s3
	start_dev
	ingest --source s3://demo/logs/ --index "$LOGS_INDEX" --chunk-size "$CHUNK_SIZE"
	ingest --source s3://demo/orders/ --format csv --index "$ORDERS_INDEX"
	check_counts
	show_search
	show_dead_letters
	step "done in $((SECONDS - BEGAN))s"
	if [ -n "$STARTED_OPENSEARCH" ]; then
		echo "The node and its indices go away now; to keep them, start a node yourself and point the demo at it:"
		if [ "$OPENSEARCH_PORT" = 9200 ]; then
			echo "  scripts/opensearch.sh start && ELASTICSEARCH_URL=http://127.0.0.1:9200 make demo"
		else
			echo "  OPENSEARCH_PORT=$OPENSEARCH_PORT scripts/opensearch.sh start && ELASTICSEARCH_URL=$ES_URL make demo"
		fi
	else
		echo "The indices stay on $(redact "$ES_URL"): $LOGS_INDEX, $ORDERS_INDEX and their -dead-letters."
	fi
}

main "$@"
