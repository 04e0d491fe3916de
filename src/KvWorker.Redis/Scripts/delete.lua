-- kv_delete. Returns { 'ok', '1' | '0' } (deleted: a live entry was removed)
-- or { 'replayed', deleted, '' }. An expired entry is removed too, but
-- answers '0'.
local now = now_us()
local done = recorded('delete')
if done then
  return done
end

local deleted = '0'
if redis.call('HEXISTS', values_key, key) == 1 then
  local expiry = redis.call('ZSCORE', expiry_key, key)
  if not expiry or tonumber(expiry) > now then
    deleted = '1'
  end
  remove_entry(ns, key)
end
record('delete', deleted, '')
sweep(now)
return { 'ok', deleted }
