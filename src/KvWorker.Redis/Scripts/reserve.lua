-- Grants bytes on the global counter, which counts every namespace's bytes
-- and the grants of writes in flight. KEYS 1: the counter; ARGV 1: the bytes
-- wanted, 2: the global quota. Answers { 1, used after } when they fit, else
-- { 0, used } and changes nothing.
local used = tonumber(redis.call('GET', KEYS[1]) or '0')
if used + tonumber(ARGV[1]) > tonumber(ARGV[2]) then
  return { 0, string.format('%.0f', used) }
end
return { 1, redis.call('INCRBY', KEYS[1], ARGV[1]) }
