-- kv_set. ARGV 9: the value's compact JSON, 10: TTL in microseconds or '',
-- 11: the TTL as the request gave it, or '' (recorded for a replay).
-- Answers { 'ok' | 'replayed', net, queued, version, '', '' } or a rejection.
local value, ttl_us, ttl_text = ARGV[9], ARGV[10], ARGV[11]

local now = now_us()
local done = recorded('set') or version_conflict(now)
if done then
  return done
end
local old_size = entry(now)
local version, rejected = store(now, value, old_size, ttl_us ~= '' and now + tonumber(ttl_us) or nil)
reschedule()
if rejected then
  return rejected
end
record('set', version, '', ttl_text)
return reply('ok', version, '', ttl_text)
