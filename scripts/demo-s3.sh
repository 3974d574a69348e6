#!/usr/bin/env bash
# A local S3 server with sample data, for trying `sluice ingest` by hand.
#
#   scripts/demo-s3.sh start     start versitygw on 127.0.0.1:7070 (data under $DEMO_DIR)
#   scripts/demo-s3.sh put FILE KEY   upload FILE as s3://demo/KEY
#   scripts/demo-s3.sh sample    upload generated NDJSON (plain and gzip) under s3://demo/logs/
#   scripts/demo-s3.sh env       print the exports sluice needs to reach it
#   scripts/demo-s3.sh stop
#
# Uploads use curl's SigV4 signing; nothing else is needed. The credentials are throwaway ones
# for this local server only.
set -euo pipefail

DEMO_DIR=${DEMO_DIR:-${TMPDIR:-/tmp}/sluice-demo-s3}
PORT=${DEMO_S3_PORT:-7070}
BUCKET=demo
ACCESS=sluice-demo
SECRET=sluice-demo-secret
ENDPOINT="http://127.0.0.1:$PORT"

vgw() {
	if command -v versitygw >/dev/null; then echo versitygw; else echo "$(go env GOPATH)/bin/versitygw"; fi
}

put() {
	curl -fsS -H "x-amz-content-sha256: UNSIGNED-PAYLOAD" --aws-sigv4 "aws:amz:us-east-1:s3" --user "$ACCESS:$SECRET" -T "$1" "$ENDPOINT/$BUCKET/$2" >/dev/null
	echo "uploaded s3://$BUCKET/$2"
}

case "${1:-}" in
start)
	mkdir -p "$DEMO_DIR/root"
	if [ -f "$DEMO_DIR/pid" ] && kill -0 "$(cat "$DEMO_DIR/pid")" 2>/dev/null; then
		echo "already running on $ENDPOINT"
		exit 0
	fi
	"$(vgw)" --port "127.0.0.1:$PORT" --access "$ACCESS" --secret "$SECRET" --region us-east-1 \
		posix "$DEMO_DIR/root" >"$DEMO_DIR/log" 2>&1 &
	echo $! >"$DEMO_DIR/pid"
	for _ in $(seq 1 100); do
		curl -fsS -o /dev/null -H "x-amz-content-sha256: UNSIGNED-PAYLOAD" --aws-sigv4 "aws:amz:us-east-1:s3" --user "$ACCESS:$SECRET" "$ENDPOINT/" 2>/dev/null && break
		sleep 0.1
	done
	curl -fsS -H "x-amz-content-sha256: UNSIGNED-PAYLOAD" --aws-sigv4 "aws:amz:us-east-1:s3" --user "$ACCESS:$SECRET" -X PUT "$ENDPOINT/$BUCKET" >/dev/null 2>&1 || true
	echo "S3 server on $ENDPOINT, bucket '$BUCKET'"
	;;
put)
	put "$2" "$3"
	;;
sample)
	tmp=$(mktemp -d)
	for f in 1 2 3; do
		for i in $(seq 1 20000); do
			printf '{"file":%d,"n":%d,"level":"info","msg":"request served in %d ms"}\n' "$f" "$i" $((i % 97))
		done >"$tmp/part-$f.ndjson"
	done
	gzip -k "$tmp/part-3.ndjson"
	printf 'not json\n' >>"$tmp/part-2.ndjson" # one record for the dead-letter index
	put "$tmp/part-1.ndjson" logs/part-1.ndjson
	put "$tmp/part-2.ndjson" logs/part-2.ndjson
	put "$tmp/part-3.ndjson.gz" logs/part-3.ndjson.gz
	rm -rf "$tmp"
	;;
env)
	echo "export AWS_ENDPOINT_URL_S3=$ENDPOINT AWS_ACCESS_KEY_ID=$ACCESS AWS_SECRET_ACCESS_KEY=$SECRET AWS_REGION=us-east-1"
	;;
stop)
	if [ -f "$DEMO_DIR/pid" ]; then kill "$(cat "$DEMO_DIR/pid")" 2>/dev/null || true; rm -f "$DEMO_DIR/pid"; fi
	;;
*)
	sed -n '2,10p' "$0"
	exit 2
	;;
esac
