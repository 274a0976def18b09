--[[
  stitch: apply a batch of events to the identity graph, atomically and in order
  (CONTRACT 4; the rules are spelled out in tests/model/reference.py).

  KEYS: none (see includes/graph.lua)
  ARGV[1]: msgpack config
  ARGV[2]: msgpack list of events, each {event_id, timestamp_ms, channel, type,
           identities, primary, attributes (flat {path, msgpack value, ...}), summary,
           topic, partition, offset}
  Returns: msgpack {call_seq, outcomes, dirty, ceased, changes, graph_sizes}; an outcome
           is "ok", "duplicate" or "rejected:<reason>".
  Effects: per event: dedupe entry, identity index, graphs, fragment of the primary
           identity (attributes, recent, counts), reassignment counts and quarantine.
]]

local SUP = redis.call('EXISTS', 'cdp:sup') == 1
local QUAR = {}
local ANY_QUAR = redis.call('EXISTS', 'cdp:q') == 1

local function suppressed(key)
  return SUP and redis.call('SISMEMBER', 'cdp:sup', redis.sha1hex(key)) == 1
end

local function quarantined(key)
  if QUAR[key] == nil then
    QUAR[key] = ANY_QUAR and redis.call('HEXISTS', 'cdp:q', key) == 1
  end
  return QUAR[key]
end

-- Rule 4.3: detach cookies first, then the least recently seen, until it fits.
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
  changes[#changes + 1] = change('identity_evicted', victim,
    {identity = victim, rule = '4.3 graph size limit'})
  out[#out + 1] = {victim, best = victim}
  for _, k in ipairs(comp) do
    if k ~= victim then rest[#rest + 1] = k end
  end
  for _, part in ipairs(partition(pool, rest)) do fit(pool, part, changes, out) end
end

local function store_fragment(key, ts, seq, channel, etype, attrs, summary)
  if #attrs > 0 then
    local fields, updates = {}, {}
    for i = 1, #attrs, 2 do fields[#fields + 1] = channel .. '|' .. attrs[i] end
    local current = redis.call('HMGET', 'cdp:a:' .. key, unpack(fields))
    for i, field in ipairs(fields) do
      local old = current[i] and cmsgpack.unpack(current[i])
      if not old or ts > old[2] or (ts == old[2] and seq > old[3]) then
        updates[#updates + 1] = field
        updates[#updates + 1] = cmsgpack.pack({attrs[2 * i], ts, seq})
      end
    end
    if #updates > 0 then redis.call('HSET', 'cdp:a:' .. key, unpack(updates)) end
  end
  redis.call('ZADD', 'cdp:r:' .. key, ts, summary)
  redis.call('ZREMRANGEBYRANK', 'cdp:r:' .. key, 0, -(CFG.recent_limit + 1))
  for _, field in ipairs({'n', 't:' .. etype, 'c:' .. channel}) do
    redis.call('HINCRBY', 'cdp:n:' .. key, field, 1)
  end
end

-- Circuit breaker: true when key just exceeded its reassignments within the window.
local function count_move(key, ts)
  local raw, times = redis.call('HGET', 'cdp:mv', key), {}
  for _, t in ipairs(raw and cmsgpack.unpack(raw) or {}) do
    if t > ts - CFG.quarantine_window_ms then times[#times + 1] = t end
  end
  times[#times + 1] = ts
  redis.call('HSET', 'cdp:mv', key, cmsgpack.pack(times))
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
  redis.call('HSET', 'cdp:q', key, NOW)
  redis.call('HDEL', 'cdp:mv', key)
end

local function link_all(pool, keys, ts, seq, cause, changes)
  table.sort(keys, lt)
  for i = 1, #keys do
    for j = i + 1, #keys do
      local a, b = keys[i], keys[j]
      local l = pool.links[a .. '\0' .. b]
      if not l then
        pool.links[a .. '\0' .. b] =
          {a, b, ts, ts, seq, cause.event_id, cause.topic, cause.partition, cause.offset}
        changes[#changes + 1] = change('link_added', a, {a = a, b = b, rule = '4.1 link'})
      elseif ts >= l[4] then
        l[4], l[5] = ts, seq
      end
    end
  end
end

local function has_conflict(keys)
  local seen = {}
  for _, k in ipairs(keys) do
    if info(k).unique then
      if seen[ns_of(k)] then return true end
      seen[ns_of(k)] = true
    end
  end
  return false
end

local function duplicate(idents, stored)
  for _, k in ipairs(idents) do
    local pid = pid_of(k)
    if pid then RES.dirty[pid] = true end
  end
  for _, c in ipairs(cmsgpack.unpack(stored)) do RES.changes[#RES.changes + 1] = c end
  return 'duplicate'
end

local function stitch_event(e)
  local eid, ts, channel, etype, idents, primary, attrs, summary = unpack(e, 1, 8)
  local stored = redis.call('GET', 'cdp:e:' .. eid)
  if stored then return duplicate(idents, stored) end
  local keys, linkable, pids, old_of = {}, {}, {}, {}
  for _, k in ipairs(idents) do
    if keys[k] == nil then
      keys[k] = not suppressed(k)
      if keys[k] and not quarantined(k) then linkable[#linkable + 1] = k end
    end
  end
  if #linkable == 0 then
    for _, ok in pairs(keys) do
      if ok then return 'rejected:all_identities_quarantined' end
    end
    return 'rejected:all_identities_deleted'
  end
  if not keys[primary] or quarantined(primary) then primary = best(linkable) end
  local seq, first, changes = next_id('seq'), #RES.changes + 1, {}
  local cause = {event_id = eid, topic = e[9], partition = e[10], offset = e[11]}
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
  link_all(pool, linkable, ts, seq, cause, changes)
  local members = member_list(pool)
  local conflict = has_conflict(members)
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
  store_fragment(primary, ts, seq, channel, etype, attrs, summary)
  finish(changes, cause, conflict and '4.2 unique-namespace rebuild' or '4.1 link')
  if conflict then
    local moved, hits = {}, {}
    for k, old in pairs(old_of) do
      if pid_of(k) ~= old then moved[#moved + 1] = k end
    end
    table.sort(moved, lt)
    for _, k in ipairs(moved) do
      if count_move(k, ts) then hits[#hits + 1] = k end
    end
    for _, k in ipairs(hits) do quarantine(k, cause) end
  end
  redis.call('SET', 'cdp:e:' .. eid, cmsgpack.pack({unpack(RES.changes, first)}),
    'EX', CFG.dedupe_ttl_s)
  return 'ok'
end

local call_seq = redis.call('INCR', 'cdp:calls')
local outcomes = {}
for i, e in ipairs(cmsgpack.unpack(ARGV[2])) do outcomes[i] = stitch_event(e) end
flush()
local dirty, ceased = result_lists()
local sizes = {}
for i, pid in ipairs(dirty) do
  sizes[i] = 0
  for _ in pairs(load_graph(pid).m) do sizes[i] = sizes[i] + 1 end
end
return cmsgpack.pack({call_seq, outcomes, dirty, ceased, RES.changes, sizes})
