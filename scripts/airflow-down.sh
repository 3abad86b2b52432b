#!/usr/bin/env bash
# Stop what scripts/airflow-up.sh started: every process of its session (the standalone parent, api-server,
# scheduler, dag-processor, triggerer, executor workers and task processes, which Airflow puts in process groups
# of their own). SIGTERM first, SIGKILL for whatever is left after GEORESET_AIRFLOW_STOP_TIMEOUT seconds
# (default 20). Removes the PID file. Leaves nothing running; exits 0 when nothing was running.
#
#   GEORESET_AIRFLOW_HOME          same as for airflow-up.sh (default: <repo>/.airflow)
#   GEORESET_AIRFLOW_STOP_TIMEOUT  seconds between SIGTERM and SIGKILL (default: 20)
set -euo pipefail
REPO="$(cd "$(dirname "$0")/.." && pwd)"
AIRFLOW_HOME="${GEORESET_AIRFLOW_HOME:-$REPO/.airflow}"
PIDFILE="$AIRFLOW_HOME/standalone.pid"
PORTFILE="$AIRFLOW_HOME/standalone.port"
TIMEOUT="${GEORESET_AIRFLOW_STOP_TIMEOUT:-20}"

if [ ! -f "$PIDFILE" ]; then
  echo "[airflow-down] not running (no $PIDFILE)"
  exit 0
fi
SID="$(tr -dc '0-9' <"$PIDFILE")"
if [ -z "$SID" ] || [ "$SID" -le 1 ]; then
  echo "[airflow-down] $PIDFILE does not hold a usable PID; removing it" >&2
  rm -f "$PIDFILE" "$PORTFILE"
  exit 1
fi

# Live (non-zombie) members of the session $SID. airflow-up.sh starts the standalone parent with setsid, so its
# PID is the session id of everything it spawns (setpgid by task runners keeps the session).
members() {
  ps -e -o pid=,sid=,stat= | awk -v sid="$SID" '$2 == sid && $3 !~ /^Z/ { print $1 }'
}
signal_all() {  # $1: signal name
  kill -s "$1" -- "-$SID" 2>/dev/null || true  # the standalone process group
  local p
  for p in $(members); do kill -s "$1" "$p" 2>/dev/null || true; done  # other groups of the session
}

if [ -z "$(members)" ]; then
  echo "[airflow-down] nothing running in session $SID; removing stale $PIDFILE"
  rm -f "$PIDFILE" "$PORTFILE"
  exit 0
fi

echo "[airflow-down] SIGTERM to session $SID ($(members | wc -l) processes)"
signal_all TERM
DEADLINE=$(( $(date +%s) + TIMEOUT ))
while [ -n "$(members)" ] && [ "$(date +%s)" -lt "$DEADLINE" ]; do
  sleep 0.5
done
if [ -n "$(members)" ]; then
  echo "[airflow-down] $(members | wc -l) processes still alive after ${TIMEOUT}s: SIGKILL"
  signal_all KILL
  for _ in $(seq 1 20); do
    [ -z "$(members)" ] && break
    sleep 0.5
  done
fi
LEFT="$(members | tr '\n' ' ')"
rm -f "$PIDFILE" "$PORTFILE"
if [ -n "$LEFT" ]; then
  echo "[airflow-down] could not stop: $LEFT" >&2
  exit 1
fi
echo "[airflow-down] stopped"
