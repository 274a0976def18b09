--[[
  Shared code of the identity graph scripts; commands.py prepends it to every script.

  Every script takes ARGV[1] = msgpack config {namespaces = {name = {kind, priority,
  unique, follower}}, unknown_priority, max_graph_size, quarantine_max,
  quarantine_window_ms, dedupe_ttl_s, recent_limit}. Keys are derived from identities and profile ids, so the scripts
  declare no KEYS: single Redis instance only, not Redis Cluster.

  Keys:
    cdp:i:<bucket>   hash identity key -> profile counter. BUCKETS = 65536 keeps a bucket
                     listpack-encoded (<= 128 fields of <= 64 bytes) up to ~8M identities.
    cdp:g:<pid>      string, msgpack {version, updated_at_ms, members, links}; members is
                     flat {key, first_seen, last_seen, ...} sorted by key, links is flat
                     {ia, ib, first_seen, last_seen, seq, event_id, topic, partition,
                     offset, ...} with ia/ib indexes into members. One blob per graph
                     costs a third of a hash with evidence values (those exceed 64 bytes).
    cdp:a:<key>      hash of the identity's fragment: "<channel>|<path>" -> msgpack
                     {value, ts, seq}, the newest value per (path, channel); and its event
                     counts "#n" (total), "#t:<type>", "#c:<channel>" ('#' cannot start a
                     channel, so the two never collide; one key saves a write per event)
    cdp:r:<key>      zset of event summaries scored by event ts, newest recent_limit kept
    cdp:e:<eid>      string with TTL: msgpack {event, at, changes} the event produced (dedupe)
    cdp:pr:<rid>     string with TTL: the packed result of privacy request rid (dedupe)
    cdp:sup          set of sha1(identity key) of privacy-deleted identities
    cdp:q            hash identity key -> quarantined at (ms)
    cdp:mv           hash identity key -> msgpack list of reassignment event times (ms)
    cdp:pid cdp:seq cdp:calls   counters: profile ids, arrival order, stitch calls
    cdp:stats        hash of the overview's counters, kept by flush: "ns:<namespace>" ->
                     indexed identities, "size:<n>" -> graphs of n identities, "since" ->
                     when counting began, "partial" = 1 if graphs existed before that
    cdp:dl           hash reason -> dead letters written (tally.lua)

  A graph is a pool member map key -> {first_seen, last_seen} and a link map
  "a\0b" -> {a, b, first_seen, last_seen, seq, event_id, topic, partition, offset}, a < b.
  Reads and writes go through caches flushed once at the end (flush), as the script runs
  atomically: a graph is decoded at most once and written at most once per call.
  A fragment (cdp:a/r) exists only for an identity in the index (fragments are written
  for indexed identities and deleted with their index entry), so an identity absent from
  the index when the call began (FRESH) has no fragment to read.
]]

local BUCKETS = 65536
local KIND_RANK = {cookie = 0, device = 1, partner = 2, person = 3}
local SHARED_DEVICE = '4.2 shared device'
local CFG = cmsgpack.unpack(ARGV[1])
local UNKNOWN = {kind = 'partner', priority = CFG.unknown_priority, unique = false, follower = false}
local NOW = (function()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end)()

-- Keys order bytewise, as Python compares str. Lua's '<' follows the server's
-- LC_COLLATE: it is used when probes show that locale orders bytewise (C, C.UTF-8).
local function bytewise_lt(a, b)
  for i = 1, math.min(#a, #b) do
    local x, y = string.byte(a, i), string.byte(b, i)
    if x ~= y then return x < y end
  end
  return #a < #b
end

local function native_lt(a, b)
  return a < b
end

local lt = ('Z' < 'a' and 'a-c' < 'ab' and 'a:b' < 'a_b' and 'ab' < 'ab0') and native_lt
  or bytewise_lt

local function ns_of(key)
  return string.match(key, '^[^:]*')
end

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

-- Number to string conversions (Lua's '..' on numbers, numeric redis.call arguments) cost
-- microseconds: hot paths pass strings, and convert each number at most once per call.
local NUMS = {}
local function num(n)
  local s = NUMS[n]
  if not s then
    s = string.format('%d', n)
    NUMS[n] = s
  end
  return s
end

local function pid_str(n)
  return string.format('p_%010x', n)
end

-- Lazily read counters, written back by flush.
local COUNTER = {}
local function next_id(name)
  COUNTER[name] = (COUNTER[name] or tonumber(redis.call('GET', 'cdp:' .. name) or '0')) + 1
  return COUNTER[name]
end

-- Polynomial string hash (base 31, four bytes a step) modulo a 31-bit prime: every
-- intermediate stays below 2^52, exact in Lua's doubles.
local BUCKET = {}
local function bucket_key(key)
  local b = BUCKET[key]
  if not b then
    local h = 0
    for i = 1, #key, 4 do
      local a, x, c, d = string.byte(key, i, i + 3)
      h = (h * 923521 + a * 29791 + (x or 0) * 961 + (c or 0) * 31 + (d or 0)) % 2147483647
    end
    b = 'cdp:i:' .. num(h % BUCKETS)
    BUCKET[key] = b
  end
  return b
end

-- Profile id <-> its counter as stored in the index (a decimal string).
local PID_OF_N, N_OF_PID = {}, {}
local function pid_of_n(n)
  local pid = PID_OF_N[n]
  if not pid then
    pid = pid_str(tonumber(n))
    PID_OF_N[n], N_OF_PID[pid] = pid, n
  end
  return pid
end

local function n_of_pid(pid)
  return N_OF_PID[pid] or num(tonumber(string.sub(pid, 3), 16))
end

local function new_pid()
  local n = next_id('pid')
  local pid = pid_str(n)
  PID_OF_N[num(n)], N_OF_PID[pid] = pid, num(n)
  return pid
end

local IDX, IDX_DIRTY, FRESH = {}, {}, {}
local function pid_of(key)
  local v = IDX[key]
  if v == nil then
    local n = redis.call('HGET', bucket_key(key), key)
    v = n and pid_of_n(n) or false
    IDX[key], FRESH[key] = v, not n
  end
  return v or nil
end

local function set_pid(key, pid)
  if pid_of(key) ~= pid then
    IDX[key] = pid or false
    IDX_DIRTY[key] = true
  end
end

local GR, GR_DIRTY = {}, {}
local function decode_graph(blob)
  local raw = cmsgpack.unpack(blob)
  local g, keys, ms, ls = {v = raw[1], u = raw[2], m = {}, l = {}}, {}, raw[3], raw[4]
  for i = 1, #ms, 3 do
    keys[#keys + 1] = ms[i]
    g.m[ms[i]] = {ms[i + 1], ms[i + 2]}
  end
  for i = 1, #ls, 9 do
    local a, b = keys[ls[i]], keys[ls[i + 1]]
    g.l[a .. '\0' .. b] = {a, b, unpack(ls, i + 2, i + 8)}
  end
  return g, #keys
end

local function encode_graph(g)
  local keys, pos, ms, ls = {}, {}, {}, {}
  for k in pairs(g.m) do keys[#keys + 1] = k end
  table.sort(keys, lt)
  for i, k in ipairs(keys) do
    pos[k] = i
    ms[#ms + 1], ms[#ms + 2], ms[#ms + 3] = k, g.m[k][1], g.m[k][2]
  end
  for _, l in pairs(g.l) do
    local n = #ls
    ls[n + 1], ls[n + 2] = pos[l[1]], pos[l[2]]
    for j = 3, 9 do ls[n + j] = l[j] end
  end
  return cmsgpack.pack({g.v, g.u, ms, ls})
end

-- Rule 4.2: records k's namespace in seen when it is unique; false if one is there.
local function claim_unique(seen, k)
  if not info(k).unique then return true end
  local ns = ns_of(k)
  if seen[ns] then return false end
  seen[ns] = true
  return true
end

-- Cached facts about a graph, kept up to date by in-place updates (stitch's fast path):
-- n = member count, uq = set of unique namespaces present, cf = two values of one,
-- p = holds a person (a non-follower identity: see the shared-device rule in partition).
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

-- Member count of each graph as stored when the call began (the overview's counters).
local STORED_N = {}
local function load_graph(pid)
  local g = GR[pid]
  if g == nil then
    local blob = redis.call('GET', 'cdp:g:' .. pid)
    local n = 0
    if blob then g, n = decode_graph(blob) else g = false end
    GR[pid], STORED_N[pid] = g, n
  end
  return g or nil
end

-- The overview's counters follow what this call changed: one HINCRBY per changed field,
-- so GET /v1/overview reads a few hash fields instead of scanning the keyspace.
local function count_changes()
  local delta = {}
  local function add(field, n) delta[field] = (delta[field] or 0) + n end
  for pid in pairs(GR_DIRTY) do
    local before, after = STORED_N[pid] or 0, GR[pid] and meta(GR[pid]).n or 0
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
  -- cdp:pid is read before flush writes it back: graphs made before counting began.
  if redis.call('HSETNX', 'cdp:stats', 'since', NOW) == 1 and redis.call('GET', 'cdp:pid') then
    redis.call('HSET', 'cdp:stats', 'partial', 1)
  end
  for field, n in pairs(delta) do
    if n ~= 0 then redis.call('HINCRBY', 'cdp:stats', field, n) end
  end
end

local function flush()
  count_changes()
  for pid in pairs(GR_DIRTY) do
    if GR[pid] then
      redis.call('SET', 'cdp:g:' .. pid, encode_graph(GR[pid]))
    else
      redis.call('DEL', 'cdp:g:' .. pid)
    end
  end
  for key in pairs(IDX_DIRTY) do
    if IDX[key] then
      redis.call('HSET', bucket_key(key), key, n_of_pid(IDX[key]))
    else
      redis.call('HDEL', bucket_key(key), key)
    end
  end
  for name, value in pairs(COUNTER) do redis.call('SET', 'cdp:' .. name, value) end
end

-- What the caller publishes: dirty and ceased profile ids and the graph changes.
local RES = {dirty = {}, ceased = {}, changes = {}}

local function result_lists()
  local dirty, ceased = {}, {}
  for pid in pairs(RES.ceased) do ceased[#ceased + 1] = pid end
  for pid in pairs(RES.dirty) do
    if not RES.ceased[pid] then dirty[#dirty + 1] = pid end
  end
  return dirty, ceased
end

local function cease(pid)
  GR[pid] = false
  GR_DIRTY[pid] = true
  RES.ceased[pid] = true
end

-- A change about an identity: its profile id is resolved by finish, after regrouping.
local function change(kind, subject, details)
  details.type, details.subject = kind, subject
  return details
end

local function finish(changes, cause, rule)
  for _, c in ipairs(changes) do
    if c.subject then
      c.profile_id = pid_of(c.subject) or c.from
      c.subject = nil
    end
    c.rule = c.rule or rule
    c.event, c.at = cause, NOW
    RES.changes[#RES.changes + 1] = c
  end
end

-- The graphs one step works on, pooled. Tables are shared with the cache: every old
-- graph is replaced or ceased by assign, so nothing stale survives.
local function load_pool(pids)
  local pool = {old = {}, order = {}, members = {}, links = {}}
  for pid in pairs(pids) do pool.order[#pool.order + 1] = pid end
  table.sort(pool.order, lt)
  for _, pid in ipairs(pool.order) do
    local g = load_graph(pid)
    pool.old[pid] = g
    for k, m in pairs(g.m) do
      pool.members[k] = m
      if IDX[k] == nil then IDX[k] = pid end
    end
    for lk, l in pairs(g.l) do pool.links[lk] = l end
  end
  return pool
end

local function member_list(pool)
  local keys = {}
  for k in pairs(pool.members) do keys[#keys + 1] = k end
  return keys
end

local function drop_links(pool, gone)
  for lk, l in pairs(pool.links) do
    if gone(l[1]) or gone(l[2]) then pool.links[lk] = nil end
  end
end

-- Rule 4.2 order: weaker end's priority, then latest last_seen, then latest arrival.
local function link_before(x, y)
  local sx = math.max(info(x[1]).priority, info(x[2]).priority)
  local sy = math.max(info(y[1]).priority, info(y[2]).priority)
  if sx ~= sy then return sx < sy end
  if x[4] ~= y[4] then return x[4] > y[4] end
  if x[5] ~= y[5] then return x[5] > y[5] end
  if x[1] ~= y[1] then return lt(x[1], y[1]) end
  return lt(x[2], y[2])
end

local function clash(ua, ub)
  for n, v in pairs(ua) do
    if ub[n] and ub[n] ~= v then return true end
  end
  return false
end

local function comp_before(x, y)
  return rank_lt(x.best, y.best)
end

-- Union-find over the links among keys; components sorted by best member. With a
-- change list (rebuild), links go strongest first and one that would join two values
-- of a unique namespace is deleted (rule 4.2). So is a link to a follower (a device, a
-- cookie) that would join two parts that each hold a person (a non-follower): a shared
-- tablet stays with the person of its most recent link instead of joining the family.
local function partition(pool, keys, rebuild)
  local parent, uniq, person, links = {}, {}, {}, {}
  for _, k in ipairs(keys) do
    parent[k] = k
    if rebuild then
      uniq[k] = info(k).unique and {[ns_of(k)] = k} or {}
      person[k] = not info(k).follower
    end
  end
  local function find(k)
    while parent[k] ~= k do
      parent[k] = parent[parent[k]]
      k = parent[k]
    end
    return k
  end
  for _, l in pairs(pool.links) do
    if parent[l[1]] and parent[l[2]] then links[#links + 1] = l end
  end
  if rebuild then table.sort(links, link_before) end
  for _, l in ipairs(links) do
    local ra, rb = find(l[1]), find(l[2])
    if ra ~= rb then
      if rebuild and clash(uniq[ra], uniq[rb]) then
        pool.links[l[1] .. '\0' .. l[2]] = nil
        rebuild[#rebuild + 1] = change('link_removed', l[1], {a = l[1], b = l[2]})
      elseif rebuild and person[ra] and person[rb]
          and (info(l[1]).follower or info(l[2]).follower) then
        pool.links[l[1] .. '\0' .. l[2]] = nil
        rebuild[#rebuild + 1] = change('link_removed', l[1],
          {a = l[1], b = l[2], rule = SHARED_DEVICE})
      else
        parent[rb] = ra
        if rebuild then
          for n, v in pairs(uniq[rb]) do uniq[ra][n] = v end
          person[ra] = person[ra] or person[rb]
        end
      end
    end
  end
  local groups, comps = {}, {}
  for _, k in ipairs(keys) do
    local r = find(k)
    local c = groups[r]
    if not c then
      c = {best = k}
      groups[r], comps[#comps + 1] = c, c
    elseif rank_lt(k, c.best) then
      c.best = k
    end
    c[#c + 1] = k
  end
  if #comps > 1 then table.sort(comps, comp_before) end
  return comps
end

-- Rule 4.4: each old id follows its graph's anchor (best surviving member); a
-- component keeps the oldest id it receives, the others cease; none -> a new id.
local function assign(pool, comps, changes)
  if #comps > 1 then table.sort(comps, comp_before) end
  local comp_of, received, pids = {}, {}, {}
  for i, c in ipairs(comps) do
    received[i] = {}
    for _, k in ipairs(c) do comp_of[k] = i end
  end
  for _, pid in ipairs(pool.order) do
    local alive = {}
    for k in pairs(pool.old[pid].m) do
      if comp_of[k] then alive[#alive + 1] = k end
    end
    if #alive > 0 then
      local ids = received[comp_of[best(alive)]]
      ids[#ids + 1] = pid
    else
      cease(pid)
    end
  end
  for i, c in ipairs(comps) do
    local ids, version = received[i], 0
    local pid = ids[1] or new_pid()
    for j, old in ipairs(ids) do
      version = math.max(version, pool.old[old].v)
      if j > 1 then cease(old) end
    end
    if #ids > 1 then
      changes[#changes + 1] = {type = 'graphs_merged', profile_id = pid, from = {unpack(ids, 2)}}
    end
    local g = {v = version + 1, u = NOW, m = {}, l = {}}
    for _, k in ipairs(c) do
      g.m[k] = pool.members[k]
      set_pid(k, pid)
    end
    pids[i], GR[pid], GR_DIRTY[pid], RES.dirty[pid] = pid, g, true, true
  end
  for lk, l in pairs(pool.links) do
    GR[pids[comp_of[l[1]]]].l[lk] = l
  end
  for _, pid in ipairs(pool.order) do
    local into, seen = {}, {}
    for k in pairs(pool.old[pid].m) do
      local i = comp_of[k]
      if i and not seen[i] then
        seen[i], into[#into + 1] = true, pids[i]
      end
    end
    if #into > 1 then
      table.sort(into, lt)
      changes[#changes + 1] = {type = 'graph_split', profile_id = pid, into = into}
    end
  end
end
