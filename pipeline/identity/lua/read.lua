--[[
  read: profiles or graphs by profile id, for the lookup API and the publisher.

  KEYS[1]: the keyspace tag `{cdp}` (includes/keyspace.lua); every key it touches is in its slot
  ARGV[1]: msgpack {recent_limit}: the one setting it uses (decoding the whole configuration,
           as scripts that name identities' rules do, was a sixth of a lookup's Redis CPU)
  ARGV[2]: msgpack {ids, with_fragments (boolean), by_identity (boolean), kept (optional)}:
           profile ids, or with by_identity identity keys (the profile holding each is
           read: the lookup API's one round trip); kept maps identity keys whose fragment
           the caller holds to {count, min}: its '#n' as read ('' for none) and the
           ZRANGEBYSCORE min just above its newest timeline entry ('(<score>' or '-inf')
  Returns: msgpack list, one per id: false when the profile does not exist, else
           {version, updated_at_ms, members, links, fragments, profile id, evidence}
           with members as stored (includes/blob.lua); without fragments, links and the
           list of their evidence as stored (an earlier version's blob in this
           version's form), and empty with them (a profile document does not show
           links); with_fragments, one
           {key, fields (the fragment hash, flat field/value: attributes and '#' counts,
           includes/base.lua), recent (flat summary/ts, newest first, recent_limit)} per
           member. A kept member's fragment is {key} alone while its '#n' is the kept
           count (each counted event changes it: equal counts, equal fragments), and
           {key, fields, newer, true} when its timeline only gained entries above min, one
           per event counted since (newer: those, as recent; the caller adds its own).
  Effects: none.
]]
--@include index
--@include blob

local CFG = cmsgpack.unpack(ARGV[1])
local request, out = cmsgpack.unpack(ARGV[2]), {}
local kept = request[4] or {}

local function fragment(k, held)
  local hash = P .. 'a:' .. k
  if held then
    -- One field, not the hash (HGET ~1 us here, HGETALL of four fields ~6).
    local count = redis.call('HGET', hash, '#n') or ''
    if count == held[1] then return {k} end
    if held[1] ~= '' then
      local newer = redis.call('ZREVRANGEBYSCORE', P .. 'r:' .. k, '+inf', held[2],
        'WITHSCORES', 'LIMIT', 0, CFG.recent_limit)
      -- Each counted event added one entry: as many above min as events since, none lost.
      if #newer == 2 * ((tonumber(count) or 0) - tonumber(held[1])) then
        return {k, redis.call('HGETALL', hash), newer, true}
      end
    end
  end
  return {
    k,
    redis.call('HGETALL', hash),  -- split by the caller: less Lua per field
    -- Scores come back as text: ~19 us for ten entries here, the read's largest part.
    redis.call('ZREVRANGE', P .. 'r:' .. k, 0, CFG.recent_limit - 1, 'WITHSCORES'),
  }
end

for i, id in ipairs(request[1]) do
  local pid = id
  if request[3] then pid = pid_of(id) end
  local blob = pid and redis.call('GET', P .. 'g:' .. pid)
  out[i] = false
  if blob then
    local raw, fragments = cmsgpack.unpack(blob), {}
    if request[2] then
      for j = 1, #raw[3], 3 do
        fragments[#fragments + 1] = fragment(raw[3][j], kept[raw[3][j]])
      end
      out[i] = {raw[1], raw[2], raw[3], {}, fragments, pid, {}}
    else
      local evidence = {}  -- a loop, not unpack: a large graph has more than Lua's C stack
      for j = 5, #current_form(raw) do evidence[j - 4] = raw[j] end
      out[i] = {raw[1], raw[2], raw[3], raw[4], fragments, pid, evidence}
    end
  end
end
return cmsgpack.pack(out)
