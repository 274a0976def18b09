--[[
  blob: the stored form of a graph ({cdp}:g:<pid>, includes/base.lua), and how a blob
  written by an earlier version is read. msgpack {version, updated_at_ms, members,
  links, evidence, ...}:
    members  flat {key, first_seen, last_seen, ...}, sorted by key;
    links    flat {ia, ib, first_seen, last_seen, seq, cause, ...}, ia/ib indexes into
             members, cause the number of its evidence (the blob's 4 + cause-th item);
    evidence of the links, one per event that made some, each
             "<event_id>\0<topic>\0<partition>\0<offset>" (evidence below). Each link
             carried its own copy before, and an event of n identities makes up to
             n(n-1)/2 links: the copies were a tenth of the memory of index and graphs.
             One string each, in the blob itself: the common event unpacks and packs
             no more values or tables for them than it did for the copies.
  A decoded link (includes/graph.lua) holds its evidence string as its sixth field.
  Earlier versions stored {version, updated_at_ms, members, links}, each link's
  evidence as four values in it (LINK_BEFORE fields a link): read in place, written in
  this form by the next call that changes the graph.
]]
--@include base

local LINK, LINK_BEFORE = 6, 9

-- A link's evidence as the blob stores it. Kafka topic names hold no '\0', and partition
-- and offset are numbers, so the last three fields are found from the end whatever the
-- event id holds.
local function evidence(event_id, topic, partition, offset)
  return event_id .. '\0' .. topic .. '\0' .. num(partition) .. '\0' .. num(offset)
end

-- The cause number of text in blob (an unpacked or to-be-packed blob), added at its end
-- unless at (text -> number) has it.
local function cause_number(blob, at, text)
  local c = at[text]
  if not c then
    blob[#blob + 1] = text
    c = #blob - 4
    at[text] = c
  end
  return c
end

-- An unpacked blob in this version's form: an earlier version's is converted in place.
-- The two forms differ only for a graph with links: an earlier one has no evidence items.
local function current_form(raw)
  local before = raw[4]
  if raw[5] or #before == 0 then return raw end
  local links, at = {}, {}
  for i = 1, #before, LINK_BEFORE do
    local n = #links
    for j = 1, 5 do links[n + j] = before[i + j - 1] end
    links[n + LINK] = cause_number(raw, at, evidence(unpack(before, i + 5, i + 8)))
  end
  raw[4] = links
  return raw
end
