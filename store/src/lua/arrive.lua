-- A visitor without a ticket arrives. ARGV[8]: the pass id to enter with.
-- Returns {1, snapshot...} when let straight in, {0, snapshot...} with the
-- new ticket being snapshot's `issued`, {-1, snapshot...} when closed,
-- {-2, snapshot...} while settling after a loss or a rollback (no ticket:
-- a number handed out now might be one a gateway has not reported yet).
-- Closed: no new places (head -1).
if state == 2 then return snapshot(-1) end
if settling then return snapshot(-2) end
issued = issued + 1
local entered = 0
if state == 0 and issued == admitted + 1 and free_slots() > 0 and whole_tokens() >= 1 then
  admitted = issued
  tokens = tokens - UNIT
  inside_count = inside_count + redis.call('ZADD', inside_key, now, ARGV[8])
  entered = 1
else
  -- Remember which pass id this number went to, for a while (the latest
  -- RECENT_ARRIVALS arrivals; a fixed size, not one entry per visitor):
  -- should the reply never reach the gateway, it voids the number
  -- (void.lua) so that it does not hold a slot as a no-show.
  local RECENT_ARRIVALS = 4096
  redis.call('ZADD', arrivals_key, issued, ARGV[8])
  redis.call('ZREMRANGEBYRANK', arrivals_key, 0, -(RECENT_ARRIVALS + 1))
end
save()
return snapshot(entered)
