--[[
  stitch: apply a batch of events to the identity graph, atomically and in order
  (CONTRACT 4; the rules are spelled out in tests/model/reference.py).

  KEYS[1]: the keyspace tag `{cdp}` (includes/keyspace.lua); every key it touches is in its slot
  ARGV[1]: msgpack config
  ARGV[2]: msgpack flat list of the events, each laid out as
           pipeline/identity/event_fields.py defines (read as BATCH[o + EVENT.<field>],
           its lists found by event_lists)
  Returns: msgpack {call_seq, outcomes, dirty, ceased, changes, graph_sizes}; an outcome
           is "ok", "duplicate" or "rejected:<reason>".
  Effects: per event: dedupe entry (includes/dedupe.lua), identity index, graphs (links,
           merges, rebuilds for a unique namespace or a shared device, size limit),
           fragment of the primary identity (attributes, recent, counts), reassignment
           counts and quarantine. Graphs, index entries, fragments and dedupe entries are
           cached for the whole batch and written once at its end; dedupe entries are read
           for the whole batch, one HMGET per live window. Opens, closes and drops dedupe
           windows as time passes.
]]
--@include rebuild
--@include dedupe
--@include event

local BATCH = cmsgpack.unpack(ARGV[2])
local KEEP = num(-(CFG.recent_limit + 1))
local CHUNK = 1000  -- arguments per command built with unpack (Lua's C stack is limited)

-- a .. b, made once per call for each pair: concatenating costs more than two lookups,
-- and field names recur.
local JOINED = {}
local function join(a, b)
  local t = JOINED[a]
  if not t then
    t = {}
    JOINED[a] = t
  end
  local s = t[b]
  if not s then
    s = a .. b
    t[b] = s
  end
  return s
end

-- Batch-wide lookups, one command per CHUNK keys: dedupe entries (SEEN: event id -> stored
-- changes or false; includes/dedupe.lua), suppression (SUPP) and quarantine (QUAR) of
-- every identity.
local SEEN, SUPP, QUAR = {}, {}, {}
local ANY_SUP = redis.call('EXISTS', P .. 'sup') == 1
local ANY_QUAR = redis.call('EXISTS', P .. 'q') == 1
local function lookup_all(cmd, key, items, encode, decode, into)
  for i = 1, #items, CHUNK do
    local args = {}
    for j = i, math.min(i + CHUNK - 1, #items) do args[#args + 1] = encode(items[j]) end
    for j, v in ipairs(redis.call(cmd, key, unpack(args))) do
      into[items[i + j - 1]] = decode(v)
    end
  end
end

-- Each event's offset in BATCH, in order.
local STARTS = {}
do
  local eids, idents, seen, o = {}, {}, {}, 0
  while o < #BATCH do
    STARTS[#STARTS + 1] = o
    local eid, ids, _, after = BATCH[o + EVENT.event_id], event_lists(BATCH, o)
    if SEEN[eid] == nil then
      SEEN[eid], eids[#eids + 1] = false, eid
    end
    if BATCH[ids] > 0 then known_bucket(BATCH[ids + 1], BATCH[o + EVENT.bucket]) end
    if ANY_SUP or ANY_QUAR then  -- else nothing is looked up by identity
      for j = ids + 1, ids + BATCH[ids] do
        local k = BATCH[j]
        if not seen[k] then seen[k], idents[#idents + 1] = true, k end
      end
    end
    o = after
  end
  dedupe_lookup(eids, SEEN, CHUNK)
  if ANY_SUP then
    lookup_all('SMISMEMBER', P .. 'sup', idents, redis.sha1hex,
      function(v) return v == 1 end, SUPP)
  end
  if ANY_QUAR then
    lookup_all('HMGET', P .. 'q', idents, function(k) return k end,
      function(v) return v ~= false end, QUAR)
  end
end

-- Without a deleted or quarantined identity stored, nothing is cached per identity.
local function suppressed(key)
  if not ANY_SUP then return false end
  if SUPP[key] == nil then
    SUPP[key] = redis.call('SISMEMBER', P .. 'sup', redis.sha1hex(key)) == 1
  end
  return SUPP[key]
end

local function quarantined(key)
  if not ANY_QUAR then return false end
  if QUAR[key] == nil then
    QUAR[key] = redis.call('HEXISTS', P .. 'q', key) == 1
  end
  return QUAR[key]
end

-- Rule 4.3: detach cookies and devices first, the least recently seen first, until it fits.
local function evict_before(pool, a, b)
  local ra, rb = KIND_RANK[info(a).kind], KIND_RANK[info(b).kind]
  if ra ~= rb then return ra < rb end
  local la, lb = pool.members[a][2], pool.members[b][2]
  if la ~= lb then return la < lb end
  return lt(a, b)
end

local function fit(pool, comp, changes, out)
  if #comp <= CFG.max_graph_size then
    out[#out + 1] = comp
    return
  end
  local victim, rest = comp[1], {}
  for i = 2, #comp do
    if evict_before(pool, comp[i], victim) then victim = comp[i] end
  end
  drop_links(pool, function(k) return k == victim end)
  for _, k in ipairs(comp) do
    if k ~= victim then rest[#rest + 1] = k end
  end
  -- from: the profile that the rest's highest-priority identity ends in (finish), the
  -- one graph that names where a new identity, detached as it came, was kept from.
  changes[#changes + 1] = change('identity_evicted', victim,
    {identity = victim, rule = SIZE_LIMIT, from_of = best(rest)})
  out[#out + 1] = {victim, best = victim}
  for _, part in ipairs(partition(pool, rest)) do fit(pool, part, changes, out) end
end

-- Fragments of the batch, written by flush_fragments: per identity its count fields in
-- the order first met (the array part, '#n' first, so HMGET takes them as they are) and
-- the increment of each (n), its attribute fields in the order first met, each followed
-- by its newest candidate value (a: flat {field, {stored value less its seq, ts, seq,
-- packed seq}, ...}), the timeline entries in order (r) and, when known, a time no
-- stored attribute is newer than (seen). A fragment's first event makes them at their
-- size (constructors): a table grown from empty is rebuilt at each power of two.
local FRAG, FRAG_ORDER = {}, {}

local function count(f, field)
  local n = f.n[field]
  if not n then f[#f + 1] = field end
  f.n[field] = (n or 0) + 1
end

-- The fragment writes of the event at offset o of BATCH, its attributes at attrs; seen as
-- in FRAG, or nil.
local function store_fragment(key, o, attrs, seq, seen)
  local f, ts, channel = FRAG[key], BATCH[o + EVENT.timestamp_ms], BATCH[o + EVENT.channel]
  local text, summary = BATCH[o + EVENT.timestamp_text], BATCH[o + EVENT.summary]
  local typed, channelled = join('#t:', BATCH[o + EVENT.type]), join('#c:', channel)
  local stored = f and #f.a or 0  -- the pairs the batch's earlier events left in a
  if f then
    local r = f.r
    r[#r + 1], r[#r + 2] = text, summary
    count(f, '#n')
    count(f, typed)
    count(f, channelled)
  else
    f = {'#n', typed, channelled, n = {['#n'] = 1, [typed] = 1, [channelled] = 1},
      a = {unpack(BATCH, attrs + 1, attrs + BATCH[attrs])}, r = {text, summary}, seen = seen}
    FRAG[key], FRAG_ORDER[#FRAG_ORDER + 1] = f, key
  end
  local a, packed_seq, prefix = f.a, nil, join(channel, '|')
  for i = 1, BATCH[attrs], 2 do  -- an event's paths are distinct
    local field = join(prefix, BATCH[attrs + i])
    local at = stored > 0 and find(a, field, stored, 2)
    local cur = at and a[at + 1]
    if not cur or ts > cur[2] or (ts == cur[2] and seq > cur[3]) then
      packed_seq = packed_seq or cmsgpack.pack(seq)
      -- a fragment's first event writes over its own path and value in a
      at = at or (stored == 0 and i) or #a + 1
      a[at], a[at + 1] = field, {BATCH[attrs + i + 1], ts, seq, packed_seq}
    end
  end
end

local NONE = {}  -- what a fresh identity's fragment holds; never written to

-- The fields of f to read: its counts, then its attributes unless seen shows every
-- candidate is newer than any stored value (seq grows with every event), so none is
-- decoded. Returns them and whether they include the attributes.
local function fields_to_read(f)
  local a, seen = f.a, f.seen
  local vouched = seen ~= nil
  for i = 2, #a, 2 do
    vouched = vouched and a[i][2] >= seen
  end
  if vouched then return f, false end
  local fields = {unpack(f)}
  for i = 1, #a, 2 do fields[#fields + 1] = a[i] end
  return fields, true
end

-- Same effect as applying each event's writes in turn: an attribute keeps the newest
-- (ts, seq) of stored and batch values, counts add up, and the timeline keeps the newest
-- recent_limit entries (one ZADD when no entry is trimmed or for a fresh identity with
-- distinct entries, else per event).
-- Attributes and counts share one hash: one read and one write per identity.
local function flush_fragments()
  local updates = {}  -- one HSET's field/value pairs, 1..n: one table for all fragments
  for _, key in ipairs(FRAG_ORDER) do
    local f, fresh, n, hash = FRAG[key], FRESH[key], 0, P .. 'a:' .. key
    local fields, with_attributes = fields_to_read(f)
    local current = fresh and NONE or redis.call('HMGET', hash, unpack(fields))
    for i, field in ipairs(f) do
      updates[n + 1], updates[n + 2] = field, num(f.n[field] + (tonumber(current[i]) or 0))
      n = n + 2
    end
    local a = f.a
    for i = 1, #a, 2 do
      local field, new, stored = a[i], a[i + 1], with_attributes and current[#f + (i + 1) / 2]
      local old = stored and cmsgpack.unpack(stored)
      if not old or new[2] > old[2] or (new[2] == old[2] and new[3] > old[3]) then
        updates[n + 1], updates[n + 2], n = field, new[1] .. new[4], n + 2
      end
    end
    redis.call('HSET', hash, unpack(updates, 1, n))
    -- The timeline has at most one entry per event counted in '#n': when the stored and
    -- new entries fit recent_limit, ZADDs in turn would trim nothing.
    local r = f.r
    local fits = (tonumber(current[1]) or 0) + #r / 2 <= CFG.recent_limit
    local distinct = fresh and not fits
    if distinct then
      local seen = {}
      for i = 2, #r, 2 do
        distinct = distinct and not seen[r[i]]
        seen[r[i]] = true
      end
    end
    local timeline = P .. 'r:' .. key
    if fits or distinct then
      redis.call('ZADD', timeline, unpack(r))
      if #r > 2 * CFG.recent_limit then
        redis.call('ZREMRANGEBYRANK', timeline, '0', KEEP)
      end
    else
      for i = 1, #r, 2 do
        redis.call('ZADD', timeline, r[i], r[i + 1])
        redis.call('ZREMRANGEBYRANK', timeline, '0', KEEP)
      end
    end
  end
end

-- Circuit breaker: true when key just exceeded its reassignments within the window.
local function count_move(key, ts)
  local raw, times = redis.call('HGET', P .. 'mv', key), {}
  for _, t in ipairs(raw and cmsgpack.unpack(raw) or {}) do
    if t > ts - CFG.quarantine_window_ms then times[#times + 1] = t end
  end
  times[#times + 1] = ts
  redis.call('HSET', P .. 'mv', key, cmsgpack.pack(times))
  return #times > CFG.quarantine_max and not quarantined(key)
end

local function quarantine(key, cause)
  local old = pid_of(key)
  local pool = load_pool({[old] = true})
  drop_links(pool, function(k) return k == key end)
  local changes = {change('identity_quarantined', key, {identity = key, from = old})}
  assign(pool, partition(pool, member_list(pool)), changes)
  finish(changes, cause, 'circuit breaker')
  QUAR[key], ANY_QUAR = true, true
  redis.call('HSET', P .. 'q', key, NOW)
  redis.call('HDEL', P .. 'mv', key)
end

local function link_all(links, keys, ts, seq, cause, changes)
  table.sort(keys, lt)
  local made  -- the evidence of the links the event makes, once
  for i = 1, #keys do
    for j = i + 1, #keys do
      local a, b = keys[i], keys[j]
      local l = links[a .. '\0' .. b]
      if not l then
        made = made or evidence(cause.event_id, cause.topic, cause.partition, cause.offset)
        links[a .. '\0' .. b] = {a, b, ts, ts, seq, made}
        changes[#changes + 1] = change('link_added', a, {a = a, b = b, rule = '4.1 link'})
      else  -- first and last seen: the earliest and latest event time that asserted it
        if ts < l[3] then l[3] = ts end
        if ts >= l[4] then l[4], l[5] = ts, seq end
      end
    end
  end
end

-- The common case: no unique namespace would hold two values and the linked graphs (and
-- the new identities) fit max_graph_size. The full step (stitch_event) then yields one
-- component that keeps the oldest id of the graphs it merges (rules 4.1, 4.4); this does
-- the same in place on the cached graphs, without partition. Returns false, having
-- changed nothing, when it does not apply.
local function fast_link(linkable, ts, seq, cause, changes)
  local graphs, order, new, size, uq = {}, {}, {}, 0, {}
  for _, k in ipairs(linkable) do
    local pid = pid_of(k)
    if not pid then
      new[#new + 1] = k
    elseif not graphs[pid] then
      local g = meta(load_graph(pid))
      if g.cf then return false end
      for ns in pairs(g.uq) do
        if uq[ns] then return false end
        uq[ns] = true
      end
      graphs[pid], order[#order + 1], size = g, pid, size + g.n
    end
  end
  for _, k in ipairs(new) do
    if not claim_unique(uq, k) then return false end
  end
  if size + #new > CFG.max_graph_size then return false end
  if #order > 1 then table.sort(order, lt) end
  local pid = order[1]
  local g = graphs[pid]
  if not g then
    pid = new_pid()
    g = {v = 0, m = {}, l = {}, n = 0, uq = {}, cf = false, p = false}
    GR[pid] = g
  end
  local version = g.v
  for i = 2, #order do  -- rule 4.4: the oldest id survives the merge
    local o = graphs[order[i]]
    version = math.max(version, o.v)
    g.p = g.p or o.p
    for k, m in pairs(o.m) do
      g.m[k], IDX[k], IDX_DIRTY[k] = m, pid, true
    end
    for lk, l in pairs(o.l) do g.l[lk] = l end
    cease(order[i])
  end
  for _, k in ipairs(new) do
    g.m[k] = {ts, ts}
    g.p = g.p or not info(k).follower
    set_pid(k, pid)
  end
  for _, k in ipairs(linkable) do
    local m = g.m[k]
    m[1], m[2] = math.min(m[1], ts), math.max(m[2], ts)
  end
  g.n, g.uq = size + #new, uq
  link_all(g.l, linkable, ts, seq, cause, changes)
  if #order > 1 then
    changes[#changes + 1] = {type = 'graphs_merged', profile_id = pid, from = {unpack(order, 2)}}
  end
  g.v, g.u, GR_DIRTY[pid], RES.dirty[pid] = version + 1, NOW, true, true
  return true
end

-- Whether a stored graph is within the rules as they stand: its size, and one value per
-- unique namespace (a configuration change can break either).
-- Members are sorted by key, so two of one namespace are next to each other, and two
-- whose first bytes differ are of different namespaces: most pairs need no namespace.
local RAW_OK = {}
local function raw_ok(pid, raw)
  local ok = RAW_OK[pid]
  if ok == nil then
    local ms = raw[3]
    ok = #ms <= 3 * CFG.max_graph_size
    for i = 4, #ms, 3 do
      local a, b = ms[i - 3], ms[i]
      if ok and string.byte(a) == string.byte(b) and info(a).unique then
        ok = ns_of(a) ~= ns_of(b)
      end
    end
    RAW_OK[pid] = ok
  end
  return ok
end

-- The common event (docs/redis-cluster.md section 4): its identities are all in one
-- graph, already linked to each other, in a graph the rules leave as it is. The full
-- step (fast_link) would then only update times: members' and links' first and last
-- seen, links' arrival, the version. This does that on the stored form (flat lists of
-- includes/blob.lua), without decoding and encoding the graph. Returns false, having
-- changed nothing, when it does not apply (the event then takes the full step).
-- Only the first identity is read from the index: the members of a stored graph are
-- indexed to it (every script writes both together; load_pool relies on it too), so
-- finding the others among its members places them.
-- Returns the last_seen of primary (one of linkable) before the event: no attribute of
-- its fragment is newer, as every event that writes a fragment first touches its
-- identity (rule 4.1), and a member's times go wherever it goes (rebuilds, eviction).
local AT = {}  -- member position -> seq of the last event that found it among its identities
local HIT, LHIT = {}, {}  -- the found members' and their links' positions, per event
local function touch_common(linkable, ts, seq, primary)
  local pid = pid_of(linkable[1])
  local raw = pid and load_raw(pid)
  if not raw or not raw_ok(pid, raw) then return false end
  local ms, ls, n, found, linked, seen = raw[3], raw[4], #linkable, 0, 0, nil
  for i = 1, #ms, 3 do
    local k = ms[i]
    for j = 1, n do
      if linkable[j] == k then
        found = found + 1
        AT[(i + 2) / 3], HIT[found] = seq, i
        if k == primary then seen = ms[i + 2] end
        break
      end
    end
    if found == n then break end
  end
  if found < n then return false end
  for j = 1, #ls, LINK do
    if AT[ls[j]] == seq and AT[ls[j + 1]] == seq then
      linked = linked + 1
      LHIT[linked] = j
    end
  end
  -- A graph links a pair at most once: all pairs are there when as many links are.
  if linked < n * (n - 1) / 2 then return false end
  for h = 1, found do  -- comparisons, not math.min/max: no call per time
    local i = HIT[h]
    if ts < ms[i + 1] then ms[i + 1] = ts end
    if ts > ms[i + 2] then ms[i + 2] = ts end
  end
  for h = 1, linked do
    local j = LHIT[h]
    if ts < ls[j + 2] then ls[j + 2] = ts end
    if ts >= ls[j + 3] then ls[j + 3], ls[j + 4] = ts, seq end
  end
  for j = 2, n do
    if IDX[linkable[j]] == nil then IDX[linkable[j]] = pid end
  end
  raw[1], raw[2], GR_DIRTY[pid], RES.dirty[pid] = raw[1] + 1, NOW, true, true
  return seen
end

-- Rule 4.2 shared devices: true when the event would join two parts that each hold a
-- person through followers only. The parts: the event's own persons (it links them to
-- each other directly) and each graph it touches that holds a person but none of them.
local function bridges(linkable)
  local reached, parts, apart = {}, 0, {}
  for _, k in ipairs(linkable) do
    if not info(k).follower then
      parts = 1
      local pid = pid_of(k)
      if pid then reached[pid] = true end
    end
  end
  for _, k in ipairs(linkable) do
    local pid = pid_of(k)
    if pid and not reached[pid] and not apart[pid] and meta(load_graph(pid)).p then
      apart[pid], parts = true, parts + 1
      if parts > 1 then return true end
    end
  end
  return false
end

local function has_conflict(keys)
  local seen = {}
  for _, k in ipairs(keys) do
    if not claim_unique(seen, k) then return true end
  end
  return false
end

-- Whether a recorded change names an identity deleted since (rule 4.6).
local function names_deleted(c)
  return (c.a and suppressed(c.a)) or (c.b and suppressed(c.b))
    or (c.identity and suppressed(c.identity))
end

-- A redelivered event replays its recorded changes (its first delivery's outputs may
-- have been lost), except those naming a deleted identity: it must not reappear.
local function duplicate(ids, stored)
  for j = ids + 1, ids + BATCH[ids] do
    local pid = pid_of(BATCH[j])
    if pid then RES.dirty[pid] = true end
  end
  local cause, at, changes = unpack(cmsgpack.unpack(stored))
  for _, c in ipairs(changes or {}) do
    if not names_deleted(c) then
      c.event, c.at = cause, at
      RES.changes[#RES.changes + 1] = c
    end
  end
  return 'duplicate'
end

local EMPTY = cmsgpack.pack({})

-- The dedupe entry of a stitched event: the changes it produced, replayed on redelivery.
-- They all name the same event and time, stored once: a third of the entry's size.
local function recorded(eid, first, cause)
  local stored = EMPTY
  if #RES.changes >= first then
    local changes = {unpack(RES.changes, first)}
    for _, c in ipairs(changes) do c.event, c.at = nil, nil end
    stored = cmsgpack.pack({cause, NOW, changes})
    for _, c in ipairs(changes) do c.event, c.at = cause, NOW end
  end
  SEEN[eid] = stored
  dedupe_record(eid, stored)
  return 'ok'
end

-- The identities of the list at ids in BATCH that the event links: each once, neither
-- deleted nor quarantined, in order (filtered in place: a table built at its size); and
-- whether any of them is not deleted.
local function linkable_of(ids)
  local list, n, alive = {unpack(BATCH, ids + 1, ids + BATCH[ids])}, 0, false
  for i = 1, #list do
    local k = list[i]
    if not find(list, k, n) and not suppressed(k) then
      alive = true
      if not quarantined(k) then
        n = n + 1
        list[n] = k
      end
    end
  end
  for i = #list, n + 1, -1 do list[i] = nil end
  return list, alive
end

local function stitch_event(o)
  local eid, ts, primary = BATCH[o + EVENT.event_id], BATCH[o + EVENT.timestamp_ms],
    BATCH[o + EVENT.primary]
  local ids, attrs = event_lists(BATCH, o)
  local stored = SEEN[eid]
  if stored then return duplicate(ids, stored) end
  local linkable, alive = linkable_of(ids)
  if #linkable == 0 then
    return alive and 'rejected:all_identities_quarantined' or 'rejected:all_identities_deleted'
  end
  if not find(linkable, primary) then primary = best(linkable) end
  local seq, first = next_id('seq'), #RES.changes + 1
  local seen = touch_common(linkable, ts, seq, primary)
  if seen then  -- no graph change to report: no cause needed
    store_fragment(primary, o, attrs, seq, seen)
    return recorded(eid, first)
  end
  local pids, old_of, changes = {}, {}, {}
  local cause = {event_id = eid, topic = BATCH[o + EVENT.topic],
    partition = BATCH[o + EVENT.partition], offset = BATCH[o + EVENT.offset]}
  local bridged = bridges(linkable)
  if not bridged and fast_link(linkable, ts, seq, cause, changes) then
    store_fragment(primary, o, attrs, seq)
    finish(changes, cause, '4.1 link')
    return recorded(eid, first, cause)
  end
  for _, k in ipairs(linkable) do
    local pid = pid_of(k)
    if pid then pids[pid] = true end
  end
  local pool = load_pool(pids)
  for _, pid in ipairs(pool.order) do
    for k in pairs(pool.old[pid].m) do old_of[k] = pid end
  end
  for _, k in ipairs(linkable) do  -- rule 4.1: touch and link
    local m = pool.members[k]
    if m then
      m[1], m[2] = math.min(m[1], ts), math.max(m[2], ts)
    else
      pool.members[k] = {ts, ts}
    end
  end
  link_all(pool.links, linkable, ts, seq, cause, changes)
  local members = member_list(pool)
  local unique_conflict = has_conflict(members)
  local conflict = unique_conflict or bridged
  -- Without a conflict U is one component: the event links every graph it touches.
  local comps = {members}
  if conflict then
    comps = partition(pool, members, changes)
  else
    members.best = best(members)
  end
  local fitted = {}
  for _, c in ipairs(comps) do fit(pool, c, changes, fitted) end
  assign(pool, fitted, changes)
  store_fragment(primary, o, attrs, seq)
  local rule = unique_conflict and '4.2 unique-namespace rebuild' or SHARED_DEVICE
  -- fit adds a part per detachment: a split it made is the size limit's.
  finish(changes, cause, conflict and rule or (#fitted > #comps and SIZE_LIMIT or '4.1 link'))
  if conflict then
    -- Devices, cookies and followers are not counted (config.py, counted): following the
    -- last person is their rule (4.2), so a family tablet or a kiosk is no junk identifier.
    local moved, hits = {}, {}
    for k, old in pairs(old_of) do
      if pid_of(k) ~= old and info(k).counted then moved[#moved + 1] = k end
    end
    table.sort(moved, lt)
    for _, k in ipairs(moved) do
      if count_move(k, ts) then hits[#hits + 1] = k end
    end
    for _, k in ipairs(hits) do quarantine(k, cause) end
  end
  return recorded(eid, first, cause)
end

local call_seq = redis.call('INCR', P .. 'calls')
local outcomes = {}
for i, o in ipairs(STARTS) do outcomes[i] = stitch_event(o) end
flush_fragments()
dedupe_flush(CHUNK)
flush()
local dirty, ceased = result_lists()
local sizes = {}
for i, pid in ipairs(dirty) do sizes[i] = graph_size(pid) end
return cmsgpack.pack({call_seq, outcomes, dirty, ceased, RES.changes, sizes})
