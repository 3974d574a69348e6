#!/usr/bin/env bash
# A local S3 server with sample data, for `make demo` and for trying `sluice ingest` by hand.
#
#   scripts/demo-s3.sh start          start versitygw on 127.0.0.1:$DEMO_S3_PORT (data under $DEMO_DIR)
#   scripts/demo-s3.sh put FILE KEY   upload FILE as s3://demo/KEY
#   scripts/demo-s3.sh upload DIR     upload every file under DIR, keyed by its path in DIR
#   scripts/demo-s3.sh sample         generate the demo dataset (go run ./internal/demodata) and upload it
#   scripts/demo-s3.sh env            print the exports sluice needs to reach it
#   scripts/demo-s3.sh stop
#
# Environment: DEMO_S3_PORT (default 7070), DEMO_DIR (default $TMPDIR/sluice-demo-s3).
# Uploads use curl's SigV4 signing; nothing else is needed. The credentials are throwaway ones
# for this local server only.
set -euo pipefail

DEMO_DIR=${DEMO_DIR:-${TMPDIR:-/tmp}/sluice-demo-s3}
PORT=${DEMO_S3_PORT:-7070}
BUCKET=demo
ACCESS=sluice-demo
SECRET=sluice-demo-secret
ENDPOINT="http://127.0.0.1:$PORT"
START_TIMEOUT=20 # seconds

die() { printf 'demo-s3.sh: %s\n' "$*" >&2; exit 1; }

vgw() {
	if command -v versitygw >/dev/null; then
		echo versitygw
	elif [ -x "$(go env GOPATH 2>/dev/null)/bin/versitygw" ]; then
		echo "$(go env GOPATH)/bin/versitygw"
	else
		return 1
	fi
}

s3curl() {
	curl -fsS --max-time 30 -H "x-amz-content-sha256: UNSIGNED-PAYLOAD" --aws-sigv4 "aws:amz:us-east-1:s3" \
		--user "$ACCESS:$SECRET" "$@"
}

# urlpath percent-encodes a key for a URL path (every byte but unreserved ones and '/'), so that
# keys with spaces, '#', '?' or non-ASCII letters upload as themselves.
urlpath() {
	local LC_ALL=C s=$1 out='' c i
	for ((i = 0; i < ${#s}; i++)); do
		c=${s:i:1}
		case $c in
		[A-Za-z0-9._~/-]) out+=$c ;;
		*) out+=$(printf '%%%02X' "'$c") ;;
		esac
	done
	printf '%s' "$out"
}

put() {
	s3curl -T "$1" "$ENDPOINT/$BUCKET/$(urlpath "$2")" >/dev/null || die "uploading $1 to s3://$BUCKET/$2 failed"
	echo "uploaded s3://$BUCKET/$2"
}

upload() {
	local dir=$1 f
	[ -d "$dir" ] || die "$dir is not a directory"
	while IFS= read -r f; do
		put "$dir/$f" "$f"
	done < <(cd "$dir" && find . -type f | sed 's|^\./||' | sort)
}

port_busy() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

case "${1:-}" in
start)
	bin=$(vgw) || die "versitygw not found: run 'make setup' (it runs go install github.com/versity/versitygw/cmd/versitygw)"
	mkdir -p "$DEMO_DIR/root"
	if [ -f "$DEMO_DIR/pid" ] && kill -0 "$(cat "$DEMO_DIR/pid")" 2>/dev/null; then
		echo "already running on $ENDPOINT"
		exit 0
	fi
	port_busy "$PORT" && die "port $PORT is taken by another program: set DEMO_S3_PORT to a free port"
	"$bin" --port "127.0.0.1:$PORT" --access "$ACCESS" --secret "$SECRET" --region us-east-1 \
		posix "$DEMO_DIR/root" >"$DEMO_DIR/log" 2>&1 &
	pid=$!
	echo "$pid" >"$DEMO_DIR/pid"
	deadline=$((SECONDS + START_TIMEOUT))
	until s3curl -o /dev/null "$ENDPOINT/" 2>/dev/null; do
		if ! kill -0 "$pid" 2>/dev/null; then
			rm -f "$DEMO_DIR/pid"
			die "versitygw exited at start: $(tail -n 3 "$DEMO_DIR/log" | tr '\n' ' ')"
		fi
		if ((SECONDS >= deadline)); then
			kill "$pid" 2>/dev/null || true
			rm -f "$DEMO_DIR/pid"
			die "versitygw did not answer on $ENDPOINT within ${START_TIMEOUT}s (log: $DEMO_DIR/log)"
		fi
		sleep 0.1
	done
	s3curl -X PUT "$ENDPOINT/$BUCKET" >/dev/null 2>&1 || true # exists already after a restart
	echo "S3 server on $ENDPOINT, bucket '$BUCKET'"
	;;
put)
	put "$2" "$3"
	;;
upload)
	upload "$2"
	;;
sample)
	tmp=$(mktemp -d)
	trap 'rm -rf "$tmp"' EXIT
	(cd "$(dirname "$0")/.." && go run ./internal/demodata -out "$tmp")
	upload "$tmp"
	;;
env)
	echo "export AWS_ENDPOINT_URL_S3=$ENDPOINT AWS_ACCESS_KEY_ID=$ACCESS AWS_SECRET_ACCESS_KEY=$SECRET AWS_REGION=us-east-1"
	;;
stop)
	if [ -f "$DEMO_DIR/pid" ]; then
		pid=$(cat "$DEMO_DIR/pid")
		kill "$pid" 2>/dev/null || true
		for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
		if kill -0 "$pid" 2>/dev/null; then kill -KILL "$pid" 2>/dev/null || true; fi
		rm -f "$DEMO_DIR/pid"
	fi
	;;
*)
	sed -n '2,12p' "$0"
	exit 2
	;;
esac
