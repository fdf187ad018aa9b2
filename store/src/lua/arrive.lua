-- A visitor without a ticket arrives. ARGV[12]: the pass id to enter with.
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
  inside_count = inside_count + redis.call('ZADD', inside_key, now, ARGV[12])
  entered = 1
else
  -- Remember which pass id this number went to, for a while: a ring of
  -- the latest RECENT_ARRIVALS (void.lua), one O(1) field write, a fixed
  -- size and not one entry per visitor. Should the reply never reach the
  -- gateway, it voids the number so that it holds no slot as a no-show.
  redis.call('HSET', arrivals_key, issued % RECENT_ARRIVALS, ARGV[12])
end
save()
return snapshot(entered)
