-- Shared by the mutation scripts (set, increment, delete, touch), which the
-- adapter appends to namespace.lua and this text.
--
-- KEYS: 1-8 as namespace.lua, [9 the request identity's record: op, key, hash,
--       version, a, b; expires after the retention]
-- ARGV: 1 namespace, 2 key, 3 namespace quota, 4 bytes granted on the global
--       counter, or '' without a global quota, 5 quota thresholds (fractions,
--       space-separated), 6 request retention in ms, 7 request hash or '',
--       8 if_version or '', 9... the operation's own arguments.
--
-- Every reply starts { status, net bytes, events queued }: see reply().

local key = ARGV[2]
local namespace_quota = tonumber(ARGV[3])
local global_grant = tonumber(ARGV[4])
local thresholds = ARGV[5]
local retention_ms = ARGV[6]
local request_hash = ARGV[7]
local if_version = ARGV[8]
local request_key = KEYS[9]

-- A verdict: the status, what the script changed (namespace.lua), then the
-- status's own fields. Applied and replayed mutations answer
-- { status, net, queued, version, a, b }.
local function reply(status, ...)
  return { status, int(net), queued, ... }
end

-- The answer recorded for this request identity, replayed; identity_reused
-- when it was recorded for a different request (operation, key or request
-- hash); nil when there is none (or the request has no identity).
local function recorded(operation)
  if not request_key then
    return nil
  end
  local record = redis.call('HMGET', request_key, 'op', 'key', 'hash', 'version', 'a', 'b')
  if not record[1] then
    return nil
  end
  if record[1] ~= operation or record[2] ~= key or record[3] ~= request_hash then
    return reply('identity_reused')
  end
  return reply('replayed', record[4], record[5], record[6])
end

-- Records an applied mutation's answer under its request identity, with what
-- the identity identified, in the same script as the mutation.
local function record(operation, version, a, b)
  if request_key then
    redis.call('HSET', request_key, 'op', operation, 'key', key, 'hash', request_hash, 'version', version, 'a', a, 'b', b)
    redis.call('PEXPIRE', request_key, retention_ms)
  end
end

-- The live entry's version, or nil when the key is missing or expired.
local function live_version(now)
  local expiry = redis.call('ZSCORE', expiry_key, key)
  if expiry and tonumber(expiry) <= now then
    return nil
  end
  return redis.call('HGET', versions_key, key) or nil
end

-- The rejection of an if_version the live entry does not satisfy (0: only
-- when absent), naming the live version; nil when it holds or there is none.
local function version_conflict(now)
  if if_version == '' then
    return nil
  end
  local current = live_version(now)
  if (if_version == '0' and not current) or current == if_version then
    return nil
  end
  return reply('version_conflict', current or '')
end

-- The entry being written: its size (nil when there is none), its expiry
-- (nil when it has none) and whether it is live. A write replaces an expired
-- entry as it would a live one, which is not reported as expired.
local function entry(now)
  if redis.call('HEXISTS', values_key, key) == 0 then
    return nil, nil, false
  end
  local expiry = redis.call('ZSCORE', expiry_key, key)
  expiry = expiry and tonumber(expiry)
  return redis.call('HSTRLEN', values_key, key), expiry, not expiry or expiry > now
end

-- The bytes of the expired entry the write replaces (`old_size`: the bytes of
-- the entry it replaces, if any), 0 when that entry is live or absent.
local function replaced_expired(now, old_size)
  local _, _, live = entry(now)
  return old_size and not live and old_size or 0
end

-- Most expired entries one script removes: a namespace of very many small
-- expired entries is reclaimed over several scripts (the adapter runs the
-- script again), so that no one script holds Redis long.
local reclaim_limit = 1024

-- Removes expired entries other than the one being written until `needed`
-- bytes are freed or none is left, reported as one KvEntriesExpired. False
-- when it stopped at reclaim_limit with more perhaps left.
local function reclaim(now, needed)
  local count, bytes = 0, 0
  while bytes < needed do
    if count >= reclaim_limit then
      report_expired(now, count, bytes)
      return false
    end
    local removed, freed = remove_expired(now, 64, key)
    if removed == 0 then
      break
    end
    count, bytes = count + removed, bytes + freed
  end
  report_expired(now, count, bytes)
  return true
end

-- Admits a change of `delta` bytes by a write of a `size`-byte value: the
-- namespace quota first, reclaiming expired entries when the write would not
-- fit, then the bytes granted on the global counter, which must cover
-- everything this script adds. Returns nil when it fits, else the rejection:
-- reclaim_more when the reclaim stopped at its limit (nothing else changed:
-- the script is to be run again), namespace_quota with the live bytes used,
-- the quota and the value's size, or global_needed with the bytes to ask the
-- global counter for, the value's size and the bytes of the expired entry the
-- write replaces (0 when it is live or absent: `old_size` is the bytes of the
-- entry it replaces), which are on the counter but are not live usage.
local function admit(now, delta, size, old_size)
  if delta <= 0 then
    return nil
  end
  local used = used_bytes()
  if used + delta > namespace_quota then
    -- Also for a value larger than the whole quota: the refusal reports live bytes.
    if not reclaim(now, used + delta - namespace_quota) then
      return reply('reclaim_more')
    end
    used = used_bytes()
  end
  if used + delta > namespace_quota then
    return reply('namespace_quota', int(used - replaced_expired(now, old_size)), int(namespace_quota), size)
  end
  if global_grant and net + delta > global_grant then
    return reply('global_needed', int(delta), size, int(replaced_expired(now, old_size)))
  end
  return nil
end

-- One NamespaceQuotaThresholdReached per threshold that usage reached from below.
local function report_thresholds(now, before, after)
  for threshold in string.gmatch(thresholds, '%S+') do
    local bytes = tonumber(threshold) * namespace_quota
    if before < bytes and after >= bytes then
      queue_event('threshold', threshold, int(after), int(namespace_quota), int(now))
    end
  end
end

-- Gives the key the namespace's next version. Returns it.
local function new_version()
  local version = redis.call('HINCRBY', meta_key, 'version', 1)
  redis.call('HSET', versions_key, key, version)
  return version
end

local function set_expiry(expiry)
  if expiry then
    redis.call('ZADD', expiry_key, int(expiry), key)
  else
    redis.call('ZREM', expiry_key, key)
  end
end

-- Writes `value` over the entry being written (`old_size`: the bytes of the
-- entry it replaces, live or expired, nil when there is none) with the given
-- expiry, when the quotas admit it. Returns the new version, or nil and the
-- rejection.
local function store(now, value, old_size, expiry)
  local delta = #value - (old_size or 0)
  local rejected = admit(now, delta, #value, old_size)
  if rejected then
    return nil, rejected
  end
  local before = used_bytes()
  redis.call('HSET', values_key, key, value)
  if not old_size then
    redis.call('ZADD', keys_key, 0, key)
  end
  add_usage(delta, old_size and 0 or 1)
  set_expiry(expiry)
  if delta > 0 then
    report_thresholds(now, before, before + delta)
  end
  return new_version()
end

