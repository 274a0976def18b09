--[[
  blob: the stored form of a graph ({cdp}:g:<pid>, includes/base.lua), and how a blob
  written by an earlier version is read. msgpack {version, updated_at_ms, members,
  links, causes}:
    members flat {key, first_seen, last_seen, ...}, sorted by key;
    links   flat {ia, ib, first_seen, last_seen, seq, cause, ...}, ia/ib indexes into
            members, cause an index into causes;
    causes  {evidence, ...}: the evidence of the links, one per event that made some,
            "<event_id>\0<topic>\0<partition>\0<offset>" (evidence below). Each link
            carried its own copy before, and an event of n identities makes up to
            n(n-1)/2 links: the copies were a tenth of the memory of index and graphs.
            One string, not four values: the common event unpacks and packs the blob
            without reading them.
  A decoded link (includes/graph.lua) holds its evidence string as its sixth field.
  Earlier versions stored {version, updated_at_ms, members, links} with each link's
  evidence as four values in it (LINK_BEFORE fields a link): read in place, written in
  this form by the next call that changes the graph.
]]
--@include base

local LINK, LINK_BEFORE = 6, 9

-- A link's evidence as causes stores it. Kafka topic names hold no '\0', and partition
-- and offset are numbers, so the last three fields are found from the end whatever the
-- event id holds.
local function evidence(event_id, topic, partition, offset)
  return event_id .. '\0' .. topic .. '\0' .. num(partition) .. '\0' .. num(offset)
end

-- The number of text in causes, added at the end unless at (text -> number) has it.
local function cause_number(causes, at, text)
  local c = at[text]
  if not c then
    c = #causes + 1
    causes[c], at[text] = text, c
  end
  return c
end

-- An unpacked blob in this version's form: an earlier version's is converted in place.
local function current_form(raw)
  if raw[5] then return raw end
  local before, links, causes, at = raw[4], {}, {}, {}
  for i = 1, #before, LINK_BEFORE do
    local n = #links
    for j = 1, 5 do links[n + j] = before[i + j - 1] end
    links[n + LINK] = cause_number(causes, at, evidence(unpack(before, i + 5, i + 8)))
  end
  raw[4], raw[5] = links, causes
  return raw
end
