#!/usr/bin/env bash
# Runs every example end to end against a real Warren and checks what they print.
#
#   examples/run_examples_test.sh [path-to-warren]
#
# The default binary is build-examples/broker/warren (see examples/README.md to build it).
# Warren is started on a free loopback port (--port 0) and everything started here is
# killed on exit. Exits non-zero if any check fails. Takes about 20 seconds (the click stream's
# consumers stop after 3 idle seconds).
#
# BROKER_PORT=N runs the examples against a broker already listening on 127.0.0.1:N instead,
# e.g. a fresh RabbitMQ node to compare with (the examples leave queues behind, so only
# a fresh broker passes).
set -uo pipefail

here=$(cd "$(dirname "$0")" && pwd)
warren=${1:-$here/../build-examples/broker/warren}
PY=/usr/bin/python3                      # Debian's python3, which has pika
export PYTHONUNBUFFERED=1
work=$(mktemp -d "${TMPDIR:-/tmp}/warren-examples.XXXXXX")
pids=()
failures=0

cleanup() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null; done
    wait 2>/dev/null
    rm -rf "$work"
}
trap cleanup EXIT

fail() { echo "FAIL: $*"; failures=$((failures + 1)); }
pass() { echo "ok: $*"; }

# start NAME COMMAND...: runs COMMAND in the background, output in $work/NAME.log,
# its pid in pid[NAME].
declare -A pid
start() {
    local name=$1; shift
    (exec "$@" >"$work/$name.log" 2>&1) &
    pid[$name]=$!
    pids+=($!)
}

# example SCRIPT ARGS...: sets cmd to the command line of an example, under `timeout` so
# that a hang cannot stall the test.
example() { cmd=(timeout 30 "$PY" "$here/$1" --host 127.0.0.1 --port "$port" "${@:2}"); }

# start_example NAME SCRIPT ARGS...: start an example in the background.
start_example() { example "${@:2}"; start "$1" "${cmd[@]}"; }

# run NAME SCRIPT ARGS...: runs an example in the foreground; fails if it exits non-zero.
run() {
    local name=$1; shift
    example "$@"
    "${cmd[@]}" >"$work/$name.log" 2>&1
    local rc=$?
    if ((rc != 0)); then fail "$name exited with $rc"; show "$name"; return 1; fi
}

# finish NAME: waits for a process started with `start`; fails if it exited non-zero.
finish() {
    wait "${pid[$1]}"; local rc=$?
    if ((rc != 0)); then fail "$1 exited with $rc"; show "$1"; return 1; fi
}

# wait_for NAME REGEX [SECONDS]: waits until NAME's output has a line matching REGEX.
wait_for() {
    local deadline=$((SECONDS + ${3:-10}))
    until grep -Eq -- "$2" "$work/$1.log" 2>/dev/null; do
        if ((SECONDS >= deadline)); then fail "$1: no line matching '$2' after ${3:-10}s"; show "$1"; return 1; fi
        sleep 0.05
    done
}

# expect NAME REGEX: NAME's output has a line matching REGEX.
expect() {
    if grep -Eq -- "$2" "$work/$1.log"; then pass "$1: $2"; else fail "$1: no line matching '$2'"; show "$1"; fi
}

show() { sed "s/^/    $1| /" "$work/$1.log"; }

# --- Warren -------------------------------------------------------------------------------------
if [[ -n ${BROKER_PORT:-} ]]; then
    port=$BROKER_PORT    # use a broker that is already running, e.g. RabbitMQ to compare
    echo "using the broker on 127.0.0.1:$port"
else
    [[ -x $warren ]] || { echo "no warren binary at $warren (pass its path as the first argument)"; exit 2; }
    start warren "$warren" --bind 127.0.0.1 --port 0 --data-dir "$work/data"   # port 0: Warren picks a free port and logs it
    wait_for warren 'listening for AMQP connections on 127\.0\.0\.1:[0-9]+' || exit 1
    port=$(grep -Eo 'listening for AMQP connections on 127\.0\.0\.1:[0-9]+' "$work/warren.log" | head -1 | sed 's/.*://')
    echo "warren on 127.0.0.1:$port"
fi

# --- 1. click fan-out: every queue gets every click once ---------------------------------------
N=200
for q in settlement analytics dashboard; do
    start_example "consumer-$q" click_fanout/consumer.py --queue "$q" --count $N --idle-timeout 10
done
for q in settlement analytics dashboard; do wait_for "consumer-$q" 'waiting for clicks'; done
run publisher click_fanout/publisher.py --count $N
total=$(grep -Eo 'total price [0-9.]+' "$work/publisher.log" | sed 's/total price //')
for q in settlement analytics dashboard; do
    finish "consumer-$q" && expect "consumer-$q" "^\[$q\] clicks=$N sum=$total duplicates=0 "
done

# --- 2. work queue: fair dispatch, and a killed worker's job is redelivered --------------------
N=20
start_example worker-A work_queue/worker.py --name A --speed 0.01    # 100x slower: killed mid-job
start_example worker-B work_queue/worker.py --name B --idle-timeout 1
start_example worker-C work_queue/worker.py --name C --idle-timeout 1 --speed 3
for w in A B C; do wait_for "worker-$w" 'waiting for jobs'; done
run producer work_queue/producer.py --count $N --work-ms 20
if wait_for worker-A 'A: started job'; then
    killed_job=$(grep -Eo 'A: started job [0-9]+' "$work/worker-A.log" | head -1 | grep -Eo '[0-9]+$')
    # kill -9 the python under A's `timeout`; in braces so that bash's "Killed" goes to /dev/null
    { pkill -KILL -P "${pid[worker-A]}"; wait "${pid[worker-A]}"; } 2>/dev/null
    finish worker-B; finish worker-C
    if grep -q 'A: done' "$work/worker-A.log"; then fail "worker A finished a job before it was killed"; fi
    expect worker-B 'B: processed [1-9]'
    expect worker-C 'C: processed [1-9]'
    b=$(grep -Eo 'processed [0-9]+' "$work/worker-B.log" | grep -Eo '[0-9]+')
    c=$(grep -Eo 'processed [0-9]+' "$work/worker-C.log" | grep -Eo '[0-9]+')
    if ((c > b)); then pass "work queue: fair dispatch, C (3x faster) did $c jobs, B $b"
    else fail "work queue: C (3x faster) did $c jobs, B $b"; fi
    done_jobs=$(grep -Eho 'processed [0-9]+ jobs: .*' "$work/worker-B.log" "$work/worker-C.log" |
                sed 's/.*: //' | tr ' ' '\n' | sort -n | tr '\n' ' ')
    if [[ $done_jobs == "$(seq -s ' ' 1 $N) " ]]; then pass "work queue: jobs 1..$N each done once"
    else fail "work queue: jobs done by B and C: $done_jobs"; fi
    if grep -Eqh "(B|C): done job $killed_job \(redelivered\)" "$work/worker-B.log" "$work/worker-C.log"
    then pass "work queue: job $killed_job of the killed worker redelivered"
    else fail "work queue: job $killed_job of the killed worker not redelivered"; show worker-B; show worker-C; fi
fi

# --- 3. PDF jobs: nack(requeue=True) for transient failures, reject for permanent ones ---------
run pdf-submit pdf_jobs/submit.py --count 20 --corrupt-every 5
run pdf-worker pdf_jobs/worker.py --failure-rate 0.3 --seed 7 --render-ms 1 --count 20 --idle-timeout 5
expect pdf-worker '^rendered=16 rejected=4 requeued=[1-9]'
expect pdf-worker '\(redelivered\): rendered'

# --- 4. retry pipeline: delayed retries through a TTL queue, then the parking lot --------------
run retry-submit retry_pipeline/submit.py --count 6 --flaky-every 2 --broken-every 3
run retry-worker retry_pipeline/worker.py --retry-delay-ms 200 --max-attempts 3 --count 6 --idle-timeout 5
expect retry-worker '^job 2 attempt 2: rendered'
expect retry-worker '^job 3 attempt 3: .*; parked'
expect retry-worker '^rendered=4 parked=2 retries=6$'
run parking-lot retry_pipeline/show_parking_lot.py
expect parking-lot '^job-3: '
expect parking-lot 'after 3 attempts'
expect parking-lot 'x-death: queue=pdf\.work reason=rejected count=2 time=[0-9T:-]+Z exchange=pdf\.work routing-keys=pdf\.work$'
expect parking-lot 'x-death: queue=pdf\.retry\.200ms reason=expired count=2 time=[0-9T:-]+Z exchange=pdf\.retry routing-keys=pdf\.work$'
expect parking-lot '^2 parked jobs$'
run parking-lot-replay retry_pipeline/show_parking_lot.py --replay
expect parking-lot-replay '^replayed 2 parked jobs'
run retry-worker-2 retry_pipeline/worker.py --retry-delay-ms 200 --max-attempts 3 --count 2 --idle-timeout 5
expect retry-worker-2 '^job 3 attempt 1: '
expect retry-worker-2 '^rendered=0 parked=2 retries=4$'

# --- 4b. the same jobs retried with backoff by the queue's arguments: no TTL queue -------------
run backoff-submit pdf_backoff/submit.py --count 7 --flaky-every 2 --broken-every 3 --corrupt-every 7 \
    --retry-min-ms 100 --retry-max-ms 400 --max-attempts 4
run backoff-worker pdf_backoff/worker.py --retry-min-ms 100 --retry-max-ms 400 --max-attempts 4 --count 7 --idle-timeout 5
expect backoff-worker '^job 2 attempt 3 \(after [0-9.]+ s\): rendered'
expect backoff-worker '^job 3 attempt 4 \(after [0-9.]+ s\): renderer busy; out of attempts$'
expect backoff-worker '^job 7 attempt 1: invoice-7\.pdf is not a PDF; rejected$'
expect backoff-worker '^rendered=4 given-up=3 retries=[0-9]+ in pdf\.thumbnails\.failed: 3$'
run backoff-failed pdf_backoff/show_failed.py
expect backoff-failed '^job 3 \(invoice-3\.pdf\): out of attempts$'
expect backoff-failed '^job 7 \(invoice-7\.pdf\): rejected as hopeless$'
expect backoff-failed '^3 failed jobs$'

# --- 4c. scheduled publish through a delayed-message exchange ----------------------------------
start_example inbox scheduled_publish/inbox.py --count 3 --idle-timeout 10
wait_for inbox 'waiting for reminders'
run schedule scheduled_publish/schedule.py 600ms:third 200ms:first 400ms:second
expect schedule "^scheduled 'third' for "
if finish inbox; then
    if [[ $(grep -Eo "^reminder '[a-z]+'" "$work/inbox.log" | tr '\n' ' ') == "reminder 'first' reminder 'second' reminder 'third' " ]]
    then pass "scheduled publish: reminders delivered in the order of their times"
    else fail "scheduled publish: order"; show inbox; fi
    expect inbox "^reminder 'third': held 600 ms, arrived [0-9]+ ms after its time$"
fi

# --- 5. ordered dead-lettering: a failed event holds back the rest of its order ----------------
run orders-producer ordered_dead_letter/producer.py --orders 3 --fail order-2:2
run orders-consumer ordered_dead_letter/consumer.py --count 12 --idle-timeout 5
expect orders-consumer '^order-2 #2 paid: FAILED'
expect orders-consumer '^order-3 #4 shipped: processed$'
expect orders-consumer '^done; held orders: order-2$'
if [[ $(grep -c ': processed$' "$work/orders-consumer.log") == 9 ]]; then pass "orders: 9 events processed in order"
else fail "orders: expected 9 events processed in order"; show orders-consumer; fi
run dead-letters ordered_dead_letter/show_dead_letters.py
expected='order-2 #2 paid: rejected from queue orders
order-2 #3 packed: rejected from queue orders
order-2 #4 shipped: rejected from queue orders
3 dead-lettered events'
if [[ $(cat "$work/dead-letters.log") == "$expected" ]]; then pass "orders: dead-letter queue holds order-2 #2..#4 in order"
else fail "orders: dead-letter queue"; show dead-letters; fi

# --- 6. RPC with direct reply-to ----------------------------------------------------------------
start_example rpc-server rpc/server.py --count 8
wait_for rpc-server 'waiting for requests'
run rpc-client rpc/client.py --count 5
expect rpc-client '^fib\(4\) = 3$'
run rpc-client-2 rpc/client.py 10 20 30
expect rpc-client-2 '^fib\(30\) = 832040$'
finish rpc-server && expect rpc-server '^served 8 requests$'

# --- 7. click stream: a super stream read by consumer groups, and a replay --------------------
# Warren only: super streams and x-stream-group are not served by RabbitMQ over AMQP 0-9-1.
if [[ -n ${BROKER_PORT:-} ]]; then echo "skipped: click stream (Warren only)"; else
    N=600
    run click-topology click_stream/topology.py
    members=(settlement/s1 settlement/s2 analytics/a1 dashboard/d1 dashboard/d2)
    for m in "${members[@]}"; do
        start_example "group-${m/\//-}" click_stream/group_consumer.py --group "${m%/*}" --name "${m#*/}" --idle-timeout 3
    done
    for m in "${members[@]}"; do wait_for "group-${m/\//-}" 'joined'; done
    run click-publisher click_stream/publisher.py --count $N --ads 20
    start_example group-dashboard-d3 click_stream/group_consumer.py --group dashboard --name d3 --idle-timeout 3
    members+=(dashboard/d3)
    total=$(grep -Eo 'total price [0-9.]+' "$work/click-publisher.log" | sed 's/total price //')
    for m in "${members[@]}"; do finish "group-${m/\//-}" && expect "group-${m/\//-}" "out_of_order=0$"; done
    # The members that were there from the start shared their group's partitions.
    for m in settlement/s1 settlement/s2 dashboard/d1 dashboard/d2; do expect "group-${m/\//-}" " clicks=[1-9]"; done
    for g in settlement analytics dashboard; do
        # Each group read every click once, its members together; the sums add up to the publisher's.
        read -r clicks cents < <(cat "$work"/group-$g-*.log | grep -Eo 'clicks=[0-9]+ sum=[0-9.]+' |
            awk -F'[= ]' '{n += $2; s += $4 * 100} END {printf "%d %.0f\n", n, s}')
        want=$(awk -v t="$total" 'BEGIN {printf "%.0f", t * 100}')
        if [[ $clicks == "$N" && $cents == "$want" ]]; then pass "click stream: group $g read $N clicks once, in order per ad"
        else fail "click stream: group $g read $clicks clicks, sum $cents (expected $N, $want)"; fi
    done
    run click-replay-week click_stream/replay.py --since 7D
    expect click-replay-week "^replayed $N clicks for 20 ads, total price $total$"
    run click-replay-from click_stream/replay.py --from "$(date -u -d '1 hour ago' +%Y-%m-%dT%H:%M:%S)"
    expect click-replay-from "^replayed $N clicks "
    run click-replay-future click_stream/replay.py --from "$(date -u -d 'tomorrow' +%Y-%m-%dT%H:%M:%S)" --idle-timeout 1
    expect click-replay-future "^replayed 0 clicks "
fi

# --- 8. dead-lettering on a partition: a failed event parks its order, a redrive replays it -------
# Warren only (x-stream-group).
if [[ -n ${BROKER_PORT:-} ]]; then echo "skipped: partition dead letter (Warren only)"; else
    for m in m1 m2; do start_example "member-$m" partition_dead_letter/member.py --name $m --idle-timeout 3; done
    for m in m1 m2; do wait_for "member-$m" 'joined'; done
    run orders-publish partition_dead_letter/producer.py --orders 12 --fail order-2:2
    for m in m1 m2; do finish "member-$m" && expect "member-$m" " processed=[1-9][0-9]* .* out_of_order=0 "; done
    cat "$work"/member-m1.log "$work"/member-m2.log >"$work/members.log"
    expect members '\] order-2 #2 paid: FAILED .*; parked, and order-2 with it$'
    expect members '\] order-2 #3 packed: parked behind #2$'
    expect members '\] order-2 #4 shipped: parked behind #2$'
    expect members '\] order-3 #4 shipped: processed$'
    processed=$(grep -Eho ' processed=[0-9]+' "$work"/member-m*.log | awk -F= '{n += $2} END {print n}')
    if [[ $processed == 45 ]]; then pass "partition dead letter: 45 of 48 events processed, once each"
    else fail "partition dead letter: $processed events processed (expected 45)"; fi
    # Another event of the parked order arrives before the fix: parked too, by a member that never saw the others.
    run orders-publish-2 partition_dead_letter/producer.py --orders 2 --events delivered --first-seq 5
    run parked partition_dead_letter/show_parked.py
    expected='order-2 #2 paid: partition [0-9] offset [0-9]+, payment data does not validate
order-2 #3 packed: partition [0-9] offset [0-9]+, behind an earlier parked event
order-2 #4 shipped: partition [0-9] offset [0-9]+, behind an earlier parked event
3 parked events in 1 orders'
    if [[ $(cat "$work/parked.log") =~ ^$expected$ ]]; then pass "partition dead letter: order-2 #2..#4 parked in order"
    else fail "partition dead letter: parked events"; show parked; fi
    run orders-redrive partition_dead_letter/redrive.py order-2
    run member-m3 partition_dead_letter/member.py --name m3 --fixed --idle-timeout 2
    expect member-m3 '^\[m3\] order-1 #5 delivered: processed$'
    m3=$(grep -E '^\[m3\] order-2 ' "$work/member-m3.log" | sed 's/^\[m3\] //' | tr '\n' ';')
    if [[ $m3 == "order-2 #5 delivered: parked behind #2;order-2 #2 paid: processed (redriven);order-2 #3 packed: processed (redriven);order-2 #4 shipped: processed (redriven);order-2 #5 delivered: processed (redriven);" ]]
    then pass "partition dead letter: the redrive replayed order-2 #2..#5 in order, #5 parked behind them"
    else fail "partition dead letter: member m3"; show member-m3; fi
    expect member-m3 '^\[m3\] redrive of order-2: 4 of 4 parked events processed; released$'
    run parked-after partition_dead_letter/show_parked.py
    expect parked-after '^0 parked events in 0 orders$'
fi

# --- Warren still up? -------------------------------------------------------------------------
if [[ -z ${BROKER_PORT:-} ]]; then
    if kill -0 "${pid[warren]}" 2>/dev/null; then pass "warren still running"; else fail "warren died"; show warren; fi
fi

if ((failures)); then echo "$failures check(s) failed"; exit 1; fi
echo "all examples passed"
