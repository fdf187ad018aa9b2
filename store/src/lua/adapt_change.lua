-- A live change to the room's adaptive settings (admin API).
-- KEYS: room hash. ARGV: enabled ('1', '0'), min_admit_per_minute,
-- latency_p90_ms, max_error_rate ('' leaves a setting), then the
-- controller's field names, cleared when it is turned off.
-- Returns the settings stored: {set_adaptive, set_min_admit,
-- set_latency_p90_ms, set_max_error_rate} (false for none).
local room_key = KEYS[1]
local fields = {'set_adaptive', 'set_min_admit', 'set_latency_p90_ms', 'set_max_error_rate'}
for index = 1, 4 do
  if ARGV[index] ~= '' then redis.call('HSET', room_key, fields[index], ARGV[index]) end
end
if ARGV[1] == '0' then
  local names = {}
  for index = 5, #ARGV do names[#names + 1] = ARGV[index] end
  redis.call('HDEL', room_key, unpack(names))
end
local stored = redis.call('HMGET', room_key, unpack(fields))
for index = 1, 4 do stored[index] = stored[index] or false end
return stored
