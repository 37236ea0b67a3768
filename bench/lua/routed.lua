-- A fresh conversation id per request: the routed read's real traffic.
math.randomseed(os.time())
local key = os.getenv("BENCH_API_KEY")
local base = os.getenv("BENCH_PATH")
request = function()
  local path = base .. "?conversation_id=conv_" .. math.random(1, 1000000000)
  return wrk.format("GET", path, { ["xi-api-key"] = key })
end
