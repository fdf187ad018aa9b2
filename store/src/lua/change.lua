-- A live change to the room's settings (admin API). ARGV[21]: capacity,
-- ARGV[22]: admit_per_minute, ARGV[23]: state code, ARGV[24..26]:
-- pre_queue_from, opens_at, closes_at (ms, or 'none' to clear); an empty
-- string leaves a setting as it is. Returns {0, snapshot...} with the
-- change in force, or a refusal with nothing changed (admission.rs's
-- change_schedule, which this mirrors): {-10, ...} drawn already,
-- {-11, ...} opens_at in the past, {-12, ...} closes_at in the past,
-- {-13, ...} tickets handed out before an opening was scheduled, {-14, ...}
-- clearing the opening of a pre-queue that holds tickets, {-15, ...} out
-- of order.
local function asked(text, current)
  if text == '' then return current end
  if text == 'none' then return nil end
  return tonumber(text)
end
local next_pre = asked(ARGV[24], pre_queue_from)
local next_opens = asked(ARGV[25], opens_at)
local next_closes = asked(ARGV[26], closes_at)
if next_opens ~= opens_at or next_pre ~= pre_queue_from then
  if drawn then return snapshot(-10) end
end
if next_opens ~= opens_at and next_opens and next_opens <= now then return snapshot(-11) end
if next_closes ~= closes_at and next_closes and next_closes <= now then return snapshot(-12) end
if not drawn and issued > 0 then
  if not opens_at and next_opens then return snapshot(-13) end
  if opens_at and not next_opens then return snapshot(-14) end
end
if next_pre and not next_opens then return snapshot(-15) end
if (next_pre and next_opens and next_opens <= next_pre)
  or (next_opens and next_closes and next_closes <= next_opens)
  or (next_pre and next_closes and next_closes <= next_pre) then
  return snapshot(-15)
end
local function stored(value) if value then return value end return 'none' end
if ARGV[24] ~= '' then
  pre_queue_from = next_pre
  redis.call('HSET', room_key, 'set_pre_queue_from', stored(next_pre))
end
if ARGV[25] ~= '' then
  opens_at = next_opens
  redis.call('HSET', room_key, 'set_opens_at', stored(next_opens))
end
if ARGV[26] ~= '' then
  closes_at = next_closes
  redis.call('HSET', room_key, 'set_closes_at', stored(next_closes))
end
if ARGV[21] ~= '' then
  capacity = tonumber(ARGV[21])
  redis.call('HSET', room_key, 'set_capacity', capacity)
end
if ARGV[22] ~= '' then
  rate = tonumber(ARGV[22])
  ceiling = rate
  redis.call('HSET', room_key, 'set_rate', rate)
end
if ARGV[23] ~= '' then
  state = tonumber(ARGV[23])
  redis.call('HSET', room_key, 'set_state', state)
end
save()
return snapshot(0)
