--[[
  blob: the stored form of a graph ({cdp}:g:<pid>, includes/base.lua), and how a blob
  written by an earlier version is read. msgpack {version, updated_at_ms, members,
  links, causes}:
    members flat {key, first_seen, last_seen, ...}, sorted by key;
    links   flat {ia, ib, first_seen, last_seen, seq, cause, ...}, ia/ib indexes into
            members, cause an index into causes;
    causes  flat {event_id, topic, partition, offset, ...}: the evidence of the links, one
            entry per event, where each link carried its own copy before (an event of n
            identities makes up to n(n-1)/2 links; the copies were a tenth of the
            memory of index and graphs).
  Earlier versions stored {version, updated_at_ms, members, links} with each link's
  evidence in it (LINK_BEFORE fields a link): read in place, written in this form by the
  next call that changes the graph.
]]
--@include base

local LINK, LINK_BEFORE, CAUSE = 6, 9, 4

-- The number of the cause {eid, topic, partition, offset} in causes (flat), added at
-- the end unless it is there; last maps an event id to where its cause was last found.
local function cause_number(causes, last, eid, topic, partition, offset)
  local c = last[eid]
  if not (c and causes[c + 1] == topic and causes[c + 2] == partition
      and causes[c + 3] == offset) then
    c = #causes + 1
    causes[c], causes[c + 1], causes[c + 2], causes[c + 3] = eid, topic, partition, offset
    last[eid] = c
  end
  return (c - 1) / CAUSE + 1
end

-- An unpacked blob in this version's form: an earlier version's is converted in place.
local function current_form(raw)
  if raw[5] then return raw end
  local before, links, causes, last = raw[4], {}, {}, {}
  for i = 1, #before, LINK_BEFORE do
    local n = #links
    for j = 1, 5 do links[n + j] = before[i + j - 1] end
    links[n + LINK] = cause_number(causes, last, unpack(before, i + 5, i + 8))
  end
  raw[4], raw[5] = links, causes
  return raw
end
