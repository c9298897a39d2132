#!/usr/bin/env bash
# Run one sensu-backend node on loopback, initialize it, start one local agent
# with a demo check, and keep them in the foreground. Ctrl-C stops it. State lives in ./.state (delete it to start over).
set -euo pipefail
cd "$(dirname "$0")/.."

BIN=.venv/bin/sensu-backend
PY=.venv/bin/python
# Overridable so tests can run this very script on free ports.
STATE=${SENSU_RUN_STATE:-./.state}
API_PORT=${SENSU_RUN_API_PORT:-8080}
AGENT_PORT=${SENSU_RUN_AGENT_PORT:-8081}
DASHBOARD_PORT=${SENSU_RUN_DASHBOARD_PORT:-3000}
PEER_PORT=${SENSU_RUN_PEER_PORT:-2380}
API_URL=http://127.0.0.1:$API_PORT
DASHBOARD_URL=http://127.0.0.1:$DASHBOARD_PORT
ADMIN_USER=admin
ADMIN_PASSWORD='P@ssw0rd!'
STARTUP_TIMEOUT=60
AGENT_API_PORT=${SENSU_RUN_AGENT_API_PORT:-3031}
AGENT_NAME=local-agent
# The stock Sensu Go agent when it is installed (make go-clients), else ours.
GO_AGENT=.cache/go/bin/sensu-agent

mkdir -p "$STATE/sensu-backend" "$STATE/cache"
# A local backend.yml keeps any /etc/sensu/backend.yml on this machine out of the way.
[[ -f "$STATE/backend.yml" ]] || echo "# backend.yml keys for 'make run' (flags below win)" >"$STATE/backend.yml"

"$BIN" start \
  --config-file "$STATE/backend.yml" \
  --state-dir "$STATE/sensu-backend" \
  --cache-dir "$STATE/cache" \
  --api-listen-address "127.0.0.1:$API_PORT" \
  --api-url "$API_URL" \
  --agent-host 127.0.0.1 --agent-port "$AGENT_PORT" \
  --dashboard-host 127.0.0.1 --dashboard-port "$DASHBOARD_PORT" \
  --etcd-name default \
  --etcd-listen-peer-urls "http://127.0.0.1:$PEER_PORT" \
  --etcd-initial-advertise-peer-urls "http://127.0.0.1:$PEER_PORT" \
  --etcd-initial-cluster "default=http://127.0.0.1:$PEER_PORT" \
  --log-level info &
pid=$!

agent_pid=""

stop() {  # stop [exit-code]
  local code=${1:-130}
  trap - INT TERM
  if [[ -n "$agent_pid" ]]; then
    kill -TERM "$agent_pid" 2>/dev/null || true
    wait "$agent_pid" 2>/dev/null || true
  fi
  echo "stopping sensu-backend (pid $pid)" >&2
  kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 1 100); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  kill -KILL "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  exit "$code"
}
trap 'stop 130' INT TERM

# Wait until /health answers at all (any HTTP status), or the backend exits.
deadline=$((SECONDS + STARTUP_TIMEOUT))
until "$PY" -c 'import sys, httpx; httpx.get(sys.argv[1], timeout=1.0)' "$API_URL/health" 2>/dev/null; do
  if ! kill -0 "$pid" 2>/dev/null; then
    set +e; wait "$pid"; rc=$?; set -e
    echo "sensu-backend exited during startup (exit $rc)" >&2
    exit "$rc"
  fi
  if ((SECONDS >= deadline)); then
    echo "sensu-backend did not answer $API_URL/health within ${STARTUP_TIMEOUT}s" >&2
    stop 1
  fi
  sleep 0.2
done

set +e
"$BIN" init --api-url "$API_URL" --wait --timeout 30s \
  --cluster-admin-username "$ADMIN_USER" --cluster-admin-password "$ADMIN_PASSWORD"
rc=$?
set -e
if ((rc != 0 && rc != 3)); then  # 3 = already initialized
  echo "sensu-backend init failed (exit $rc)" >&2
  stop 1
fi

# A demo check, and one local agent that runs it, so the dashboard shows live events at once.
"$PY" - "$API_URL" "$ADMIN_USER" "$ADMIN_PASSWORD" <<'PY' || echo "could not create the demo check" >&2
import sys, httpx
api, user, password = sys.argv[1:4]
token = httpx.get(f"{api}/auth", auth=(user, password), timeout=10).json()["access_token"]
check = {"metadata": {"name": "demo", "namespace": "default"}, "command": "echo demo check OK",
         "interval": 10, "subscriptions": ["demo"], "publish": True}
httpx.put(f"{api}/api/core/v2/namespaces/default/checks/demo", json=check, timeout=10,
          headers={"Authorization": f"Bearer {token}"}).raise_for_status()
PY
if [[ -x "$GO_AGENT" ]]; then AGENT_BIN=$GO_AGENT; else AGENT_BIN=.venv/bin/sensu-agent; fi
mkdir -p "$STATE/agent-cache"
"$AGENT_BIN" start --name "$AGENT_NAME" --subscriptions demo \
  --backend-url "ws://127.0.0.1:$AGENT_PORT" --cache-dir "$STATE/agent-cache" \
  --api-port "$AGENT_API_PORT" --disable-sockets --log-level warn >"$STATE/agent.log" 2>&1 &
agent_pid=$!

cat <<MSG

Sensu backend is running (pid $pid).
  API:        $API_URL
  Dashboard:  $DASHBOARD_URL
  Username:   $ADMIN_USER
  Password:   $ADMIN_PASSWORD
  Agent:      $AGENT_NAME ($AGENT_BIN, log in $STATE/agent.log) runs the check "demo" every 10 s
Press Ctrl-C to stop.

MSG

set +e
wait "$pid"
rc=$?
kill -TERM "$agent_pid" 2>/dev/null
wait "$agent_pid" 2>/dev/null
exit "$rc"
