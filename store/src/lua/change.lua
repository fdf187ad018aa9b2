-- A live change to the room's settings (admin API). ARGV[7]: capacity,
-- ARGV[8]: admit_per_minute, ARGV[9]: state code; an empty string leaves a
-- setting as it is. Returns {0, snapshot...} with the change in force.
if ARGV[7] ~= '' then
  capacity = tonumber(ARGV[7])
  redis.call('HSET', room_key, 'set_capacity', capacity)
end
if ARGV[8] ~= '' then
  rate = tonumber(ARGV[8])
  redis.call('HSET', room_key, 'set_rate', rate)
end
if ARGV[9] ~= '' then
  state = tonumber(ARGV[9])
  redis.call('HSET', room_key, 'set_state', state)
end
save()
return snapshot(0)
