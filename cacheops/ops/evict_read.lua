-- Read the keys an eviction is about to delete, atomically: what the selectors are re-checked on
-- and the copy that is backed up are the same version of each key.
-- Read-only (EVALSHA_RO); read_value comes from read_value.lua, prepended when loaded. KEYS: the
-- keys. ARGV[1]: value byte limit for decoding; ARGV[2]: hash fields (comma-separated) replaced by
-- their length (vectors: the backup keeps them whole); ARGV[3]: the prefix of cacheops' tag hashes
-- (tags.py), read with the entry they belong to; ARGV[4]: the prefix of the hit tracker's entry
-- records (cacheops_track.keys), read and taken along the same way; ARGV[4 + i]: the digest of key i as the preview
-- judged it ('' if none; cacheops.evict.record_digest). A key whose value still has that digest is
-- unchanged: its value is not sent back, only "still the same" (a RedisJSON document is sent
-- whole as its backup copy, and the client compares its digest). ARGV[4 + #KEYS + i]: the type the
-- preview saw for key i ('' if unknown), so a document is read without asking its TYPE first.
-- On a Redis Cluster (all KEYS in one hash slot) ARGV[3] and ARGV[4] are '': then ARGV[4 + 2 * #KEYS
-- + i] names key i's tag hash, which lives in the same slot (ownkeys.cluster_tag_key), and hit records
-- (in other slots) are read by the caller instead.
-- The backup copy is the key's DUMP, except for a RedisJSON document: there the whole document as
-- JSON.GET returns it is the backup (JSON.SET puts it back identically), so the one read serves
-- the re-check and the backup: a second serialisation (DUMP) would cost as much again.
-- Reply: 14 items per key: type, pttl, value (string | flat hash array | false: unchanged or none),
-- full size (-1 if not measured), truncated (0/1), backup copy (false if gone), its format ('dump' |
-- 'json'), unchanged (0/1), for hashes a digest of the full fields independent of their order
-- (false otherwise: a RESTOREd hashtable-encoded hash holds the same fields but may DUMP them in
-- another order, so restore compares this instead), then the entry's tag hash: fields (flat array
-- | false), DUMP (false if none), PTTL; then the entry's hit record: DUMP (false if none), PTTL.
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

-- Most entries have no tag hash: one EXISTS over all of them spares a DUMP per key.
local nkeys = #KEYS
local tag_keys, hit_keys = {}, {}
for n, key in ipairs(KEYS) do
  if ARGV[3] ~= '' then tag_keys[n] = ARGV[3] .. key else tag_keys[n] = ARGV[4 + 2 * nkeys + n] end
  if ARGV[4] ~= '' then hit_keys[n] = ARGV[4] .. key end
end
local any_tags = #tag_keys > 0 and redis.call('EXISTS', unpack(tag_keys)) > 0
local any_hits = #hit_keys > 0 and redis.call('EXISTS', unpack(hit_keys)) > 0

local out = {}
for n, key in ipairs(KEYS) do
  local kind, doc = nil, nil
  if ARGV[4 + nkeys + n] == 'ReJSON-RL' then  -- the preview's type: no TYPE call if it still holds
    local v = redis.pcall('JSON.GET', key)
    if type(v) == 'string' then kind, doc = 'ReJSON-RL', v end
  end
  if not kind then
    kind = redis.call('TYPE', key)['ok']
    if kind == 'ReJSON-RL' then
      local v = redis.pcall('JSON.GET', key)
      if type(v) == 'string' then doc = v end
    end
  end
  local pttl = redis.call('PTTL', key)
  local copy, format, same = false, 'dump', 0
  local value, size, truncated, digest = false, -1, 0, false
  if doc then
    -- The document goes back whole as the copy; the client cuts the value from it and compares
    -- its digest with the preview's itself (cheaper there than here).
    copy, format, size = doc, 'json', #doc
    if size > limit then truncated = 1 end
  elseif kind ~= 'none' then
    copy = redis.call('DUMP', key)
    value, size, truncated, digest = read_value(key, kind, limit, elide, hash_digest)
    local expected = ARGV[4 + n]
    if expected ~= '' and value_digest(kind, value) == expected then
      same, value = 1, false
    end
  end
  out[#out + 1] = kind
  out[#out + 1] = pttl
  out[#out + 1] = value
  out[#out + 1] = size
  out[#out + 1] = truncated
  out[#out + 1] = copy
  out[#out + 1] = format
  out[#out + 1] = same
  out[#out + 1] = digest
  local tdump = any_tags and redis.call('DUMP', tag_keys[n])
  if tdump then
    out[#out + 1] = redis.call('HGETALL', tag_keys[n])
    out[#out + 1] = tdump
    out[#out + 1] = redis.call('PTTL', tag_keys[n])
  else
    out[#out + 1] = false
    out[#out + 1] = false
    out[#out + 1] = -2
  end
  local hdump = any_hits and redis.call('DUMP', hit_keys[n])
  out[#out + 1] = hdump or false
  out[#out + 1] = hdump and redis.call('PTTL', hit_keys[n]) or -2
end
return out
