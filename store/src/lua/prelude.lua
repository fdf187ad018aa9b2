-- Shared opening of every room script: load the room, expire idle passes and
-- no-shows, accrue admission budget. Mirrors `admission.rs` and
-- `MemoryStore::housekeep`.
-- Every time here is the store's (`store_now`, clock.lua), never a gateway's.
-- KEYS: room hash, inside zset (pass id -> last activity ms),
--       pending zset (admitted ticket -> deadline ms),
--       arrivals hash (ticket % RECENT_ARRIVALS -> pass id: a ring),
--       void zset (tickets whose arrival never reached a visitor)
-- ARGV: simulated clock ('' for Redis's), capacity, admit_per_minute,
--       inside_ttl_ms, arrival_ms, new_epoch, then the caller's marks (see
--       `marks.rs`): epoch ('' when it has seen nothing of the room),
--       generation, issued, admitted, floor; then the config's schedule
--       (12 pre_queue_from, 13 opens_at, 14 closes_at: ms, '' for none),
--       15 the caller's seed (hex: the room's, or a fresh one to give a
--       room that has none), 16 '1' if that seed is the room's already,
--       17 the pre-queue count of the draw as the caller saw it ('' if it
--       saw none), 18..20 the schedule the caller last saw in force (as
--       12..14; its config's if it saw none): a room restored from marks
--       keeps what differs as a live change; the script's own from 21.
local room_key, inside_key, pending_key, arrivals_key, void_key =
  KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
local now = store_now(ARGV[1])
-- The config's settings; a live change (admin API) stored in the room's
-- hash takes precedence below.
local capacity = tonumber(ARGV[2])
local rate = tonumber(ARGV[3])
local inside_ttl = tonumber(ARGV[4])
local arrival = tonumber(ARGV[5])
-- The bucket counts in integer units, 60000 to a token (see admission.rs).
local UNIT = 60000
-- Silence longer than this is an outage (see admission::OUTAGE_GAP_MS).
local OUTAGE_GAP_MS = 5000
-- After a loss or a rollback is found, nobody is let in and no ticket is
-- handed out for this long (see admission::SETTLE_MS): every gateway's
-- next step brings what it has seen, and every pass inside is reported.
local SETTLE_MS = 3000
-- Arrivals remembered, to void one whose reply was lost (arrive.lua).
local RECENT_ARRIVALS = 4096
local fields = redis.call('HMGET', room_key, 'epoch', 'issued', 'admitted', 'tokens', 'tokens_at',
  'set_capacity', 'set_rate', 'set_state', 'sessions_expired', 'no_shows',
  'generation', 'settle_until', 'set_pre_queue_from', 'set_opens_at', 'set_closes_at', 'seed',
  'drawn', 'pre_queue', 'pace', 'set_adaptive')
-- Ever expired in this epoch: idle sessions, and admitted tickets whose
-- holders did not show up.
local sessions_expired = tonumber(fields[9]) or 0
local no_shows = tonumber(fields[10]) or 0
capacity = tonumber(fields[6]) or capacity
rate = tonumber(fields[7]) or rate
-- The ceiling (what the snapshot reports), and under it the adaptive pace
-- while the controller runs (adaptive.rs; cleared when it is turned off).
local ceiling = rate
local pace = tonumber(fields[19])
if pace and fields[20] ~= '0' then
  rate = math.min(rate, math.max(1, math.floor(pace)))
end
-- 0 open, 1 paused, 2 closed
local state = tonumber(fields[8]) or 0
local burst = UNIT + rate * 1000
-- Bumped whenever a loss or a rollback is found: gateways then report
-- every pass they know to be inside.
local generation = tonumber(fields[11]) or 0
local settle_until = tonumber(fields[12]) or 0

-- The launch schedule: a live change ('none' clears a time) over the
-- config's. See config/src/schedule.rs.
local function scheduled(set, config)
  if set == 'none' then return nil end
  if set then return tonumber(set) end
  if config == '' then return nil end
  return tonumber(config)
end
local pre_queue_from = scheduled(fields[13], ARGV[12])
local opens_at = scheduled(fields[14], ARGV[13])
local closes_at = scheduled(fields[15], ARGV[14])
-- Every room holds a seed for its draw from its first moment, so that its
-- commitment can be published before a pre-queue opens.
local seed = fields[16]
if not seed then
  seed = ARGV[15]
  redis.call('HSET', room_key, 'seed', seed)
end
-- Pre-queue tickets the draw ordered (tickets 1..drawn), once made.
local drawn = tonumber(fields[17])
-- Whether the line began before its opening, so that its tickets until the
-- opening are a pre-queue (set below); a line that had handed out tickets
-- before an opening was given to it (a config file edited) draws nothing.
local pre_queue_line = fields[18] == '1'

-- What the calling gateway has seen of this room (its marks): the highest
-- counters of one epoch, read from every reply and every ticket it checked.
-- The epoch stays text, as it is stored (a 53-bit number would not survive
-- tostring); '' when the gateway has seen nothing of the room. Plain locals,
-- not a table: this runs on every call.
local seen_epoch = ARGV[7]
local seen_issued = tonumber(ARGV[9]) or 0
local seen_admitted = tonumber(ARGV[10]) or 0

-- Set when the counters came back older than the caller has seen them:
-- the store's own `admitted` then (tickets above it were let in and lost
-- their pending entries).
local older_from = nil
local epoch, issued, admitted, tokens, tokens_at
if not fields[1] and seen_epoch ~= '' then
  -- The room's state was lost (a restart without persistence, a flush) and
  -- this gateway knows the line: carry it on where the gateway saw it, so
  -- that every ticket keeps its place, rather than void them all.
  epoch = seen_epoch
  issued, admitted, tokens, tokens_at = seen_issued, seen_admitted, 0, now
  redis.call('DEL', inside_key, pending_key, arrivals_key, void_key)
  redis.call('HSET', room_key, 'epoch', epoch, 'issued', issued, 'admitted', admitted,
    'sessions_expired', 0, 'no_shows', 0)
  -- The schedule the gateway saw in force, where it differs from its
  -- file's, was a live change: kept as one, so that an opening moved live
  -- is not lost with the rest (and drawn, its seed revealed, early).
  for index, field in ipairs({'set_pre_queue_from', 'set_opens_at', 'set_closes_at'}) do
    local seen_at, config_at = ARGV[17 + index], ARGV[11 + index]
    if seen_at ~= config_at then
      if seen_at == '' then seen_at = 'none' end
      redis.call('HSET', room_key, field, seen_at)
    end
  end
  pre_queue_from, opens_at, closes_at = tonumber(ARGV[18]), tonumber(ARGV[19]),
    tonumber(ARGV[20])
  -- A line the gateway saw with an opening and no draw yet was a pre-queue
  -- from its first ticket.
  if opens_at and ARGV[17] == '' then
    pre_queue_line = true
    redis.call('HSET', room_key, 'pre_queue', 1)
  end
  sessions_expired, no_shows = 0, 0
  older_from = 0
elseif not fields[1] then
  -- A room seen for the first time, or whose state was lost with no
  -- gateway to remember it: start a new epoch so that tickets of the old
  -- one cannot be replayed.
  epoch = ARGV[6]
  issued, admitted, tokens, tokens_at = 0, 0, burst, now
  redis.call('DEL', inside_key, pending_key, arrivals_key, void_key)
  redis.call('HSET', room_key, 'epoch', epoch, 'issued', 0, 'admitted', 0,
    'sessions_expired', 0, 'no_shows', 0)
  sessions_expired, no_shows = 0, 0
else
  epoch = fields[1]
  issued = tonumber(fields[2]) or 0
  admitted = tonumber(fields[3]) or 0
  tokens = tonumber(fields[4]) or burst
  tokens_at = tonumber(fields[5]) or now
  if epoch == seen_epoch and (issued < seen_issued or admitted < seen_admitted) then
    -- Rolled back within the epoch (an older snapshot, a lagging replica
    -- promoted): never believe the lower counters, or a number would be
    -- handed out twice and the room filled past capacity.
    older_from = admitted
    issued = math.max(issued, seen_issued)
    admitted = math.max(admitted, seen_admitted)
    redis.call('HSET', room_key, 'issued', issued, 'admitted', admitted)
  end
end

if older_from then
  -- The line's counters came back older than a gateway has seen them:
  -- keep the higher ones (above), let the holders of tickets admitted in
  -- between claim them (amnesty, claim.lua), and settle before anyone else
  -- is let in or given a ticket. Tickets let in longer than an arrival
  -- time ago (before the caller's floor) are no-shows anyway.
  local from = math.max(older_from, tonumber(ARGV[11]) or 0)
  local amnesty = redis.call('HMGET', room_key, 'amnesty_from', 'amnesty_to', 'amnesty_until')
  local amnesty_from = tonumber(amnesty[1]) or 0
  local amnesty_to = tonumber(amnesty[2]) or 0
  local amnesty_until = tonumber(amnesty[3]) or 0
  if seen_admitted > from then
    if now <= amnesty_until then
      amnesty_from = math.min(amnesty_from, from)
      amnesty_to = math.max(amnesty_to, seen_admitted)
    else
      amnesty_from, amnesty_to = from, seen_admitted
    end
    amnesty_until = now + SETTLE_MS + arrival
  end
  generation = math.max(generation, tonumber(ARGV[8]) or 0) + 1
  settle_until = now + SETTLE_MS
  redis.call('HSET', room_key, 'generation', generation, 'settle_until', settle_until,
    'amnesty_from', amnesty_from, 'amnesty_to', amnesty_to, 'amnesty_until', amnesty_until)
end
local settling = now < settle_until

-- The draw's count, lost with the room's state (restored above from a
-- gateway's marks): the gateway that saw it brings it back, for the same
-- epoch only, so every pre-queue ticket keeps its place.
if not drawn and ARGV[17] ~= '' and epoch == seen_epoch then
  drawn = tonumber(ARGV[17])
  redis.call('HSET', room_key, 'drawn', drawn)
end
-- The draw, at the opening on this clock: every ticket handed out so far
-- is in the pre-queue, and its order (a keyed permutation of 1..drawn the
-- gateways compute, see draw.rs) is fixed from here on. Not while settling
-- after a loss or a rollback: `issued` is then only as high as the marks
-- that reached the store so far, and a gateway that handed out the last
-- pre-queue tickets may not have stepped yet; every gateway's marks arrive
-- within the settle, and the draw follows it.
if not drawn and not pre_queue_line and opens_at and now < opens_at and issued == 0 then
  pre_queue_line = true
  redis.call('HSET', room_key, 'pre_queue', 1)
end
if not drawn and opens_at and now >= opens_at and not settling then
  if pre_queue_line then drawn = issued else drawn = 0 end
  redis.call('HSET', room_key, 'drawn', drawn)
end
-- Before the opening nobody is let in; once drawn, the room is open
-- whatever opens_at says now.
local before_opening = opens_at ~= nil and not drawn and now < opens_at
-- Past closes_at: no new places.
local past_closing = closes_at ~= nil and now >= closes_at

-- Gateways step every room every 100 ms. A longer silence means the room
-- was not served (store unreachable, every gateway down): admitted visitors
-- could not come in meanwhile, so their arrival deadlines move by the gap
-- rather than expire. (Passes inside are kept by the gateways' activity
-- reports, which count them again.)
local gap = now - tokens_at
if gap > OUTAGE_GAP_MS then
  local waiting_to_arrive = redis.call('ZRANGE', pending_key, 0, -1, 'WITHSCORES')
  for index = 1, #waiting_to_arrive, 2 do
    redis.call('ZADD', pending_key, tonumber(waiting_to_arrive[index + 1]) + gap,
      waiting_to_arrive[index])
  end
  -- Persist the mark now, so that the gap is bridged once, whichever
  -- script runs first.
  redis.call('HSET', room_key, 'tokens_at', now)
end

local idle = redis.call('ZREMRANGEBYSCORE', inside_key, '-inf', '(' .. tostring(now - inside_ttl))
if idle > 0 then
  sessions_expired = redis.call('HINCRBY', room_key, 'sessions_expired', idle)
end
local missed = redis.call('ZREMRANGEBYSCORE', pending_key, '-inf', now)
if missed > 0 then
  no_shows = redis.call('HINCRBY', room_key, 'no_shows', missed)
end
-- A mark in the future (Redis's clock stepped back, or a mark written on a
-- fast gateway's clock before the scripts kept the time) accrues nothing and
-- comes back to now, rather than freezing the pace until the clock catches
-- up (see Bucket::refill).
if now > tokens_at then
  tokens = math.min(burst, tokens + (now - tokens_at) * rate)
end
tokens_at = now

local function whole_tokens()
  return math.floor(tokens / UNIT)
end

-- Counted once per call; scripts keep them current as they add entries.
local inside_count = redis.call('ZCARD', inside_key)
local pending_count = redis.call('ZCARD', pending_key)

local function free_slots()
  return math.max(0, capacity - inside_count - pending_count)
end

local function save()
  redis.call('HSET', room_key, 'issued', issued, 'admitted', admitted,
    'tokens', tokens, 'tokens_at', tokens_at)
end

-- The figures, and the store's time they were taken at: what each gateway
-- learns the offset between its clock and the store's from.
-- Times and counts absent are -1. The seed follows only when the caller
-- does not hold the room's yet.
local function snapshot(head)
  local reply = {head, tonumber(epoch), issued, admitted, inside_count, pending_count,
    capacity, ceiling, state, sessions_expired, no_shows, now, generation,
    pre_queue_from or -1, opens_at or -1, closes_at or -1, drawn or -1}
  if ARGV[16] ~= '1' or ARGV[15] ~= seed then reply[#reply + 1] = seed end
  return reply
end
