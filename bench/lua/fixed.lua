-- The same request every time, with the API key.
local key = os.getenv("BENCH_API_KEY")
local path = os.getenv("BENCH_PATH")
request = function()
  return wrk.format("GET", path, { ["xi-api-key"] = key })
end
