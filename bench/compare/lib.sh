# Start and stop the comparison's peers on loopback (sourced by run.sh):
# a 3-member etcd cluster (Debian's etcd-server) and one PostgreSQL 15
# server (Debian's postgresql-15) holding MLflow's schema. Every process
# started here is recorded in CMP_PIDS so the caller's trap can stop it;
# every wait is bounded.
#
# Ports (all on 127.0.0.1, inside 24000-24999):
#   runvault  24100 + 10 i (HTTP), + 1 (RPC), + 2 (raft), i = 0..2
#   etcd      24201 + 10 i (client), 24202 + 10 i (peer), i = 0..2
#   postgres  24300

PGBIN=${PGBIN:-/usr/lib/postgresql/15/bin}
CMP_PIDS=()
ETCD_CLIENTS="127.0.0.1:24201,127.0.0.1:24211,127.0.0.1:24221"
PG_PORT=24300
PG_CONNINFO="host=127.0.0.1 port=$PG_PORT dbname=mlflow user=postgres"

cmp_log() {
    printf '[compare %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2
}

# Stop pid (SIGTERM, or the signal in $2), SIGKILL after 15 s.
cmp_stop_pid() {
    local pid=$1 sig=${2:-TERM} i
    kill -"$sig" "$pid" 2>/dev/null || return 0
    for ((i = 0; i < 150; i++)); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
}

cmp_stop_all() {
    local pid
    for pid in "${CMP_PIDS[@]}"; do
        cmp_stop_pid "$pid"
    done
    CMP_PIDS=()
}

# ---- etcd -------------------------------------------------------------------
# Configured as etcd's docs recommend for a benchmark on one box: a backend
# quota large enough not to raise NOSPACE (8 GiB, the documented maximum
# recommendation), default snapshot count, heartbeat and election timeout
# (docs/op-guide/configuration; tuning.md says the defaults suit a local
# network), data on the same disk as every other system here.

# etcd_start DIR: three members under DIR, waits until all are healthy.
etcd_start() {
    local dir=$1 i cluster="" pids=()
    for i in 0 1 2; do
        cluster+="${cluster:+,}e$i=http://127.0.0.1:$((24202 + 10 * i))"
    done
    for i in 0 1 2; do
        mkdir -p "$dir/e$i"
        etcd --name "e$i" --data-dir "$dir/e$i" \
            --listen-client-urls "http://127.0.0.1:$((24201 + 10 * i))" \
            --advertise-client-urls "http://127.0.0.1:$((24201 + 10 * i))" \
            --listen-peer-urls "http://127.0.0.1:$((24202 + 10 * i))" \
            --initial-advertise-peer-urls "http://127.0.0.1:$((24202 + 10 * i))" \
            --initial-cluster "$cluster" --initial-cluster-state new \
            --initial-cluster-token rvbench \
            --quota-backend-bytes 8589934592 \
            --logger zap --log-level warn >"$dir/e$i.log" 2>&1 &
        CMP_PIDS+=($!)
    done
    for ((i = 0; i < 300; i++)); do
        local ok=0 p
        for p in 24201 24211 24221; do
            curl -sf -m 1 "http://127.0.0.1:$p/health" | grep -q '"true"' &&
                ok=$((ok + 1))
        done
        [ "$ok" = 3 ] && return 0
        sleep 0.1
    done
    cmp_log "etcd did not become healthy; last log lines:"
    tail -n 5 "$dir"/e*.log >&2
    return 1
}

etcd_stop() {
    cmp_stop_all
}

# ---- PostgreSQL -------------------------------------------------------------
# Configured per PostgreSQL 15's docs (runtime-config-resource, -wal,
# populate.html): shared_buffers 25% of RAM (capped at 8 GiB),
# synchronous_commit on and fsync on (every acknowledged COMMIT is on
# disk), max_wal_size raised so no checkpoint falls in a short run,
# everything else default (wal_buffers auto, full_page_writes on).
# initdb refuses root, so the server runs as the postgres user.

pg_shared_buffers() {
    local kb
    kb=$(awk '/MemTotal/ {print $2}' /proc/meminfo)
    kb=$((kb / 4))
    [ "$kb" -gt 8388608 ] && kb=8388608
    echo "$((kb / 1024))MB"
}

# pg_as_postgres CMD...: run CMD as the postgres user.
pg_as_postgres() {
    setpriv --reuid=postgres --regid=postgres --init-groups -- "$@"
}

# pg_start DIR: start the server on DIR (backgrounded), wait until ready.
pg_start() {
    local dir=$1 i
    # Not through pg_as_postgres: $! must be the server itself.
    setpriv --reuid=postgres --regid=postgres --init-groups -- \
        "$PGBIN/postgres" -D "$dir" \
        -c port=$PG_PORT -c listen_addresses=127.0.0.1 \
        -c unix_socket_directories="$dir" \
        -c shared_buffers="$(pg_shared_buffers)" \
        -c synchronous_commit=on -c fsync=on \
        -c max_wal_size=8GB -c max_connections=200 \
        -c logging_collector=off >"$dir.log" 2>&1 &
    CMP_PIDS+=($!)
    for ((i = 0; i < 300; i++)); do
        "$PGBIN/pg_isready" -q -h 127.0.0.1 -p $PG_PORT && return 0
        sleep 0.1
    done
    cmp_log "postgres did not start; last log lines:"
    tail -n 5 "$dir.log" >&2
    return 1
}

pg_stop() {
    local pid
    # SIGINT is PostgreSQL's fast shutdown.
    for pid in "${CMP_PIDS[@]}"; do
        cmp_stop_pid "$pid" INT
    done
    CMP_PIDS=()
}

# pg_template DIR SCHEMA: initdb into DIR and load SCHEMA into database
# mlflow, then stop; each measurement runs on a fresh copy of DIR.
pg_template() {
    local dir=$1 schema=$2
    mkdir -p "$dir"
    chown postgres:postgres "$dir"
    pg_as_postgres "$PGBIN/initdb" -D "$dir" -U postgres --auth=trust \
        --encoding=UTF8 --locale=C.UTF-8 >"$dir.initdb.log" 2>&1 || {
        tail -n 5 "$dir.initdb.log" >&2
        return 1
    }
    pg_start "$dir" || return 1
    "$PGBIN/psql" -q -h 127.0.0.1 -p $PG_PORT -U postgres -d postgres \
        -c "CREATE DATABASE mlflow" &&
        "$PGBIN/psql" -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p $PG_PORT \
            -U postgres -d mlflow -f "$schema" >/dev/null
    local rc=$?
    pg_stop
    return $rc
}
