-- The namespaces of one bucket that the purge has work in: events waiting, or
-- entries expired by now on this server's clock. KEYS 1: the bucket's due index.
local t = redis.call('TIME')
return redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', string.format('%.0f', tonumber(t[1]) * 1000000 + tonumber(t[2])))
