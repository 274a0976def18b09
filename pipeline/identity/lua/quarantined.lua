--[[
  quarantined: the identities the circuit breaker holds in quarantine.

  KEYS: none (see includes/graph.lua)
  ARGV[1]: msgpack config
  ARGV[2]: unused
  Returns: msgpack list of identity keys, sorted.
  Effects: none.
]]

local keys = redis.call('HKEYS', 'cdp:q')
table.sort(keys, lt)
return cmsgpack.pack(keys)
