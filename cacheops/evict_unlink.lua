-- Compare-and-unlink: delete each entry only if it is still the exact version that was re-checked
-- and backed up (sha1 of its DUMP), then its companion keys with it. Atomic per call, so an app
-- write between the backup and the delete makes the entry "changed" (re-checked again) instead of
-- being lost unrecorded.
-- KEYS: for each entry, the entry key then its companion keys. ARGV: for each entry, the sha1 of
-- its DUMP and the number of companion keys that follow it in KEYS.
-- Reply: one code per entry: 1 deleted, 0 gone already, -1 changed since it was read.
local out = {}
local k = 1
for i = 1, #ARGV, 2 do
  local key, sha, ncomp = KEYS[k], ARGV[i], tonumber(ARGV[i + 1])
  local dump = redis.call('DUMP', key)
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
