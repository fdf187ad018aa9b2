-- Requests offered to the buffer, in order: one call carries every request
-- the gateway had waiting (a group commit). ARGV[3]: max_depth, then four
-- arguments per request: receipt id (used if the request is new),
-- idempotency key, fingerprint, the request (bytes).
-- Returns one {code, receipt, figure} per request: {0, receipt, position}
-- accepted, {1, receipt, 0} duplicate, {2, receipt, 0} conflict,
-- {3, '', depth} full.
local max_depth = tonumber(ARGV[3])
-- Unfinished requests, expired leases included (not yet taken again).
local depth = redis.call('LLEN', queue_key) + redis.call('ZCARD', inflight_key)
  + redis.call('ZCARD', retry_key)
local delivered = tonumber(redis.call('HGET', buffer_key, 'delivered')) or 0
local results = {}
for first = 4, #ARGV, 4 do
  local receipt, key, fingerprint, request = ARGV[first], ARGV[first + 1], ARGV[first + 2],
    ARGV[first + 3]
  local known = redis.call('GET', idem_prefix .. key)
  if known then
    if redis.call('HGET', receipt_key(known), 'fp') == fingerprint then
      results[#results + 1] = {1, known, 0}
    else
      results[#results + 1] = {2, known, 0}
    end
  elseif depth >= max_depth then
    results[#results + 1] = {3, '', depth}
  else
    local seq = redis.call('HINCRBY', buffer_key, 'seq', 1)
    redis.call('HINCRBY', buffer_key, 'accepted', 1)
    -- Unfinished receipts and keys never expire: no request is lost.
    redis.call('DEL', receipt_key(receipt))
    redis.call('HSET', receipt_key(receipt), 'seq', seq, 'state', 'queued', 'attempts', 0,
      'fp', fingerprint, 'key', key, 'request', request, 'lease', '', 'why', '')
    redis.call('SET', idem_prefix .. key, receipt)
    redis.call('RPUSH', queue_key, receipt)
    depth = depth + 1
    results[#results + 1] = {0, receipt, seq - delivered}
  end
end
return results
