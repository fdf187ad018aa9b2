-- A request offered to the buffer. ARGV[3]: receipt id (used if the request
-- is new), ARGV[4]: idempotency key, ARGV[5]: fingerprint, ARGV[6]: the
-- request (bytes), ARGV[7]: max_depth.
-- Returns {0, receipt, position} accepted, {1, receipt, 0} duplicate,
-- {2, receipt, 0} conflict, {3, '', depth} full.
local receipt, key, fingerprint, request = ARGV[3], ARGV[4], ARGV[5], ARGV[6]
local max_depth = tonumber(ARGV[7])
local known = redis.call('GET', idem_prefix .. key)
if known then
  if redis.call('HGET', receipt_key(known), 'fp') == fingerprint then
    return {1, known, 0}
  end
  return {2, known, 0}
end
-- Unfinished requests, expired leases included (not yet taken again).
local depth = redis.call('LLEN', queue_key) + redis.call('ZCARD', inflight_key)
  + redis.call('ZCARD', retry_key)
if depth >= max_depth then return {3, '', depth} end
local seq = redis.call('HINCRBY', buffer_key, 'seq', 1)
redis.call('HINCRBY', buffer_key, 'accepted', 1)
local delivered = tonumber(redis.call('HGET', buffer_key, 'delivered')) or 0
-- Unfinished receipts and keys never expire: no request is lost.
redis.call('DEL', receipt_key(receipt))
redis.call('HSET', receipt_key(receipt), 'seq', seq, 'state', 'queued', 'attempts', 0,
  'fp', fingerprint, 'key', key, 'request', request, 'lease', '', 'why', '')
redis.call('SET', idem_prefix .. key, receipt)
redis.call('RPUSH', queue_key, receipt)
return {0, receipt, seq - delivered}
