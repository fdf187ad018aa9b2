-- Shared opening of every room script: load the room, expire idle passes and
-- no-shows, accrue admission budget. Mirrors `admission.rs` and
-- `MemoryStore::housekeep`.
-- Every time here is the store's (`store_now`, clock.lua), never a gateway's.
-- KEYS: room hash, inside zset (pass id -> last activity ms),
--       pending zset (admitted ticket -> deadline ms)
-- ARGV: simulated clock ('' for Redis's), capacity, admit_per_minute,
--       inside_ttl_ms, arrival_ms, new_epoch, ...
local room_key, inside_key, pending_key = KEYS[1], KEYS[2], KEYS[3]
local now = store_now(ARGV[1])
-- The config's settings; a live change (admin API) stored in the room's
-- hash takes precedence below.
local capacity = tonumber(ARGV[2])
local rate = tonumber(ARGV[3])
local inside_ttl = tonumber(ARGV[4])
local arrival = tonumber(ARGV[5])
-- The bucket counts in integer units, 60000 to a token (see admission.rs).
local UNIT = 60000
-- Silence longer than this is an outage (see admission::OUTAGE_GAP_MS).
local OUTAGE_GAP_MS = 5000
local fields = redis.call('HMGET', room_key, 'epoch', 'issued', 'admitted', 'tokens', 'tokens_at',
  'set_capacity', 'set_rate', 'set_state', 'sessions_expired', 'no_shows')
-- Ever expired in this epoch: idle sessions, and admitted tickets whose
-- holders did not show up.
local sessions_expired = tonumber(fields[9]) or 0
local no_shows = tonumber(fields[10]) or 0
capacity = tonumber(fields[6]) or capacity
rate = tonumber(fields[7]) or rate
-- 0 open, 1 paused, 2 closed
local state = tonumber(fields[8]) or 0
local burst = UNIT + rate * 1000
local epoch, issued, admitted, tokens, tokens_at
if not fields[1] then
  -- A room seen for the first time, or whose state was lost: start a new
  -- epoch so that tickets of the old one cannot be replayed.
  epoch = ARGV[6]
  issued, admitted, tokens, tokens_at = 0, 0, burst, now
  redis.call('DEL', inside_key, pending_key)
  redis.call('HSET', room_key, 'epoch', epoch, 'issued', 0, 'admitted', 0,
    'sessions_expired', 0, 'no_shows', 0)
  sessions_expired, no_shows = 0, 0
else
  epoch = fields[1]
  issued = tonumber(fields[2]) or 0
  admitted = tonumber(fields[3]) or 0
  tokens = tonumber(fields[4]) or burst
  tokens_at = tonumber(fields[5]) or now
end

-- Gateways step every room every 100 ms. A longer silence means the room
-- was not served (store unreachable, every gateway down): admitted visitors
-- could not come in meanwhile, so their arrival deadlines move by the gap
-- rather than expire. (Passes inside are kept by the gateways' activity
-- reports, which count them again.)
local gap = now - tokens_at
if gap > OUTAGE_GAP_MS then
  local waiting_to_arrive = redis.call('ZRANGE', pending_key, 0, -1, 'WITHSCORES')
  for index = 1, #waiting_to_arrive, 2 do
    redis.call('ZADD', pending_key, tonumber(waiting_to_arrive[index + 1]) + gap,
      waiting_to_arrive[index])
  end
  -- Persist the mark now, so that the gap is bridged once, whichever
  -- script runs first.
  redis.call('HSET', room_key, 'tokens_at', now)
end

local idle = redis.call('ZREMRANGEBYSCORE', inside_key, '-inf', '(' .. tostring(now - inside_ttl))
if idle > 0 then
  sessions_expired = redis.call('HINCRBY', room_key, 'sessions_expired', idle)
end
local missed = redis.call('ZREMRANGEBYSCORE', pending_key, '-inf', now)
if missed > 0 then
  no_shows = redis.call('HINCRBY', room_key, 'no_shows', missed)
end
-- A mark in the future (Redis's clock stepped back, or a mark written on a
-- fast gateway's clock before the scripts kept the time) accrues nothing and
-- comes back to now, rather than freezing the pace until the clock catches
-- up (see Bucket::refill).
if now > tokens_at then
  tokens = math.min(burst, tokens + (now - tokens_at) * rate)
end
tokens_at = now

local function whole_tokens()
  return math.floor(tokens / UNIT)
end

-- Counted once per call; scripts keep them current as they add entries.
local inside_count = redis.call('ZCARD', inside_key)
local pending_count = redis.call('ZCARD', pending_key)

local function free_slots()
  return math.max(0, capacity - inside_count - pending_count)
end

local function save()
  redis.call('HSET', room_key, 'issued', issued, 'admitted', admitted,
    'tokens', tokens, 'tokens_at', tokens_at)
end

-- The figures, and the store's time they were taken at: what each gateway
-- learns the offset between its clock and the store's from.
local function snapshot(head)
  return {head, tonumber(epoch), issued, admitted, inside_count, pending_count,
    capacity, rate, state, sessions_expired, no_shows, now}
end
