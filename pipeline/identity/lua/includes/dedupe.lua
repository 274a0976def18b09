--[[
  dedupe: the event ids stitch has applied, each with the changes it produced (replayed
  on redelivery), kept for at least dedupe_ttl_s. One hash per time window instead of a
  key with a TTL per event: a key and its expiry cost a command each per event, a
  window's entries one HSET per call.

    {cdp}:d          hash, the windows: "<start ms>" -> closed at (ms), 0 while open;
                     "legacy" -> until when {cdp}:e:<eid> keys may live (upgrade)
    {cdp}:d:<start>  hash event id -> msgpack {event, at, changes} ('\x90' for none)

  A window is open for a quarter of the TTL; a closed one is dropped (UNLINK: freed off
  Redis's main thread) by the first call a TTL after it closed, so an entry lives from
  1 to 1.25 TTLs and a lookup reads at most five windows. Without stitch calls nothing
  is dropped. A version before this one kept {cdp}:e:<eid> strings with a TTL: the first
  call that finds {cdp}:calls but no {cdp}:d reads those too, for one TTL.
]]
--@include results
--@include config

local DEDUPE_WINDOWS, DEDUPE_KEY = P .. 'd', P .. 'd:'
local LEGACY = P .. 'e:'
local TTL_MS = CFG.dedupe_ttl_s * 1000
local WINDOW_MS = math.max(1000, math.floor(TTL_MS / 4))

-- The live windows' keys (the open one first), and whether legacy keys may still live.
local function dedupe_windows()
  local reg = redis.call('HGETALL', DEDUPE_WINDOWS)
  local open, keys, legacy = nil, {}, false
  if #reg == 0 and redis.call('EXISTS', P .. 'calls') == 1 then
    redis.call('HSET', DEDUPE_WINDOWS, 'legacy', NOW + TTL_MS)
    legacy = true
  end
  for i = 1, #reg, 2 do
    local field, at = reg[i], tonumber(reg[i + 1])
    if field == 'legacy' then
      legacy = at > NOW
      if not legacy then redis.call('HDEL', DEDUPE_WINDOWS, field) end
    elseif at == 0 and NOW - tonumber(field) < WINDOW_MS then
      open = field
    elseif at == 0 then
      redis.call('HSET', DEDUPE_WINDOWS, field, NOW)  -- closed now: kept a TTL more
      keys[#keys + 1] = DEDUPE_KEY .. field
    elseif at + TTL_MS <= NOW then
      redis.call('UNLINK', DEDUPE_KEY .. field)
      redis.call('HDEL', DEDUPE_WINDOWS, field)
    else
      keys[#keys + 1] = DEDUPE_KEY .. field
    end
  end
  if not open then
    open = num(NOW)
    redis.call('HSET', DEDUPE_WINDOWS, open, 0)
  end
  table.insert(keys, 1, DEDUPE_KEY .. open)
  return keys, legacy
end

local DEDUPE_OPEN, DEDUPE_PENDING = nil, {}

-- into[eid] = v for each id that call (one command per chunk of ids) finds; returns the
-- ids it did not find.
local function found(eids, into, chunk, call)
  local left = {}
  for i = 1, #eids, chunk do
    for j, v in ipairs(call(unpack(eids, i, math.min(i + chunk - 1, #eids)))) do
      local eid = eids[i + j - 1]
      if v then into[eid] = v else left[#left + 1] = eid end
    end
  end
  return left
end

-- Looks up event ids (a list without repeats) in every live window, then in the
-- legacy keys while they may live: into[eid] = the stored changes of each one found.
local function dedupe_lookup(eids, into, chunk)
  local windows, legacy = dedupe_windows()
  DEDUPE_OPEN = windows[1]
  for _, window in ipairs(windows) do
    if #eids == 0 then return end
    eids = found(eids, into, chunk, function(...) return redis.call('HMGET', window, ...) end)
  end
  if legacy and #eids > 0 then
    found(eids, into, chunk, function(...)
      local legacy_keys = {...}
      for j, eid in ipairs(legacy_keys) do legacy_keys[j] = LEGACY .. eid end
      return redis.call('MGET', unpack(legacy_keys))
    end)
  end
end

-- Remembers an applied event; written by dedupe_flush.
local function dedupe_record(eid, stored)
  DEDUPE_PENDING[#DEDUPE_PENDING + 1], DEDUPE_PENDING[#DEDUPE_PENDING + 2] = eid, stored
end

local function dedupe_flush(chunk)
  for i = 1, #DEDUPE_PENDING, chunk do
    redis.call('HSET', DEDUPE_OPEN,
      unpack(DEDUPE_PENDING, i, math.min(i + chunk - 1, #DEDUPE_PENDING)))
  end
end
