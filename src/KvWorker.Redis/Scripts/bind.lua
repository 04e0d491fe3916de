-- Binds a message_id to the request it identifies, across every namespace (a
-- namespace's own record of the request lives in its slot; this key may not).
-- KEYS 1: the message_id's binding; ARGV 1: the request (operation and hash),
-- 2: how long to keep it, in ms. Answers the request it was bound to before,
-- or nil when it is bound to this one now.
local bound = redis.call('GET', KEYS[1])
if bound then
  return bound
end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return false
