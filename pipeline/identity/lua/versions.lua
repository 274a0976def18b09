--[[
  versions: the current version of each profile, for the publisher's check that what it
  sent is still what Redis holds (pipeline/publish/verified.py: write, then verify).

  KEYS[1]: the keyspace tag `{cdp}` (includes/keyspace.lua); every key it touches is in its slot
  ARGV[1]: msgpack config (unused)
  ARGV[2]: msgpack list of profile ids
  Returns: msgpack list, one per id: the version of its graph ({cdp}:g:<pid>), or false
           when the profile does not exist.
  Effects: none.
]]
--@include keyspace

-- A blob is a msgpack array whose first item is the version (includes/blob.lua): read
-- from its first bytes (an array header of at most 5, an integer of at most 9), so a
-- large graph costs no more than a small one. Another first item's form (none is
-- written) falls back to unpacking the whole blob.
local WIDTH = {[0xcc] = 1, [0xcd] = 2, [0xce] = 4, [0xcf] = 8}
local function version_of(blob)
  local head = redis.call('GETRANGE', blob, 0, 13)
  if head == '' then return false end
  local b, at = string.byte(head, 1), 2
  if b == 0xdc then at = 4 elseif b == 0xdd then at = 6 end
  local t = string.byte(head, at)
  if t < 0x80 then return t end
  local width = WIDTH[t]
  if not width then return cmsgpack.unpack(redis.call('GET', blob))[1] end
  local v = 0
  for i = at + 1, at + width do v = v * 256 + string.byte(head, i) end
  return v
end

local out = {}
for i, pid in ipairs(cmsgpack.unpack(ARGV[2])) do out[i] = version_of(P .. 'g:' .. pid) end
return cmsgpack.pack(out)
