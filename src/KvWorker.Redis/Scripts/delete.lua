-- kv_delete. Answers { 'ok' | 'replayed', net, queued, '', deleted, '' }:
-- deleted is '1' when a live entry was removed. An expired entry is removed
-- too, but answers '0'.
local now = now_us()
local done = recorded('delete') or version_conflict(now)
if done then
  return done
end
local deleted = live_version(now) and '1' or '0'
remove_entry(key)
reschedule()
record('delete', '', deleted, '')
return reply('ok', '', deleted, '')
