#!/usr/bin/env bash
# Run Keel locally on the embedded SQLite default, against shopify-sim (the local stand-in for
# Shopify): starts the simulator with a demo store installed, starts `keel serve`, installs
# Keel on the demo store through a real token exchange, and keeps running until Ctrl-C.
set -euo pipefail
cd "$(dirname "$0")/.."

sim_port=${SIM_PORT:-9100}
port=${PORT:-8081}
shop=${DEMO_SHOP:-demo-store.myshopify.com}
export SHOPIFY_API_KEY=${SHOPIFY_API_KEY:-keel-demo-client-id}
export SHOPIFY_API_SECRET=${SHOPIFY_API_SECRET:-keel-demo-client-secret}
export SHOPIFY_APP_URL=${SHOPIFY_APP_URL:-http://127.0.0.1:$port}
export PORT=$port KEEL_BIND=${KEEL_BIND:-127.0.0.1}
export KEEL_SHOPIFY_ORIGIN=http://127.0.0.1:$sim_port

cargo build -q -p keel -p shopify-sim
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT INT TERM

target/debug/shopify-sim --port "$sim_port" --api-key "$SHOPIFY_API_KEY" --api-secret "$SHOPIFY_API_SECRET" \
  --shop "$shop" --scopes read_customers,write_customers,read_orders,write_orders,read_products,read_inventory,write_discounts >/dev/null &
pids+=($!)
target/debug/keel serve &
pids+=($!)

for _ in $(seq 1 200); do curl -fs "http://127.0.0.1:$port/readyz" >/dev/null 2>&1 && break; sleep 0.1; done
token=$(curl -fs "http://127.0.0.1:$sim_port/_sim/session-token?shop=$shop" | python3 -c 'import json,sys; print(json.load(sys.stdin)["token"])')
echo
echo "Keel is running on http://127.0.0.1:$port (simulated Shopify at http://127.0.0.1:$sim_port)."
echo "Installed on $shop:"
curl -fs -H "Authorization: Bearer $token" "http://127.0.0.1:$port/api/shop" | python3 -m json.tool
echo
echo "Send it a webhook:  curl -X POST http://127.0.0.1:$sim_port/_sim/webhooks -H 'Content-Type: application/json' \\"
echo "  -d '{\"target\":\"http://127.0.0.1:$port/webhooks\",\"shop\":\"$shop\",\"topic\":\"app/scopes_update\",\"payload\":{\"id\":1,\"previous\":[],\"current\":[\"read_customers\"]}}'"
echo "Press Ctrl-C to stop."
wait
