-- The purge of one namespace: removes up to ARGV 2 expired entries, soonest
-- expired first, reported as one KvEntriesExpired; but not the key ARGV 3
-- (when given and not ''), which a write that needs the room will replace.
-- Answers { count, bytes }.
local now = now_us()
local except_key = ARGV[3]
if except_key == '' then
  except_key = nil
end
local count, bytes = remove_expired(now, tonumber(ARGV[2]), except_key)
report_expired(now, count, bytes)
reschedule()
return { count, int(bytes) }
