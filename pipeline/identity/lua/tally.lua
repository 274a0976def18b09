--[[
  tally: count dead letters by reason, for the overview (GET /v1/overview).

  KEYS[1]: the keyspace tag `{cdp}` (includes/keyspace.lua); every key it touches is in its slot
  ARGV[1]: msgpack config (unused)
  ARGV[2]: msgpack map reason -> number of dead letters just written to cdp.deadletter
  Returns: msgpack nil.
  Effects: adds each number to its reason's field of {cdp}:dl. Called after the dead
           letters are sent, so a batch redelivered after a crash counts again, as its
           dead letters are written again.
]]
--@include keyspace

for reason, n in pairs(cmsgpack.unpack(ARGV[2])) do
  redis.call('HINCRBY', P .. 'dl', reason, n)
end
return cmsgpack.pack(nil)
