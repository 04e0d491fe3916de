-- Ends a claim (claim.lua). ARGV 2: the claim's token, 3: '1' when the broker
-- confirmed its events, which then leave the outbox, '0' when publishing
-- failed, which leaves them for the next claim; with '1', ARGV 4 onwards: the
-- claimed events of kinds the replica does not know, put back at the head of
-- the outbox in their order for a replica that does. Answers 1 when more
-- events wait, else 0; nothing changes when the claim lapsed and another
-- replica took the events over (it publishes them again).
if redis.call('HGET', meta_key, 'claim') ~= ARGV[2] then
  return 0
end
if ARGV[3] == '1' then
  redis.call('DEL', claimed_key)
  for i = #ARGV, 4, -1 do
    redis.call('LPUSH', events_key, ARGV[i])
  end
end
redis.call('HDEL', meta_key, 'claim', 'claim_until')
reschedule()
return redis.call('EXISTS', events_key)
