#!/usr/bin/env bash
# The live demo: a real Prometheus scraping two instances of the example
# service every second, a load generator, and the rollout controller on a
# two-minute plan (examples/plans/live-demo.json: 15 s soaks, 5 s sustained,
# a 15 s window) with the gate file examples/gates/live-demo.json: the
# gate's default queries, which judge the flagged users (the `in` cohort)
# against their own thresholds and against everyone else, as well as the
# global series.
#
#   scripts/demo.sh            healthy: 5 → 10 → 25 → 50 → 100%, completes (exit 0)
#   scripts/demo.sh --fault    5% errors for flagged users only (0.05% for the rest):
#                              rolled back to 0% within seconds (exit 1)
#
# Options: --rate N (requests/s, default 400), --debug (debug builds: faster
# to compile), --keep (keep the work directory with every log).
# Needs cargo, curl and Debian's `prometheus` package (installed when
# missing, with sudo unless root, as CI does).
set -euo pipefail
cd "$(dirname "$0")/.."
root="$(pwd)"

fault=0
rate=400
profile=release
keep=0
while [ $# -gt 0 ]; do
    case "$1" in
        --fault) fault=1 ;;
        --rate) rate="$2"; shift ;;
        --debug) profile=debug ;;
        --keep) keep=1 ;;
        -h|--help) sed -n '2,17p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "demo: unknown option $1 (try --help)" >&2; exit 2 ;;
    esac
    shift
done

say() { printf '\n== %s\n' "$*"; }

for tool in cargo curl; do
    command -v "$tool" >/dev/null 2>&1 || { echo "demo: $tool is required" >&2; exit 2; }
done
if ! command -v prometheus >/dev/null 2>&1; then
    say "installing Debian's prometheus package"
    sudo=""
    if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
    $sudo apt-get update
    # Recommends would pull in node-exporter and ~370 MB more.
    $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends prometheus
fi

say "building the controller, the service and the load generator ($profile)"
build=(cargo build --quiet --features prometheus --example controller --example service --example loadgen)
[ "$profile" = release ] && build+=(--release)
"${build[@]}"
bin="$root/target/$profile/examples"
plan="$root/examples/plans/live-demo.json"

work="$(mktemp -d "${TMPDIR:-/tmp}/genesis-demo.XXXXXX")"
pids=()
cleanup() {
    # Newest first: the load generator stops before the services it calls.
    for ((i = ${#pids[@]} - 1; i >= 0; i--)); do kill -TERM "${pids[$i]}" 2>/dev/null || true; done
    wait 2>/dev/null || true
    if [ "$keep" = 1 ]; then echo "demo: logs kept in $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])' 2>/dev/null \
        || echo $((20000 + RANDOM % 20000))
}
ports=("$(free_port)" "$(free_port)")
prom_port="$(free_port)"
cd "$work"

say "flags file at 0% for phase_4_deployment, plan $(basename "$plan")"
"$bin/controller" init --example-flags flags.json >/dev/null
"$bin/controller" init --flags flags.json --rollout phase_4_deployment --plan "$plan"

say "two service instances on ${ports[0]} and ${ports[1]} (0.05% background errors)"
for port in "${ports[@]}"; do
    "$bin/service" --listen "127.0.0.1:$port" --flags flags.json --poll 1s \
        --base-error-ratio 0.0005 >"service-$port.log" 2>&1 &
    pids+=($!)
done

cat >prometheus.yml <<YAML
global:
  scrape_interval: 1s
  evaluation_interval: 1s
scrape_configs:
  - job_name: genesis-service
    static_configs:
      - targets: ['127.0.0.1:${ports[0]}', '127.0.0.1:${ports[1]}']
YAML
say "Prometheus on $prom_port, scraping both every second"
prometheus --config.file=prometheus.yml --storage.tsdb.path=data \
    --web.listen-address="127.0.0.1:$prom_port" --log.level=warn >prometheus.log 2>&1 &
pids+=($!)

# The gate's default queries, cohort-aware: the global series and, from the
# services' cohort="in"|"out" labels, the flagged users' error rate and P95,
# in against out, and every instance's percentage. The file only sets what a
# minutes-long demo needs: a 15 s window, the rollout, no wait for a sample
# big enough to detect a doubling, and the job this Prometheus scrapes.
sed "s#http://127.0.0.1:9090#http://127.0.0.1:$prom_port#" \
    "$root/examples/gates/live-demo.json" >gate.json

query() {
    curl -sfG "http://127.0.0.1:$prom_port/api/v1/query" --data-urlencode "query=$1" 2>/dev/null || true
}
for _ in $(seq 1 120); do
    if query 'count(up{job="genesis-service"} == 1)' | grep -q '"2"\]'; then break; fi
    sleep 0.5
done
query 'count(up{job="genesis-service"} == 1)' | grep -q '"2"\]' \
    || { echo "demo: Prometheus never saw both instances up (see $work)" >&2; keep=1; exit 2; }

if [ "$fault" = 1 ]; then
    say "fault: 5% errors for in-cohort requests only, on both instances"
    for port in "${ports[@]}"; do
        curl -sf -X POST "127.0.0.1:$port/admin/fault" -d '{"error_ratio": 0.05, "latency_ms": 0}'
        echo
    done
fi

say "load: $rate requests/s over 100000 users"
# Created first: the background redirection below may come after tail opens it.
: >loadgen.log
"$bin/loadgen" --target "127.0.0.1:${ports[0]}" --target "127.0.0.1:${ports[1]}" \
    --rate "$rate" --report-every 5s >loadgen.log 2>&1 &
loadgen_pid=$!
pids+=("$loadgen_pid")
# Ends with the load generator.
tail -n +1 -f --pid="$loadgen_pid" loadgen.log | sed -u 's/^/    /' &
sleep 5

say "controller: promote to the first stage, then run --tick 1s"
"$bin/controller" promote --reason "live demo"
set +e
"$bin/controller" run --gate gate.json --tick 1s 2>controller.log
code=$?
set -e
# Stop the load first, so its last summary lines come before the verdict.
kill -TERM "$loadgen_pid" 2>/dev/null || true
wait "$loadgen_pid" 2>/dev/null || true
sleep 0.5

say "what Prometheus saw over the last 15 s"
for cohort in in out; do
    value="$(query "sum(increase(genesis_errors_total{cohort=\"$cohort\"}[15s])) / sum(increase(genesis_requests_total{cohort=\"$cohort\"}[15s]))" \
        | sed -n 's/.*"value":\[[^,]*,"\([^"]*\)".*/\1/p')"
    [ "${value:-NaN}" = NaN ] && value="no requests"
    echo "    error ratio, $cohort cohort: $value"
done
global="$(query 'sum(increase(genesis_errors_total[15s])) / sum(increase(genesis_requests_total[15s]))' \
    | sed -n 's/.*"value":\[[^,]*,"\([^"]*\)".*/\1/p')"
echo "    error ratio, global:    ${global:-none}   (what a gate on global series would judge)"
echo
echo "demo: controller exit code $code ($( [ "$code" = 0 ] && echo completed || echo 'rolled back or paused'))"
exit "$code"
