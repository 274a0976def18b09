--[[
  read: profiles or graphs by profile id, for the lookup API and the publisher.

  KEYS: none (see includes/graph.lua)
  ARGV[1]: msgpack config
  ARGV[2]: msgpack {profile ids, with_fragments (boolean)}
  Returns: msgpack list, one per id: false when the profile does not exist, else
           {version, updated_at_ms, members, links, fragments} with members and links
           as stored (includes/graph.lua) and, with_fragments, one {key, attributes
           (flat field/value), recent (flat summary/ts, newest first, recent_limit),
           counts (flat field/value)} per member.
  Effects: none.
]]

local request, out = cmsgpack.unpack(ARGV[2]), {}
for i, pid in ipairs(request[1]) do
  local blob = redis.call('GET', 'cdp:g:' .. pid)
  out[i] = false
  if blob then
    local raw, fragments = cmsgpack.unpack(blob), {}
    if request[2] then
      for j = 1, #raw[3], 3 do
        local k = raw[3][j]
        fragments[#fragments + 1] = {
          k,
          redis.call('HGETALL', 'cdp:a:' .. k),
          redis.call('ZREVRANGE', 'cdp:r:' .. k, 0, CFG.recent_limit - 1, 'WITHSCORES'),
          redis.call('HGETALL', 'cdp:n:' .. k),
        }
      end
    end
    out[i] = {raw[1], raw[2], raw[3], raw[4], fragments}
  end
end
return cmsgpack.pack(out)
