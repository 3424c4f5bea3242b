#!/usr/bin/env bash
# deploy/kafka.sh - a real single-node Apache Kafka broker (KRaft, broker + controller in one JVM)
# for local development and tests, without Docker and without the release tarball.
#
# The broker's jars are resolved from Maven Central by deploy/kafka/pom.xml (versions pinned there) and
# copied once into a cache outside git; the configuration is rendered from templates in deploy/kafka/.
#
# Usage: deploy/kafka.sh {start|stop|kill|status}
#   start   fetch jars (once), format storage (once), start in the background, wait until the port
#           accepts connections (60 s). A no-op when the port already accepts connections.
#   stop    graceful SIGTERM (controlled shutdown), wait until the process is gone.
#   kill    SIGKILL, to simulate a crash in fault tests; data survives, the next start recovers logs.
#   status  exit 0 if the broker port accepts connections, 3 if not.
#
# Environment:
#   CHURNWATCH_HOME                   state folder (default ${XDG_CACHE_HOME:-$HOME/.cache}/churnwatch)
#   CHURNWATCH_KAFKA_PORT             PLAINTEXT listener on 127.0.0.1 (default 9092)
#   CHURNWATCH_KAFKA_CONTROLLER_PORT  KRaft CONTROLLER listener on 127.0.0.1 (default 9093)
#
# Files under $CHURNWATCH_HOME:
#   kafka-<version>/libs/        runtime classpath (+ .complete marker written after a successful fetch)
#   kafka-data/                  log.dirs (topics, offsets, KRaft metadata) - survives stop/kill/start
#   kafka-server.properties      rendered on every start from deploy/kafka/server.properties.template
#   kafka.log                    broker stdout/stderr (log4j2 console appender), appended per start,
#                                moved to kafka.log.1 at start once above 20 MB
#   kafka.pid, kafka.lock        pid of the broker JVM; lock serialising concurrent start/stop/kill
set -euo pipefail

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
readonly SCRIPT_DIR
readonly KAFKA_CONF_DIR="$SCRIPT_DIR/kafka"
readonly POM="$KAFKA_CONF_DIR/pom.xml"
readonly TEMPLATE="$KAFKA_CONF_DIR/server.properties.template"
readonly LOG4J_CONFIG="$KAFKA_CONF_DIR/log4j2.properties"

# The Kafka version lives in one place only: the <kafka.version> property of the pom.
KAFKA_VERSION="$(sed -n 's:.*<kafka\.version>\(.*\)</kafka\.version>.*:\1:p' "$POM" | head -n 1)"
readonly KAFKA_VERSION

readonly CHURNWATCH_HOME="${CHURNWATCH_HOME:-${XDG_CACHE_HOME:-${HOME:?HOME is not set}/.cache}/churnwatch}"
readonly PORT="${CHURNWATCH_KAFKA_PORT:-9092}"
readonly CONTROLLER_PORT="${CHURNWATCH_KAFKA_CONTROLLER_PORT:-9093}"

readonly INSTALL_DIR="$CHURNWATCH_HOME/kafka-$KAFKA_VERSION"
readonly LIBS_DIR="$INSTALL_DIR/libs"
readonly LIBS_MARKER="$INSTALL_DIR/.complete"
readonly DATA_DIR="$CHURNWATCH_HOME/kafka-data"
readonly SERVER_CONFIG="$CHURNWATCH_HOME/kafka-server.properties"
readonly LOG_FILE="$CHURNWATCH_HOME/kafka.log"
readonly PID_FILE="$CHURNWATCH_HOME/kafka.pid"
readonly LOCK_FILE="$CHURNWATCH_HOME/kafka.lock"

readonly DEPENDENCY_PLUGIN="org.apache.maven.plugins:maven-dependency-plugin:3.8.1"
readonly START_DEADLINE_S=60   # JVM start + KRaft election + unfencing takes a few seconds normally
readonly STOP_DEADLINE_S=60    # controlled shutdown flushes and checkpoints; usually 1-3 s
readonly POLL_INTERVAL_S=0.25
readonly LOG_ROTATE_BYTES=$((20 * 1024 * 1024))
BROKER_PID=""  # set by launch_broker

# What bin/kafka-run-class.sh uses for the broker, with a smaller heap (512 MB is plenty for tests).
readonly BROKER_JVM_OPTS=(
    -Xmx512m -Xms256m
    -server -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -XX:InitiatingHeapOccupancyPercent=35
    -XX:+ExplicitGCInvokesConcurrent -Djava.awt.headless=true
)
# The storage tool is a short-lived CLI; the release scripts give tools 256 MB.
readonly TOOL_JVM_OPTS=(-Xmx256m -Djava.awt.headless=true)

say() { printf 'kafka: %s\n' "$*"; }
die() { printf 'kafka: error: %s\n' "$*" >&2; exit 1; }

usage() {
    printf 'usage: %s {start|stop|kill|status}\n' "$0" >&2
    exit 2
}

# ---------------------------------------------------------------------------------------------------
# Prerequisites
# ---------------------------------------------------------------------------------------------------

# Installs Debian packages when we are allowed to (root + apt); otherwise names what is missing.
apt_install_or_die() {
    local what="$1"; shift
    if [[ $EUID -eq 0 ]] && command -v apt-get >/dev/null 2>&1; then
        say "$what not found; installing Debian package(s): $*"
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
    else
        die "$what is required but not installed (Debian/Ubuntu: apt-get install $*)"
    fi
}

# Kafka 4.x brokers need Java 17 or newer.
ensure_java() {
    command -v java >/dev/null 2>&1 || apt_install_or_die "java" openjdk-17-jre-headless
    command -v java >/dev/null 2>&1 || die "java is still not on PATH after installing it"
    local spec
    spec="$(java -XshowSettings:properties -version 2>&1 \
        | sed -n 's/^ *java\.specification\.version = //p')"
    if [[ -z "$spec" || "$spec" == 1.* || "$spec" -lt 17 ]]; then
        die "Kafka $KAFKA_VERSION needs Java 17+, but 'java' is version ${spec:-unknown} ($(command -v java))"
    fi
}

# Maven is only needed for the one-time jar fetch.
ensure_maven() {
    command -v mvn >/dev/null 2>&1 || apt_install_or_die "mvn (Apache Maven)" maven
    command -v mvn >/dev/null 2>&1 || die "mvn is still not on PATH after installing it"
}

# Copies the broker's runtime classpath from Maven Central into the cache, once per Kafka version.
# The marker is written only after a complete, successful copy, so an interrupted fetch is redone.
fetch_jars() {
    [[ -f "$LIBS_MARKER" ]] && return 0
    ensure_maven
    say "fetching Kafka $KAFKA_VERSION jars from Maven Central into $LIBS_DIR (one time)"
    rm -rf "$LIBS_DIR"
    mkdir -p "$LIBS_DIR"
    local started
    started="$(now_us)"
    # 9>&- : do not hand the start lock to Maven (it is released when this script exits anyway).
    # Maven's output goes to a file shown only on failure: even with -q -B, Maven 3.8 prints stray ANSI
    # reset sequences. 9>&- keeps the start lock out of Maven.
    local mvn_log="$INSTALL_DIR/mvn.log"
    if ! mvn -q -B -Dstyle.color=never -f "$POM" "$DEPENDENCY_PLUGIN:copy-dependencies" \
        -DincludeScope=runtime -DoutputDirectory="$LIBS_DIR" >"$mvn_log" 2>&1 9>&-; then
        cat "$mvn_log" >&2
        die "Maven could not fetch the Kafka jars (output above, also in $mvn_log); nothing was cached"
    fi
    [[ -f "$LIBS_DIR/kafka_2.13-$KAFKA_VERSION.jar" ]] \
        || die "Maven finished but $LIBS_DIR has no kafka_2.13-$KAFKA_VERSION.jar"
    printf 'kafka %s fetched %s\n' "$KAFKA_VERSION" "$(date -Is)" >"$LIBS_MARKER"
    say "fetched $(find "$LIBS_DIR" -name '*.jar' | wc -l) jars ($(du -sh "$LIBS_DIR" | cut -f1)) in $(elapsed_since "$started") s"
}

# ---------------------------------------------------------------------------------------------------
# Configuration and storage
# ---------------------------------------------------------------------------------------------------

# Escapes a value for the replacement side of a sed s|||.
sed_escape() { printf '%s' "$1" | sed -e 's/[\\|&]/\\&/g'; }

# Rendered on every start, so port changes and template edits take effect without a reset.
render_config() {
    [[ "$PORT" =~ ^[0-9]+$ && "$CONTROLLER_PORT" =~ ^[0-9]+$ ]] \
        || die "CHURNWATCH_KAFKA_PORT / CHURNWATCH_KAFKA_CONTROLLER_PORT must be numbers"
    [[ "$PORT" != "$CONTROLLER_PORT" ]] || die "broker and controller ports must differ (both $PORT)"
    local tmp="$SERVER_CONFIG.tmp.$$"
    sed -e "s|@PORT@|$PORT|g" \
        -e "s|@CONTROLLER_PORT@|$CONTROLLER_PORT|g" \
        -e "s|@DATA_DIR@|$(sed_escape "$DATA_DIR")|g" \
        "$TEMPLATE" >"$tmp"
    mv -f "$tmp" "$SERVER_CONFIG"
}

# KRaft refuses to start on an unformatted log dir; formatting twice would be refused too, so it is
# done only when meta.properties (written by the formatter) is absent. With controller.quorum.voters
# in the config the formatter must NOT get --standalone (4.1.1 rejects that combination).
format_storage() {
    [[ -f "$DATA_DIR/meta.properties" ]] && return 0
    mkdir -p "$DATA_DIR"
    local cluster_id
    # The tool's log4j lines share stdout with the id; keep only the 22-character base64url uuid.
    cluster_id="$(java "${TOOL_JVM_OPTS[@]}" -Dlog4j2.configurationFile="$LOG4J_CONFIG" \
        -cp "$LIBS_DIR/*" kafka.tools.StorageTool random-uuid 2>>"$LOG_FILE" \
        | grep -E '^[A-Za-z0-9_-]{22}$' | tail -n 1)" || die "kafka.tools.StorageTool random-uuid failed"
    say "formatting $DATA_DIR (cluster id $cluster_id)"
    java "${TOOL_JVM_OPTS[@]}" -Dlog4j2.configurationFile="$LOG4J_CONFIG" \
        -cp "$LIBS_DIR/*" kafka.tools.StorageTool format -t "$cluster_id" -c "$SERVER_CONFIG" \
        >>"$LOG_FILE" 2>&1 || { tail_log; die "formatting the storage failed"; }
}

# ---------------------------------------------------------------------------------------------------
# Process helpers
# ---------------------------------------------------------------------------------------------------

# True when something accepts TCP connections on 127.0.0.1:$1. The broker binds its PLAINTEXT port only
# once it is ready to serve, so this is a valid readiness probe (the controller port is not).
port_open() {
    # shellcheck disable=SC2016  # $1 is expanded by the inner bash, which gets the port as an argument
    timeout 2 bash -c 'exec 3<>"/dev/tcp/127.0.0.1/$1"' _ "$1" 2>/dev/null
}

# Prints the broker pid if the pid file names a live process that is *our* broker (guards against a
# stale pid file whose pid was reused by an unrelated process).
running_pid() {
    [[ -f "$PID_FILE" ]] || return 1
    local pid
    pid="$(<"$PID_FILE")"
    [[ "$pid" =~ ^[0-9]+$ ]] || return 1
    [[ -r "/proc/$pid/cmdline" ]] || return 1
    local cmdline
    cmdline="$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null)" || return 1
    [[ "$cmdline" == *kafka.Kafka*"$SERVER_CONFIG"* ]] || return 1
    printf '%s\n' "$pid"
}

alive() { kill -0 "$1" 2>/dev/null; }

# Wall-clock microseconds (bash 5 EPOCHREALTIME; the separator depends on the locale).
now_us() { printf '%s\n' "${EPOCHREALTIME/[.,]/}"; }
# Seconds since a now_us timestamp, one decimal.
elapsed_since() {
    local ds=$((($(now_us) - $1) / 100000))
    printf '%d.%d' $((ds / 10)) $((ds % 10))
}

tail_log() {
    [[ -f "$LOG_FILE" ]] || return 0
    printf -- '----- last 40 lines of %s -----\n' "$LOG_FILE" >&2
    tail -n 40 "$LOG_FILE" >&2
    printf -- '-----\n' >&2
}

# Polls the port until it accepts connections; fails fast if the JVM dies, gives up after the deadline.
wait_until_ready() {
    local pid="$1" deadline=$((SECONDS + START_DEADLINE_S))
    while ! port_open "$PORT"; do
        if ! alive "$pid"; then
            tail_log
            rm -f "$PID_FILE"
            die "the broker (pid $pid) exited during startup"
        fi
        if ((SECONDS >= deadline)); then
            tail_log
            die "127.0.0.1:$PORT did not accept connections within ${START_DEADLINE_S} s; the broker (pid $pid) is left running - use '$0 stop' or '$0 kill'"
        fi
        sleep "$POLL_INTERVAL_S"
    done
}

# Starts the JVM detached from this shell and sets BROKER_PID: setsid puts it in its own session so Ctrl-C / SIGHUP sent to
# the caller's terminal or process group (test runners, CI steps) does not take the broker down.
launch_broker() {
    # The log is appended across restarts (crash context stays available); keep one old generation.
    if [[ -f "$LOG_FILE" ]] && (($(stat -c %s "$LOG_FILE") > LOG_ROTATE_BYTES)); then
        mv -f "$LOG_FILE" "$LOG_FILE.1"
    fi
    printf '\n===== %s deploy/kafka.sh start: Kafka %s on 127.0.0.1:%s =====\n' \
        "$(date -Is)" "$KAFKA_VERSION" "$PORT" >>"$LOG_FILE"
    # setsid does not fork here (a background job of a non-interactive shell is not a process-group
    # leader), so $! is the JVM's pid. 9>&- keeps the start lock out of the long-lived JVM.
    nohup setsid java "${BROKER_JVM_OPTS[@]}" \
        -Dkafka.logs.dir="$CHURNWATCH_HOME" \
        -Dlog4j2.configurationFile="$LOG4J_CONFIG" \
        -cp "$LIBS_DIR/*" \
        kafka.Kafka "$SERVER_CONFIG" \
        </dev/null >>"$LOG_FILE" 2>&1 9>&- &
    BROKER_PID=$!
    printf '%s\n' "$BROKER_PID" >"$PID_FILE"
}

# Serialises start/stop/kill, e.g. local-stack.sh and a test fixture starting the broker at once.
take_lock() {
    exec 9>"$LOCK_FILE"
    flock -w 180 9 || die "another deploy/kafka.sh holds $LOCK_FILE for more than 180 s"
}

# ---------------------------------------------------------------------------------------------------
# Commands
# ---------------------------------------------------------------------------------------------------

cmd_start() {
    mkdir -p "$CHURNWATCH_HOME"
    take_lock
    local pid
    if port_open "$PORT"; then
        if pid="$(running_pid)"; then
            say "already running (pid $pid) on 127.0.0.1:$PORT"
        else
            say "127.0.0.1:$PORT already accepts connections (not started by this script); leaving it alone"
        fi
        return 0
    fi
    if pid="$(running_pid)"; then
        # Started by someone else moments ago and still coming up: wait for it instead of starting twice.
        say "broker (pid $pid) is starting; waiting for 127.0.0.1:$PORT"
        wait_until_ready "$pid"
        say "ready on 127.0.0.1:$PORT (pid $pid)"
        return 0
    fi

    local started
    started="$(now_us)"
    ensure_java
    fetch_jars
    render_config
    format_storage
    launch_broker
    pid="$BROKER_PID"
    say "started pid $pid; waiting for 127.0.0.1:$PORT (log: $LOG_FILE)"
    wait_until_ready "$pid"
    say "ready on 127.0.0.1:$PORT (pid $pid) after $(elapsed_since "$started") s"
}

cmd_stop() {
    mkdir -p "$CHURNWATCH_HOME"
    take_lock
    local pid
    if ! pid="$(running_pid)"; then
        rm -f "$PID_FILE"
        if port_open "$PORT"; then
            die "127.0.0.1:$PORT is served by a process this script did not start; not stopping it"
        fi
        say "not running"
        return 0
    fi
    say "stopping pid $pid (SIGTERM, controlled shutdown)"
    kill -TERM "$pid" 2>/dev/null || true
    local deadline=$((SECONDS + STOP_DEADLINE_S))
    while alive "$pid"; do
        if ((SECONDS >= deadline)); then
            tail_log
            die "pid $pid still running ${STOP_DEADLINE_S} s after SIGTERM; use '$0 kill'"
        fi
        sleep "$POLL_INTERVAL_S"
    done
    rm -f "$PID_FILE"
    say "stopped"
}

cmd_kill() {
    mkdir -p "$CHURNWATCH_HOME"
    take_lock
    local pid
    if ! pid="$(running_pid)"; then
        rm -f "$PID_FILE"
        say "not running"
        return 0
    fi
    say "killing pid $pid (SIGKILL)"
    kill -KILL "$pid" 2>/dev/null || true
    # SIGKILL cannot be ignored, but the kernel still needs a moment to tear the JVM down.
    local deadline=$((SECONDS + 10))
    while alive "$pid"; do
        ((SECONDS < deadline)) || die "pid $pid survived SIGKILL for 10 s"
        sleep 0.1
    done
    rm -f "$PID_FILE"
    say "killed"
}

cmd_status() {
    local pid
    if port_open "$PORT"; then
        if pid="$(running_pid)"; then
            say "up on 127.0.0.1:$PORT (pid $pid, Kafka $KAFKA_VERSION, data $DATA_DIR)"
        else
            say "up on 127.0.0.1:$PORT (not started by this script)"
        fi
        return 0
    fi
    if pid="$(running_pid)"; then
        say "starting or stuck: pid $pid is running but 127.0.0.1:$PORT does not accept connections"
    else
        say "down"
    fi
    return 3
}

main() {
    [[ $# -eq 1 ]] || usage
    [[ -n "$KAFKA_VERSION" ]] || die "could not read <kafka.version> from $POM"
    case "$1" in
        start) cmd_start ;;
        stop) cmd_stop ;;
        kill) cmd_kill ;;
        status) cmd_status ;;
        *) usage ;;
    esac
}

main "$@"
