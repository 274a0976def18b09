--[[
  lookup: the profile id holding each identity.

  KEYS: none (see includes/base.lua)
  ARGV[1]: msgpack config
  ARGV[2]: msgpack list of identity keys
  Returns: msgpack list of profile id or false, one per key.
  Effects: none.
]]
--@include index

local out = {}
for i, key in ipairs(cmsgpack.unpack(ARGV[2])) do out[i] = pid_of(key) or false end
return cmsgpack.pack(out)
