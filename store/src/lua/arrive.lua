-- A visitor without a ticket arrives. ARGV[7]: the pass id to enter with.
-- Returns {1, snapshot...} when let straight in, {0, snapshot...} with the
-- new ticket being snapshot's `issued`, {-1, snapshot...} when closed.
-- Closed: no new places (head -1).
if state == 2 then return snapshot(-1) end
issued = issued + 1
local entered = 0
if state == 0 and issued == admitted + 1 and free_slots() > 0 and whole_tokens() >= 1 then
  admitted = issued
  tokens = tokens - UNIT
  inside_count = inside_count + redis.call('ZADD', inside_key, now, ARGV[7])
  entered = 1
end
save()
return snapshot(entered)
