-- A receipt as the visitor sees it. ARGV[4]: receipt id.
-- Returns {} if unknown (or expired), else
-- {state, attempts, seq, delivered, why, status, body}.
local fields = redis.call('HMGET', receipt_key(ARGV[4]), 'state', 'attempts', 'seq', 'why',
  'status', 'body')
if not fields[1] then return {} end
local delivered = redis.call('HGET', buffer_key, 'delivered') or '0'
return {fields[1], fields[2] or '0', fields[3] or '0', delivered, fields[4] or '',
  fields[5] or '0', fields[6] or ''}
