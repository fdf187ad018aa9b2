-- Requests offered to the buffer, in order: one call carries every request
-- the gateway had waiting (a group commit). ARGV[4]: max_depth, ARGV[5]:
-- max_per_pass, ARGV[6]: how long (ms) a pass's count is kept after its last
-- accepted request, then five arguments per request: receipt id (used if the
-- request is new), idempotency key, fingerprint, pass id ('' without a pass:
-- not counted), the request (bytes).
-- Returns one {code, receipt, figure, depth} per request, depth being the
-- unfinished requests before it: {0, receipt, position, depth} accepted,
-- {1, receipt, 0, depth} duplicate, {2, receipt, 0, depth} conflict,
-- {3, '', depth, depth} full, {4, '', held, depth} the pass already holds
-- `held` unfinished requests, max_per_pass or more. Checked in this order: a
-- known key, max_depth, max_per_pass.
local max_depth = tonumber(ARGV[4])
local max_per_pass = tonumber(ARGV[5])
local pass_for = ARGV[6]
-- Unfinished requests, expired leases included (not yet taken again).
local depth = redis.call('LLEN', queue_key) + redis.call('ZCARD', inflight_key)
  + redis.call('ZCARD', retry_key)
local delivered = tonumber(redis.call('HGET', buffer_key, 'delivered')) or 0
local results = {}
for first = 7, #ARGV, 5 do
  local receipt, key, fingerprint, pass, request = ARGV[first], ARGV[first + 1],
    ARGV[first + 2], ARGV[first + 3], ARGV[first + 4]
  local known = redis.call('GET', idem_prefix .. key)
  -- A duplicate is answered before the bounds: it is not a new request.
  local held = 0
  if not known and depth < max_depth and pass ~= '' then
    held = redis.call('SCARD', pass_prefix .. pass)
  end
  if known then
    if redis.call('HGET', receipt_key(known), 'fp') == fingerprint then
      -- A write even here: the WAIT that follows this script (with
      -- store.min_replicas_acked) then counts replicas that have everything
      -- up to now, the first submission included, whoever sent it.
      redis.call('HINCRBY', buffer_key, 'resubmitted', 1)
      results[#results + 1] = {1, known, 0, depth}
    else
      results[#results + 1] = {2, known, 0, depth}
    end
  elseif depth >= max_depth then
    results[#results + 1] = {3, '', depth, depth}
  elseif held >= max_per_pass then
    results[#results + 1] = {4, '', held, depth}
  else
    local seq = redis.call('HINCRBY', buffer_key, 'seq', 1)
    redis.call('HINCRBY', buffer_key, 'accepted', 1)
    -- Unfinished receipts and keys never expire: no request is lost.
    redis.call('DEL', receipt_key(receipt))
    redis.call('HSET', receipt_key(receipt), 'seq', seq, 'state', 'queued', 'attempts', 0,
      'fp', fingerprint, 'key', key, 'pass', pass, 'request', request, 'lease', '', 'why', '')
    redis.call('SET', idem_prefix .. key, receipt)
    redis.call('RPUSH', queue_key, receipt)
    if pass ~= '' then
      -- Members leave as they finish; the expiry only bounds what a
      -- receipt removed by other means would leave behind.
      redis.call('SADD', pass_prefix .. pass, receipt)
      redis.call('PEXPIRE', pass_prefix .. pass, pass_for)
    end
    results[#results + 1] = {0, receipt, seq - delivered, depth}
    depth = depth + 1
  end
end
return results
