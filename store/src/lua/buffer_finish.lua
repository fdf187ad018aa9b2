-- Records how a job ended. ARGV[4]: receipt id, ARGV[5]: the job's lease,
-- ARGV[6]: 'done', 'retry' or 'dead', ARGV[7]: status (done), ARGV[8]: body
-- (done) or why, ARGV[9]: retry after ms, ARGV[10]: result_for ms,
-- ARGV[11]: '1' when a retry's try does not count (the sink failed, not the
-- request).
-- Returns 0 recorded, 1 already final, 2 lease lost.
local receipt, lease, outcome = ARGV[4], ARGV[5], ARGV[6]
local key = receipt_key(receipt)
local known = redis.call('HMGET', key, 'state', 'lease', 'key')
if not known[1] or known[1] == 'done' or known[1] == 'failed' then return 1 end
if outcome == 'done' then
  -- The first final answer wins, whoever holds the lease now.
  redis.call('ZREM', inflight_key, receipt)
  redis.call('ZREM', retry_key, receipt)
  redis.call('HSET', key, 'state', 'done', 'status', ARGV[7], 'body', ARGV[8])
  redis.call('HDEL', key, 'request')
  redis.call('HINCRBY', buffer_key, 'done', 1)
  release_pass(receipt)
  redis.call('PEXPIRE', key, ARGV[10])
  if known[3] then redis.call('PEXPIRE', idem_prefix .. known[3], ARGV[10]) end
elseif outcome == 'retry' then
  local holds_lease = known[2] == lease and redis.call('ZSCORE', inflight_key, receipt)
  if not holds_lease then return 2 end
  redis.call('HSET', key, 'state', 'queued', 'why', ARGV[8])
  if ARGV[11] == '1' and tonumber(redis.call('HGET', key, 'attempts') or '0') > 0 then
    redis.call('HINCRBY', key, 'attempts', -1)
  end
  redis.call('ZREM', inflight_key, receipt)
  redis.call('ZADD', retry_key, clock_ms() + tonumber(ARGV[9]), receipt)
else
  dead_letter(receipt, ARGV[8])
end
return 0
