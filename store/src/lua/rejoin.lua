-- A pass of an earlier epoch counts inside again, as of now, unless it is
-- there already. KEYS: inside zset. ARGV: simulated clock ('' for Redis's),
-- pass id.
return redis.call('ZADD', KEYS[1], 'NX', store_now(ARGV[1]), ARGV[2])
