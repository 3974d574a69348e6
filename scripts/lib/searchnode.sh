# shellcheck shell=bash
# Shared by scripts/opensearch.sh and scripts/elasticsearch.sh: install a search engine's
# integ-test zip from Maven Central and run one single-node cluster on 127.0.0.1.
#
# The sourcing script sets, before calling node_main:
#   ENGINE        opensearch | elasticsearch (zip and directory names, bin/$ENGINE, $ENGINE.yml)
#   ENGINE_TITLE  name in messages (OpenSearch, Elasticsearch)
#   VERSION       distribution version
#   GROUP         Maven group id of the integ-test zip
#   MAIN_CLASS    the server JVM's main class, to recognise its pid
#   ENV_PREFIX    prefix of the launcher's variables: OPENSEARCH (OPENSEARCH_JAVA_HOME, ...) or ES
#   NODE_USER     system user that runs the node when the script runs as root
#   PORT, SCHEME  HTTP port and scheme; NAME names the run state (e.g. elasticsearch-9201)
#   START_TIMEOUT seconds to wait for yellow health
#   KEEP          1: keep the data and log dir on stop
# and may define these hooks:
#   node_settings DIR   print extra lines for $ENGINE.yml
#   node_prepare DIR    runs before the node starts (config files, certificates, users)
#   node_curl_args      print curl arguments (one per line) that reach the running node
#   node_env            print `export VAR=value` lines that describe the running node
#
# Commands (node_main): install, start, stop, url, env.

CACHE="${SLUICE_CACHE:-$HOME/.cache/sluice}"
RUN_STATE="$CACHE/run"

log() { printf '%s: %s\n' "${LOG_NAME:-$ENGINE}" "$*" >&2; }
die() {
	log "$*"
	exit 1
}

node_init() {
	ARTIFACT="$GROUP:$ENGINE:$VERSION:zip"
	HOME_DIR="$CACHE/$ENGINE-$VERSION"
	URL="$SCHEME://127.0.0.1:$PORT"
	NAME="${NAME:-$ENGINE-$PORT}"
	PID_FILE="$RUN_STATE/$NAME.pid"
	LAUNCHER_PID_FILE="$RUN_STATE/$NAME.launcher.pid"
	DIR_FILE="$RUN_STATE/$NAME.dir"
}

is_root() { [ "$(id -u)" -eq 0 ]; }

# ensure_user creates the unprivileged system user that runs the node (root only).
ensure_user() {
	is_root || return 0
	id -u "$NODE_USER" >/dev/null 2>&1 && return 0
	command -v useradd >/dev/null || die "useradd not found: cannot create user $NODE_USER"
	# Two nodes started at once may race to create the same user: the loser finds it created.
	useradd --system --user-group --no-create-home --home-dir /nonexistent \
		--shell /usr/sbin/nologin "$NODE_USER" 2>/dev/null || id -u "$NODE_USER" >/dev/null ||
		die "cannot create user $NODE_USER"
	log "created system user $NODE_USER"
}

# as_node_user runs a command as the node's user (or as is, when not root). setpriv execs
# without forking, so a backgrounded 'as_node_user ...' has the command's own pid.
as_node_user() {
	if is_root; then
		setpriv --reuid="$(id -u "$NODE_USER")" --regid="$(id -g "$NODE_USER")" --init-groups -- "$@"
	else
		"$@"
	fi
}

zip_path() {
	local repo
	repo="${MAVEN_REPO:-$HOME/.m2/repository}"
	printf '%s/%s/%s/%s/%s-%s.zip' "$repo" "${GROUP//.//}" "$ENGINE" "$VERSION" "$ENGINE" "$VERSION"
}

extract() { # zip destdir
	if command -v unzip >/dev/null; then
		unzip -q "$1" -d "$2"
	elif command -v python3 >/dev/null; then
		python3 -m zipfile -e "$1" "$2"
		chmod +x "$2/$ENGINE-$VERSION"/bin/*
	else
		die "need unzip or python3 to unpack $1"
	fi
}

cmd_install() {
	ensure_user
	mkdir -p "$CACHE"
	# Serialise concurrent installs (make setup and make test, or two nodes, started together).
	if command -v flock >/dev/null; then
		exec 9>"$CACHE/.$ENGINE-install.lock"
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
	tmp="$(mktemp -d "$CACHE/.$ENGINE-unpack.XXXXXX")"
	extract "$zip" "$tmp"
	[ -x "$tmp/$ENGINE-$VERSION/bin/$ENGINE" ] || die "unexpected zip layout in $zip"
	rm -rf "$HOME_DIR"
	mv "$tmp/$ENGINE-$VERSION" "$HOME_DIR"
	rmdir "$tmp"
	if is_root; then
		chown -R "$NODE_USER:$NODE_USER" "$HOME_DIR"
	fi
	touch "$HOME_DIR/.sluice-installed"
	log "installed $ENGINE_TITLE $VERSION in $HOME_DIR"
}

# alive: the process exists and is not a zombie waiting to be reaped.
alive() {
	[ -r "/proc/$1/stat" ] || return 1
	local state
	state="$(sed -e 's/^.*) //' "/proc/$1/stat" | cut -d' ' -f1)"
	[ "$state" != Z ]
}

# pid_from FILE CLASS prints the pid in FILE if that process is alive and runs CLASS.
pid_from() {
	[ -f "$1" ] || return 1
	local pid
	pid="$(cat "$1")"
	[ -n "$pid" ] && alive "$pid" || return 1
	grep -qa "$2" "/proc/$pid/cmdline" 2>/dev/null || return 1
	printf '%s\n' "$pid"
}

# running_pid prints the pid of the node started for $PORT, if it is still running.
running_pid() { pid_from "$PID_FILE" "$MAIN_CLASS"; }

curl_node() { # curl arguments...
	local -a extra=()
	if declare -F node_curl_args >/dev/null; then
		mapfile -t extra < <(node_curl_args)
	fi
	curl "${extra[@]}" "$@"
}

healthy() {
	curl_node -fsS --max-time 5 -o /dev/null "$URL/_cluster/health?wait_for_status=yellow&timeout=2s"
}

# port_open: something accepts TCP connections on the port (whatever it answers to HTTP).
port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null; }

print_logs() {
	local dir="$1" f
	for f in "$dir/logs/stdout.log" "$dir/logs/sluice.log"; do
		[ -f "$f" ] || continue
		log "---- tail of $f"
		tail -n 60 "$f" >&2
	done
}

java_home() {
	local v="${ENV_PREFIX}_JAVA_HOME"
	if [ -n "${!v:-}" ]; then
		printf '%s' "${!v}"
	elif [ -n "${JAVA_HOME:-}" ]; then
		printf '%s' "$JAVA_HOME"
	else
		local java
		java="$(command -v java)" || die "java not found: install a JDK 17 (apt-get install openjdk-17-jdk-headless)"
		dirname "$(dirname "$(readlink -f "$java")")"
	fi
}

# node_setenv DIR sets the environment the distribution's tools read (the node's config in DIR).
# Call it in a subshell.
node_setenv() {
	local dir="$1" opts="${ENV_PREFIX}_JAVA_OPTS"
	cd "$dir"
	export "${ENV_PREFIX}_JAVA_HOME=$(java_home)"
	export "${ENV_PREFIX}_PATH_CONF=$dir/config"
	export "${ENV_PREFIX}_TMPDIR=$dir/tmp"
	export "$opts=${!opts:--Xms512m -Xmx512m -XX:-UsePerfData}"
	export HOME="$dir"
	unset JAVA_TOOL_OPTIONS JAVA_OPTS
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
	if port_open; then
		die "something else already listens on 127.0.0.1:$PORT; set the port variable"
	fi

	local dir home
	dir="$(mktemp -d "${TMPDIR:-/tmp}/sluice-$NAME.XXXXXX")"
	chmod 755 "$dir"
	mkdir -p "$dir/config" "$dir/data" "$dir/logs" "$dir/tmp"
	home="$HOME_DIR"
	# $HOME is often unreadable to other users (/root is 0700): then run from a hard-linked
	# (or, across file systems, copied) view of the install inside the run dir.
	if is_root && ! as_node_user test -r "$HOME_DIR/lib" 2>/dev/null; then
		home="$dir/home"
		cp -al "$HOME_DIR" "$home" 2>/dev/null || cp -a "$HOME_DIR" "$home"
	fi
	cp -a "$HOME_DIR/config/." "$dir/config/"
	# Relative JVM paths (gc log, heap dumps, error file) would land in the working directory.
	sed -i -e "s#logs/#$dir/logs/#g" -e "s#HeapDumpPath=data#HeapDumpPath=$dir/data#" \
		"$dir/config/jvm.options"
	{
		cat <<-CONF
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
		CONF
		if declare -F node_settings >/dev/null; then node_settings "$dir"; fi
	} >"$dir/config/$ENGINE.yml"
	mkdir -p "$RUN_STATE"
	printf '%s\n' "$dir" >"$DIR_FILE"
	if declare -F node_prepare >/dev/null; then node_prepare "$dir" "$home"; fi
	if is_root; then
		chown -R "$NODE_USER:$NODE_USER" "$dir"
	fi

	local started=$SECONDS
	local -a cmd=("$home/bin/$ENGINE" -p "$dir/$ENGINE.pid")
	if is_root; then
		cmd=(setpriv --reuid="$(id -u "$NODE_USER")" --regid="$(id -g "$NODE_USER")" --init-groups -- "${cmd[@]}")
	fi
	# setsid: the node outlives this script and ignores the terminal's signals. Neither setsid
	# (not a group leader here) nor setpriv forks: $! is bin/$ENGINE's JVM. OpenSearch's is the
	# server; Elasticsearch 8's is a launcher that starts the server as its child.
	(
		node_setenv "$dir"
		exec setsid "${cmd[@]}" </dev/null >"$dir/logs/stdout.log" 2>&1
	) &
	pid=$!
	printf '%s\n' "$pid" >"$PID_FILE"
	printf '%s\n' "$pid" >"$LAUNCHER_PID_FILE"

	while :; do
		if healthy 2>/dev/null; then
			break
		fi
		if ! alive "$pid"; then
			log "$ENGINE_TITLE (pid $pid) exited during startup"
			print_logs "$dir"
			rm -f "$PID_FILE" "$LAUNCHER_PID_FILE"
			exit 1
		fi
		if ((SECONDS - started >= START_TIMEOUT)); then
			log "$ENGINE_TITLE did not reach yellow health within ${START_TIMEOUT}s"
			print_logs "$dir"
			cmd_stop || true
			exit 1
		fi
		sleep 0.5
	done
	# The node's own pid file names the server JVM.
	if [ -s "$dir/$ENGINE.pid" ]; then
		pid="$(cat "$dir/$ENGINE.pid")"
		printf '%s\n' "$pid" >"$PID_FILE"
	fi
	log "started pid $pid in $((SECONDS - started))s on $URL, data in $dir"
	printf '%s\n' "$URL"
}

# stop_pid PID waits for PID to exit after SIGTERM, sending SIGKILL after 60 s.
stop_pid() {
	local pid="$1" deadline=$((SECONDS + 60))
	kill -TERM "$pid" 2>/dev/null || true
	while alive "$pid"; do
		if ((SECONDS >= deadline)); then
			log "pid $pid ignored SIGTERM for 60s, sending SIGKILL"
			kill -KILL "$pid" 2>/dev/null || true
			deadline=$((SECONDS + 10))
		fi
		sleep 0.2
	done
}

cmd_stop() {
	local pid launcher dir=""
	[ -f "$DIR_FILE" ] && dir="$(cat "$DIR_FILE")"
	launcher="$(pid_from "$LAUNCHER_PID_FILE" "$ENGINE")" || launcher=""
	if pid="$(running_pid)"; then
		stop_pid "$pid"
		log "stopped pid $pid"
	else
		log "not running on port $PORT"
	fi
	# Elasticsearch's launcher exits once its server has; a launcher left alone is stopped too.
	if [ -n "$launcher" ] && [ "$launcher" != "${pid:-}" ]; then
		stop_pid "$launcher"
	fi
	rm -f "$PID_FILE" "$LAUNCHER_PID_FILE" "$DIR_FILE"
	if [ -n "$dir" ] && [ -d "$dir" ]; then
		if [ "${KEEP:-}" = 1 ]; then
			log "kept $dir"
		else
			rm -rf "$dir"
		fi
	fi
}

# run_dir prints the data dir of the running node, or fails.
run_dir() {
	running_pid >/dev/null || die "not running on port $PORT (run start first)"
	cat "$DIR_FILE"
}

cmd_env() {
	run_dir >/dev/null
	node_env
}

node_main() {
	node_init
	case "${1:-}" in
	install) cmd_install ;;
	start) cmd_start ;;
	stop) cmd_stop ;;
	url) printf '%s\n' "$URL" ;;
	env) cmd_env ;;
	*)
		echo "usage: $0 ${USAGE_FLAGS:+$USAGE_FLAGS }install|start|stop|url|env" >&2
		exit 2
		;;
	esac
}
