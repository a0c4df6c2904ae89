-- Read the keys an eviction is about to delete, atomically: what the selectors are re-checked on
-- and the DUMP that is backed up are the same version of each key.
-- Read-only (EVALSHA_RO); read_value comes from read_value.lua, prepended when loaded. KEYS: the keys. ARGV[1]: value byte limit for decoding; ARGV[2]: hash
-- fields (comma-separated) replaced by their length (vectors: the DUMP keeps them whole); ARGV[3]:
-- the prefix of cacheops' tag hashes (tags.py), read with the entry they belong to; ARGV[3 + i]: the
-- digest of key i as the preview judged it ('' if none; cacheops.evict.record_digest). A key whose
-- value still has that digest is unchanged: its value is not sent back, only "still the same".
-- Reply: 11 items per key: type, pttl, value (string | flat hash array | false: unchanged or none),
-- full size (-1 if not measured), truncated (0/1), dump (false if gone), unchanged (0/1), for hashes
-- a digest of the full fields independent of their order (false otherwise: a RESTOREd
-- hashtable-encoded hash holds the same fields but may DUMP them in another order, so restore
-- compares this instead), then the entry's tag hash: fields (flat array | false), DUMP (false if
-- none), PTTL.
local limit = tonumber(ARGV[1])
local elide = {}
for name in string.gmatch(ARGV[2], '([^,]+)') do elide[name] = true end
-- Order-independent digest of a hash (cacheops.backup.hash_digest): the sha1 of the sorted sha1s of
-- each field as <len>:<name><len>:<value>. Sorting hex digests keeps it independent of the server's
-- locale (Lua compares strings with strcoll).
local function hash_digest(flat)
  local parts = {}
  for i = 1, #flat, 2 do
    parts[#parts + 1] = redis.sha1hex(#flat[i] .. ':' .. flat[i] .. #flat[i + 1] .. ':' .. flat[i + 1])
  end
  table.sort(parts)
  return redis.sha1hex(table.concat(parts))
end

-- What the preview judged, in the same shape: type, then the bounded value (hash fields as per-field
-- digests, sorted, vectors by their length).
local function value_digest(kind, value)
  if type(value) == 'table' then
    local parts = {}
    for i = 1, #value, 2 do
      local v = value[i + 1]
      if type(v) == 'number' then v = tostring(v) end
      parts[#parts + 1] = redis.sha1hex(#value[i] .. ':' .. value[i] .. #v .. ':' .. v)
    end
    table.sort(parts)
    return redis.sha1hex(kind .. '\n' .. table.concat(parts))
  elseif value then
    return redis.sha1hex(kind .. '\n' .. value)
  end
  return redis.sha1hex(kind .. '\n')
end

local out = {}
for n, key in ipairs(KEYS) do
  local kind = redis.call('TYPE', key)['ok']
  local pttl = redis.call('PTTL', key)
  local dump, same = false, 0
  if kind ~= 'none' then
    dump = redis.call('DUMP', key)
  end
  local value, size, truncated, digest = read_value(key, kind, limit, elide, hash_digest)
  local expected = ARGV[3 + n]
  if expected ~= '' and kind ~= 'none' and value_digest(kind, value) == expected then
    same, value = 1, false
  end
  out[#out + 1] = kind
  out[#out + 1] = pttl
  out[#out + 1] = value
  out[#out + 1] = size
  out[#out + 1] = truncated
  out[#out + 1] = dump
  out[#out + 1] = same
  out[#out + 1] = digest
  local tkey = ARGV[3] .. key
  local tdump = redis.call('DUMP', tkey)
  if tdump then
    out[#out + 1] = redis.call('HGETALL', tkey)
    out[#out + 1] = tdump
    out[#out + 1] = redis.call('PTTL', tkey)
  else
    out[#out + 1] = false
    out[#out + 1] = false
    out[#out + 1] = -2
  end
end
return out
