-- Writes a tick of the room's controller (adaptive.rs) computed by the
-- gateway that claimed it (adapt.lua), or clears the controller when
-- adaptive admission is off, so that the pace is the ceiling again.
-- KEYS: room hash. ARGV: 1 the claim ('' to clear), then field, value
-- pairs (to write) or field names (to clear).
-- Returns 1 when written, 0 when the claim was overtaken (nothing done).
local room_key = KEYS[1]
if ARGV[1] == '' then
  local names = {}
  for index = 2, #ARGV do names[#names + 1] = ARGV[index] end
  redis.call('HDEL', room_key, unpack(names))
  return 1
end
if redis.call('HGET', room_key, 'adaptive_claim') ~= ARGV[1] then
  return 0
end
local pairs_ = {}
for index = 2, #ARGV do pairs_[#pairs_ + 1] = ARGV[index] end
redis.call('HSET', room_key, unpack(pairs_))
return 1
