-- kv_get and kv_get_many, read-only: every key in one snapshot. ARGV 2...: the keys.
-- Answers one array per key: {} when it is missing or expired, else
-- { value, version, remaining TTL in microseconds or '' }.
local now = now_us()
local found = {}
for i = 2, #ARGV do
  local entry_key = ARGV[i]
  local entry = {}
  local value = redis.call('HGET', values_key, entry_key)
  local expiry = redis.call('ZSCORE', expiry_key, entry_key)
  local remaining = expiry and tonumber(expiry) - now
  if value and (not remaining or remaining > 0) then
    entry = { value, redis.call('HGET', versions_key, entry_key), remaining and int(remaining) or '' }
  end
  found[#found + 1] = entry
end
return found
