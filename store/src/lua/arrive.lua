-- A visitor without a ticket arrives. ARGV[21]: the pass id to enter with.
-- Returns {1, snapshot...} when let straight in, {0, snapshot...} with the
-- new ticket being snapshot's `issued`, {-1, snapshot...} when closed,
-- {-2, snapshot...} while settling after a loss or a rollback (no ticket:
-- a number handed out now might be one a gateway has not reported yet),
-- {-3, snapshot...} before the opening and its pre-queue (no ticket).
-- Closed: no new places (head -1).
if state == 2 or past_closing then return snapshot(-1) end
if settling then return snapshot(-2) end
if before_opening then
  if not pre_queue_from or now < pre_queue_from then return snapshot(-3) end
  -- A pre-queue ticket: nobody goes straight in before the draw. Its
  -- arrival is not remembered for void.lua: its place is the draw's.
  issued = issued + 1
  save()
  return snapshot(0)
end
issued = issued + 1
local entered = 0
if state == 0 and issued == admitted + 1 and free_slots() > 0 and whole_tokens() >= 1 then
  admitted = issued
  tokens = tokens - UNIT
  inside_count = inside_count + redis.call('ZADD', inside_key, now, ARGV[21])
  entered = 1
else
  -- Remember which pass id this number went to, for a while: a ring of
  -- the latest RECENT_ARRIVALS (void.lua), one O(1) field write, a fixed
  -- size and not one entry per visitor. Should the reply never reach the
  -- gateway, it voids the number so that it holds no slot as a no-show.
  redis.call('HSET', arrivals_key, issued % RECENT_ARRIVALS, ARGV[21])
end
save()
return snapshot(entered)
