-- kv_increment, exact on decimal strings of any length up to max_digits.
-- ARGV 9: delta, 10: initial value (decimal integers), 11: TTL in microseconds
-- or '' (keep the entry's TTL), 12: max_digits.
-- Answers { 'ok' | 'replayed', net, queued, version, value, remaining TTL in
-- microseconds or '' }, or a rejection: not_integer, too_large, or a quota's.
local delta_text, initial_text, ttl_us, max_digits = ARGV[9], ARGV[10], ARGV[11], tonumber(ARGV[12])

-- A JSON integer: no fraction, no exponent, no leading zeros.
local function is_integer(text)
  return string.match(text, '^%-?0$') ~= nil or string.match(text, '^%-?[1-9]%d*$') ~= nil
end

-- Sign and digits without leading zeros ('0' for zero, which is never negative).
local function parse(text)
  local negative = string.sub(text, 1, 1) == '-'
  local digits = string.match(negative and string.sub(text, 2) or text, '^0*(%d*)$')
  if digits == '' then
    return false, '0'
  end
  return negative, digits
end

local function compare(a, b)
  if #a ~= #b then
    return #a < #b and -1 or 1
  end
  if a == b then
    return 0
  end
  return a < b and -1 or 1
end

-- Digit lists are least significant first; this turns one into text.
local function text_of(reversed)
  local n = #reversed
  while n > 1 and reversed[n] == 0 do
    reversed[n] = nil
    n = n - 1
  end
  local out = {}
  for i = n, 1, -1 do
    out[#out + 1] = reversed[i]
  end
  return table.concat(out)
end

local function add_digits(a, b)
  local out, carry, i, j = {}, 0, #a, #b
  while i > 0 or j > 0 or carry > 0 do
    local sum = carry
    if i > 0 then
      sum = sum + string.byte(a, i) - 48
      i = i - 1
    end
    if j > 0 then
      sum = sum + string.byte(b, j) - 48
      j = j - 1
    end
    out[#out + 1] = sum % 10
    carry = sum >= 10 and 1 or 0
  end
  return text_of(out)
end

-- a - b for a >= b.
local function subtract_digits(a, b)
  local out, borrow, i, j = {}, 0, #a, #b
  while i > 0 do
    local d = string.byte(a, i) - 48 - borrow
    if j > 0 then
      d = d - (string.byte(b, j) - 48)
      j = j - 1
    end
    if d < 0 then
      d = d + 10
      borrow = 1
    else
      borrow = 0
    end
    out[#out + 1] = d
    i = i - 1
  end
  return text_of(out)
end

local function add(x, y)
  local x_negative, x_digits = parse(x)
  local y_negative, y_digits = parse(y)
  local negative, digits
  if x_negative == y_negative then
    negative, digits = x_negative, add_digits(x_digits, y_digits)
  else
    local order = compare(x_digits, y_digits)
    if order == 0 then
      return '0'
    elseif order > 0 then
      negative, digits = x_negative, subtract_digits(x_digits, y_digits)
    else
      negative, digits = y_negative, subtract_digits(y_digits, x_digits)
    end
  end
  return (negative and '-' or '') .. digits
end

local now = now_us()
local done = recorded('increment')
if done then
  return done
end
local old_size, expiry, live = entry(now)

local new
if live then
  local old = redis.call('HGET', values_key, key)
  if #old > max_digits + 1 or not is_integer(old) then
    return reply('not_integer')
  end
  new = add(old, delta_text)
else
  new = add(initial_text, delta_text)
  expiry = nil
end
if ttl_us ~= '' then
  expiry = now + tonumber(ttl_us)
end
if #new - (string.sub(new, 1, 1) == '-' and 1 or 0) > max_digits then
  return reply('too_large')
end

local version, rejected = store(now, new, old_size, expiry)
reschedule()
if rejected then
  return rejected
end
local remaining = expiry and int(expiry - now) or ''
record('increment', version, new, remaining)
return reply('ok', version, new, remaining)
