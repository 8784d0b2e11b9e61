#!/usr/bin/env bash
# An operator's routine with the irontoken CLI (see README.md).
set -euo pipefail
: "${IRONTOKEN_DB:?set IRONTOKEN_DB to the database file}"
export IRONTOKEN_DB IRONTOKEN_ACTOR=${IRONTOKEN_ACTOR:-ops}
json() { python3 -c "import json,sys; print(json.load(sys.stdin)$1)"; }

# A customer's key: 10 requests a second (bursts of 20), 100k a day.
# --quiet prints the new key alone; durations take units everywhere (90d, 1h, 30s).
KEY=$(irontoken -q keys create --owner acme --scope llm --expires-in 90d \
  --rate-limit per_second=10/1s:20 --rate-limit per_day=100000/1d)
KEY_ID=$(IRONTOKEN_KEY=$KEY irontoken --json keys verify --scope llm | json '["record"]["id"]')
echo "created $KEY_ID"

# A monthly cost quota for the customer (50 currency units in micro-units).
irontoken quota set --owner acme --metric cost --period month --limit 50000000 > /dev/null
irontoken quota list --owner acme

# Scheduled rotation: keys older than their period get a successor; the old
# key keeps working for a day. Safe from cron on several hosts at once.
irontoken keys due --default-period 90d
irontoken keys rotate-due --default-period 90d --overlap 1d > /dev/null

# Usage of the month so far, as CSV for the billing system.
irontoken usage export --format csv --output usage.csv
echo "exported $(($(wc -l < usage.csv) - 1)) usage records"

# A leaked key: revoked at once, everywhere; the audit trail says who and why.
irontoken keys revoke "$KEY_ID" --reason "leaked in a public repository"
IRONTOKEN_KEY=$KEY irontoken keys verify && exit 1 || echo "the leaked key is refused"
irontoken audit list --key-id "$KEY_ID" --since "$(date -u +%Y-%m-01T00:00:00Z)"

irontoken stats --window 1d       # keys by state and owner, the day's use, quota burn
irontoken doctor
echo "cli-operator: ok"
