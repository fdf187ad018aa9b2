-- A live change to the room's settings (admin API). ARGV[8]: capacity,
-- ARGV[9]: admit_per_minute, ARGV[10]: state code; an empty string leaves a
-- setting as it is. Returns {0, snapshot...} with the change in force.
if ARGV[8] ~= '' then
  capacity = tonumber(ARGV[8])
  redis.call('HSET', room_key, 'set_capacity', capacity)
end
if ARGV[9] ~= '' then
  rate = tonumber(ARGV[9])
  redis.call('HSET', room_key, 'set_rate', rate)
end
if ARGV[10] ~= '' then
  state = tonumber(ARGV[10])
  redis.call('HSET', room_key, 'set_state', state)
end
save()
return snapshot(0)
