-- A visitor leaves: the slot is free at once, and the pass is remembered
-- as left (as of now, for the session length) so that a later activity
-- report does not bring it back. KEYS: inside zset, left zset. ARGV:
-- simulated clock ('' for Redis's), pass id.
redis.call('ZREM', KEYS[1], ARGV[2])
redis.call('ZADD', KEYS[2], store_now(ARGV[1]), ARGV[2])
return 0
