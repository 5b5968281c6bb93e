-- wrk script for POST /app/api/rest/v1/sms/send: one message per request, recipients varied
-- over 4,096 numbers. Credentials from BENCH_EMAIL / BENCH_TOKEN; a JSON summary is written
-- to BENCH_WRK_JSON by done(). A dynamic request() means no pipelining: one request in flight
-- per connection.

local email = os.getenv("BENCH_EMAIL") or ""
local token = os.getenv("BENCH_TOKEN") or ""
local out_path = os.getenv("BENCH_WRK_JSON")
local requests_ = {}
local count = 0
local i = 0

local function number(k)
  -- +2782 followed by 7 digits, never ending in 666, 999 or 000
  local n = string.format("%07d", k % 10000000)
  local tail = string.sub(n, -3)
  if tail == "666" or tail == "999" or tail == "000" then
    return nil
  end
  return "+2782" .. n
end

init = function(args)
  wrk.method = "POST"
  wrk.headers["email"] = email
  wrk.headers["token"] = token
  wrk.headers["Content-Type"] = "application/json"
  local k = 0
  while count < 4096 do
    k = k + 1
    local to = number(k)
    if to then
      count = count + 1
      local body = '{"recipientNumber":"' .. to .. '","message":"Bench message ' .. count .. '"}'
      requests_[count] = wrk.format("POST", "/app/api/rest/v1/sms/send", nil, body)
    end
  end
  i = math.random(count) - 1
end

request = function()
  i = i + 1
  if i > count then i = 1 end
  return requests_[i]
end

done = function(summary, latency, requests)
  if not out_path then return end
  local e = summary.errors
  local f = io.open(out_path, "w")
  f:write(string.format(
    '{"duration_us":%d,"requests":%d,"bytes":%d,' ..
    '"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d},' ..
    '"latency_us":{"min":%d,"max":%d,"mean":%.1f,"stdev":%.1f,"p50":%d,"p90":%d,"p99":%d}}',
    summary.duration, summary.requests, summary.bytes,
    e.connect, e.read, e.write, e.status, e.timeout,
    latency.min, latency.max, latency.mean, latency.stdev,
    latency:percentile(50), latency:percentile(90), latency:percentile(99)))
  f:close()
end
