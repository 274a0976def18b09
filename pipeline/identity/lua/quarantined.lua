--[[
  quarantined: the identities the circuit breaker holds in quarantine.

  KEYS: none (see includes/base.lua)
  ARGV[1]: msgpack config
  ARGV[2]: unused
  Returns: msgpack list of identity keys, sorted.
  Effects: none.
]]
--@include base

local keys = redis.call('HKEYS', 'cdp:q')
table.sort(keys, lt)
return cmsgpack.pack(keys)
