-- CL.THROTTLE (redis-cell's GCRA rate limiter) as a Redis script: the usual
-- way to rate-limit with plain Redis, and the baseline Sluice's CL.THROTTLE
-- is measured against.
--
--   EVALSHA <sha1> 1 <key> <max_burst> <count> <period> [<quantity>] [<now_us>]
--
-- It replies [limited, limit, remaining, retry_after_s, reset_after_s] with
-- the arithmetic, rounding and errors of limiter.Throttle (the Go package
-- this file lives in), which matches redis-cell. The key holds the bucket's
-- theoretical arrival time as decimal Unix nanoseconds, the value redis-cell
-- stores; it is written only when tokens are taken, with an expiry at the
-- instant the bucket is full again, so idle buckets cost no memory.
--
-- now is the server's TIME (microsecond resolution). A fifth argument, for
-- tests, replaces it with a Unix time in microseconds.
--
-- Lua numbers are doubles, exact below 2^53, so integer arguments must be
-- below 2^53 in size and period/count*(max_burst+1) under 2^53 ns (104
-- days); larger ones are refused. Absolute times are kept as whole seconds
-- plus nanoseconds, and only durations are computed in nanoseconds, so every
-- step is exact.

local PREFIX = 'Cell error: Store error: '
local EXACT = 9007199254740992 -- 2^53

local function int(s)
  if not string.find(s, '^[+-]?%d+$') then
    return nil
  end
  local n = tonumber(s)
  if n >= EXACT or n <= -EXACT then
    return nil
  end
  return n
end

-- seconds rounds a duration in ns as redis-cell does: up only when its
-- millisecond part is non-zero.
local function seconds(ns)
  local s = math.floor(ns / 1e9)
  if math.floor((ns % 1e9) / 1e6) > 0 then
    s = s + 1
  end
  return s
end

local argc = #ARGV
if argc < 3 or argc > 5 then
  return redis.error_reply(PREFIX .. 'Usage: cl.throttle <key> <max_burst> <count per period> <period> [<quantity>]')
end
local arg = {}
for i = 1, argc do
  arg[i] = int(ARGV[i])
  if arg[i] == nil then
    return redis.error_reply(PREFIX .. "Couldn't parse as integer: " .. ARGV[i])
  end
end
local max_burst, count, period, quantity = arg[1], arg[2], arg[3], arg[4] or 1

if count == 0 or period == 0 then
  return redis.error_reply(PREFIX .. 'Zero rates are not supported')
end
local q = period * 1e9 / count
local interval = q >= 0 and math.floor(q) or math.ceil(q) -- truncated, as Rust's `as i64`
if interval == 0 then
  return redis.error_reply(PREFIX .. 'Zero rates are not supported')
end
if count < 0 or period < 0 then
  return redis.error_reply(PREFIX .. 'Negative rates are not supported')
end
local too_large = PREFIX .. 'Rate limit is too large: period/count*(max_burst+1) exceeds 292 years'
if period > 9223372036 then
  return redis.error_reply(too_large)
end
if max_burst < 0 then
  return redis.error_reply(PREFIX .. 'Negative max_burst is not supported')
end
if quantity < 0 then
  return redis.error_reply(PREFIX .. 'Negative quantity is not supported')
end
local limit = max_burst + 1
local tolerance = interval * limit
if tolerance >= EXACT then
  return redis.error_reply(too_large)
end

local now_s, now_ns
if arg[5] then
  now_s = math.floor(arg[5] / 1e6)
  now_ns = (arg[5] - now_s * 1e6) * 1000
else
  local t = redis.call('TIME')
  now_s = tonumber(t[1])
  now_ns = tonumber(t[2]) * 1000
end

-- ahead: how far the stored TAT runs ahead of now; 0 for a full bucket.
local ahead = 0
local stored = redis.call('GET', KEYS[1])
if stored then
  if not string.find(stored, '^%d+$') then
    return redis.error_reply('ERR corrupt rate-limit record')
  end
  local tat_s = 0
  if #stored > 9 then
    tat_s = tonumber(string.sub(stored, 1, -10))
  end
  ahead = (tat_s - now_s) * 1e9 + (tonumber(string.sub(stored, -9)) - now_ns)
  if ahead < 0 then
    ahead = 0
  end
end

local limited, retry, reset = 0, -1, ahead
if quantity > limit then
  limited = 1
else
  local increment = quantity * interval
  if ahead > tolerance - increment then
    limited = 1
    retry = seconds(ahead - (tolerance - increment))
  elseif quantity > 0 then
    reset = ahead + increment
    local tat = now_ns + reset
    local tat_s = now_s + math.floor(tat / 1e9)
    redis.call('SET', KEYS[1], string.format('%d%09d', tat_s, tat % 1e9), 'PX', math.ceil(reset / 1e6))
  end
end

-- remaining divides whole microseconds, as redis-cell does, but never
-- reports more than the limit.
local remaining = 0
local room = tolerance - reset
if room > 0 then
  local interval_us = math.floor(interval / 1e3)
  if interval_us > 0 then
    remaining = math.floor(math.floor(room / 1e3) / interval_us)
  else
    remaining = math.floor(room / interval)
  end
  remaining = math.min(remaining, limit)
end

return {limited, limit, remaining, retry, seconds(reset)}
