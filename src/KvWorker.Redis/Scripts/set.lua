-- kv_set. ARGV 7: the value's compact JSON, 8: TTL in microseconds or '',
-- 9: the TTL as the request gave it, or '' (recorded for a replay).
-- Returns { 'ok' }, { 'replayed', value, ttl }, or a rejection from reserve.
local value, ttl_us, ttl_text = ARGV[7], ARGV[8], ARGV[9]

local now = now_us()
local done = recorded('set')
if done then
  return done
end
local old_expiry = drop_if_expired(now)

local old_size = redis.call('HEXISTS', values_key, key) == 1 and redis.call('HSTRLEN', values_key, key) or nil
local rejected = store(now, value, old_size, ttl_us ~= '' and now + tonumber(ttl_us) or nil, old_expiry)
if rejected then
  return rejected
end
record('set', value, ttl_text)
sweep(now)
return { 'ok' }
