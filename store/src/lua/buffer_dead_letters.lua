-- The oldest dead letters. ARGV[4]: index of the last one (limit - 1).
-- Returns {receipt, key, why, attempts, request, ...}.
local letters = {}
for _, receipt in ipairs(redis.call('LRANGE', dead_key, 0, ARGV[4])) do
  local known = redis.call('HMGET', receipt_key(receipt), 'key', 'why', 'attempts', 'request')
  if known[1] then
    letters[#letters + 1] = receipt
    letters[#letters + 1] = known[1]
    letters[#letters + 1] = known[2] or ''
    letters[#letters + 1] = known[3] or '0'
    letters[#letters + 1] = known[4] or ''
  end
end
return letters
