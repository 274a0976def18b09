--[[
  results: what a script reports for the caller to publish: dirty and ceased profile ids
  and the graph changes, each stamped with its cause and the call's time.
]]
--@include index

local NOW = (function()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end)()

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
    if c.from_of then c.from, c.from_of = pid_of(c.from_of), nil end
    c.rule = c.rule or rule
    c.event, c.at = cause, NOW
    RES.changes[#RES.changes + 1] = c
  end
end
