-- A buffer's figures: {queued, in flight, retrying, dead, accepted, done}.
local counters = redis.call('HMGET', buffer_key, 'accepted', 'done')
return {redis.call('LLEN', queue_key), redis.call('ZCARD', inflight_key),
  redis.call('ZCARD', retry_key), redis.call('LLEN', dead_key),
  tonumber(counters[1]) or 0, tonumber(counters[2]) or 0}
