# Sourced by the scripts that test against a running local stack (clients/typescript/test.sh,
# scripts/schemathesis.sh): `start_local_stack PORT MOTO_PORT` builds tollgate-dev (unless
# TOLLGATE_DEV names a binary), starts `tollgate-dev up` with its own moto in a process group of
# its own, waits until it serves /plans (90 s at most) and stops it, moto included, when the
# calling script exits. Variables of the caller's environment (STRIPE_WEBHOOK_SECRETS, ...) reach
# the stack.

listening() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

start_local_stack() {
  local port=$1 moto_port=$2 root
  root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
  local url="http://127.0.0.1:$port"
  if [ -n "${TOLLGATE_DEV:-}" ]; then
    TOLLGATE_DEV=$(realpath "$TOLLGATE_DEV")
  else
    (cd "$root" && cargo build -q -p tollgate-dev)
    TOLLGATE_DEV="${CARGO_TARGET_DIR:-$root/target}/debug/tollgate-dev"
  fi
  for p in "$port" "$moto_port"; do
    if listening "$p"; then
      echo "port $p is in use: choose free ports (see the calling script's header)" >&2
      exit 1
    fi
  done

  # The stack in its own process group, so that stopping it stops moto (its child) too.
  stack_log=$(mktemp)
  setsid "$TOLLGATE_DEV" up --port "$port" --moto-port "$moto_port" >"$stack_log" 2>&1 &
  stack_pid=$!
  trap stop_local_stack EXIT
  trap 'exit 130' INT
  trap 'exit 143' TERM

  local start
  start=$(date +%s)
  until [ "$(curl -s -o /dev/null -w '%{http_code}' "$url/plans" || true)" = 200 ]; do
    if ! kill -0 "$stack_pid" 2>/dev/null; then
      echo "the local stack exited before serving $url/plans:" >&2
      cat "$stack_log" >&2
      exit 1
    fi
    if [ $(($(date +%s) - start)) -ge 90 ]; then
      echo "the local stack did not serve $url/plans within 90 s:" >&2
      cat "$stack_log" >&2
      exit 1
    fi
    sleep 0.5
  done
  echo "local stack up on $url after $(($(date +%s) - start)) s"
}

stop_local_stack() {
  kill -TERM -- "-$stack_pid" 2>/dev/null || true
  for _ in $(seq 1 50); do kill -0 -- "-$stack_pid" 2>/dev/null || break; sleep 0.1; done
  kill -KILL -- "-$stack_pid" 2>/dev/null || true
  wait "$stack_pid" 2>/dev/null || true
  rm -f "$stack_log"
}
