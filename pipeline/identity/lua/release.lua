--[[
  release: lift the circuit breaker's quarantine of one identity; it links again from
  its next event on (its graph is left as it is).

  KEYS: none (see includes/base.lua)
  ARGV[1]: msgpack config
  ARGV[2]: msgpack {identity key, request_id}
  Returns: msgpack {released (boolean), changes}
  Effects: removes the identity from cdp:q and its reassignment history from cdp:mv.
]]
--@include results

local key, request_id = unpack(cmsgpack.unpack(ARGV[2]))
local released = redis.call('HDEL', 'cdp:q', key) == 1
if released then
  redis.call('HDEL', 'cdp:mv', key)
  finish({change('identity_released', key, {identity = key})},
    {request_id = request_id}, 'circuit breaker')
end
return cmsgpack.pack({released, RES.changes})
