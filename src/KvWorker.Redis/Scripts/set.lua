-- kv_set. ARGV 8: the value's compact JSON, 9: TTL in microseconds or '',
-- 10: the TTL as the request gave it, or '' (recorded for a replay).
-- Returns { 'ok' }, { 'replayed', value, ttl }, or a rejection from reserve.
local value, ttl_us, ttl_text = ARGV[8], ARGV[9], ARGV[10]

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
