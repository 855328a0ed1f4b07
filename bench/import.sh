#!/usr/bin/env bash
# Import benchmark: 1,000,000 leads in leads_sample.csv's format through `dialer import`,
# then the leads page's response times on that database.
# Usage: bench/import.sh [ROWS]   (needs python3 and curl; uses /usr/bin/time if present)
set -euo pipefail
cd "$(dirname "$0")/.."
rows="${1:-1000000}"
work="$(mktemp -d)"
trap 'kill "${server:-0}" 2>/dev/null || true; rm -rf "$work"' EXIT

cargo build --release --quiet
python3 bench/gen_leads.py "$rows" > "$work/leads.csv"
ls -l "$work/leads.csv" | awk '{printf "CSV: %d rows, %.1f MB\n", '"$rows"', $5/1e6}'
cat > "$work/dialer.toml" <<TOML
[server]
bind = "127.0.0.1:18089"
[database]
path = "$work/dialer.db"
TOML

echo "== dialer import"
if [ -x /usr/bin/time ]; then
  /usr/bin/time -f "wall %e s, peak RSS %M KB" target/release/dialer --config "$work/dialer.toml" import "$work/leads.csv" \
    | grep -E '"(imported|duplicates|rejected)"'
else
  time target/release/dialer --config "$work/dialer.toml" import "$work/leads.csv" | grep -E '"(imported|duplicates|rejected)"'
fi

echo "== leads page (50 leads a page), median of 20 requests each"
token=$(target/release/dialer --config "$work/dialer.toml" token create bench 2>/dev/null)
auth=(-H "Authorization: Bearer $token")
target/release/dialer --config "$work/dialer.toml" serve 2>/dev/null &
server=$!
for _ in $(seq 100); do curl -sf http://127.0.0.1:18089/healthz >/dev/null && break; sleep 0.1; done
deep=$(curl -s "${auth[@]}" "http://127.0.0.1:18089/api/leads?limit=1&cursor=1000" | python3 -c 'import json,sys; print(json.load(sys.stdin)["leads"][0]["id"])')
for path in "/" "/?cursor=$deep" "/?status=pending" "/api/leads?limit=50" "/api/leads?limit=50&cursor=$deep" "/?q=Lead%20999999"; do
  for _ in $(seq 20); do curl -s "${auth[@]}" -o /dev/null -w '%{time_total} %{http_code} %{size_download}\n' "http://127.0.0.1:18089$path"; done \
    | sort -n | awk -v p="$path" '$2 != 200 {bad=1} {a[NR]=$1; size=$3} END {printf "%-40s median %.1f ms, max %.1f ms, %d bytes%s\n", p, a[int((NR+1)/2)]*1000, a[NR]*1000, size, bad ? " (NOT 200!)" : ""}'
done
