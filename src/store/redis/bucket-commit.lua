-- Commits the engine's decisions for groups of buckets on this shard, in one round trip.
--
-- Per group: if every record still has the version the engine decided from, store the engine's
-- new states (version + 1). Otherwise another writer got there first (or the engine sent no
-- writes because it had no copy of the records): decide the group's
-- requests here, with the math of src/bucket (token-bucket.ts, fixed-window.ts), and return the
-- verdicts. Either way the group is atomic and the caller needs no second round trip.
--
-- KEYS[k]   bucket records "<version>:<tokens>:<updated_at_ms>", all on this shard
-- ARGV[1]   every argument below, separated by single spaces (none contains one): a caller
--           encoding one argument instead of about twenty per group spends far less CPU on it
-- args[1]   now in unix ms (the caller's clock, as for its own decisions)
-- args[2]   number of groups; then per group:
--             number of seeds; per seed: key index, record, time to live in ms: the record
--               as the group's previous owner had it (after a shard-list change), stored
--               only where this shard has no record yet, before anything else
--             number of writes; per write: key index, expected version (0 = absent),
--               tokens (kept verbatim), updated_at_ms, time to live in ms
--             number of requests; per request: hits, number of limits; per limit:
--               key index, algorithm (0 token bucket, 1 fixed window), requests_per_unit,
--               unit length in ms, capacity
--             number of debits, each shaped like a request: hits admitted elsewhere (a local
--               fallback while this shard was down) to take first, unconditionally; a group
--               with debits is always decided here
--             idempotency key index (0 = none) and its time to live in ms: a group with a
--               key is always decided here, its reply is kept under the key, and a later
--               commit with the same key gets that reply back and changes nothing
-- Returns, per group: 1 (written), or 0 followed by, per request and limit in order:
--   allowed (0/1), remaining, reset_after_ms, record after the decision ('' = absent).
--
-- Why a script: reading versions, deciding and writing must be one atomic step on the shard.
local EPSILON = 1e-9
-- A token bucket's record stays at least this long after a write, full or not (RECORD_MIN_LIFETIME_MS in src/bucket/token-bucket.ts).
local MIN_LIFETIME_MS = 1000

-- "<version>:<tokens>:<updated_at_ms>"
local RECORD = '^(%d+):([^:]+):([^:]+)$'

local function parse(record)
  if not record then return nil end
  local version, tokens, updated = string.match(record, RECORD)
  if not version then return nil end
  return { version = tonumber(version), tokens = tonumber(tokens), updated = tonumber(updated) }
end

-- A record's version alone (0 = absent or unreadable, as parse has it): all a conditional write compares.
local function version_of(record)
  if not record then return 0 end
  local version = string.match(record, RECORD)
  if not version then return 0 end
  return tonumber(version)
end

local function token_bucket(state, rpu, unit_ms, capacity, hits, now)
  local rate = rpu / unit_ms
  local tokens = capacity
  if state then
    tokens = math.min(capacity, state.tokens + math.max(0, now - state.updated) * rate)
  end
  local needed = hits
  if hits == 0 then needed = 1 end
  local allowed = tokens + EPSILON >= needed
  local after = tokens
  if allowed then after = math.max(0, tokens - hits) end
  local reset = 0
  if rate > 0 then reset = math.max(0, math.ceil(math.max(0, capacity - after) / rate - 1e-6)) end
  local d = { allowed = allowed, remaining = math.max(0, math.floor(after + EPSILON)), reset = reset }
  if allowed and hits > 0 then
    local updated = now
    if state then updated = math.max(now, state.updated) end
    d.tokens = after
    d.updated = updated
    d.expire = updated + math.max(reset, MIN_LIFETIME_MS)
  end
  return d
end

local function fixed_window(state, rpu, unit_ms, hits, now)
  local start = math.floor(now / unit_ms) * unit_ms
  local counted = 0
  if state and state.updated == start then counted = rpu - state.tokens end
  local after = counted + hits
  local unit_s = unit_ms / 1000
  local d = {
    allowed = after <= rpu,
    remaining = math.max(0, rpu - after),
    reset = (unit_s - (math.floor(now / 1000) % unit_s)) * 1000,
  }
  if hits > 0 then
    d.tokens = rpu - after
    d.updated = start
    d.expire = start + unit_ms
  end
  return d
end

-- Hits admitted elsewhere, taken whether or not they fit (src/bucket/debit.ts).
local function debit(state, limit, hits, now)
  if limit.algorithm == 1 then
    local d = fixed_window(state, limit.rpu, limit.unit_ms, hits, now)
    return d.tokens, d.updated, d.expire
  end
  local rate = limit.rpu / limit.unit_ms
  local tokens = limit.capacity
  local updated = now
  if state then
    tokens = math.min(limit.capacity, state.tokens + math.max(0, now - state.updated) * rate)
    updated = math.max(now, state.updated)
  end
  tokens = math.max(0, tokens - hits)
  local refill = 0
  if rate > 0 then refill = math.ceil((limit.capacity - tokens) / rate) end
  return tokens, updated, updated + math.max(refill, MIN_LIFETIME_MS)
end

-- Returns the record stored.
local function store(key, version, tokens, updated, ttl)
  local record = version .. ':' .. tokens .. ':' .. updated
  redis.call('SET', key, record, 'PX', math.max(1, ttl))
  return record
end

local args = {}
local arg_count = 0
for field in string.gmatch(ARGV[1], '[^ ]+') do
  arg_count = arg_count + 1
  args[arg_count] = field
end

local now = tonumber(args[1])
local cursor = 3
local reply = {}

-- Reads `count` requests (hits, limits) starting at args[cursor], moving the cursor past them.
local function read_requests(count)
  local requests = {}
  for r = 1, count do
    local request = { hits = tonumber(args[cursor]), limits = {} }
    local limit_count = tonumber(args[cursor + 1])
    cursor = cursor + 2
    for l = 1, limit_count do
      request.limits[l] = {
        key = KEYS[tonumber(args[cursor])],
        algorithm = tonumber(args[cursor + 1]),
        rpu = tonumber(args[cursor + 2]),
        unit_ms = tonumber(args[cursor + 3]),
        capacity = tonumber(args[cursor + 4]),
      }
      cursor = cursor + 5
    end
    requests[r] = request
  end
  return requests
end

-- One group: its reply entries (1, or 0 and the verdicts), writing or deciding as described above.
local function commit_group(writes, requests, debits, must_decide)
  local matched = #writes > 0 and not must_decide and #debits == 0
  for _, write in ipairs(writes) do
    if version_of(redis.call('GET', write.key)) ~= write.expected then matched = false end
  end
  if matched then
    for _, write in ipairs(writes) do
      store(write.key, write.expected + 1, write.tokens, write.updated, write.ttl)
    end
    return {1}
  end

  for _, owed in ipairs(debits) do
    for _, limit in ipairs(owed.limits) do
      local state = parse(redis.call('GET', limit.key))
      local version = 1
      if state then version = state.version + 1 end
      local tokens, updated, expire = debit(state, limit, owed.hits, now)
      store(limit.key, version, string.format('%.17g', tokens), string.format('%d', updated), math.ceil(expire - now))
    end
  end

  local out = {0}
  for _, request in ipairs(requests) do
    local decisions = {}
    -- Each key's record as it stands, for the reply, without reading it back.
    local latest = {}
    local admitted = true
    for l, limit in ipairs(request.limits) do
      local record = redis.call('GET', limit.key)
      latest[limit.key] = record
      local state = parse(record)
      local d
      if limit.algorithm == 1 then
        d = fixed_window(state, limit.rpu, limit.unit_ms, request.hits, now)
      else
        d = token_bucket(state, limit.rpu, limit.unit_ms, limit.capacity, request.hits, now)
      end
      d.state = state
      decisions[l] = d
      if not d.allowed then admitted = false end
    end
    for l, limit in ipairs(request.limits) do
      local d = decisions[l]
      if d.tokens and (admitted or not d.allowed) then
        local version = 1
        if d.state then version = d.state.version + 1 end
        latest[limit.key] = store(limit.key, version, string.format('%.17g', d.tokens), string.format('%d', d.updated), math.ceil(d.expire - now))
      end
      local allowed = 0
      if d.allowed then allowed = 1 end
      out[#out + 1] = allowed
      out[#out + 1] = string.format('%d', d.remaining)
      out[#out + 1] = string.format('%d', d.reset)
      out[#out + 1] = latest[limit.key] or ''
    end
  end
  return out
end

for _ = 1, tonumber(args[2]) do
  local seed_count = tonumber(args[cursor])
  for s = 1, seed_count do
    local at = cursor + 1 + 3 * (s - 1)
    local key = KEYS[tonumber(args[at])]
    redis.call('SET', key, args[at + 1], 'PX', math.max(1, tonumber(args[at + 2])), 'NX')
  end
  cursor = cursor + 1 + 3 * seed_count
  local writes = {}
  for w = 1, tonumber(args[cursor]) do
    local at = cursor + 1 + 5 * (w - 1)
    writes[w] = {
      key = KEYS[tonumber(args[at])],
      expected = tonumber(args[at + 1]),
      tokens = args[at + 2],
      updated = args[at + 3],
      ttl = tonumber(args[at + 4]),
    }
  end
  cursor = cursor + 1 + 5 * #writes
  local request_count = tonumber(args[cursor])
  cursor = cursor + 1
  local requests = read_requests(request_count)
  local debit_count = tonumber(args[cursor])
  cursor = cursor + 1
  local debits = read_requests(debit_count)
  local idempotency_key = nil
  if tonumber(args[cursor]) > 0 then idempotency_key = KEYS[tonumber(args[cursor])] end
  local idempotency_ttl = tonumber(args[cursor + 1])
  cursor = cursor + 2

  local seen = nil
  if idempotency_key then seen = redis.call('GET', idempotency_key) end
  local group_reply
  if seen then
    group_reply = cjson.decode(seen)
  else
    group_reply = commit_group(writes, requests, debits, idempotency_key ~= nil)
    if idempotency_key then
      redis.call('SET', idempotency_key, cjson.encode(group_reply), 'PX', math.max(1, idempotency_ttl))
    end
  end
  for _, entry in ipairs(group_reply) do reply[#reply + 1] = entry end
end
return reply
