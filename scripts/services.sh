#!/usr/bin/env bash
# Local test services for Sluice: PostgreSQL 15, Redis 7, ClickHouse 18.16, an SMTP sink and a
# 3-node NATS JetStream cluster (Debian's nats-server 2.9: the log of `sluice run --cluster`)
# (and Debian's chromium, installed only, for the console's browser tests).
#
#   scripts/services.sh up|down|status|env [--data DIR]
#
# DIR defaults to $SLUICE_DATA, else ./sluice-data. Everything (data, logs, pid files) lives
# under DIR/services/<name>/. Services listen on 127.0.0.1 only and are stopped by pid, never
# by name. Works as root on a bare Debian 12 without systemd (missing packages come from apt).
# See docs/SERVICES.md.
set -euo pipefail

usage() {
    cat >&2 <<'EOF'
usage: scripts/services.sh up|down|status|env [--data DIR]

  up      install what is missing (apt), start every service not already running, wait until ready
  down    stop the services started from DIR (by pid), keep their data
  status  one line per service: running/stopped, pid, port (exit 3 if any is stopped)
  env     print export lines: eval "$(scripts/services.sh env)"

DIR: --data DIR, else $SLUICE_DATA, else ./sluice-data
ports: SLUICE_PG_PORT (54329) SLUICE_REDIS_PORT (63799) SLUICE_CLICKHOUSE_PORT (18123)
       SLUICE_CLICKHOUSE_TCP_PORT (19000) SLUICE_SMTP_PORT (2525)
       SLUICE_NATS_PORT (4222: nodes on 4222-4224, cluster routes 6222-6224, monitoring 8222-8224)
wait:  SLUICE_SERVICES_TIMEOUT (60 seconds per service)
EOF
}

# ---------------------------------------------------------------- arguments
cmd=""
data_arg=""
while (($#)); do
    case "$1" in
        --data) [[ $# -ge 2 ]] || { usage; exit 2; }; data_arg="$2"; shift 2 ;;
        --data=*) data_arg="${1#--data=}"; shift ;;
        -h|--help|help) usage; exit 0 ;;
        up|down|status|env) [[ -z "$cmd" ]] || { usage; exit 2; }; cmd="$1"; shift ;;
        *) echo "services.sh: unknown argument: $1" >&2; usage; exit 2 ;;
    esac
done
[[ -n "$cmd" ]] || { usage; exit 2; }

DATA="${data_arg:-${SLUICE_DATA:-./sluice-data}}"
DATA="$(realpath -m -- "$DATA")"
SVC="$DATA/services"

TIMEOUT="${SLUICE_SERVICES_TIMEOUT:-60}"
HOST=127.0.0.1
SERVICES=(postgres redis clickhouse smtp nats1 nats2 nats3)
NATS_NODES=(nats1 nats2 nats3)

# Requested ports; a running service keeps the port it was started with (see port_of).
declare -A REQ_PORT=(
    [postgres]="${SLUICE_PG_PORT:-54329}"
    [redis]="${SLUICE_REDIS_PORT:-63799}"
    [clickhouse]="${SLUICE_CLICKHOUSE_PORT:-18123}"
    [smtp]="${SLUICE_SMTP_PORT:-2525}"
    [nats1]="${SLUICE_NATS_PORT:-4222}"
)
declare -A PORT_VAR=([postgres]=SLUICE_PG_PORT [redis]=SLUICE_REDIS_PORT [clickhouse]=SLUICE_CLICKHOUSE_PORT [smtp]=SLUICE_SMTP_PORT
    [nats1]=SLUICE_NATS_PORT [nats2]=SLUICE_NATS_PORT [nats3]=SLUICE_NATS_PORT)
CH_TCP_PORT="${SLUICE_CLICKHOUSE_TCP_PORT:-19000}"

valid_port() { [[ "$1" =~ ^[0-9]{1,5}$ ]] && ((10#$1 >= 1 && 10#$1 <= 65535)); }
for _k in "${!REQ_PORT[@]}"; do
    valid_port "${REQ_PORT[$_k]}" || { echo "services.sh: invalid ${PORT_VAR[$_k]}: '${REQ_PORT[$_k]}'" >&2; exit 2; }
    REQ_PORT[$_k]=$((10#${REQ_PORT[$_k]}))
done
valid_port "$CH_TCP_PORT" || { echo "services.sh: invalid SLUICE_CLICKHOUSE_TCP_PORT: '$CH_TCP_PORT'" >&2; exit 2; }
CH_TCP_PORT=$((10#$CH_TCP_PORT))
# The NATS nodes take three consecutive client ports from SLUICE_NATS_PORT; routes and monitoring sit 2000 and 4000 above.
REQ_PORT[nats2]=$((REQ_PORT[nats1] + 1))
REQ_PORT[nats3]=$((REQ_PORT[nats1] + 2))

IS_ROOT=0
[[ "$(id -u)" == 0 ]] && IS_ROOT=1

say() { printf '%s\n' "$*" >&2; }

REMOVE_ON_EXIT="" # the temporary policy-rc.d, should apt-get be interrupted
on_exit() { if [[ -n "$REMOVE_ON_EXIT" ]]; then rm -f "$REMOVE_ON_EXIT"; fi; }
trap on_exit EXIT
trap 'exit 130' INT TERM

# Debian's python3 (python3-aiosmtpd lives in its dist-packages, not in pyenv/venv pythons).
PYTHON=/usr/bin/python3

# PostgreSQL binaries: 15 from Debian's layout, else whatever pg_ctl is on PATH.
pg_bindir() {
    local d
    for d in "${SLUICE_PG_BIN:-}" /usr/lib/postgresql/15/bin; do
        [[ -n "$d" && -x "$d/pg_ctl" ]] && { echo "$d"; return; }
    done
    d="$(command -v pg_ctl 2>/dev/null || true)"
    [[ -n "$d" ]] && { dirname -- "$(readlink -f -- "$d")"; return; }
    echo /usr/lib/postgresql/15/bin
}
PG_BIN="$(pg_bindir)"

find_bin() { # name fallback...
    local p
    p="$(command -v "$1" 2>/dev/null || true)"
    [[ -z "$p" ]] && for p in "${@:2}"; do [[ -x "$p" ]] && break; p=""; done
    echo "${p:-$1}"
}

# ---------------------------------------------------------------- process helpers
svc_dir() { echo "$SVC/$1"; }

# Alive and not a zombie (an orphan is reaped by pid 1, which may take a while in containers).
alive() { # pid
    local state
    kill -0 "$1" 2>/dev/null || return 1
    state="$(sed -n 's/^State:[[:space:]]*\([A-Z]\).*/\1/p' "/proc/$1/status" 2>/dev/null || true)"
    [[ "$state" != Z && "$state" != X ]]
}

# Is $pid alive, does its command line contain $name, and does it belong to DIR (its command
# line or its working directory points into DIR/services)? Guards against stale pid files.
pid_is_ours() { # pid name
    local pid="$1" name="$2" cmdline cwd
    [[ "$pid" =~ ^[0-9]+$ ]] || return 1
    alive "$pid" || return 1
    cmdline="$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null || true)"
    [[ "$cmdline" == *"$name"* ]] || return 1
    cwd="$(readlink "/proc/$pid/cwd" 2>/dev/null || true)"
    [[ "$cmdline" == *"$SVC/"* || "$cwd" == "$SVC/"* ]]
}

pidfile_of() {
    case "$1" in
        postgres) echo "$SVC/postgres/data/postmaster.pid" ;;
        redis) echo "$SVC/redis/redis.pid" ;;
        clickhouse) echo "$SVC/clickhouse/clickhouse.pid" ;;
        smtp) echo "$SVC/smtp/smtp.pid" ;;
        nats*) echo "$SVC/$1/nats.pid" ;;
    esac
}

procname_of() {
    case "$1" in
        postgres) echo postgres ;;
        redis) echo redis-server ;;
        clickhouse) echo clickhouse ;;
        smtp) echo smtp_sink.py ;;
        nats*) echo nats-server ;;
    esac
}

# Prints the pid if the service started from DIR is alive.
running_pid() { # name
    local f pid
    f="$(pidfile_of "$1")"
    [[ -r "$f" ]] || return 1
    pid="$(head -n 1 "$f" 2>/dev/null | tr -dc '0-9')"
    pid_is_ours "$pid" "$(procname_of "$1")" || return 1
    echo "$pid"
}

# Port a running service was started with, else the requested one.
port_of() { # name
    local f="$SVC/$1/port" p
    if [[ -r "$f" ]] && running_pid "$1" >/dev/null; then
        p="$(tr -dc '0-9' <"$f")"
        [[ -n "$p" ]] && { echo "$p"; return; }
    fi
    echo "${REQ_PORT[$1]}"
}

port_open() { # port: something accepts TCP connections on 127.0.0.1:port
    timeout 3 bash -c "exec 3<>/dev/tcp/$HOST/$1" 2>/dev/null
}

# Is the service answering its protocol on $port?
ready() { # name port
    local name="$1" port="$2"
    case "$name" in
        postgres) "$PG_BIN/pg_isready" -q -h "$HOST" -p "$port" -t 3 ;;
        redis) [[ "$(timeout 3 "$(find_bin redis-cli /usr/bin/redis-cli)" -h "$HOST" -p "$port" ping 2>/dev/null)" == PONG ]] ;;
        clickhouse) [[ "$(curl -fsS --max-time 3 "http://$HOST:$port/ping" 2>/dev/null)" == "Ok." ]] ;;
        smtp)
            # shellcheck disable=SC2016 # expanded by the inner bash
            timeout 3 bash -c 'exec 3<>"/dev/tcp/$0/$1"; IFS= read -r l <&3; printf "QUIT\r\n" >&3; [[ $l == 220* ]]' \
                "$HOST" "$port" 2>/dev/null ;;
        nats*)
            # shellcheck disable=SC2016 # expanded by the inner bash
            timeout 3 bash -c 'exec 3<>"/dev/tcp/$0/$1"; IFS= read -r l <&3; [[ $l == INFO* ]]' "$HOST" "$port" 2>/dev/null ;;
    esac
}

logs_of() { # one path per line
    case "$1" in
        postgres) printf '%s\n' "$SVC/postgres/postgres.log" ;;
        redis) printf '%s\n' "$SVC/redis/redis-start.log" "$SVC/redis/redis.log" ;;
        clickhouse) printf '%s\n' "$SVC/clickhouse/log/stdout.log" "$SVC/clickhouse/log/clickhouse-server.err.log" ;;
        smtp) printf '%s\n' "$SVC/smtp/smtp.log" ;;
        nats*) printf '%s\n' "$SVC/$1/nats.log" ;;
    esac
}

declare -A LOG_OFFSET=()
mark_logs() { # name: remember current log sizes, so a failure shows only what this start wrote
    local f files
    mapfile -t files < <(logs_of "$1")
    for f in "${files[@]}"; do LOG_OFFSET[$f]="$(stat -c %s "$f" 2>/dev/null || echo 0)"; done
}

show_logs() { # name
    local f off files
    mapfile -t files < <(logs_of "$1")
    for f in "${files[@]}"; do
        off="${LOG_OFFSET[$f]:-0}"
        if [[ ! -s "$f" ]] || (($(stat -c %s "$f") <= off)); then continue; fi
        say "---- last lines of $f"
        tail -c "+$((off + 1))" "$f" | tail -n 25 >&2 || true
    done
}

# Waits until the service answers; fails early if its process died.
wait_ready() { # name port
    local name="$1" port="$2" deadline=$((SECONDS + TIMEOUT))
    while ((SECONDS < deadline)); do
        ready "$name" "$port" && return 0
        if ! running_pid "$name" >/dev/null; then
            sleep 0.5 # a daemonizing parent may not have written its pid file yet
            running_pid "$name" >/dev/null || ready "$name" "$port" || return 1
        fi
        sleep 0.3
    done
    ready "$name" "$port"
}

xml_escape() {
    local s="$1"
    s="${s//&/&amp;}"; s="${s//</&lt;}"; s="${s//>/&gt;}"
    printf '%s' "$s"
}

# ---------------------------------------------------------------- apt
pkg_installed() { [[ "$(dpkg-query -W -f='${Status}' "$1" 2>/dev/null || true)" == "install ok installed" ]]; }

ensure_packages() {
    local want=(redis-server clickhouse-server clickhouse-client python3-aiosmtpd curl chromium nats-server) missing=() p
    for p in "${want[@]}"; do pkg_installed "$p" || missing+=("$p"); done
    ((${#missing[@]} == 0)) && return 0
    if ((!IS_ROOT)); then
        say "services: missing packages: ${missing[*]}"
        say "services: install them as root: apt-get install -y ${missing[*]}"
        return 1
    fi
    mkdir -p "$SVC"
    local log="$SVC/apt.log" policy=/usr/sbin/policy-rc.d rc=0
    say "services: installing ${missing[*]} (apt-get, log: $log)"
    # Keep the packages' own init scripts from starting system-wide daemons (8123/9000/6379):
    # without systemd, invoke-rc.d would otherwise run /etc/init.d/clickhouse-server start.
    if [[ ! -e "$policy" ]]; then
        printf '#!/bin/sh\n# temporary, written by sluice scripts/services.sh\nexit 101\n' >"$policy"
        chmod 755 "$policy"
        REMOVE_ON_EXIT="$policy"
    fi
    {
        export DEBIAN_FRONTEND=noninteractive
        local aptopts=(-y -q -o DPkg::Lock::Timeout=300 -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold)
        apt-get "${aptopts[@]}" update && apt-get "${aptopts[@]}" install --no-install-recommends "${missing[@]}"
    } >"$log" 2>&1 || rc=$?
    if [[ -n "$REMOVE_ON_EXIT" ]]; then rm -f "$REMOVE_ON_EXIT"; REMOVE_ON_EXIT=""; fi
    if ((rc != 0)); then
        say "services: apt-get failed (exit $rc); last lines of $log:"
        tail -n 30 "$log" >&2
        return 1
    fi
}

# ---------------------------------------------------------------- postgres
as_pg() { # run a command as the postgres OS user (when root), from a directory it can read
    if ((IS_ROOT)); then
        (cd / && runuser -u postgres -- "$@")
    else
        (cd / && "$@")
    fi
}

pg_write() { # file; stdin: content. Files in the data folder belong to the cluster's owner.
    cat >"$1"
    if ((IS_ROOT)); then chown postgres:postgres "$1"; fi
    chmod 600 "$1"
}

pg_sql_admin() { # stdin: SQL, run over the unix socket as the bootstrap superuser
    local d="$SVC/postgres"
    "$PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 -h "$d/run" -p "$1" -U postgres -d postgres -f - >/dev/null
}

pg_start() {
    local port="$1" d="$SVC/postgres" owner=postgres
    local pgdata="$d/data" sock="$d/run"
    local b
    for b in initdb pg_ctl postgres pg_isready psql; do
        [[ -x "$PG_BIN/$b" ]] || { say "postgres: $PG_BIN/$b not found (need PostgreSQL 15 server binaries)"; return 1; }
    done
    if ((${#sock} + 16 > 107)); then
        say "postgres: socket path $sock/.s.PGSQL.$port is too long for a unix socket; use a shorter --data DIR"
        return 1
    fi
    mkdir -p "$d"
    chmod 755 "$DATA" "$SVC" 2>/dev/null || true
    if ((IS_ROOT)); then
        if ! id -u postgres >/dev/null 2>&1; then
            useradd --system --user-group --home-dir /var/lib/postgresql --shell /bin/bash postgres
        fi
        mkdir -p "$sock"
        chown -R postgres:postgres "$d"
    else
        owner="$(id -un)"
        mkdir -p "$sock"
    fi
    chmod 700 "$d" "$sock"
    if ! as_pg test -w "$d"; then
        say "postgres: $d is not reachable by the $owner user; every parent folder of DIR must be traversable (chmod o+x)"
        return 1
    fi
    if [[ ! -f "$pgdata/PG_VERSION" ]]; then
        say "postgres: initdb $pgdata"
        if ! as_pg "$PG_BIN/initdb" -D "$pgdata" -U postgres -E UTF8 --locale=C.UTF-8 --data-checksums \
            --auth-local=trust --auth-host=scram-sha-256 >"$d/initdb.log" 2>&1; then
            say "postgres: initdb failed:"; tail -n 20 "$d/initdb.log" >&2; return 1
        fi
        printf '\n# Sluice test settings (scripts/services.sh)\ninclude = '"'sluice.conf'"'\n' >>"$pgdata/postgresql.conf"
    fi
    # Regenerated on every start (the port may change); fsync & co. stay at their defaults.
    local q_sock="${sock//\'/\'\'}"
    pg_write "$pgdata/sluice.conf" <<EOF
# written by scripts/services.sh on every start
listen_addresses = '$HOST'
port = $port
unix_socket_directories = '$q_sock'
wal_level = logical
max_replication_slots = 20
max_wal_senders = 20
EOF
    pg_write "$pgdata/pg_hba.conf" <<EOF
# written by scripts/services.sh; the unix socket directory is private (0700)
local   all          all                   trust
local   replication  all                   trust
host    all          all   127.0.0.1/32    scram-sha-256
host    replication  all   127.0.0.1/32    scram-sha-256
EOF
    # Not running (checked by the caller): a leftover lock file can only be stale.
    rm -f "$pgdata/postmaster.pid" "$sock"/.s.PGSQL.*
    if ! as_pg "$PG_BIN/pg_ctl" -D "$pgdata" -l "$d/postgres.log" -w -t "$TIMEOUT" start >"$d/pg_ctl.log" 2>&1; then
        say "postgres: pg_ctl start failed:"; tail -n 5 "$d/pg_ctl.log" >&2; return 1
    fi
}

pg_provision() { # idempotent: role sluice (superuser, replication, password sluice) + database sluice
    local port="$1"
    pg_sql_admin "$port" <<'EOF' || return 1
DO $$
BEGIN
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'sluice') THEN
    CREATE ROLE sluice LOGIN SUPERUSER REPLICATION PASSWORD 'sluice';
  ELSE
    ALTER ROLE sluice LOGIN SUPERUSER REPLICATION PASSWORD 'sluice';
  END IF;
END
$$;
SELECT 'CREATE DATABASE sluice OWNER sluice' WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = 'sluice') \gexec
EOF
    # The way clients connect: TCP + scram.
    [[ "$(PGPASSWORD=sluice "$PG_BIN/psql" -X -At -h "$HOST" -p "$port" -U sluice -d sluice -c 'select 1' 2>&1)" == 1 ]]
}

pg_stop() {
    local d="$SVC/postgres"
    as_pg "$PG_BIN/pg_ctl" -D "$d/data" -m fast -w -t "$TIMEOUT" stop >>"$d/pg_ctl.log" 2>&1
}

# ---------------------------------------------------------------- redis
redis_start() {
    local port="$1" d="$SVC/redis"
    mkdir -p "$d/data"
    rm -f "$d/redis.pid"
    "$(find_bin redis-server /usr/bin/redis-server)" --daemonize yes --bind "$HOST" --port "$port" \
        --protected-mode yes --dir "$d/data" --pidfile "$d/redis.pid" --logfile "$d/redis.log" \
        --appendonly no >>"$d/redis-start.log" 2>&1
}

# ---------------------------------------------------------------- clickhouse
ch_write_config() {
    local port="$1" d="$SVC/clickhouse" x
    x="$(xml_escape "$d")"
    mkdir -p "$d/etc" "$d/data" "$d/tmp" "$d/user_files" "$d/format_schemas" "$d/log"
    cat >"$d/etc/config.xml" <<EOF
<?xml version="1.0"?>
<!-- written by scripts/services.sh on every start; ClickHouse 18.16 syntax -->
<yandex>
    <logger>
        <level>information</level>
        <log>$x/log/clickhouse-server.log</log>
        <errorlog>$x/log/clickhouse-server.err.log</errorlog>
        <size>100M</size>
        <count>3</count>
    </logger>
    <listen_host>$HOST</listen_host>
    <http_port>$port</http_port>
    <tcp_port>$CH_TCP_PORT</tcp_port>
    <max_connections>1024</max_connections>
    <keep_alive_timeout>3</keep_alive_timeout>
    <max_concurrent_queries>100</max_concurrent_queries>
    <uncompressed_cache_size>1073741824</uncompressed_cache_size>
    <mark_cache_size>536870912</mark_cache_size>
    <path>$x/data/</path>
    <tmp_path>$x/tmp/</tmp_path>
    <user_files_path>$x/user_files/</user_files_path>
    <format_schema_path>$x/format_schemas/</format_schema_path>
    <users_config>users.xml</users_config>
    <default_profile>default</default_profile>
    <default_database>default</default_database>
    <timezone>UTC</timezone>
    <mlock_executable>false</mlock_executable>
    <max_session_timeout>3600</max_session_timeout>
    <default_session_timeout>60</default_session_timeout>
    <max_table_size_to_drop>0</max_table_size_to_drop>
    <max_partition_size_to_drop>0</max_partition_size_to_drop>
    <query_log>
        <database>system</database>
        <table>query_log</table>
        <partition_by>toYYYYMM(event_date)</partition_by>
        <flush_interval_milliseconds>7500</flush_interval_milliseconds>
    </query_log>
</yandex>
EOF
    cat >"$d/etc/users.xml" <<'EOF'
<?xml version="1.0"?>
<!-- written by scripts/services.sh -->
<yandex>
    <profiles>
        <default>
            <max_memory_usage>10000000000</max_memory_usage>
            <use_uncompressed_cache>0</use_uncompressed_cache>
            <load_balancing>random</load_balancing>
        </default>
    </profiles>
    <users>
        <default>
            <password></password>
            <networks>
                <ip>::1</ip>
                <ip>127.0.0.1</ip>
            </networks>
            <profile>default</profile>
            <quota>default</quota>
        </default>
    </users>
    <quotas>
        <default>
            <interval>
                <duration>3600</duration>
                <queries>0</queries>
                <errors>0</errors>
                <result_rows>0</result_rows>
                <read_rows>0</read_rows>
                <execution_time>0</execution_time>
            </interval>
        </default>
    </quotas>
</yandex>
EOF
}

ch_start() {
    local port="$1" d="$SVC/clickhouse" bin
    bin="$(find_bin clickhouse-server /usr/sbin/clickhouse-server /usr/bin/clickhouse-server)"
    if port_open "$CH_TCP_PORT"; then
        say "clickhouse: tcp port $CH_TCP_PORT is already in use by another process (set SLUICE_CLICKHOUSE_TCP_PORT)"
        return 1
    fi
    ch_write_config "$port"
    rm -f "$d/clickhouse.pid"
    # Foreground server in its own session, detached from this shell; $! is the server itself
    # (subshell -> exec setsid -> exec nohup -> exec clickhouse-server keep the same pid).
    (cd "$d" && exec setsid nohup "$bin" --config-file="$d/etc/config.xml" </dev/null >>"$d/log/stdout.log" 2>&1) &
    echo "$!" >"$d/clickhouse.pid"
}

# ---------------------------------------------------------------- smtp sink
smtp_write_handler() {
    local d="$SVC/smtp"
    mkdir -p "$d/mail" "$d/tmp"
    cat >"$d/smtp_sink.py" <<'EOF'
"""SMTP sink for Sluice tests (written by scripts/services.sh).

Accepts every message (AUTH PLAIN/LOGIN with any credentials is accepted too, TLS is not
offered) and stores each one as MAILDIR/<ns-timestamp>-<id>.eml. Files are written to
tmp/ and renamed into place, so a reader never sees a half-written message. The envelope
is recorded in two prepended headers: X-Sluice-Mail-From and X-Sluice-Rcpt-To.
"""
import asyncio
import logging
import os
import signal
import sys
import time
import uuid

from aiosmtpd.smtp import SMTP, AuthResult

# aiosmtpd 1.4 warns about its own use of a deprecated attribute on every AUTH.
logging.getLogger("mail.log").addFilter(lambda record: "login_data" not in record.getMessage())


class Sink:
    def __init__(self, maildir, tmpdir):
        self.maildir = maildir
        self.tmpdir = tmpdir

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        data = envelope.original_content
        if data is None:
            data = envelope.content
        if isinstance(data, str):
            data = data.encode("utf-8", "surrogateescape")
        eol = b"\r\n" if b"\r\n" in data else b"\n"
        head = (
            b"X-Sluice-Mail-From: " + (envelope.mail_from or "").encode("utf-8") + eol
            + b"X-Sluice-Rcpt-To: " + ", ".join(envelope.rcpt_tos).encode("utf-8") + eol
        )
        name = "%020d-%s.eml" % (time.time_ns(), uuid.uuid4().hex[:12])
        tmp = os.path.join(self.tmpdir, name)
        with open(tmp, "wb") as f:
            f.write(head + data)
            f.flush()
            os.fsync(f.fileno())
        os.rename(tmp, os.path.join(self.maildir, name))
        print("stored %s from=%s to=%s" % (name, envelope.mail_from, envelope.rcpt_tos), flush=True)
        return "250 Message accepted for delivery"


def accept_any(server, session, envelope, mechanism, auth_data):
    return AuthResult(success=True)


async def main(host, port, maildir, tmpdir):
    loop = asyncio.get_running_loop()
    handler = Sink(maildir, tmpdir)

    def factory():
        return SMTP(handler, hostname="sluice-smtp-sink", enable_SMTPUTF8=True,
                    authenticator=accept_any, auth_require_tls=False)

    server = await loop.create_server(factory, host, port)
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    print("listening on %s:%d, storing mail in %s" % (host, port, maildir), flush=True)
    await stop.wait()
    server.close()
    await server.wait_closed()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]))
EOF
}

smtp_start() {
    local port="$1" d="$SVC/smtp"
    smtp_write_handler
    rm -f "$d/smtp.pid"
    (cd "$d" && exec setsid nohup "$PYTHON" -u "$d/smtp_sink.py" "$HOST" "$port" "$d/mail" "$d/tmp" \
        </dev/null >>"$d/smtp.log" 2>&1) &
    echo "$!" >"$d/smtp.pid"
}

# ---------------------------------------------------------------- nats (JetStream cluster of three nodes)
# Each node is a plain nats-server process with its own store folder; the routes name all three nodes, so any two
# form the quorum that JetStream's replicated (R3) streams and their acknowledgements need.
nats_start() { # node port
    local node="$1" port="$2" d="$SVC/$1" base="${REQ_PORT[nats1]}" routes="" i
    mkdir -p "$d/store"
    for ((i = 0; i < 3; i++)); do routes+="${routes:+,}nats://$HOST:$((base + 2000 + i))"; done
    rm -f "$d/nats.pid"
    # Every stream reserves its max_bytes (a pipeline's max_backlog_bytes, 2 GiB by default) on each of its replicas'
    # nodes, and JetStream refuses a stream it cannot reserve ("insufficient storage") against max_file_store, by
    # default 75% of the free disk: a dozen test streams would exhaust a small CI disk while using a few MB. The
    # reservation is not space taken, so the test servers allow 1 TiB.
    printf 'jetstream {\n  max_file_store: 1099511627776\n  max_memory_store: 1073741824\n}\n' >"$d/nats.conf"
    (cd "$d" && exec setsid nohup "$(find_bin nats-server /usr/sbin/nats-server /usr/bin/nats-server)" -c "$d/nats.conf" \
        --server_name "sluice-$node" --addr "$HOST" --port "$port" --http_port "$((port + 4000))" \
        --jetstream --store_dir "$d/store" \
        --cluster_name sluice --cluster "nats://$HOST:$((port + 2000))" --routes "$routes" \
        --pid "$d/nats.pid" </dev/null >>"$d/nats.log" 2>&1) &
    echo "$!" >"$d/nats.pid"
}

# JetStream answers only once its nodes elected a meta leader: /healthz on every node's monitoring port says so.
# js-server-only: the meta leader and this node's JetStream, not every stream, so that a stream left in the store by
# an earlier run (one catching up after a restart) does not hold the services back.
nats_wait_cluster() {
    local node deadline=$((SECONDS + TIMEOUT))
    for node in "${NATS_NODES[@]}"; do
        until curl -fsS --max-time 3 "http://$HOST:$(($(port_of "$node") + 4000))/healthz?js-server-only=true" >/dev/null 2>&1; do
            if ((SECONDS >= deadline)); then say "nats: FAILED: $node's JetStream is not ready after ${TIMEOUT}s"; show_logs "$node"; return 1; fi
            sleep 0.3
        done
    done
    say "nats: JetStream cluster ready"
}

# ---------------------------------------------------------------- commands
start_one() { # name -> 0 ok
    local name="$1" port pid want
    want="${REQ_PORT[$name]}"
    if pid="$(running_pid "$name")"; then
        port="$(port_of "$name")"
        [[ "$port" != "$want" ]] && say "$name: note: running on port $port, not $want (run down first to change it)"
        if ! wait_ready "$name" "$port"; then
            say "$name: FAILED: process $pid is alive but port $port does not answer"; show_logs "$name"; return 1
        fi
        [[ "$name" == postgres ]] && { pg_provision "$port" || { say "postgres: FAILED to create role/database sluice"; return 1; }; }
        say "$name: already running (pid $pid, port $port)"
        return 0
    fi
    port="$want"
    if port_open "$port"; then
        say "$name: FAILED: port $port is already in use by another process (set ${PORT_VAR[$name]} to another port)"
        return 1
    fi
    mkdir -p "$(svc_dir "$name")"
    mark_logs "$name"
    local t0=$SECONDS ok=1
    # 9>&-: the started servers must not inherit (and so hold) the lock on DIR/services/.lock.
    case "$name" in
        postgres) pg_start "$port" 9>&- || ok=0 ;;
        redis) redis_start "$port" 9>&- || ok=0 ;;
        clickhouse) ch_start "$port" 9>&- || ok=0 ;;
        smtp) smtp_start "$port" 9>&- || ok=0 ;;
        nats*) nats_start "$name" "$port" 9>&- || ok=0 ;;
    esac
    local why="could not be started"
    if ((ok)) && ! wait_ready "$name" "$port"; then
        ok=0
        if running_pid "$name" >/dev/null; then why="not answering after ${TIMEOUT}s"; else why="exited during startup"; fi
    fi
    if ((ok)) && [[ "$name" == postgres ]]; then
        pg_provision "$port" || { why="role/database sluice could not be created"; ok=0; }
    fi
    if ((!ok)); then
        say "$name: FAILED on port $port: $why"
        show_logs "$name"
        return 1
    fi
    echo "$port" >"$(svc_dir "$name")/port"
    pid="$(running_pid "$name" || echo '?')"
    say "$name: started (pid $pid, port $port, $((SECONDS - t0))s)"
}

stop_one() { # name
    local name="$1" pid i
    if ! pid="$(running_pid "$name")"; then
        say "$name: not running"
        return 0
    fi
    if [[ "$name" == postgres ]]; then
        pg_stop || true
    else
        kill -TERM "$pid" 2>/dev/null || true
    fi
    for ((i = 0; i < TIMEOUT * 10; i++)); do
        alive "$pid" || break
        sleep 0.1
    done
    if alive "$pid"; then
        say "$name: still alive after ${TIMEOUT}s, sending SIGKILL to $pid"
        kill -KILL "$pid" 2>/dev/null || true
        sleep 0.5
    fi
    [[ "$name" == postgres ]] || rm -f "$(pidfile_of "$name")"
    say "$name: stopped (pid $pid)"
}

cmd_up() {
    local t0=$SECONDS failed=0 name
    mkdir -p "$SVC"
    exec 9>"$SVC/.lock"
    flock -w 600 9 || { say "services: another services.sh is busy with $DATA"; return 1; }
    ensure_packages || return 1
    for name in "${SERVICES[@]}"; do
        start_one "$name" || failed=1
    done
    ((failed)) || nats_wait_cluster || failed=1
    if ((failed)); then
        say "services: some services FAILED (data: $SVC)"
        return 1
    fi
    say "services: up in $((SECONDS - t0))s (data: $SVC); use: eval \"\$($(printf '%q' "$0") env --data $(printf '%q' "$DATA"))\""
}

cmd_down() {
    local i
    [[ -d "$SVC" ]] || { say "services: nothing under $SVC"; return 0; }
    exec 9>"$SVC/.lock"
    flock -w 600 9 || { say "services: another services.sh is busy with $DATA"; return 1; }
    for ((i = ${#SERVICES[@]} - 1; i >= 0; i--)); do
        stop_one "${SERVICES[i]}"
    done
}

cmd_status() {
    local name pid all=0
    for name in "${SERVICES[@]}"; do
        if pid="$(running_pid "$name")"; then
            printf '%-10s running  pid=%-8s port=%s\n' "$name" "$pid" "$(port_of "$name")"
        else
            printf '%-10s stopped  pid=%-8s port=%s\n' "$name" - "$(port_of "$name")"
            all=3
        fi
    done
    return "$all"
}

cmd_env() {
    local pg redis ch smtp
    pg="$(port_of postgres)"; redis="$(port_of redis)"; ch="$(port_of clickhouse)"; smtp="$(port_of smtp)"
    printf 'export PGHOST=%s\n' "$HOST"
    printf 'export PGPORT=%s\n' "$pg"
    printf 'export PGUSER=sluice\nexport PGPASSWORD=sluice\nexport PGDATABASE=sluice\n'
    printf 'export REDIS_URL=redis://%s:%s\n' "$HOST" "$redis"
    printf 'export CLICKHOUSE_URL=http://%s:%s\n' "$HOST" "$ch"
    printf 'export SMTP_HOST=%s\n' "$HOST"
    printf 'export SMTP_PORT=%s\n' "$smtp"
    printf 'export SMTP_TLS=none\n'
    printf 'export SLUICE_SMTP_MAILDIR=%q\n' "$SVC/smtp/mail"
    printf 'export SLUICE_CLUSTER_NATS=nats://%s:%s,nats://%s:%s,nats://%s:%s\n' "$HOST" "$(port_of nats1)" "$HOST" "$(port_of nats2)" "$HOST" "$(port_of nats3)"
    # The cluster's shared metadata store, used by `run --cluster` and the other commands' --cluster only.
    printf 'export SLUICE_CLUSTER_POSTGRES=postgres://sluice:sluice@%s:%s/sluice\n' "$HOST" "$pg"
    printf 'export SLUICE_CLUSTER_NAME=local\n'
}

case "$cmd" in
    up) cmd_up ;;
    down) cmd_down ;;
    status) cmd_status ;;
    env) cmd_env ;;
esac
