-- Compare-and-set expiries: an entry gets its new expiry only if its expiry is still the one the
-- caller saw (PEXPIRETIME: absolute ms, -1 for none), so an expiry the app set meanwhile (a TTL it
-- refreshed, a new write) is respected. Its companion keys (the cacheops tag hash, a layout's
-- companions) get theirs in the same step.
-- KEYS: per entry, the entry's key then its n companion keys.
-- ARGV: per entry: the expiry seen, the new expiry, n, then the n companions' new expiries.
-- An expiry is absolute unix ms, or -1 for none (PERSIST).
-- Returns per entry: 1 set, -1 its expiry changed meanwhile (left alone), -2 the key is gone.
local function set_expiry(key, value)
  if value == '-1' then
    redis.call('PERSIST', key)
  else
    redis.call('PEXPIREAT', key, value)
  end
end
local out, k, a = {}, 1, 1
while a <= #ARGV do
  local key = KEYS[k]
  local n = tonumber(ARGV[a + 2])
  local current = redis.call('PEXPIRETIME', key)
  local status = 1
  if current == -2 then
    status = -2
  elseif current ~= tonumber(ARGV[a]) then
    status = -1
  end
  if status == 1 then
    set_expiry(key, ARGV[a + 1])
    for i = 1, n do
      set_expiry(KEYS[k + i], ARGV[a + 2 + i])
    end
  end
  out[#out + 1] = status
  k = k + 1 + n
  a = a + 3 + n
end
return out
