-- Shared by the mutation scripts (set.lua, increment.lua, delete.lua), which
-- the adapter appends to this text; each runs as one atomic script.
--
-- Layout under the prefix P (all keys of one adapter instance):
--   P v:<ns>  hash   key -> the value's compact JSON text, exactly as returned
--   P x:<ns>  zset   key -> expiry, microseconds on the Redis clock (keys with a TTL only)
--   P u:<ns>  hash   bytes, entries: what the namespace holds (expired, not yet reclaimed, included)
--   P g       hash   bytes, entries: the same over all namespaces
--   P gx      zset   "<#ns>:<ns><key>" -> expiry, over all namespaces
--   P r:...   hash   a request identity (scoped to its namespace): the operation,
--                    key and request hash it identified, and its recorded answer;
--                    expires after the retention
--
-- KEYS: 1 P v:<ns>, 2 P x:<ns>, 3 P u:<ns>, 4 P g, 5 P gx, [6 request record]
-- ARGV: 1 P, 2 namespace, 3 key, 4 namespace quota, 5 global quota or '',
--       6 request retention in ms, 7 request hash or '', 8... the operation's own arguments.

local values_key, expiry_key, usage_key, global_key, global_expiry_key = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
local request_key = KEYS[6]
local prefix, ns, key = ARGV[1], ARGV[2], ARGV[3]
local namespace_quota = tonumber(ARGV[4])
local global_quota = tonumber(ARGV[5])
local retention_ms = ARGV[6]
local request_hash = ARGV[7]

-- Expired entries removed by each mutation on the side, so that they do not
-- pile up in namespaces that never reach their quota.
local SWEEP = 16

-- Integers as Redis arguments, never in exponent form.
local function int(n)
  return string.format('%.0f', n)
end

-- The Redis server's clock, in microseconds: replicas on skewed clocks agree.
local function now_us()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000000 + tonumber(t[2])
end

local function member(entry_ns, entry_key)
  return #entry_ns .. ':' .. entry_ns .. entry_key
end

local function split_member(m)
  local length, rest = string.match(m, '^(%d+):(.*)$')
  length = tonumber(length)
  return string.sub(rest, 1, length), string.sub(rest, length + 1)
end

local function add_usage(entry_ns, bytes, entries)
  local usage = prefix .. 'u:' .. entry_ns
  redis.call('HINCRBY', usage, 'bytes', int(bytes))
  if redis.call('HINCRBY', usage, 'entries', int(entries)) == 0 then
    redis.call('DEL', usage)
  end
  redis.call('HINCRBY', global_key, 'bytes', int(bytes))
  redis.call('HINCRBY', global_key, 'entries', int(entries))
end

-- Removes an entry, live or expired, from the values and both expiry indexes,
-- and books its bytes out of the counters. Returns the bytes freed.
local function remove_entry(entry_ns, entry_key)
  local values = prefix .. 'v:' .. entry_ns
  local size = redis.call('HSTRLEN', values, entry_key)
  local removed = redis.call('HDEL', values, entry_key)
  redis.call('ZREM', prefix .. 'x:' .. entry_ns, entry_key)
  redis.call('ZREM', global_expiry_key, member(entry_ns, entry_key))
  if removed == 0 then
    return 0
  end
  add_usage(entry_ns, -size, -1)
  return size
end

local function in_this_namespace(entry_key)
  return ns, entry_key
end

-- Removes up to `count` expired entries listed in an expiry index (the
-- namespace's, whose members are keys, or the global one, whose members
-- split_member reads), soonest expired first. Returns the bytes freed and
-- the number of entries removed.
local function remove_expired(index, entry_of, now, count)
  local freed = 0
  local expired = redis.call('ZRANGEBYSCORE', index, '-inf', int(now), 'LIMIT', 0, count)
  for _, m in ipairs(expired) do
    freed = freed + remove_entry(entry_of(m))
  end
  return freed, #expired
end

-- Removes expired entries listed in an index until `needed` bytes are freed
-- or none is left. Returns the bytes freed.
local function reclaim(index, entry_of, now, needed)
  local freed = 0
  while freed < needed do
    local bytes, count = remove_expired(index, entry_of, now, 64)
    if count == 0 then
      break
    end
    freed = freed + bytes
  end
  return freed
end

-- Removes a few expired entries of any namespace, whether or not space is needed.
local function sweep(now)
  remove_expired(global_expiry_key, split_member, now, SWEEP)
end

-- Admits a change of `delta` bytes by a write of a `size`-byte value,
-- reclaiming expired entries first when it would not fit, so that expired
-- entries never cause a rejection. Returns nil when it fits, else the
-- rejection: status, bytes used, quota, size.
local function reserve(now, delta, size)
  if delta <= 0 then
    return nil
  end
  local used = tonumber(redis.call('HGET', usage_key, 'bytes') or '0')
  if used + delta > namespace_quota then
    used = used - reclaim(expiry_key, in_this_namespace, now, used + delta - namespace_quota)
    if used + delta > namespace_quota then
      return { 'namespace_quota', used, namespace_quota, size }
    end
  end
  if global_quota then
    local global_used = tonumber(redis.call('HGET', global_key, 'bytes') or '0')
    if global_used + delta > global_quota then
      global_used = global_used - reclaim(global_expiry_key, split_member, now, global_used + delta - global_quota)
      if global_used + delta > global_quota then
        return { 'global_quota', global_used, global_quota, size }
      end
    end
  end
  return nil
end

-- Removes the entry being written when it has expired, so that it counts as
-- missing. Returns the live entry's expiry, or nil.
local function drop_if_expired(now)
  local expiry = redis.call('ZSCORE', expiry_key, key)
  if not expiry then
    return nil
  end
  expiry = tonumber(expiry)
  if expiry <= now then
    remove_entry(ns, key)
    return nil
  end
  return expiry
end

-- Indexes the entry's new expiry, or takes it out of the indexes when it had
-- one and now has none.
local function set_expiry(expiry, had_expiry)
  if expiry == had_expiry then
    return
  elseif expiry then
    redis.call('ZADD', expiry_key, int(expiry), key)
    redis.call('ZADD', global_expiry_key, int(expiry), member(ns, key))
  elseif had_expiry then
    redis.call('ZREM', expiry_key, key)
    redis.call('ZREM', global_expiry_key, member(ns, key))
  end
end

-- Writes `value` over the entry being written (`old_size`: the bytes of the
-- live entry it replaces, nil when there is none) with the given expiry, when
-- the quotas admit it. Returns nil, or the rejection from reserve.
local function store(now, value, old_size, expiry, old_expiry)
  local delta = #value - (old_size or 0)
  local rejected = reserve(now, delta, #value)
  if rejected then
    return rejected
  end
  redis.call('HSET', values_key, key, value)
  add_usage(ns, delta, old_size and 0 or 1)
  set_expiry(expiry, old_expiry)
  return nil
end

-- The answer recorded for this request identity, as { 'replayed', a, b };
-- { 'identity_reused' } when the identity was recorded for a different request
-- (operation, key or request hash); nil when there is none (or the request
-- has no identity).
local function recorded(operation)
  if not request_key then
    return nil
  end
  local record = redis.call('HMGET', request_key, 'op', 'key', 'hash', 'a', 'b')
  if not record[1] then
    return nil
  end
  if record[1] ~= operation or record[2] ~= key or record[3] ~= request_hash then
    return { 'identity_reused' }
  end
  return { 'replayed', record[4], record[5] }
end

-- Records an applied mutation's answer under its request identity, with what
-- the identity identified, in the same script as the mutation.
local function record(operation, a, b)
  if not request_key then
    return
  end
  redis.call('HSET', request_key, 'op', operation, 'key', key, 'hash', request_hash, 'a', a, 'b', b)
  redis.call('PEXPIRE', request_key, retention_ms)
end

