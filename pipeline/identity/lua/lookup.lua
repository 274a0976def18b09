--[[
  lookup: the profile id holding each identity.

  KEYS[1]: the keyspace tag `{cdp}` (includes/keyspace.lua); every key it touches is in its slot
  ARGV[1]: msgpack config (unused)
  ARGV[2]: msgpack list of identity keys
  Returns: msgpack list of profile id or false, one per key.
  Effects: none.
]]
--@include index

local out = {}
for i, key in ipairs(cmsgpack.unpack(ARGV[2])) do out[i] = pid_of(key) or false end
return cmsgpack.pack(out)
