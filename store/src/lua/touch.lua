-- Activity of passes inside, reported in a batch by one gateway. The gateway
-- verified each pass's cookie, so a pass the store had expired (a report
-- delayed by an outage) is counted again -- unless it left, which is
-- remembered in the `left` zset for the session length. KEYS: inside, left.
-- ARGV: simulated clock ('' for Redis's), ttl_ms, then pairs of (pass id,
-- activity ms on the store's clock as the gateway reckons it).
-- Returns the ids of passes that left.
local inside_key, left_key = KEYS[1], KEYS[2]
local now = store_now(ARGV[1])
local ttl = tonumber(ARGV[2])
redis.call('ZREMRANGEBYSCORE', left_key, '-inf', '(' .. tostring(now - ttl))
local revoked = {}
for index = 3, #ARGV, 2 do
  local pass_id = ARGV[index]
  -- Activity cannot be in the future: a time ahead of the store's (a
  -- gateway's reckoning off, e.g. before its first step) counts as now.
  local at = math.min(tonumber(ARGV[index + 1]) or now, now)
  if redis.call('ZSCORE', left_key, pass_id) then
    revoked[#revoked + 1] = pass_id
  else
    redis.call('ZADD', inside_key, 'GT', at, pass_id)
  end
end
return revoked
