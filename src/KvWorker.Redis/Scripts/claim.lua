-- Claims the namespace's outbox for publishing. ARGV 2: the claim's token,
-- 3: its lease in microseconds, 4: most events to claim.
-- Answers { event... }: the events of an earlier claim that was given up or
-- has lapsed (their publisher failed, stopped or is too slow: they go out
-- again), else up to ARGV 4 waiting ones; {} when none wait or another
-- claim is live. One claim at a time per namespace, so no two replicas
-- publish the same events.
local token, lease_us, most = ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4])

local now = now_us()
local claim_until = redis.call('HGET', meta_key, 'claim_until')
if claim_until and tonumber(claim_until) > now then
  return {}
end
if redis.call('EXISTS', claimed_key) == 0 then
  local waiting = redis.call('LRANGE', events_key, 0, most - 1)
  if #waiting == 0 then
    return {}
  end
  redis.call('LTRIM', events_key, #waiting, -1)
  redis.call('RPUSH', claimed_key, unpack(waiting))
end
redis.call('HSET', meta_key, 'claim', token, 'claim_until', int(now + lease_us))
return redis.call('LRANGE', claimed_key, 0, -1)
