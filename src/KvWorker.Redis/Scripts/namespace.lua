-- Shared by every script on one namespace's keys; the adapter puts this text
-- before the script's own. All of a namespace's keys carry its bucket's hash
-- tag, so each script runs atomically on one Redis Cluster slot (RedisKeys.cs
-- names them):
--
--   v:<ns>  hash   key -> the value's compact JSON text, exactly as returned
--   n:<ns>  hash   key -> the entry's version
--   x:<ns>  zset   key -> expiry, microseconds on the Redis clock (keys with a TTL only)
--   k:<ns>  zset   key -> 0, every key, for listing in byte order
--   m:<ns>  hash   bytes, entries (expired, not yet removed, included); version:
--                  the namespace's last version, never deleted, so no version
--                  is used twice for a key; claim, claim_until: the outbox lease
--   e:<ns>  list   events waiting to be published (the outbox)
--   c:<ns>  list   events claimed by a replica that is publishing them
--   due     zset   (one per bucket) namespace -> when the purge has work there:
--                  0 when events wait, else its first expiry
--
-- KEYS: 1 v, 2 n, 3 x, 4 k, 5 m, 6 e, 7 c, 8 due; ARGV: 1 namespace, then the script's own.

local values_key, versions_key, expiry_key, keys_key = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local meta_key, events_key, claimed_key, due_key = KEYS[5], KEYS[6], KEYS[7], KEYS[8]
local ns = ARGV[1]

-- What this script changed, for the adapter: the namespace's bytes (which it
-- mirrors on the global counter), and whether events were queued (which it
-- then publishes).
local net = 0
local queued = 0

-- Integers as Redis arguments and replies, never in exponent form.
local function int(n)
  return string.format('%.0f', n)
end

-- The Redis server's clock, in microseconds: replicas on skewed clocks agree.
local function now_us()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000000 + tonumber(t[2])
end

local function used_bytes()
  return tonumber(redis.call('HGET', meta_key, 'bytes') or '0')
end

local function add_usage(bytes, entries)
  net = net + bytes
  redis.call('HINCRBY', meta_key, 'bytes', int(bytes))
  redis.call('HINCRBY', meta_key, 'entries', int(entries))
end

-- Events are lines of space-separated fields (the namespace is the outbox's);
-- RedisOutbox.cs reads them.
local function queue_event(...)
  redis.call('RPUSH', events_key, table.concat({ ... }, ' '))
  queued = 1
end

-- Removes an entry, live or expired, and books its bytes out. Returns the bytes freed.
local function remove_entry(entry_key)
  local size = redis.call('HSTRLEN', values_key, entry_key)
  if redis.call('HDEL', values_key, entry_key) == 0 then
    return 0
  end
  redis.call('HDEL', versions_key, entry_key)
  redis.call('ZREM', expiry_key, entry_key)
  redis.call('ZREM', keys_key, entry_key)
  add_usage(-size, -1)
  return size
end

-- Removes up to `limit` expired entries, soonest expired first, but not the
-- entry of `except_key` (nil: none), which a write replaces and so is not
-- reported; it takes no place in the batch. Returns the number removed and
-- their bytes; the caller reports them.
local function remove_expired(now, limit, except_key)
  local expired = redis.call('ZRANGEBYSCORE', expiry_key, '-inf', int(now), 'LIMIT', 0, except_key and limit + 1 or limit)
  local count, bytes = 0, 0
  for _, entry_key in ipairs(expired) do
    if entry_key ~= except_key and count < limit then
      count, bytes = count + 1, bytes + remove_entry(entry_key)
    end
  end
  return count, bytes
end

local function report_expired(now, count, bytes)
  if count > 0 then
    queue_event('expired', count, int(bytes), int(now))
  end
end

-- Keeps the namespace's place in its bucket's due index: the purge visits a
-- namespace when events wait in its outbox or an entry has expired.
local function reschedule()
  local due
  if redis.call('EXISTS', events_key, claimed_key) > 0 then
    due = 0
  else
    due = redis.call('ZRANGE', expiry_key, 0, 0, 'WITHSCORES')[2]
  end
  if due then
    redis.call('ZADD', due_key, due, ns)
  else
    redis.call('ZREM', due_key, ns)
  end
end

