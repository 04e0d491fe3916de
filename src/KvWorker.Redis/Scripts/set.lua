-- kv_set. ARGV 7: the value's compact JSON, 8: TTL in microseconds or '',
-- 9: the TTL as the request gave it, or '' (recorded for a replay).
-- Returns { 'ok' }, { 'replayed', value, ttl }, or a rejection from reserve.
local value, ttl_us, ttl_text = ARGV[7], ARGV[8], ARGV[9]

local now = now_us()
local done = recorded('set')
if done then
  return done
end
drop_if_expired(now)

local exists = redis.call('HEXISTS', values_key, key) == 1
local delta = #value - redis.call('HSTRLEN', values_key, key)
local rejected = reserve(now, delta, #value)
if rejected then
  return rejected
end

redis.call('HSET', values_key, key, value)
add_usage(ns, delta, exists and 0 or 1)
set_expiry(ttl_us ~= '' and now + tonumber(ttl_us) or nil)
record('set', value, ttl_text)
sweep(now, SWEEP)
return { 'ok' }
