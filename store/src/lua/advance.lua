-- The periodic step: let in as many tickets as space and budget allow.
-- Returns {count admitted now, snapshot...}.
-- While settling after a loss or a rollback, nobody is let in: the passes
-- inside are being reported again, and free slots are not known yet; nor
-- before the opening. Tickets are let in by place: after a draw, places
-- 1..drawn are the pre-queue's (the gateway maps a ticket to its place).
local budget = 0
if state == 0 and not settling and not before_opening then budget = whole_tokens() end
local count = math.min(budget, free_slots(), issued - admitted)
if count > 0 then
  local deadline = now + arrival
  local batch = {}
  local function flush()
    if #batch > 0 then
      pending_count = pending_count + redis.call('ZADD', pending_key, unpack(batch))
      batch = {}
    end
  end
  -- Tickets whose arrival never reached a visitor (void.lua) are passed
  -- over: they take neither a slot nor a token.
  local voids = redis.call('ZCARD', void_key) > 0
  if voids then
    redis.call('ZREMRANGEBYSCORE', void_key, '-inf', admitted)
  end
  local let_in = 0
  local ticket = admitted
  while let_in < count and ticket < issued do
    ticket = ticket + 1
    if not (voids and redis.call('ZREM', void_key, ticket) == 1) then
      batch[#batch + 1] = deadline
      batch[#batch + 1] = ticket
      let_in = let_in + 1
      -- unpack() has a stack limit; flush in chunks.
      if #batch >= 1000 then flush() end
    end
  end
  flush()
  admitted = ticket
  tokens = tokens - let_in * UNIT
  count = let_in
end
save()
return snapshot(count)
