-- An arrival whose reply never reached the gateway (a timeout): nobody
-- holds what it gave, so it must not hold a slot. ARGV[8]: the pass id it
-- offered. A pass let straight in leaves at once; a ticket still in line
-- is voided (the step passes over it); one let in already gives its slot
-- back. Returns 1 if the arrival was found, 0 if not (it never ran, or it
-- is older than the latest RECENT_ARRIVALS).
if redis.call('ZREM', inside_key, ARGV[8]) == 1 then return 1 end
local ticket = redis.call('ZSCORE', arrivals_key, ARGV[8])
if not ticket then return 0 end
redis.call('ZREM', arrivals_key, ARGV[8])
ticket = tonumber(ticket)
if ticket > admitted then
  redis.call('ZADD', void_key, ticket, ticket)
else
  redis.call('ZREM', pending_key, ticket)
end
return 1
