-- Version-stamped conditional write of the buckets of one shard.
--
-- KEYS[i]            a bucket record; all keys of one call live on this shard
-- ARGV[4(i-1)+1]     the version the caller read for KEYS[i] (0 = absent)
-- ARGV[4(i-1)+2]     new token level, as the caller formatted it (kept verbatim)
-- ARGV[4(i-1)+3]     new updated_at in unix ms
-- ARGV[4(i-1)+4]     time to live in ms (until the bucket would be full again)
--
-- A record is the string "<version>:<tokens>:<updated_at_ms>".
-- Returns {1} when every version matched and every key was written with version + 1.
-- Otherwise writes nothing and returns {0, record_1, ..., record_n}, '' for an absent key,
-- so the caller can decide again without another round trip.
--
-- Why a script and not WATCH/MULTI: one round trip, atomic on the shard, and no client-side
-- retry loop holding a connection.
local current = {}
local matched = true
for i, key in ipairs(KEYS) do
  local record = redis.call('GET', key)
  local version = 0
  if record then
    current[i] = record
    version = tonumber(string.match(record, '^(%d+):'))
  else
    current[i] = ''
  end
  if version ~= tonumber(ARGV[4 * (i - 1) + 1]) then
    matched = false
  end
end

if not matched then
  local reply = {0}
  for i = 1, #KEYS do
    reply[i + 1] = current[i]
  end
  return reply
end

for i, key in ipairs(KEYS) do
  local base = 4 * (i - 1)
  local version = tonumber(ARGV[base + 1]) + 1
  redis.call('SET', key, version .. ':' .. ARGV[base + 2] .. ':' .. ARGV[base + 3], 'PX', ARGV[base + 4])
end
return {1}
