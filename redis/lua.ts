/**
 * The Lua scripts. Each runs atomically on one Cluster slot (its keys share a hash tag, see
 * keys.ts). Numbers that may exceed what `tostring` prints exactly (epoch µs) are formatted with
 * %.0f. Rate limits and permits run on Redis TIME, the fleet's one clock (a pod's clock may be
 * off by seconds, which would move its windows and expire others' permits); their scripts take a
 * number in place of it only so the contract tests can run both limiters on one fake clock.
 */

// Version stamp for a health change: Redis time in µs, strictly increasing per key. Pods apply an
// event or a refresh only when it is newer than what they hold, so the two paths cannot race.
const VERSION = `
local t = redis.call('TIME')
local v = math.max((tonumber(h[4]) or 0) + 1, tonumber(t[1]) * 1000000 + tonumber(t[2]))
`;

const PUBLISH_HEALTH = `
redis.call('PUBLISH', ARGV[#ARGV], 'h|' .. ARGV[#ARGV - 1] .. '|' .. string.format('%.0f|%.0f|%.0f|%.0f|%.0f|%.0f', f, u, s, v, b, r))
`;

/**
 * core/cooldown.ts afterFailure, atomically.
 * KEYS[1] health. ARGV: now, threshold, durationMs, maxDurationMs, retryAfterMs (-1: none), ttlMs,
 * channelId, events channel. Returns {f, u, s, v, changed, b, r}.
 */
export const HEALTH_FAILURE = `
local h = redis.call('HMGET', KEYS[1], 'f', 'u', 's', 'v', 'b', 'r')
local f, u, s = tonumber(h[1]) or 0, tonumber(h[2]) or 0, tonumber(h[3]) or 0
local b, r = tonumber(h[5]) or 0, tonumber(h[6]) or 0
local now = tonumber(ARGV[1])
if u > now then return {f, u, s, tonumber(h[4]) or 0, 0, b, r} end
local threshold, dur, maxd, ra = tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5])
local rest = 0
if ra > 0 then rest = math.min(ra, maxd) end
r = 0
if rest > 0 then r = now + rest end
f = f + 1
if f >= threshold or s > 0 then
  local d = math.min(dur * 2 ^ math.min(s, 30), maxd)
  d = math.max(d, rest)
  u = now + d
  s = s + 1
  b = now
elseif rest > 0 then
  u = r
  b = now
else
  u = 0
  b = 0
end
${VERSION}
redis.call('HSET', KEYS[1], 'f', f, 'u', string.format('%.0f', u), 's', s, 'v', string.format('%.0f', v), 'b', string.format('%.0f', b), 'r', string.format('%.0f', r))
redis.call('PEXPIRE', KEYS[1], ARGV[6])
${PUBLISH_HEALTH}
return {f, u, s, v, 1, b, r}
`;

/**
 * core/cooldown.ts afterSuccess: back to healthy, except a cooldown that began after the request
 * was sent, and an upstream's Retry-After rest, which stay. Only writes and publishes when it
 * changes something.
 * KEYS[1] health. ARGV: ttlMs, now, sentAt, channelId, events channel. Returns 1 when it changed anything.
 */
export const HEALTH_SUCCESS = `
local h = redis.call('HMGET', KEYS[1], 'f', 'u', 's', 'v', 'b', 'r')
local f0, u0, s0 = tonumber(h[1]) or 0, tonumber(h[2]) or 0, tonumber(h[3]) or 0
local b0, r0 = tonumber(h[5]) or 0, tonumber(h[6]) or 0
local now, sent = tonumber(ARGV[2]), tonumber(ARGV[3])
if u0 > now and b0 > sent then return 0 end
local f, u, s, b, r = 0, 0, 0, 0, 0
if u0 > now and r0 > now then u, b, r = r0, b0, r0 end
if f0 == f and u0 == u and s0 == s then return 0 end
${VERSION}
redis.call('HSET', KEYS[1], 'f', 0, 'u', string.format('%.0f', u), 's', 0, 'v', string.format('%.0f', v), 'b', string.format('%.0f', b), 'r', string.format('%.0f', r))
redis.call('PEXPIRE', KEYS[1], ARGV[1])
${PUBLISH_HEALTH}
return 1
`;

// Epoch ms on Redis TIME, unless ARGV[1] holds a number (a test clock).
const CLOCK = `
local now = tonumber(ARGV[1])
if not now then
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
`;

/**
 * Permits (core/permits.ts in process), for channels and policy `concurrent` limits alike: a sorted
 * set of holders scored with their expiry on Redis TIME; an expired one no longer counts.
 */
const PERMITS = `
local function permitsHeld(key, now)
  redis.call('ZREMRANGEBYSCORE', key, '-inf', now)
  return redis.call('ZCARD', key)
end
local function permitPut(key, now, lifetimeMs, id, keyTtlMs)
  redis.call('ZADD', key, now + lifetimeMs, id)
  redis.call('PEXPIRE', key, keyTtlMs)
end
local function permitDrop(key, id) return redis.call('ZREM', key, id) end
local function permitFirstExpiry(key) return tonumber(redis.call('ZRANGE', key, 0, 0, 'WITHSCORES')[2]) end
`;

/**
 * Take a permit if fewer than max are held (expired ones do not count). A permit is a member
 * scored with its expiry.
 * KEYS[1] leases. ARGV: now ('' for Redis TIME), max, lifetimeMs, leaseId, keyTtlMs. Returns 1 or 0.
 */
export const LEASE_ACQUIRE = `
${CLOCK}
${PERMITS}
if permitsHeld(KEYS[1], now) >= tonumber(ARGV[2]) then return 0 end
permitPut(KEYS[1], now, tonumber(ARGV[3]), ARGV[4], ARGV[5])
return 1
`;

/**
 * Renew permits this pod holds, re-creating any that are gone: they belong to requests still
 * running upstream (after an outage longer than the TTL, or a restart without persistence, Redis
 * would otherwise let others take their place).
 * KEYS[1] leases. ARGV: now ('' for Redis TIME), keyTtlMs, then per permit: lifetimeMs, leaseId.
 */
export const LEASE_RENEW = `
${CLOCK}
${PERMITS}
for i = 3, #ARGV, 2 do
  permitPut(KEYS[1], now, tonumber(ARGV[i]), ARGV[i + 1], ARGV[2])
end
return 1
`;

/**
 * Return a permit; wake waiters on every pod when the channel was full (only then can anyone wait).
 * KEYS[1] leases. ARGV: now ('' for Redis TIME), max, leaseId, channelId, events channel. Returns 1
 * when it was held.
 */
export const LEASE_RELEASE = `
${CLOCK}
${PERMITS}
local held = permitsHeld(KEYS[1], now)
if permitDrop(KEYS[1], ARGV[3]) == 0 then return 0 end
if held >= tonumber(ARGV[2]) then redis.call('PUBLISH', ARGV[5], 'r|' .. ARGV[4]) end
return 1
`;

/**
 * Usage counters for one scope and id: the day and the month hash.
 * KEYS: day, month. ARGV: cost, promptTokens, completionTokens, dayTtlMs, monthTtlMs.
 */
export const SPEND = `
for i = 1, 2 do
  if tonumber(ARGV[1]) ~= 0 then redis.call('HINCRBYFLOAT', KEYS[i], 'c', ARGV[1]) end
  redis.call('HINCRBY', KEYS[i], 'r', 1)
  redis.call('HINCRBY', KEYS[i], 'p', ARGV[2])
  redis.call('HINCRBY', KEYS[i], 'o', ARGV[3])
  redis.call('PEXPIRE', KEYS[i], ARGV[3 + i])
end
return 1
`;

// Helpers shared by the limit scripts (core/ratelimit/limiter.ts windowShape, oldestSlot,
// slotExpires). The clock is Redis TIME, the one clock of the fleet (pods' clocks drift); a
// number in ARGV[1] replaces it for the contract tests.
const WINDOW = `
local function clock()
  local now = tonumber(ARGV[1])
  if now then return now end
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local function shape(algo, per)
  if algo == 'sliding-window' then return math.max(1, math.ceil(per / SLOTS)), per end
  return per, 0
end
local function oldestSlot(slot, lag, now) return math.floor((now - lag) / slot) end
local function expires(slot, lag, s) return (s + 1) * slot + lag end
local function level(key, amount, per, now)
  local st = redis.call('HMGET', key, 't', 'ts')
  local tokens, ts = tonumber(st[1]), tonumber(st[2])
  if tokens == nil then return amount end
  return math.min(amount, tokens + math.max(0, now - ts) * amount / per)
end
local function setLevel(key, tokens, amount, per, now)
  redis.call('HSET', key, 't', string.format('%.17g', tokens), 'ts', string.format('%.0f', now))
  redis.call('PEXPIRE', key, math.max(1, math.ceil((amount - tokens) * per / amount)) + 1000)
end
`;

/**
 * Decide every check of a request at once (see core/ratelimit/limiter.ts for the rules); take them
 * all only if every enforcing one admits.
 * KEYS: one bucket per check. ARGV: now ('' for Redis TIME), ticket, permitTtlMs, slots, then per
 * check: kind, algorithm, amount, perMs, reserve, shadow (1/0).
 * Returns {allowed, now, then per check: admitted, remaining (string), resetMs}.
 */
export const LIMIT_CHECK = `
local ticket, permitTtl = ARGV[2], tonumber(ARGV[3])
local SLOTS = tonumber(ARGV[4])
${WINDOW}
${PERMITS}
local now = clock()
local out = {1, now}
local take = {}
for i = 1, #KEYS do
  local a = 4 + (i - 1) * 6
  local kind, algo = ARGV[a + 1], ARGV[a + 2]
  local amount, per, reserve = tonumber(ARGV[a + 3]), tonumber(ARGV[a + 4]), tonumber(ARGV[a + 5])
  local key = KEYS[i]
  local ok, remaining, reset
  if kind == 'concurrent' then
    local used = permitsHeld(key, now)
    ok = used + reserve <= amount
    if ok then
      remaining, reset = amount - used - reserve, 0
    else
      remaining, reset = math.max(0, amount - used), math.max(1, permitFirstExpiry(key) - now)
    end
  elseif algo == 'token-bucket' then
    local tokens = level(key, amount, per, now)
    ok = tokens > 0 and tokens >= reserve
    if ok then
      remaining = tokens - reserve
      reset = math.ceil((amount - remaining) * per / amount)
      take[i] = remaining
    else
      remaining = math.max(0, tokens)
      if reserve > 0 then
        reset = math.ceil((reserve - tokens) * per / amount)
      else
        reset = math.ceil(-tokens * per / amount) + 1
      end
    end
  else
    local slot, lag = shape(algo, per)
    local cur = math.floor(now / slot)
    local oldest = oldestSlot(slot, lag, now)
    local flat = redis.call('HGETALL', key)
    local live, stale, used = {}, {}, 0
    for j = 1, #flat, 2 do
      local idx = tonumber(flat[j])
      if idx < oldest then
        stale[#stale + 1] = flat[j]
      else
        local v = tonumber(flat[j + 1])
        used = used + v
        live[#live + 1] = {idx, v}
      end
    end
    if #stale > 0 then redis.call('HDEL', key, unpack(stale)) end
    ok = used < amount and used + reserve <= amount
    if ok then
      remaining, reset = amount - used - reserve, expires(slot, lag, cur) - now
      if reserve > 0 then take[i] = cur end
    else
      remaining, reset = math.max(0, amount - used), expires(slot, lag, cur) - now
      table.sort(live, function(x, y) return x[1] < y[1] end)
      local left = used
      for _, e in ipairs(live) do
        left = left - e[2]
        if left < amount and left + reserve <= amount then
          reset = expires(slot, lag, e[1]) - now
          break
        end
      end
    end
  end
  if not ok and ARGV[a + 6] ~= '1' then out[1] = 0 end
  out[#out + 1] = ok and 1 or 0
  out[#out + 1] = string.format('%.17g', remaining)
  out[#out + 1] = reset
  if ok and kind == 'concurrent' then take[i] = true end
end
if out[1] == 1 then
  for i = 1, #KEYS do
    local a = 4 + (i - 1) * 6
    local t = take[i]
    if t ~= nil then
      local kind, algo = ARGV[a + 1], ARGV[a + 2]
      local amount, per, reserve = tonumber(ARGV[a + 3]), tonumber(ARGV[a + 4]), tonumber(ARGV[a + 5])
      if kind == 'concurrent' then
        permitPut(KEYS[i], now, permitTtl, ticket, permitTtl * 2)
      elseif algo == 'token-bucket' then
        setLevel(KEYS[i], t, amount, per, now)
      else
        local slot, lag = shape(algo, per)
        redis.call('HINCRBYFLOAT', KEYS[i], string.format('%.0f', t), reserve)
        redis.call('PEXPIRE', KEYS[i], expires(slot, lag, t) - now + 1000)
      end
    end
  end
end
return out
`;

/**
 * Charge real usage and release permits after a request.
 * KEYS: one bucket per item. ARGV: now ('' for Redis TIME), ticket, reservedAt (the check's now),
 * slots, then per item: kind, algorithm, amount, perMs, delta.
 */
export const LIMIT_SETTLE = `
local ticket, at = ARGV[2], tonumber(ARGV[3])
local SLOTS = tonumber(ARGV[4])
${WINDOW}
${PERMITS}
local now = clock()
for i = 1, #KEYS do
  local a = 4 + (i - 1) * 5
  local kind, algo = ARGV[a + 1], ARGV[a + 2]
  local amount, per, delta = tonumber(ARGV[a + 3]), tonumber(ARGV[a + 4]), tonumber(ARGV[a + 5])
  local key = KEYS[i]
  if kind == 'concurrent' then
    permitDrop(key, ticket)
  elseif algo == 'token-bucket' then
    setLevel(key, math.min(amount, level(key, amount, per, now) - delta), amount, per, now)
  elseif delta > 0 then
    local slot, lag = shape(algo, per)
    local cur = math.floor(now / slot)
    redis.call('HINCRBYFLOAT', key, string.format('%.0f', cur), delta)
    redis.call('PEXPIRE', key, expires(slot, lag, cur) - now + 1000)
  elseif delta < 0 then
    local slot, lag = shape(algo, per)
    local idx = math.floor(at / slot)
    if idx >= oldestSlot(slot, lag, now) then
      local field = string.format('%.0f', idx)
      local v = tonumber(redis.call('HGET', key, field))
      if v then redis.call('HSET', key, field, string.format('%.17g', math.max(0, v + delta))) end
    end
  end
end
return 1
`;

export const SCRIPTS = {
  krHealthFailure: HEALTH_FAILURE,
  krHealthSuccess: HEALTH_SUCCESS,
  krLeaseAcquire: LEASE_ACQUIRE,
  krLeaseRenew: LEASE_RENEW,
  krLeaseRelease: LEASE_RELEASE,
  krSpend: SPEND,
  krLimitCheck: LIMIT_CHECK,
  krLimitSettle: LIMIT_SETTLE,
} as const;
