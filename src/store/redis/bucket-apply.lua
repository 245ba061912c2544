-- Decides rate-limit requests on the shard itself, with the math of src/bucket (token-bucket.ts,
-- fixed-window.ts), for when conditional writes keep losing to other writers.
--
-- KEYS[k]      bucket records ("<version>:<tokens>:<updated_at_ms>"), all on this shard
-- ARGV[1]      now in unix ms (the caller's clock, as on the conditional-write path)
-- ARGV[2]      number of requests; then per request:
--                hits, number of limits, then per limit:
--                key index into KEYS, algorithm (0 token bucket, 1 fixed window),
--                requests_per_unit, unit length in ms, capacity
-- Requests are decided in order; a request is admitted only if all its limits admit it, and
-- only then do its token buckets consume (a fixed window also counts its own denied hits).
-- Returns, per request and limit in order: allowed (0/1), remaining, reset_after_ms, record.
--
-- Why a script: the read, the decision and the write must be one atomic step on the shard.
local EPSILON = 1e-9

local function parse(record)
  if not record then return nil end
  local version, tokens, updated = string.match(record, '^(%d+):([^:]+):([^:]+)$')
  if not version then return nil end
  return { version = tonumber(version), tokens = tonumber(tokens), updated = tonumber(updated) }
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
    d.expire = updated + reset
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

local now = tonumber(ARGV[1])
local request_count = tonumber(ARGV[2])
local cursor = 3
local reply = {}
for _ = 1, request_count do
  local hits = tonumber(ARGV[cursor])
  local limit_count = tonumber(ARGV[cursor + 1])
  cursor = cursor + 2
  local limits = {}
  local admitted = true
  for l = 1, limit_count do
    local key = KEYS[tonumber(ARGV[cursor])]
    local algorithm = tonumber(ARGV[cursor + 1])
    local rpu = tonumber(ARGV[cursor + 2])
    local unit_ms = tonumber(ARGV[cursor + 3])
    local capacity = tonumber(ARGV[cursor + 4])
    cursor = cursor + 5
    local state = parse(redis.call('GET', key))
    local d
    if algorithm == 1 then
      d = fixed_window(state, rpu, unit_ms, hits, now)
    else
      d = token_bucket(state, rpu, unit_ms, capacity, hits, now)
    end
    d.key = key
    d.state = state
    limits[l] = d
    if not d.allowed then admitted = false end
  end
  for l = 1, limit_count do
    local d = limits[l]
    if d.tokens and (admitted or not d.allowed) then
      local version = 1
      if d.state then version = d.state.version + 1 end
      local ttl = math.max(1, math.ceil(d.expire - now))
      redis.call('SET', d.key, version .. ':' .. string.format('%.17g', d.tokens) .. ':' .. string.format('%d', d.updated), 'PX', ttl)
    end
    local allowed = 0
    if d.allowed then allowed = 1 end
    reply[#reply + 1] = allowed
    reply[#reply + 1] = string.format('%d', d.remaining)
    reply[#reply + 1] = string.format('%d', d.reset)
    reply[#reply + 1] = redis.call('GET', d.key) or ''
  end
end
return reply
