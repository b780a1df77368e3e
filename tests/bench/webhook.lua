-- wrk script: signed webhook deliveries, each with its own webhook and event id, so every
-- request is a new delivery that Keel must verify, deduplicate and durably queue.
-- The body (and so its signature) is the same for all; ids travel in headers, as with Shopify.
-- Environment: BENCH_BODY_FILE, BENCH_HMAC, BENCH_SHOP, BENCH_TOPIC.

-- `thread_id` is a global: wrk's thread:set() assigns globals, which a local would shadow.
local counter = 0
thread_id = 0
local threads = {}

function setup(thread)
  thread:set("thread_id", #threads)
  table.insert(threads, thread)
end

function init(args)
  local f = assert(io.open(os.getenv("BENCH_BODY_FILE"), "rb"))
  body = f:read("*a")
  f:close()
  hmac = os.getenv("BENCH_HMAC")
  shop = os.getenv("BENCH_SHOP")
  topic = os.getenv("BENCH_TOPIC")
  -- Unique per run and thread, so the warm-up's ids never come back as duplicates.
  run = tostring(os.time()) .. "-" .. tostring(math.random(1, 1000000000))
  non200 = 0
  notqueued = 0
  expect_queued = os.getenv("BENCH_EXPECT_QUEUED") == "1"
end

function request()
  counter = counter + 1
  local id = run .. "-" .. thread_id .. "-" .. counter
  return wrk.format("POST", "/webhooks", {
    ["Content-Type"] = "application/json",
    ["X-Shopify-Topic"] = topic,
    ["X-Shopify-Hmac-Sha256"] = hmac,
    ["X-Shopify-Shop-Domain"] = shop,
    ["X-Shopify-API-Version"] = "2026-10",
    ["X-Shopify-Webhook-Id"] = "w-" .. id,
    ["X-Shopify-Event-Id"] = "e-" .. id,
  }, body)
end

function response(status, headers, body)
  if status ~= 200 then
    non200 = non200 + 1
  elseif expect_queued and not string.find(body, '"queued"', 1, true) then
    -- Keel answered 200 but did not queue: a duplicate or ignored delivery is not what we measure.
    notqueued = notqueued + 1
  end
end

function done(summary, latency, requests)
  local bad, unqueued = 0, 0
  for _, t in ipairs(threads) do
    bad = bad + (t:get("non200") or 0)
    unqueued = unqueued + (t:get("notqueued") or 0)
  end
  io.write(string.format("BENCH non200=%d notqueued=%d requests=%d rps=%.1f p50_us=%d p99_us=%d\n",
    bad, unqueued, summary.requests, summary.requests / (summary.duration / 1e6),
    latency:percentile(50), latency:percentile(99)))
end
