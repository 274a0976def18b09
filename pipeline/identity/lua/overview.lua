--[[
  overview: the counters behind GET /v1/overview, read in one call.

  KEYS[1]: the keyspace tag `{cdp}` (includes/keyspace.lua); every key it touches is in its slot
  ARGV[1]: msgpack config (unused)
  ARGV[2]: unused
  Returns: msgpack {stats, quarantined, dead letters}: stats is {cdp}:stats flat (field,
           value, ...: "ns:<namespace>", "size:<n>", "since", "partial"; see
           includes/base.lua), quarantined the number of quarantined identities,
           dead letters {cdp}:dl flat (reason, count, ...).
  Effects: none. Costs O(namespaces + distinct graph sizes + reasons), whatever the
           number of identities.
]]
--@include keyspace

return cmsgpack.pack({
  redis.call('HGETALL', P .. 'stats'),
  redis.call('HLEN', P .. 'q'),
  redis.call('HGETALL', P .. 'dl'),
})
