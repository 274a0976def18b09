--[[
  release: lift the circuit breaker's quarantine of one identity; it links again from
  its next event on (its graph is left as it is).

  KEYS[1]: the keyspace tag `{cdp}` (includes/keyspace.lua); every key it touches is in its slot
  ARGV[1]: msgpack config (unused)
  ARGV[2]: msgpack {identity key, request_id}
  Returns: msgpack {released (boolean), changes}
  Effects: removes the identity from {cdp}:q and its reassignment history from {cdp}:mv.
]]
--@include results

local key, request_id = unpack(cmsgpack.unpack(ARGV[2]))
local released = redis.call('HDEL', P .. 'q', key) == 1
if released then
  redis.call('HDEL', P .. 'mv', key)
  finish({change('identity_released', key, {identity = key})},
    {request_id = request_id}, 'circuit breaker')
end
return cmsgpack.pack({released, RES.changes})
