--[[
  overview: the counters behind GET /v1/overview, read in one call.

  KEYS: none (see includes/base.lua)
  ARGV[1]: msgpack config (unused)
  ARGV[2]: unused
  Returns: msgpack {stats, quarantined, dead letters}: stats is cdp:stats flat (field,
           value, ...: "ns:<namespace>", "size:<n>", "since", "partial"; see
           includes/base.lua), quarantined the number of quarantined identities,
           dead letters cdp:dl flat (reason, count, ...).
  Effects: none. Costs O(namespaces + distinct graph sizes + reasons), whatever the
           number of identities.
]]

return cmsgpack.pack({
  redis.call('HGETALL', 'cdp:stats'),
  redis.call('HLEN', 'cdp:q'),
  redis.call('HGETALL', 'cdp:dl'),
})
