-- kv_list, read-only: a page of live keys in byte order. ARGV 2: the lowest
-- key, as ZRANGEBYLEX takes it ('-', '[prefix' or '(cursor key'), 3: the
-- bound past the prefix ('+' or '(first text after it'), 4: the page's limit.
-- Answers { next cursor key or '', then per key: key, size, version,
-- remaining TTL in microseconds or '' }.
--
-- Expired keys are skipped, but at most limit + 100 of them per page, so a
-- page costs O(limit) however many have expired and not been purged yet:
-- past that, the page ends early and its cursor names the last key looked at.
local from, to, limit = ARGV[2], ARGV[3], tonumber(ARGV[4])
local max_skipped = limit + 100

local now = now_us()
local page = { '' }
local listed, skipped = 0, 0
while true do
  local batch = redis.call('ZRANGEBYLEX', keys_key, from, to, 'LIMIT', 0, limit + 1 - listed)
  if #batch == 0 then
    return page
  end
  for _, entry_key in ipairs(batch) do
    local expiry = redis.call('ZSCORE', expiry_key, entry_key)
    local remaining = expiry and tonumber(expiry) - now
    if remaining and remaining <= 0 then
      skipped = skipped + 1
      if skipped >= max_skipped then
        page[1] = entry_key
        return page
      end
    elseif listed == limit then
      -- A live key after a full page: more follow, from the page's last key on.
      page[1] = page[#page - 3]
      return page
    else
      listed = listed + 1
      page[#page + 1] = entry_key
      page[#page + 1] = redis.call('HSTRLEN', values_key, entry_key)
      page[#page + 1] = redis.call('HGET', versions_key, entry_key)
      page[#page + 1] = remaining and int(remaining) or ''
    end
    from = '(' .. entry_key
  end
end
