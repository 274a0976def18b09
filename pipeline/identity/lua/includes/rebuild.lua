--[[
  rebuild: pooling graphs, the rebuild rules (4.2 unique namespaces and shared devices,
  union-find over the links) and the assignment of profile ids (4.4).
]]
--@include graph

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
