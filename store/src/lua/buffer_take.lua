-- Takes up to `max` requests for a worker within the shared pace and
-- in-flight cap: expired leases first (oldest deadline first), then retries
-- that fell due, then the queue in order of arrival. A request that comes
-- back (expired lease or retry) after max_attempts tries is dead-lettered
-- instead, without using a pace token.
-- ARGV[4]: worker, ARGV[5]: max, ARGV[6]: max_in_flight, ARGV[7]:
-- max_attempts, ARGV[8]: lease ms, ARGV[9]: drain_per_second, ARGV[10]: pace
-- capacity, ARGV[11]: pace units per request, ARGV[12]: idle poll ms (see
-- `buffer::pace`, whose arithmetic this runs).
-- Returns {wait ms, {receipt, key, request, attempt, lease, ...}, {dead receipt, ...}}.
local worker = ARGV[4]
local max = tonumber(ARGV[5])
local max_in_flight = tonumber(ARGV[6])
local max_attempts = tonumber(ARGV[7])
local lease_for = tonumber(ARGV[8])
local rate = tonumber(ARGV[9])
local capacity = tonumber(ARGV[10])
local UNIT = tonumber(ARGV[11])
local idle_poll = tonumber(ARGV[12])
local now = clock_ms()

local stored = redis.call('HMGET', buffer_key, 'tokens', 'tokens_at', 'delivered')
-- A bucket never drawn from is full: it starts full and refilling caps it.
local stored_tokens = tonumber(stored[1]) or capacity
local tokens_at = tonumber(stored[2]) or now
local stored_delivered = tonumber(stored[3]) or 0
local delivered = stored_delivered
local tokens = math.min(capacity, stored_tokens + math.max(0, now - tokens_at) * rate)
tokens_at = math.max(tokens_at, now)

-- Leases that ran out free their slot now and are taken first.
local expired = redis.call('ZRANGEBYSCORE', inflight_key, '-inf', now)
local busy = redis.call('ZCARD', inflight_key) - #expired
local limit = math.min(math.max(0, max_in_flight - busy), max)

local jobs, dead = {}, {}
local taken, next_expired = 0, 1
while taken < limit and tokens >= UNIT do
  local receipt, came_back
  if next_expired <= #expired then
    receipt, came_back = expired[next_expired], true
    next_expired = next_expired + 1
  else
    local due = redis.call('ZRANGEBYSCORE', retry_key, '-inf', now, 'LIMIT', 0, 1)
    if due[1] then
      receipt, came_back = due[1], true
      redis.call('ZREM', retry_key, receipt)
    else
      receipt = redis.call('LPOP', queue_key)
      if not receipt then break end
      came_back = false
      delivered = delivered + 1
    end
  end
  local key = receipt_key(receipt)
  local known = redis.call('HMGET', key, 'state', 'attempts', 'key', 'request', 'why')
  if not known[1] then
    redis.call('ZREM', inflight_key, receipt)
  else
    local attempts = tonumber(known[2]) or 0
    if came_back and attempts >= max_attempts then
      local why
      if known[1] == 'processing' then
        why = 'taken ' .. attempts .. ' times and never finished (the worker died or hung)'
      else
        why = 'gave up after ' .. attempts .. ' attempts: ' .. (known[5] or '')
      end
      dead_letter(receipt, why)
      dead[#dead + 1] = receipt
    else
      attempts = attempts + 1
      local lease = worker .. '/' .. attempts
      redis.call('HSET', key, 'state', 'processing', 'attempts', attempts, 'lease', lease)
      redis.call('ZADD', inflight_key, now + lease_for, receipt)
      tokens = tokens - UNIT
      taken = taken + 1
      jobs[#jobs + 1] = receipt
      jobs[#jobs + 1] = known[3] or ''
      jobs[#jobs + 1] = known[4] or ''
      jobs[#jobs + 1] = tostring(attempts)
      jobs[#jobs + 1] = lease
    end
  end
end

-- Writing only when something changed keeps idle polls off the AOF; an
-- unwritten refill is recomputed the same way next time.
if taken > 0 or tokens ~= stored_tokens or delivered ~= stored_delivered then
  redis.call('HSET', buffer_key, 'tokens', tokens, 'tokens_at', tokens_at,
    'delivered', delivered)
end

local wait
if tokens < UNIT then
  wait = math.floor((UNIT - tokens + rate - 1) / rate)
elseif redis.call('ZCARD', inflight_key) >= max_in_flight then
  local soonest = redis.call('ZRANGE', inflight_key, 0, 0, 'WITHSCORES')
  wait = math.max(0, (tonumber(soonest[2]) or now) - now)
elseif redis.call('LLEN', queue_key) > 0 then
  wait = 0
else
  local due = redis.call('ZRANGE', retry_key, 0, 0, 'WITHSCORES')
  if due[2] then
    wait = math.max(0, tonumber(due[2]) - now)
  else
    wait = idle_poll
  end
end
return {math.min(wait, idle_poll), jobs, dead}
