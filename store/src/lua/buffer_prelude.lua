-- Shared opening of every buffer script. Mirrors `memory_buffer.rs`; the key
-- layout is documented in `redis_buffer.rs`.
-- KEYS: buffer hash, queue list, inflight zset (receipt -> lease deadline ms),
--       retry zset (receipt -> due ms), dead list
-- ARGV: receipt key prefix, idempotency key prefix, pass key prefix, ...
-- Receipt, idempotency and pass keys are found from ids stored in the lists
-- and receipts, so scripts build their names from the prefixes; they share
-- the buffer's hash tag, so every key a script touches lives on one shard.
local buffer_key, queue_key, inflight_key, retry_key, dead_key =
  KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
local receipt_prefix, idem_prefix, pass_prefix = ARGV[1], ARGV[2], ARGV[3]

-- The store's clock, shared by every worker: Redis server time in ms.
local function clock_ms()
  local time = redis.call('TIME')
  return tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
end

local function receipt_key(receipt)
  return receipt_prefix .. receipt
end

-- A finished request (done or dead-lettered) no longer counts against its
-- pass's max_per_pass; the set, emptied, is gone. Receipts without a pass
-- (none was held, or stored before passes were counted) count nowhere.
local function release_pass(receipt)
  local pass = redis.call('HGET', receipt_key(receipt), 'pass')
  if pass and pass ~= '' then
    redis.call('SREM', pass_prefix .. pass, receipt)
  end
end

-- Out of flight and retry for good; kept (with its request) for the operator.
local function dead_letter(receipt, why)
  redis.call('ZREM', inflight_key, receipt)
  redis.call('ZREM', retry_key, receipt)
  redis.call('HSET', receipt_key(receipt), 'state', 'failed', 'why', why)
  redis.call('RPUSH', dead_key, receipt)
  release_pass(receipt)
end
