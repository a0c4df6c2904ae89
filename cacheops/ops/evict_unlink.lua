-- Compare-and-unlink: delete each entry only if it is still the exact version that was re-checked
-- and backed up (sha1 of its backup copy: the DUMP, or a RedisJSON document's JSON.GET), then its
-- companion keys with it. Atomic per call, so an app
-- write between the backup and the delete makes the entry "changed" (re-checked again) instead of
-- being lost unrecorded.
-- KEYS: for each entry, the entry key then its companion keys. ARGV: for each entry, the sha1 of
-- its backup copy, the copy's format ('dump' | 'json') and the number of companion keys that
-- follow it in KEYS.
-- Reply: one code per entry: 1 deleted, 0 gone already, -1 changed since it was read.
local out = {}
local k = 1
for i = 1, #ARGV, 3 do
  local key, sha, format, ncomp = KEYS[k], ARGV[i], ARGV[i + 1], tonumber(ARGV[i + 2])
  local dump
  if format == 'json' then
    dump = redis.pcall('JSON.GET', key)
    if type(dump) ~= 'string' then dump = redis.call('EXISTS', key) == 1 and '' or false end
  else
    dump = redis.call('DUMP', key)
  end
  if not dump then
    out[#out + 1] = 0
  elseif redis.sha1hex(dump) ~= sha then
    out[#out + 1] = -1
  else
    redis.call('UNLINK', key)
    for j = 1, ncomp do redis.call('UNLINK', KEYS[k + j]) end
    out[#out + 1] = 1
  end
  k = k + 1 + ncomp
end
return out
