-- kv_touch. ARGV 9: TTL in microseconds or '' (persistent), 10: the TTL as
-- the request gave it, or ''. A live entry gets the new expiry and a new
-- version; its value and size stay. Answers { 'ok' | 'replayed', net, queued,
-- version, found, ttl }: found is '1' or '0' (missing or expired: nothing changes).
local ttl_us, ttl_text = ARGV[9], ARGV[10]

local now = now_us()
local done = recorded('touch')
if done then
  return done
end
if not live_version(now) then
  record('touch', '', '0', '')
  return reply('ok', '', '0', '')
end
set_expiry(ttl_us ~= '' and now + tonumber(ttl_us) or nil)
local version = new_version()
reschedule()
record('touch', version, '1', ttl_text)
return reply('ok', version, '1', ttl_text)
