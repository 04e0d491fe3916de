-- Releases a message_id bound to a request that was refused (refused requests
-- are not recorded), unless another request holds it now.
-- KEYS 1: the message_id's binding; ARGV 1: the request (operation and hash).
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
