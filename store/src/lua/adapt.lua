-- One gateway's report for adaptive admission (see adaptive.rs), once a
-- second. Stores the report under the gateway's id with the store's time,
-- forgets reports older than REPORT_FORGET_MS, and claims the room's tick
-- when one is due (at most one claim a second, whichever gateway comes
-- first: scripts are atomic); the claimer computes the tick and writes it
-- back with adapt_apply.lua, guarded by its claim.
-- KEYS: room hash, reports hash.
-- ARGV: 1 simulated clock ('' for Redis's), 2 gateway id, 3 report text,
--       4 the config's opens_at ('' for none), 5 REPORT_FORGET_MS,
--       6 TICK_DUE_MS, then the controller's field names.
-- Returns {now, claimed (0/1), set_adaptive, set_min_admit,
--          set_latency_p90_ms, set_max_error_rate, set_rate, issued,
--          admitted, serving (0/1), controller fields (false for missing)...,
--          then, when claimed, the reports as id, time, text triples}.
local room_key, reports_key = KEYS[1], KEYS[2]
local now = store_now(ARGV[1])
local forget = tonumber(ARGV[5])
local tick = tonumber(ARGV[6])
redis.call('HSET', reports_key, ARGV[2], now .. ' ' .. ARGV[3])
local room = redis.call('HMGET', room_key, 'set_adaptive', 'set_min_admit', 'set_latency_p90_ms',
  'set_max_error_rate', 'set_rate', 'issued', 'admitted', 'set_state', 'settle_until',
  'set_opens_at', 'drawn', 'adaptive_at', 'adaptive_claim')
-- Whether the room lets people in now: open, not settling, opened.
local opens_at = room[10]
if opens_at == 'none' then
  opens_at = nil
elseif not opens_at and ARGV[4] ~= '' then
  opens_at = ARGV[4]
end
local opened = room[11] or not opens_at or now >= tonumber(opens_at)
local serving = (tonumber(room[8]) or 0) == 0 and now >= (tonumber(room[9]) or 0) and opened
local names = {}
for index = 7, #ARGV do names[#names + 1] = ARGV[index] end
local state = redis.call('HMGET', room_key, unpack(names))
local last = math.max(tonumber(room[12]) or 0, tonumber(room[13]) or 0)
local claimed = 0
if now >= last + tick then
  claimed = 1
  redis.call('HSET', room_key, 'adaptive_claim', now)
end
local reply = {now, claimed, room[1] or false, room[2] or false, room[3] or false,
  room[4] or false, room[5] or false, tonumber(room[6]) or 0, tonumber(room[7]) or 0,
  serving and 1 or 0}
for index = 1, #state do reply[#reply + 1] = state[index] or false end
if claimed == 1 then
  local all = redis.call('HGETALL', reports_key)
  for index = 1, #all, 2 do
    local stamped = tonumber(string.match(all[index + 1], '^(%d+) '))
    if not stamped or now - stamped > forget then
      redis.call('HDEL', reports_key, all[index])
    else
      reply[#reply + 1] = all[index]
      reply[#reply + 1] = stamped
      reply[#reply + 1] = string.sub(all[index + 1], #tostring(stamped) + 2)
    end
  end
end
return reply
