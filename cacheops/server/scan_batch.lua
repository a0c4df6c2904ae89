-- One SCAN step plus everything cacheops needs about each key, in one round trip.
-- Read-only (run with EVAL_RO / EVALSHA_RO): it never writes, and under CLIENT NO-TOUCH the reads
-- do not bump LRU/LFU. Values are cut to ARGV[3] bytes so a 10 MB entry costs no more than a small one
-- (read_value, from read_value.lua, is prepended when the script is loaded). A limit of 0 reads no
-- value at all: key, type, TTL and memory only (the quick catalog classifies by key shape).
-- ARGV: cursor, count, limit, match ('' = all), type ('' = all), elide (comma-separated hash fields
-- whose values are replaced by their byte length: vectors are not needed to list entries).
-- A cursor of '' reads the keys given after those six arguments instead of scanning (the cluster
-- scan's sweep of a migrated slot, whose names come from CLUSTER GETKEYSINSLOT).
-- Reply: next cursor, then 7 items per key: key, type, pttl, memory (-1 if unknown),
-- value (string | flat hash array | false), full size (-1 if not measured), truncated (0/1).
-- On a cluster node, a key of a slot the node does not serve (one being imported, or moved away
-- since SCAN saw it) cannot be read by a script: its type is '' and nothing else is read.
local cursor, count, limit = ARGV[1], ARGV[2], tonumber(ARGV[3])
local elide = {}
for name in string.gmatch(ARGV[6], '([^,]+)') do elide[name] = true end

local keys, out
if cursor == '' then
  keys, out = {}, {''}
  for i = 7, #ARGV do keys[#keys + 1] = ARGV[i] end
else
  local args = {'SCAN', cursor, 'COUNT', count}
  if ARGV[4] ~= '' then args[#args + 1] = 'MATCH'; args[#args + 1] = ARGV[4] end
  if ARGV[5] ~= '' then args[#args + 1] = 'TYPE'; args[#args + 1] = ARGV[5] end
  local res = redis.call(unpack(args))
  keys, out = res[2], {res[1]}
end
for _, key in ipairs(keys) do
  local kind = redis.pcall('TYPE', key)
  if type(kind) == 'table' and kind['ok'] then
    kind = kind['ok']
    local pttl = redis.call('PTTL', key)
    local mem = redis.pcall('MEMORY', 'USAGE', key, 'SAMPLES', '0')
    if type(mem) ~= 'number' then mem = -1 end
    local value, size, truncated = false, -1, 0
    if limit > 0 then value, size, truncated = read_value(key, kind, limit, elide) end
    out[#out + 1] = key
    out[#out + 1] = kind
    out[#out + 1] = pttl
    out[#out + 1] = mem
    out[#out + 1] = value
    out[#out + 1] = size
    out[#out + 1] = truncated
  else  -- not served here (a cluster slot being imported, or gone): the caller reads it where it lives
    out[#out + 1] = key
    out[#out + 1] = ''
    out[#out + 1] = -2
    out[#out + 1] = -1
    out[#out + 1] = false
    out[#out + 1] = -1
    out[#out + 1] = 0
  end
end
return out
