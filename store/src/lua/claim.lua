-- A ticket holder comes back. ARGV[21]: epoch of the ticket, ARGV[22]: the
-- ticket's place in line (its number, or its place in the draw), ARGV[23]:
-- pass id (derived from the ticket by the gateway, so every claim
-- of one ticket offers the same id). Returns 1 admitted, 0 not yet, -1 spent.
if epoch ~= ARGV[21] then return -1 end
local ticket = tonumber(ARGV[22])
if redis.call('ZREM', pending_key, ARGV[22]) == 1 then
  redis.call('ZADD', inside_key, now, ARGV[23])
  return 1
end
-- Claimed already with this very pass (a reply lost to a timeout, or a
-- status poll racing a page load): the same answer again.
if redis.call('ZSCORE', inside_key, ARGV[23]) then return 1 end
if ticket > admitted then return 0 end
-- Let in before a loss or a rollback that took its pending entry: still
-- good until amnesty_until, when there is a slot (the next that frees
-- otherwise: the holder stays first in line).
local amnesty = redis.call('HMGET', room_key, 'amnesty_from', 'amnesty_to', 'amnesty_until')
if ticket > (tonumber(amnesty[1]) or 0) and ticket <= (tonumber(amnesty[2]) or 0)
  and now <= (tonumber(amnesty[3]) or 0) then
  if free_slots() > 0 then
    redis.call('ZADD', inside_key, now, ARGV[23])
    return 1
  end
  return 0
end
return -1
