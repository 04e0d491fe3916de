-- The purge of one namespace: removes up to ARGV 2 expired entries, soonest
-- expired first, reported as one KvEntriesExpired. Answers { count, bytes }.
local now = now_us()
local count, bytes = remove_expired(now, tonumber(ARGV[2]))
report_expired(now, count, bytes)
reschedule()
return { count, int(bytes) }
