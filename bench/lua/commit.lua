-- A one-field commit per request: PATCH agent with a first message never sent before, so every
-- request makes a version (a body that changes nothing makes none).
local key = os.getenv("BENCH_API_KEY")
local path = os.getenv("BENCH_PATH")
local counter = 0
request = function()
  counter = counter + 1
  local body = '{"conversation_config":{"agent":{"first_message":"Hello, caller ' .. counter .. '-' .. math.random(1, 1000000000) .. '"}}}'
  return wrk.format("PATCH", path, { ["xi-api-key"] = key, ["content-type"] = "application/json" }, body)
end
