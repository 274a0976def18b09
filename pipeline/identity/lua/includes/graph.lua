--[[
  graph: the graph blobs ({cdp}:g:<pid>) read and written through a cache, the overview's
  counters, and flush, which writes every cache back once at the end of a call (scripts
  run atomically: a graph is decoded at most once and written at most once per call).

  A graph is a member map key -> {first_seen, last_seen} and a link map
  "a\0b" -> {a, b, first_seen, last_seen, seq, evidence (includes/blob.lua)}, a < b.
  A fragment ({cdp}:a/r) exists only for an identity in the index (fragments are written
  for indexed identities and deleted with their index entry), so an identity absent from
  the index when the call began (FRESH) has no fragment to read.
]]
--@include blob
--@include config
--@include index
--@include results

-- GR: decoded graphs (false: none). RAW: graphs read but not decoded, as unpacked from
-- the blob (includes/blob.lua, in this version's form): the common event updates
-- times in place there (stitch.lua), and flush packs them back without encode_graph.
local GR, GR_DIRTY, RAW = {}, {}, {}
local function decode_graph(raw)
  local g, keys, ms, ls = {v = raw[1], u = raw[2], m = {}, l = {}}, {}, raw[3], raw[4]
  for i = 1, #ms, 3 do
    keys[#keys + 1] = ms[i]
    g.m[ms[i]] = {ms[i + 1], ms[i + 2]}
  end
  for i = 1, #ls, LINK do
    local a, b = keys[ls[i]], keys[ls[i + 1]]
    g.l[a .. '\0' .. b] = {a, b, ls[i + 2], ls[i + 3], ls[i + 4], raw[4 + ls[i + 5]]}
  end
  return g
end

local function encode_graph(g)
  local keys, pos, ms, ls, at = {}, {}, {}, {}, {}
  local blob = {g.v, g.u, ms, ls}
  for k in pairs(g.m) do keys[#keys + 1] = k end
  table.sort(keys, lt)
  for i, k in ipairs(keys) do
    pos[k] = i
    ms[#ms + 1], ms[#ms + 2], ms[#ms + 3] = k, g.m[k][1], g.m[k][2]
  end
  for _, l in pairs(g.l) do
    local n = #ls
    ls[n + 1], ls[n + 2], ls[n + 3], ls[n + 4] = pos[l[1]], pos[l[2]], l[3], l[4]
    ls[n + 5] = l[5]
    ls[n + LINK] = cause_number(blob, at, l[6])
  end
  return cmsgpack.pack(blob)
end

-- Cached facts about a graph, kept up to date by in-place updates (stitch's fast path):
-- n = member count, uq = set of unique namespaces present (as claim_unique keys them),
-- cf = two values of one, p = holds a person (a non-follower identity: see the
-- shared-device rule in partition).
local function meta(g)
  if g.n == nil then
    local n, uq, cf, p = 0, {}, false, false
    for k in pairs(g.m) do
      n = n + 1
      cf = not claim_unique(uq, k) or cf
      p = p or not info(k).follower
    end
    g.n, g.uq, g.cf, g.p = n, uq, cf, p
  end
  return g
end

-- A graph's key, made once per call: read and written, it would be concatenated twice.
local GKEY = {}
local function graph_key(pid)
  local k = GKEY[pid]
  if not k then
    k = P .. 'g:' .. pid
    GKEY[pid] = k
  end
  return k
end

-- Member count of each graph as stored when the call began (the overview's counters).
local STORED_N = {}

-- The graph as stored, unpacked but not decoded; nil when it is absent or decoded.
local function load_raw(pid)
  if GR[pid] ~= nil then return nil end
  local raw = RAW[pid]
  if raw == nil then
    local blob = redis.call('GET', graph_key(pid))
    if not blob then
      GR[pid], STORED_N[pid] = false, 0
      return nil
    end
    raw = current_form(cmsgpack.unpack(blob))
    RAW[pid], STORED_N[pid] = raw, #raw[3] / 3
  end
  return raw
end

local function load_graph(pid)
  local g = GR[pid]
  if g == nil then
    local raw = load_raw(pid)
    g = raw and decode_graph(raw) or false
    GR[pid], RAW[pid] = g, nil
  end
  return g or nil
end

local function graph_size(pid)
  local raw = load_raw(pid)
  if raw then return #raw[3] / 3 end
  return GR[pid] and meta(GR[pid]).n or 0
end

-- The overview's counters follow what this call changed: one HINCRBY per changed field,
-- so GET /v1/overview reads a few hash fields instead of scanning the keyspace.
local function count_changes()
  local delta = {}
  local function add(field, n) delta[field] = (delta[field] or 0) + n end
  for pid in pairs(GR_DIRTY) do
    local before, after = STORED_N[pid] or 0, graph_size(pid)
    if before ~= after then
      if before > 0 then add('size:' .. num(before), -1) end
      if after > 0 then add('size:' .. num(after), 1) end
    end
  end
  for key in pairs(IDX_DIRTY) do
    local was, is = not FRESH[key], IDX[key] and true or false
    if was ~= is then add('ns:' .. ns_of(key), is and 1 or -1) end
  end
  if next(delta) == nil then return end
  -- {cdp}:pid is read before flush writes it back: graphs made before counting began.
  if redis.call('HSETNX', P .. 'stats', 'since', NOW) == 1 and redis.call('GET', P .. 'pid') then
    redis.call('HSET', P .. 'stats', 'partial', 1)
  end
  for field, n in pairs(delta) do
    if n ~= 0 then redis.call('HINCRBY', P .. 'stats', field, n) end
  end
end

local function flush()
  count_changes()
  for pid in pairs(GR_DIRTY) do
    if RAW[pid] then
      redis.call('SET', graph_key(pid), cmsgpack.pack(RAW[pid]))
    elseif GR[pid] then
      redis.call('SET', graph_key(pid), encode_graph(GR[pid]))
    else
      redis.call('DEL', graph_key(pid))
    end
  end
  for key in pairs(IDX_DIRTY) do
    if IDX[key] then
      redis.call('HSET', bucket_key(key), key, n_of_pid(IDX[key]))
    else
      redis.call('HDEL', bucket_key(key), key)
    end
  end
  for name, value in pairs(COUNTER) do redis.call('SET', P .. name, value) end
end

local function cease(pid)
  GR[pid], RAW[pid] = false, nil
  GR_DIRTY[pid] = true
  RES.ceased[pid] = true
end
