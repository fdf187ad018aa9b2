-- A live change to the room's settings (admin API). ARGV[12]: capacity,
-- ARGV[13]: admit_per_minute, ARGV[14]: state code; an empty string leaves a
-- setting as it is. Returns {0, snapshot...} with the change in force.
if ARGV[12] ~= '' then
  capacity = tonumber(ARGV[12])
  redis.call('HSET', room_key, 'set_capacity', capacity)
end
if ARGV[13] ~= '' then
  rate = tonumber(ARGV[13])
  redis.call('HSET', room_key, 'set_rate', rate)
end
if ARGV[14] ~= '' then
  state = tonumber(ARGV[14])
  redis.call('HSET', room_key, 'set_state', state)
end
save()
return snapshot(0)
