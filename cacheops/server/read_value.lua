-- The bounded value read shared by scan_batch.lua and evict_read.lua (prepended to each when it is
-- loaded: scripting.Script(prelude=True)). Strings and JSON are cut to `limit` bytes, hash fields too; hash
-- fields named in `elide` (vectors) are replaced by their byte length. `digest_fn`, if given, is
-- applied to a hash's full field list before anything is cut, and its result returned fourth.
-- Returns: value (string | flat hash array | false), full size (-1 if not measured), truncated (0/1),
-- digest (or false).
local function read_value(key, kind, limit, elide, digest_fn)
  local value, size, truncated, digest = false, -1, 0, false
  if kind == 'string' then
    size = redis.call('STRLEN', key)
    value = redis.call('GETRANGE', key, 0, limit - 1)
    if size > limit then truncated = 1 end
  elseif kind == 'hash' then
    value = redis.call('HGETALL', key)
    if digest_fn then digest = digest_fn(value) end
    for i = 2, #value, 2 do
      if elide[value[i - 1]] then
        value[i] = #value[i]
      elseif #value[i] > limit then
        value[i] = string.sub(value[i], 1, limit)
        truncated = 1
      end
    end
  elseif kind == 'ReJSON-RL' then
    local v = redis.pcall('JSON.GET', key)
    if type(v) == 'string' then
      size = #v
      if size > limit then v = string.sub(v, 1, limit); truncated = 1 end
      value = v
    end
  end
  return value, size, truncated, digest
end
