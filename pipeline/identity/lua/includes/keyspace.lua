--[[
  keyspace: every key of the identity graph is P .. <name>, P being KEYS[1] (the hash
  tag `{cdp}`, KEYSPACE in pipeline/identity/commands.py) and a colon. All keys hash to
  KEYS[1]'s slot, so a script touches only keys of the slot it declares: it runs as it
  is on one Redis and on the node of a Redis Cluster that holds that slot
  (docs/redis-cluster.md, "one slot").
]]

local P = KEYS[1] .. ':'
