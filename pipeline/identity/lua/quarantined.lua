--[[
  quarantined: the identities the circuit breaker holds in quarantine.

  KEYS[1]: the keyspace tag `{cdp}` (includes/keyspace.lua); every key it touches is in its slot
  ARGV[1]: msgpack config (unused)
  ARGV[2]: unused
  Returns: msgpack list of identity keys, sorted.
  Effects: none.
]]
--@include base

local keys = redis.call('HKEYS', P .. 'q')
table.sort(keys, lt)
return cmsgpack.pack(keys)
