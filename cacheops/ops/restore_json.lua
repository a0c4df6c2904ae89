-- Put a RedisJSON document back the way RESTORE puts back a DUMP: atomically, refusing an existing
-- key unless replacing (BUSYKEY, as RESTORE does), with its absolute expiry.
-- KEYS[1]: the key. ARGV[1]: the document; ARGV[2]: absolute expiry in ms ('' for none); ARGV[3]:
-- '1' to replace an existing key.
if redis.call('EXISTS', KEYS[1]) == 1 then
  if ARGV[3] ~= '1' then return redis.error_reply('BUSYKEY Target key name already exists.') end
  redis.call('DEL', KEYS[1])
end
redis.call('JSON.SET', KEYS[1], '$', ARGV[1])
if ARGV[2] ~= '' then redis.call('PEXPIREAT', KEYS[1], ARGV[2]) end
return 'OK'
