-- The store's clock, which every script reads and no caller supplies:
-- Redis's own time (TIME) in milliseconds, so that gateways and workers
-- whose clocks differ are judged on one. `simulated` (a script's first
-- argument) is empty but under a simulated clock in tests
-- (`RedisStore::with_simulated_clock`), whose time it then is.
-- Redis 7 replicates a script's effects, not the script, so reading TIME
-- before writing is allowed.
local function store_now(simulated)
  if simulated ~= nil and simulated ~= '' then
    return tonumber(simulated)
  end
  local time = redis.call('TIME')
  return tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
end
