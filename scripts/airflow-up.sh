#!/usr/bin/env bash
# Start `airflow standalone` for this project, on 127.0.0.1 only, with SQLite and this repository's DAGs.
#
#   bash scripts/setup.sh && bash scripts/airflow-up.sh      # start; prints the URL and the admin password file
#   bash scripts/airflow-down.sh                             # stop the whole process group
#
# Settings (environment variables, all optional):
#   GEORESET_AIRFLOW_HOME     AIRFLOW_HOME to use                     (default: <repo>/.airflow)
#   GEORESET_AIRFLOW_PORT     port of the API server / UI             (default: 8080, or a free port if 8080 is busy;
#                                                                      when set explicitly and busy: error)
#   GEORESET_AIRFLOW_TIMEOUT  seconds to wait for a healthy /api/v2/monitor/health (default: 120)
#
# The processes run in their own session (setsid); the PID of the session leader is kept in
# $AIRFLOW_HOME/standalone.pid and the output in $AIRFLOW_HOME/standalone.log. A second call while it runs
# prints where it is and exits 0.
set -euo pipefail
set +m  # no job control: the background child must not be a process-group leader, so setsid does not fork
REPO="$(cd "$(dirname "$0")/.." && pwd)"
cd "$REPO"

AIRFLOW_BIN="$REPO/.venv/bin/airflow"
PYBIN="$REPO/.venv/bin/python"
if [ ! -x "$AIRFLOW_BIN" ] || [ ! -x "$PYBIN" ]; then
  echo "[airflow-up] $AIRFLOW_BIN is missing: run 'bash scripts/setup.sh' first" >&2
  exit 1
fi
command -v setsid >/dev/null 2>&1 || { echo "[airflow-up] 'setsid' (util-linux) is required" >&2; exit 1; }

export AIRFLOW_HOME="${GEORESET_AIRFLOW_HOME:-$REPO/.airflow}"
mkdir -p "$AIRFLOW_HOME"
AIRFLOW_HOME="$(cd "$AIRFLOW_HOME" && pwd)"
PIDFILE="$AIRFLOW_HOME/standalone.pid"
PORTFILE="$AIRFLOW_HOME/standalone.port"
LOG="$AIRFLOW_HOME/standalone.log"
PASSWORDS="$AIRFLOW_HOME/simple_auth_manager_passwords.json.generated"
TIMEOUT="${GEORESET_AIRFLOW_TIMEOUT:-120}"

# --- already running? ----------------------------------------------------------------------------------------
if [ -f "$PIDFILE" ]; then
  OLD="$(cat "$PIDFILE")"
  if [ -n "$OLD" ] && kill -0 "$OLD" 2>/dev/null; then
    echo "[airflow-up] already running (pid $OLD): http://127.0.0.1:$(cat "$PORTFILE" 2>/dev/null || echo '?')"
    echo "[airflow-up] stop it with: bash scripts/airflow-down.sh"
    exit 0
  fi
  echo "[airflow-up] removing stale PID file $PIDFILE (pid $OLD is gone)"
  rm -f "$PIDFILE" "$PORTFILE"
fi

# --- port --------------------------------------------------------------------------------------------------------
port_busy() {  # 0 when something already listens on 127.0.0.1:$1
  "$PYBIN" - "$1" <<'EOF'
import socket, sys
s = socket.socket()
s.settimeout(0.5)
sys.exit(0 if s.connect_ex(("127.0.0.1", int(sys.argv[1]))) == 0 else 1)
EOF
}
free_port() {
  "$PYBIN" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}
if [ -n "${GEORESET_AIRFLOW_PORT:-}" ]; then
  PORT="$GEORESET_AIRFLOW_PORT"
  if port_busy "$PORT"; then
    echo "[airflow-up] port $PORT on 127.0.0.1 is already in use; choose another GEORESET_AIRFLOW_PORT" >&2
    exit 1
  fi
else
  PORT=8080
  if port_busy "$PORT"; then
    PORT="$(free_port)"
    echo "[airflow-up] port 8080 is busy; using free port $PORT"
  fi
fi

# The scheduler and the triggerer each start a log server (8793 / 8794 by default; Airflow 3.3.2 binds them to all
# interfaces and gives no host option; they only answer requests signed with this instance's secret key).
# Move them to free ports when the defaults are taken, e.g. by a second instance.
WORKER_LOG_PORT="${AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT:-8793}"
TRIGGER_LOG_PORT="${AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT:-8794}"
if port_busy "$WORKER_LOG_PORT"; then WORKER_LOG_PORT="$(free_port)"; fi
if port_busy "$TRIGGER_LOG_PORT"; then TRIGGER_LOG_PORT="$(free_port)"; fi

# --- configuration (environment only; airflow.cfg keeps its defaults) -------------------------------------------
export AIRFLOW__CORE__LOAD_EXAMPLES=False
export AIRFLOW__CORE__DAGS_FOLDER="$REPO/dags"
export AIRFLOW__CORE__PARALLELISM=4
export AIRFLOW__CORE__EXECUTOR=LocalExecutor
export AIRFLOW__DATABASE__SQL_ALCHEMY_CONN="sqlite:///$AIRFLOW_HOME/airflow.db"
export AIRFLOW__API__HOST=127.0.0.1
export AIRFLOW__API__PORT="$PORT"
export AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT="$WORKER_LOG_PORT"
export AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT="$TRIGGER_LOG_PORT"
export AIRFLOW__CORE__EXECUTION_API_SERVER_URL="http://127.0.0.1:$PORT/execution/"
export HF_HUB_OFFLINE="${HF_HUB_OFFLINE:-1}" TOKENIZERS_PARALLELISM="${TOKENIZERS_PARALLELISM:-false}"
export NO_COLOR=1
export PATH="$REPO/.venv/bin:$PATH"  # standalone runs its components as `airflow ...` found on PATH

T0=$(date +%s.%N)
echo "[airflow-up] AIRFLOW_HOME=$AIRFLOW_HOME  dags=$AIRFLOW__CORE__DAGS_FOLDER  port=$PORT"

# --- start in a new session ------------------------------------------------------------------------------------
setsid "$AIRFLOW_BIN" standalone >"$LOG" 2>&1 </dev/null &
PID=$!
echo "$PID" >"$PIDFILE"
echo "$PORT" >"$PORTFILE"

fail() {
  echo "[airflow-up] $1" >&2
  echo "[airflow-up] --- last lines of $LOG ---" >&2
  tail -n 25 "$LOG" >&2 || true
  echo "[airflow-up] stopping what was started" >&2
  bash "$REPO/scripts/airflow-down.sh" >&2 || true
  exit 1
}

# --- wait for health -------------------------------------------------------------------------------------------
HEALTH="http://127.0.0.1:$PORT/api/v2/monitor/health"
DEADLINE=$(( $(date +%s) + TIMEOUT ))
while :; do
  if ! kill -0 "$PID" 2>/dev/null; then
    fail "airflow standalone exited before it became healthy"
  fi
  if "$PYBIN" - "$HEALTH" <<'EOF' 2>/dev/null
import json, sys, urllib.request
with urllib.request.urlopen(sys.argv[1], timeout=3) as r:
    h = json.load(r)
parts = ("metadatabase", "scheduler", "triggerer", "dag_processor")
sys.exit(0 if all((h.get(p) or {}).get("status") == "healthy" for p in parts) else 1)
EOF
  then
    break
  fi
  if [ "$(date +%s)" -ge "$DEADLINE" ]; then
    fail "not healthy after ${TIMEOUT}s ($HEALTH); raise GEORESET_AIRFLOW_TIMEOUT or read $LOG"
  fi
  sleep 1
done

# Every pool the DAGs use (dags/pools.json: the rate-limited public APIs, one slot each; standalone has migrated
# the DB by now; `pools import` creates or updates, so a restart keeps them). No catalogue writer pool: the
# catalogue is a DuckLake and tasks commit concurrently.
if ! "$AIRFLOW_BIN" pools import "$REPO/dags/pools.json" >"$AIRFLOW_HOME/pools.log" 2>&1; then
  tail -n 20 "$AIRFLOW_HOME/pools.log" >&2
  fail "could not import dags/pools.json (log: $AIRFLOW_HOME/pools.log)"
fi
T1=$(date +%s.%N)

echo "[airflow-up] healthy, pools of dags/pools.json set, after $(awk -v a="$T0" -v b="$T1" 'BEGIN{printf "%.1f", b-a}') s (pid $PID, process group $PID)"
echo "[airflow-up] UI / API:       http://127.0.0.1:$PORT   (user: admin)"
echo "[airflow-up] admin password: $PASSWORDS"
echo "[airflow-up] log:            $LOG"
echo "[airflow-up] stop with:      bash scripts/airflow-down.sh"
