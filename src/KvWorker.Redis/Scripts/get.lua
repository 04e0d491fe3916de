-- kv_get, read-only. KEYS: 1 P v:<ns>, 2 P x:<ns>; ARGV: 1 key.
-- Returns nil (missing or expired), { value } or { value, remaining TTL in
-- microseconds on the Redis clock }.
local value = redis.call('HGET', KEYS[1], ARGV[1])
if not value then
  return nil
end
local expiry = redis.call('ZSCORE', KEYS[2], ARGV[1])
if not expiry then
  return { value }
end
local t = redis.call('TIME')
local remaining = tonumber(expiry) - (tonumber(t[1]) * 1000000 + tonumber(t[2]))
if remaining <= 0 then
  return nil
end
return { value, string.format('%.0f', remaining) }
