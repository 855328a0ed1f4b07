#!/usr/bin/env bash
# Load benchmark (issue 6): the leads page and the Twilio status webhook under wrk on
# loopback, with 1,000,000 leads stored while a campaign is dialling them through the
# built-in simulated carrier.
# Usage: bench/load.sh [ROWS] [SECONDS]   (needs python3, curl and wrk: apt-get install wrk)
set -euo pipefail
cd "$(dirname "$0")/.."
rows="${1:-1000000}"
secs="${2:-30}"
port=18090
base="http://127.0.0.1:$port"
work="$(mktemp -d)"; echo "work dir: $work"
trap 'kill "${server:-0}" 2>/dev/null || true; [ -n "${KEEP:-}" ] || rm -rf "$work"' EXIT
command -v wrk >/dev/null || { echo "wrk is not installed (apt-get install wrk)"; exit 1; }

cargo build --release --quiet
python3 bench/gen_leads.py "$rows" > "$work/leads.csv"
cat > "$work/dialer.toml" <<TOML
[server]
bind = "127.0.0.1:$port"
[database]
path = "$work/dialer.db"
[dialing]
calling_hours_start = "00:00"
calling_hours_end = "24:00"
calls_per_second = 20
max_concurrent_calls = 50
[compliance]
profile = "none"
[rotation]
# Caps as configured, and no health halving from the simulator's short calls.
warmup = false
health_min_calls = 1000000
[simulator]
ring_seconds = [0.5, 2.0]
talk_seconds = [1.0, 5.0]
TOML
# Ten caller numbers with room for the whole run (the demo numbers cap at 25 a day).
for i in 0 1 2 3 4 5 6 7 8 9; do
  printf '[[numbers]]\nnumber = "+1202237010%d"\nmax_daily_calls = 100000\n' "$i" >> "$work/dialer.toml"
done
bin="target/release/dialer --config $work/dialer.toml"
$bin import "$work/leads.csv" | grep -E '"imported"'
token=$($bin token create load-bench 2>/dev/null)
auth="Authorization: Bearer $token"
$bin serve 2>"$work/serve.log" &
server=$!
for _ in $(seq 100); do curl -sf "$base/healthz" >/dev/null && break; sleep 0.1; done

# A running campaign: every pending lead, 50 a batch every second.
start=$(date -u -d '+20 seconds' +%Y-%m-%dT%H:%M:%SZ)
curl -s -w '\n%{http_code} %{time_total}s\n' -H "$auth" -H 'content-type: application/json' "$base/api/schedule-bulk-calls" \
  -d "{\"select\": {\"status\": \"pending\"}, \"start_at\": \"$start\", \"parallel_calls\": 50, \"interval_seconds\": 1}"
for _ in $(seq 900); do
  n=$(curl -sf -H "$auth" "$base/api/calls?limit=1" | python3 -c 'import json,sys; print(len(json.load(sys.stdin)["calls"]))')
  [ "$n" -gt 0 ] && break; sleep 0.2
done
sleep 5
call=$(curl -sf -H "$auth" "$base/api/calls?limit=1" | python3 -c 'import json,sys; c=json.load(sys.stdin)["calls"][0]; print(c["id"], c["provider_call_id"])')
read -r attempt sid <<<"$call"

# A correctly signed status callback (X-Twilio-Signature over URL + sorted params with
# the simulated carrier's auth token), sent again and again: signature check, dedupe.
url="$base/webhooks/twilio/status?attempt_id=$attempt"
body="CallSid=$sid&CallStatus=completed&SequenceNumber=3&CallDuration=12"
sig=$(python3 - "$url" "$body" <<'PY'
import base64, hashlib, hmac, sys, urllib.parse
url, body = sys.argv[1], sys.argv[2]
params = sorted(urllib.parse.parse_qsl(body))
data = url + "".join(k + v for k, v in params)
print(base64.b64encode(hmac.new(b"simulator-auth-token", data.encode(), hashlib.sha1).digest()).decode())
PY
)
cat > "$work/post.lua" <<LUA
wrk.method = "POST"
wrk.body = "$body"
wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
wrk.headers["X-Twilio-Signature"] = "$sig"
LUA
code=$(curl -s -o /dev/null -w '%{http_code}' -H "X-Twilio-Signature: $sig" -H 'content-type: application/x-www-form-urlencoded' -d "$body" "$url")
echo "signed webhook check: HTTP $code"

echo "== leads page /, 2 threads, 16 connections, ${secs}s"
wrk -t2 -c16 -d"${secs}s" --latency -H "$auth" "$base/" | grep -E 'Latency|50%|99%|Requests/sec|Non-2xx|Socket errors'
echo "== status webhook, 2 threads, 16 connections, ${secs}s"
wrk -t2 -c16 -d"${secs}s" --latency -s "$work/post.lua" "$url" | grep -E 'Latency|50%|99%|Requests/sec|Non-2xx|Socket errors'
echo "== /metrics and /healthz while it runs, median of 20"
for path in /metrics /healthz; do
  for _ in $(seq 20); do curl -s -H "$auth" -o /dev/null -w '%{time_total} %{http_code}\n' "$base$path"; done \
    | sort -n | awk -v p="$path" '$2 != 200 {bad=1} {a[NR]=$1} END {printf "%-10s median %.1f ms, max %.1f ms%s\n", p, a[int((NR+1)/2)]*1000, a[NR]*1000, bad ? " (NOT 200!)" : ""}'
done
curl -sf -H "$auth" "$base/api/status" | python3 -c 'import json,sys; d=json.load(sys.stdin); print("while it ran: calls today", d["calls_today"], "in progress", d["calls_in_progress"], "queue", d["queue_depth"])'
echo "server log ERROR lines: $(grep -c " ERROR " "$work/serve.log" || true)"
