#!/usr/bin/env bash
# Produce the fixture messages every test may rely on.
#
# Env: SK_TEST_BROKERS       bootstrap list (host:port,...)
#      SK_TEST_TOPIC_PREFIX  per-run topic prefix (see topics.list)
# The topics exist already (test/run-tests.sh creates them from topics.list).
# Every produce waits for delivery and is read back, so a test starting after
# this script finds exactly these messages. Exits non-zero on any failure.
set -euo pipefail

: "${SK_TEST_BROKERS:?SK_TEST_BROKERS must be set}"
: "${SK_TEST_TOPIC_PREFIX?SK_TEST_TOPIC_PREFIX must be set}"
KCAT_TIMEOUT=${KCAT_TIMEOUT:-30}

# produce TOPIC PARTITION VALUE... -- one message per value, no key.
produce() {
    local topic=$SK_TEST_TOPIC_PREFIX$1 part=$2
    shift 2
    printf '%s\n' "$@" |
        timeout "$KCAT_TIMEOUT" kcat -P -b "$SK_TEST_BROKERS" -t "$topic" -p "$part" -X log_level=3 ||
        { echo "fixtures: producing to $topic [$part] failed" >&2; return 1; }
}

# expect_count TOPIC PARTITION N -- the partition holds exactly N messages.
expect_count() {
    local topic=$SK_TEST_TOPIC_PREFIX$1 part=$2 want=$3 got
    got=$(timeout "$KCAT_TIMEOUT" kcat -C -b "$SK_TEST_BROKERS" -t "$topic" -p "$part" \
              -o beginning -e -q -f 'x\n' -X log_level=3 | wc -l) ||
        { echo "fixtures: reading back $topic [$part] failed" >&2; return 1; }
    if [ "$got" -ne "$want" ]; then
        echo "fixtures: $topic [$part] holds $got messages, expected $want" >&2
        return 1
    fi
}

# watermarks3: m1..m10 in each of its 3 partitions (low 0, high 10).
for p in 0 1 2; do
    produce watermarks3 "$p" m{1..10}
    expect_count watermarks3 "$p" 10
done

# empty1: nothing, on purpose (low = high = 0).

echo "fixtures: produced to ${SK_TEST_TOPIC_PREFIX}watermarks3"
