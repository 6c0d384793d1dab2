-- wrk's client for bench/api_load.py: new payments with unique Idempotency-Keys, same-key
-- retries of earlier ones (their answers must be replays), and manual payments captured as soon
-- as their authorization comes back. Environment: PAYSIGNAL_BENCH_API_KEY, PAYSIGNAL_BENCH_SEED;
-- PAYSIGNAL_BENCH_MODE=latency sends only new automatic-capture payments (one provider call
-- each), PAYSIGNAL_BENCH_DELAY_MS pauses each connection between its requests.
local api_key = os.getenv("PAYSIGNAL_BENCH_API_KEY")
local only_new = os.getenv("PAYSIGNAL_BENCH_MODE") == "latency"
local pause_ms = tonumber(os.getenv("PAYSIGNAL_BENCH_DELAY_MS") or "0")
local seed = os.getenv("PAYSIGNAL_BENCH_SEED") or "1"
local threads = {}
thread_no = 0  -- a global: setup() sets each thread's own

function setup(thread)
  thread_no = thread_no + 1
  thread:set("thread_no", thread_no)
  table.insert(threads, thread)
end

function init(args)
  math.randomseed(tonumber(seed) * 1000 + thread_no)
  sent, captures = {}, {}
  counter, payments, replays, errors, in_flight = 0, 0, 0, 0, 0
end

if pause_ms > 0 then
  function delay()
    return pause_ms
  end
end

local function post(path, key, body)
  return wrk.format("POST", path, {
    ["Content-Type"] = "application/json",
    ["Authorization"] = "Bearer " .. api_key,
    ["Idempotency-Key"] = key}, body)
end

function request()
  if #captures > 0 then
    local id = table.remove(captures)
    return post("/v1/payments/" .. id .. "/capture", "capture-" .. id, nil)
  end
  local roll = only_new and 0.5 or math.random()
  if roll < 0.15 and #sent > 0 then
    local earlier = sent[math.random(#sent)]
    return post("/v1/payments", earlier[1], earlier[2])
  end
  counter = counter + 1
  local key = "s" .. seed .. "t" .. thread_no .. "-" .. counter
  local capture = roll > 0.85 and "manual" or "automatic"
  local body = string.format('{"amount": %d, "currency": "USD", "reference": "%s", ' ..
    '"provider": "stripe", "payment_method": "pm_card_visa", "capture": "%s"}',
    math.random(100, 50000), key, capture)
  if #sent < 2000 then table.insert(sent, {key, body}) end
  return post("/v1/payments", key, body)
end

function response(status, headers, body)
  if status == 409 then  -- a same-key retry while the first request is still at work
    in_flight = in_flight + 1
    return
  end
  if status ~= 200 and status ~= 201 and status ~= 202 then
    errors = errors + 1
    if first_error == nil then first_error = status .. " " .. string.sub(body, 1, 200) end
    return
  end
  if headers["Idempotent-Replayed"] == "true" or headers["idempotent-replayed"] == "true" then
    replays = replays + 1
    return
  end
  local state = string.match(body, '"state"%s*:%s*"([%a_]+)"')
  if state == "captured" then
    payments = payments + 1
  elseif state == "authorized" then
    local id = string.match(body, '"id"%s*:%s*"([%w_]+)"')
    if id then table.insert(captures, id) end
  end
end

function done(summary, latency, requests)
  local totals = {payments = 0, replays = 0, errors = 0, in_flight = 0}
  for _, thread in ipairs(threads) do
    for name, _ in pairs(totals) do totals[name] = totals[name] + thread:get(name) end
  end
  for _, thread in ipairs(threads) do
    local e = thread:get("first_error")
    if e then io.write("first error: ", e, "\n") end
  end
  local points = {}
  for i = 1, 1000 do  -- the 0.05th, 0.15th, ... 99.95th percentiles, for merging
    points[i] = string.format("%.3f", latency:percentile((i - 0.5) / 10) / 1000)
  end
  io.write(string.format(
    "PAYSIGNAL {\"payments\": %d, \"replays\": %d, \"errors\": %d, \"in_flight\": %d, " ..
    "\"requests\": %d, \"socket_errors\": %d, \"duration_s\": %.3f, " ..
    "\"percentiles_ms\": [%s]}\n",
    totals.payments, totals.replays, totals.errors, totals.in_flight, summary.requests,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout,
    summary.duration / 1e6, table.concat(points, ", ")))
end
