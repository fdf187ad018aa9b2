-- The periodic step: let in as many tickets as space and budget allow.
-- Returns {count admitted now, snapshot...}.
local budget = 0
if state == 0 then budget = whole_tokens() end
local count = math.min(budget, free_slots(), issued - admitted)
if count > 0 then
  local deadline = now + arrival
  local batch = {}
  for ticket = admitted + 1, admitted + count do
    batch[#batch + 1] = deadline
    batch[#batch + 1] = ticket
    -- unpack() has a stack limit; flush in chunks.
    if #batch >= 1000 then
      pending_count = pending_count + redis.call('ZADD', pending_key, unpack(batch))
      batch = {}
    end
  end
  if #batch > 0 then
    pending_count = pending_count + redis.call('ZADD', pending_key, unpack(batch))
  end
  admitted = admitted + count
  tokens = tokens - count * UNIT
end
save()
return snapshot(count)
