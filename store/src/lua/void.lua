-- An arrival whose reply never reached the gateway (a timeout): nobody
-- holds what it gave, so it must not hold a slot. ARGV[21]: the pass id it
-- offered. A pass let straight in leaves at once; a ticket still in line
-- is voided (the step passes over it); one let in already gives its slot
-- back. Returns 1 if the arrival was found, 0 if not (it never ran, or it
-- is older than the latest RECENT_ARRIVALS).
if redis.call('ZREM', inside_key, ARGV[21]) == 1 then return 1 end
-- The ring holds ticket % RECENT_ARRIVALS -> pass id (arrive.lua): the
-- slot holding this pass id is the ticket's, the latest number with that
-- remainder (a slot written again since holds another pass id). A walk
-- over at most RECENT_ARRIVALS fields, and only after a lost reply.
local ring = redis.call('HGETALL', arrivals_key)
local slot = nil
for index = 1, #ring, 2 do
  if ring[index + 1] == ARGV[21] then slot = tonumber(ring[index]) end
end
if not slot then return 0 end
redis.call('HDEL', arrivals_key, slot)
local ticket = issued - ((issued - slot) % RECENT_ARRIVALS)
if ticket > admitted then
  redis.call('ZADD', void_key, ticket, ticket)
else
  redis.call('ZREM', pending_key, ticket)
end
return 1
