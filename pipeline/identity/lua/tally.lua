--[[
  tally: count dead letters by reason, for the overview (GET /v1/overview).

  KEYS: none (see includes/base.lua)
  ARGV[1]: msgpack config (unused)
  ARGV[2]: msgpack map reason -> number of dead letters just written to cdp.deadletter
  Returns: msgpack nil.
  Effects: adds each number to its reason's field of cdp:dl. Called after the dead
           letters are sent, so a batch redelivered after a crash counts again, as its
           dead letters are written again.
]]

for reason, n in pairs(cmsgpack.unpack(ARGV[2])) do
  redis.call('HINCRBY', 'cdp:dl', reason, n)
end
return cmsgpack.pack(nil)
