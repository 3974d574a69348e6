#!/usr/bin/env bash
# Runs a single-node OpenSearch for sluice's integration tests.
#
#   scripts/opensearch.sh install   fetch the 2.19.6 integ-test zip from Maven Central, unpack it
#   scripts/opensearch.sh start     start a node on 127.0.0.1:$OPENSEARCH_PORT, wait until yellow
#   scripts/opensearch.sh stop      stop the node started by 'start' and remove its data
#   scripts/opensearch.sh url       print the node's URL
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
# an unprivileged system user that owns the install and the data dir.
set -euo pipefail

VERSION=2.19.6
ARTIFACT="org.opensearch.distribution.integ-test-zip:opensearch:${VERSION}:zip"
CACHE="${SLUICE_CACHE:-$HOME/.cache/sluice}"
HOME_DIR="$CACHE/opensearch-$VERSION"
PORT="${OPENSEARCH_PORT:-9200}"
URL="http://127.0.0.1:$PORT"
RUN_STATE="$CACHE/run"
PID_FILE="$RUN_STATE/opensearch-$PORT.pid"
DIR_FILE="$RUN_STATE/opensearch-$PORT.dir"
OS_USER="${SLUICE_OPENSEARCH_USER:-sluice-os}"
START_TIMEOUT="${OPENSEARCH_START_TIMEOUT:-180}"

log() { printf 'opensearch.sh: %s\n' "$*" >&2; }
die() { log "$*"; exit 1; }

is_root() { [ "$(id -u)" -eq 0 ]; }

# ensure_user creates the unprivileged system user that runs the node (root only).
ensure_user() {
	is_root || return 0
	id -u "$OS_USER" >/dev/null 2>&1 && return 0
	command -v useradd >/dev/null || die "useradd not found: cannot create user $OS_USER"
	useradd --system --user-group --no-create-home --home-dir /nonexistent \
		--shell /usr/sbin/nologin "$OS_USER"
	log "created system user $OS_USER"
}

# as_user runs a command as the node's user (or as is, when not root). setpriv execs without
# forking, so a backgrounded 'as_user ...' has the node's own pid.
as_user() {
	if is_root; then
		setpriv --reuid="$(id -u "$OS_USER")" --regid="$(id -g "$OS_USER")" --init-groups -- "$@"
	else
		"$@"
	fi
}

zip_path() {
	local repo
	repo="${MAVEN_REPO:-$HOME/.m2/repository}"
	printf '%s/org/opensearch/distribution/integ-test-zip/opensearch/%s/opensearch-%s.zip' \
		"$repo" "$VERSION" "$VERSION"
}

extract() { # zip destdir
	if command -v unzip >/dev/null; then
		unzip -q "$1" -d "$2"
	elif command -v python3 >/dev/null; then
		python3 -m zipfile -e "$1" "$2"
		chmod +x "$2/opensearch-$VERSION"/bin/*
	else
		die "need unzip or python3 to unpack $1"
	fi
}

cmd_install() {
	ensure_user
	mkdir -p "$CACHE"
	# Serialise concurrent installs (make setup and make test started together).
	if command -v flock >/dev/null; then
		exec 9>"$CACHE/.opensearch-install.lock"
		flock 9
	fi
	if [ -f "$HOME_DIR/.sluice-installed" ]; then
		return 0
	fi
	local zip
	zip="$(zip_path)"
	if [ ! -f "$zip" ]; then
		command -v mvn >/dev/null || die "mvn not found: install Maven (apt-get install maven)"
		log "fetching $ARTIFACT from Maven Central"
		mvn -q -B dependency:get -Dartifact="$ARTIFACT" -Dtransitive=false \
			${MAVEN_REPO:+-Dmaven.repo.local="$MAVEN_REPO"}
		[ -f "$zip" ] || die "mvn succeeded but $zip is missing (set MAVEN_REPO if ~/.m2 is elsewhere)"
	fi
	local tmp
	tmp="$(mktemp -d "$CACHE/.opensearch-unpack.XXXXXX")"
	extract "$zip" "$tmp"
	[ -x "$tmp/opensearch-$VERSION/bin/opensearch" ] || die "unexpected zip layout in $zip"
	rm -rf "$HOME_DIR"
	mv "$tmp/opensearch-$VERSION" "$HOME_DIR"
	rmdir "$tmp"
	if is_root; then
		chown -R "$OS_USER:$OS_USER" "$HOME_DIR"
	fi
	touch "$HOME_DIR/.sluice-installed"
	log "installed OpenSearch $VERSION in $HOME_DIR"
}

# running_pid prints the pid of the node started for $PORT, if it is still running.
running_pid() {
	[ -f "$PID_FILE" ] || return 1
	local pid
	pid="$(cat "$PID_FILE")"
	[ -n "$pid" ] && alive "$pid" || return 1
	grep -qa 'org.opensearch.bootstrap.OpenSearch' "/proc/$pid/cmdline" 2>/dev/null || return 1
	printf '%s\n' "$pid"
}

# alive: the process exists and is not a zombie waiting to be reaped.
alive() {
	[ -r "/proc/$1/stat" ] || return 1
	local state
	state="$(sed -e 's/^.*) //' "/proc/$1/stat" | cut -d' ' -f1)"
	[ "$state" != Z ]
}

healthy() {
	curl -fsS --max-time 5 -o /dev/null "$URL/_cluster/health?wait_for_status=yellow&timeout=2s"
}

print_logs() {
	local dir="$1" f
	for f in "$dir/logs/stdout.log" "$dir/logs/sluice.log"; do
		[ -f "$f" ] || continue
		log "---- tail of $f"
		tail -n 60 "$f" >&2
	done
}

java_home() {
	if [ -n "${OPENSEARCH_JAVA_HOME:-}" ]; then
		printf '%s' "$OPENSEARCH_JAVA_HOME"
	elif [ -n "${JAVA_HOME:-}" ]; then
		printf '%s' "$JAVA_HOME"
	else
		local java
		java="$(command -v java)" || die "java not found: install a JDK 17 (apt-get install openjdk-17-jdk-headless)"
		dirname "$(dirname "$(readlink -f "$java")")"
	fi
}

cmd_start() {
	[ -f "$HOME_DIR/.sluice-installed" ] || cmd_install
	ensure_user
	local pid
	if pid="$(running_pid)"; then
		log "already running (pid $pid)"
		healthy || die "node $pid does not answer on $URL"
		printf '%s\n' "$URL"
		return 0
	fi
	if curl -fsS --max-time 2 -o /dev/null "$URL/" 2>/dev/null; then
		die "something else already answers on $URL; set OPENSEARCH_PORT"
	fi

	local dir home
	dir="$(mktemp -d "${TMPDIR:-/tmp}/sluice-opensearch-$PORT.XXXXXX")"
	chmod 755 "$dir"
	mkdir -p "$dir/config" "$dir/data" "$dir/logs" "$dir/tmp"
	home="$HOME_DIR"
	# $HOME is often unreadable to other users (/root is 0700): then run from a hard-linked
	# (or, across file systems, copied) view of the install inside the run dir.
	if is_root && ! as_user test -r "$HOME_DIR/lib" 2>/dev/null; then
		home="$dir/home"
		cp -al "$HOME_DIR" "$home" 2>/dev/null || cp -a "$HOME_DIR" "$home"
	fi
	cp -a "$HOME_DIR/config/." "$dir/config/"
	# Relative JVM paths (gc log, heap dumps, error file) would land in the working directory.
	sed -i -e "s#logs/#$dir/logs/#g" -e "s#HeapDumpPath=data#HeapDumpPath=$dir/data#" \
		"$dir/config/jvm.options"
	cat >"$dir/config/opensearch.yml" <<EOF
cluster.name: sluice
node.name: sluice-node
network.host: 127.0.0.1
http.port: $PORT
transport.port: 9300-9399
discovery.type: single-node
path.data: $dir/data
path.logs: $dir/logs
cluster.routing.allocation.disk.threshold_enabled: false
action.auto_create_index: true
EOF
	if is_root; then
		chown -R "$OS_USER:$OS_USER" "$dir"
	fi
	mkdir -p "$RUN_STATE"
	printf '%s\n' "$dir" >"$DIR_FILE"

	local jh started
	jh="$(java_home)"
	started=$SECONDS
	(
		cd "$dir"
		export OPENSEARCH_JAVA_HOME="$jh"
		export OPENSEARCH_PATH_CONF="$dir/config"
		export OPENSEARCH_TMPDIR="$dir/tmp"
		export OPENSEARCH_JAVA_OPTS="${OPENSEARCH_JAVA_OPTS:--Xms512m -Xmx512m -XX:-UsePerfData}"
		export HOME="$dir"
		unset JAVA_TOOL_OPTIONS JAVA_OPTS
		local -a cmd=("$home/bin/opensearch" -p "$dir/opensearch.pid")
		if is_root; then
			cmd=(setpriv --reuid="$(id -u "$OS_USER")" --regid="$(id -g "$OS_USER")" --init-groups -- "${cmd[@]}")
		fi
		# setsid: the node outlives this script and ignores the terminal's signals. Neither
		# setsid (not a group leader here), setpriv nor bin/opensearch forks: $! is the JVM.
		exec setsid "${cmd[@]}" </dev/null >"$dir/logs/stdout.log" 2>&1
	) &
	pid=$!
	printf '%s\n' "$pid" >"$PID_FILE"

	while :; do
		if healthy 2>/dev/null; then
			break
		fi
		if ! alive "$pid"; then
			log "OpenSearch (pid $pid) exited during startup"
			print_logs "$dir"
			rm -f "$PID_FILE"
			exit 1
		fi
		if ((SECONDS - started >= START_TIMEOUT)); then
			log "OpenSearch did not reach yellow health within ${START_TIMEOUT}s"
			print_logs "$dir"
			cmd_stop || true
			exit 1
		fi
		sleep 0.5
	done
	# The node's own pid file is authoritative, should a wrapper above have forked after all.
	if [ -s "$dir/opensearch.pid" ]; then
		pid="$(cat "$dir/opensearch.pid")"
		printf '%s\n' "$pid" >"$PID_FILE"
	fi
	log "started pid $pid in $((SECONDS - started))s, data in $dir"
	printf '%s\n' "$URL"
}

cmd_stop() {
	local pid dir=""
	[ -f "$DIR_FILE" ] && dir="$(cat "$DIR_FILE")"
	if pid="$(running_pid)"; then
		kill -TERM "$pid" 2>/dev/null || true
		local deadline=$((SECONDS + 60))
		while alive "$pid"; do
			if ((SECONDS >= deadline)); then
				log "pid $pid ignored SIGTERM for 60s, sending SIGKILL"
				kill -KILL "$pid" 2>/dev/null || true
				deadline=$((SECONDS + 10))
			fi
			sleep 0.2
		done
		log "stopped pid $pid"
	else
		log "not running on port $PORT"
	fi
	rm -f "$PID_FILE" "$DIR_FILE"
	if [ -n "$dir" ] && [ -d "$dir" ]; then
		if [ "${SLUICE_OPENSEARCH_KEEP:-}" = 1 ]; then
			log "kept $dir"
		else
			rm -rf "$dir"
		fi
	fi
}

case "${1:-}" in
install) cmd_install ;;
start) cmd_start ;;
stop) cmd_stop ;;
url) printf '%s\n' "$URL" ;;
*)
	echo "usage: $0 install|start|stop|url" >&2
	exit 2
	;;
esac
