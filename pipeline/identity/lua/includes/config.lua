--[[
  config: the identity configuration (ARGV[1], msgpack {namespaces = {name = {kind,
  priority, unique, follower, counted}}, unknown_priority, max_graph_size, quarantine_max,
  quarantine_window_ms, dedupe_ttl_s, recent_limit}) and what it says of an identity.
]]
--@include base

-- Detachment order of rule 4.3: cookies and devices alike (the least recently seen of
-- them first), then partners, then persons.
local KIND_RANK = {cookie = 0, device = 0, partner = 1, person = 2}
local SHARED_DEVICE = '4.2 shared device'
local SIZE_LIMIT = '4.3 graph size limit'
local CFG = cmsgpack.unpack(ARGV[1])
local UNKNOWN = {
  kind = 'partner', priority = CFG.unknown_priority, unique = false, follower = false,
  counted = true,
}

local INFO = {}
local function info(key)
  local i = INFO[key]
  if not i then
    i = CFG.namespaces[ns_of(key)] or UNKNOWN
    INFO[key] = i
  end
  return i
end

-- Identity rank: priority number, then key (rule 4.4 anchors, primaries, id order).
local function rank_lt(a, b)
  local pa, pb = info(a).priority, info(b).priority
  if pa ~= pb then return pa < pb end
  return lt(a, b)
end

local function best(keys)
  local b = keys[1]
  for i = 2, #keys do
    if rank_lt(keys[i], b) then b = keys[i] end
  end
  return b
end

-- Rule 4.2: records k's namespace in seen when it is unique; false if one is there.
-- A unique namespace is keyed by its own config table (info's cached answer), which
-- spares the string match of ns_of on the common event's members.
local function claim_unique(seen, k)
  local i = info(k)
  if not i.unique then return true end
  if seen[i] then return false end
  seen[i] = true
  return true
end
