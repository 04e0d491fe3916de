-- kv_increment, exact on decimal strings of any length up to max_digits.
-- ARGV 8: delta, 9: initial value (decimal integers), 10: TTL in microseconds
-- or '' (keep the entry's TTL), 11: max_digits.
-- Returns { 'ok' | 'replayed', value, remaining TTL in microseconds or '' },
-- { 'not_integer' }, { 'too_large' }, or a rejection from reserve.
local delta_text, initial_text, ttl_us, max_digits = ARGV[8], ARGV[9], ARGV[10], tonumber(ARGV[11])

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
local old_expiry = drop_if_expired(now)
local expiry = old_expiry

local old = redis.call('HGET', values_key, key)
local new
if old then
  if #old > max_digits + 1 or not is_integer(old) then
    return { 'not_integer' }
  end
  new = add(old, delta_text)
  if ttl_us ~= '' then
    expiry = now + tonumber(ttl_us)
  end
else
  new = add(initial_text, delta_text)
  expiry = ttl_us ~= '' and now + tonumber(ttl_us) or nil
end
if #new - (string.sub(new, 1, 1) == '-' and 1 or 0) > max_digits then
  return { 'too_large' }
end

local rejected = store(now, new, old and #old, expiry, old_expiry)
if rejected then
  return rejected
end
local remaining = expiry and int(expiry - now) or ''
record('increment', new, remaining)
sweep(now)
return { 'ok', new, remaining }
