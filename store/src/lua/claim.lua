-- A ticket holder comes back. ARGV[7]: epoch of the ticket, ARGV[8]: ticket,
-- ARGV[9]: pass id (derived from the ticket by the gateway, so every claim of
-- one ticket offers the same id). Returns 1 admitted, 0 not yet, -1 spent.
if epoch ~= ARGV[7] then return -1 end
if redis.call('ZREM', pending_key, ARGV[8]) == 1 then
  redis.call('ZADD', inside_key, now, ARGV[9])
  return 1
end
-- Claimed already with this very pass (a reply lost to a timeout, or a
-- status poll racing a page load): the same answer again.
if redis.call('ZSCORE', inside_key, ARGV[9]) then return 1 end
if tonumber(ARGV[8]) > admitted then return 0 end
return -1
