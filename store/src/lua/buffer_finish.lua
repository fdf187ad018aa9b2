-- Records how a job ended. ARGV[3]: receipt id, ARGV[4]: the job's lease,
-- ARGV[5]: 'done', 'retry' or 'dead', ARGV[6]: status (done), ARGV[7]: body
-- (done) or why, ARGV[8]: retry after ms, ARGV[9]: result_for ms,
-- ARGV[10]: '1' when a retry's try does not count (the sink failed, not the
-- request).
-- Returns 0 recorded, 1 already final, 2 lease lost.
local receipt, lease, outcome = ARGV[3], ARGV[4], ARGV[5]
local key = receipt_key(receipt)
local known = redis.call('HMGET', key, 'state', 'lease', 'key')
if not known[1] or known[1] == 'done' or known[1] == 'failed' then return 1 end
if outcome == 'done' then
  -- The first final answer wins, whoever holds the lease now.
  redis.call('ZREM', inflight_key, receipt)
  redis.call('ZREM', retry_key, receipt)
  redis.call('HSET', key, 'state', 'done', 'status', ARGV[6], 'body', ARGV[7])
  redis.call('HDEL', key, 'request')
  redis.call('HINCRBY', buffer_key, 'done', 1)
  redis.call('PEXPIRE', key, ARGV[9])
  if known[3] then redis.call('PEXPIRE', idem_prefix .. known[3], ARGV[9]) end
elseif outcome == 'retry' then
  local holds_lease = known[2] == lease and redis.call('ZSCORE', inflight_key, receipt)
  if not holds_lease then return 2 end
  redis.call('HSET', key, 'state', 'queued', 'why', ARGV[7])
  if ARGV[10] == '1' and tonumber(redis.call('HGET', key, 'attempts') or '0') > 0 then
    redis.call('HINCRBY', key, 'attempts', -1)
  end
  redis.call('ZREM', inflight_key, receipt)
  redis.call('ZADD', retry_key, clock_ms() + tonumber(ARGV[8]), receipt)
else
  dead_letter(receipt, ARGV[7])
end
return 0
