--[[
  read: profiles or graphs by profile id, for the lookup API and the publisher.

  KEYS[1]: the keyspace tag `{cdp}` (includes/keyspace.lua); every key it touches is in its slot
  ARGV[1]: msgpack config
  ARGV[2]: msgpack {ids, with_fragments (boolean), by_identity (boolean)}: profile ids,
           or with by_identity identity keys (the profile holding each is read: the
           lookup API's one round trip)
  Returns: msgpack list, one per id: false when the profile does not exist, else
           {version, updated_at_ms, members, links, fragments, profile id} with members
           as stored (includes/base.lua); links as stored without fragments, and empty
           with them (a profile document does not show links); with_fragments, one
           {key, fields (the fragment hash, flat field/value: attributes and '#' counts,
           includes/base.lua), recent (flat summary/ts, newest first, recent_limit)} per
           member.
  Effects: none.
]]
--@include config
--@include index

local request, out = cmsgpack.unpack(ARGV[2]), {}
for i, id in ipairs(request[1]) do
  local pid = id
  if request[3] then pid = pid_of(id) end
  local blob = pid and redis.call('GET', P .. 'g:' .. pid)
  out[i] = false
  if blob then
    local raw, fragments = cmsgpack.unpack(blob), {}
    if request[2] then
      for j = 1, #raw[3], 3 do
        local k = raw[3][j]
        fragments[#fragments + 1] = {
          k,
          redis.call('HGETALL', P .. 'a:' .. k),  -- split by the caller: less Lua per field
          redis.call('ZREVRANGE', P .. 'r:' .. k, 0, CFG.recent_limit - 1, 'WITHSCORES'),
        }
      end
    end
    out[i] = {raw[1], raw[2], raw[3], request[2] and {} or raw[4], fragments, pid}
  end
end
return cmsgpack.pack(out)
