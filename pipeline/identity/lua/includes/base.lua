--[[
  base: what every script that names identities shares. Scripts list the includes they
  use in `--@include <name>` lines (includes list theirs); scripts.py loads each one
  once, dependencies first, so a script carries only the code it uses.

  Keys of the identity graph, all in the slot of the hash tag {cdp} (includes/keyspace.lua:
  one slot, so the scripts run unchanged on a Redis Cluster; spreading the graph over
  slots is the design in docs/redis-cluster.md):
    {cdp}:i:<bucket> hash identity key -> profile counter. BUCKETS = 65536 keeps a bucket
                     listpack-encoded (<= 128 fields of <= 64 bytes) up to ~8M identities.
    {cdp}:g:<pid>    string, msgpack {version, updated_at_ms, members, links, evidence...}
                     (includes/blob.lua): members with first and last seen, links with
                     their evidence. One blob per graph costs a third of a hash with
                     evidence values (those exceed 64 bytes).
    {cdp}:a:<key>    hash of the identity's fragment: "<channel>|<path>" -> msgpack
                     {value, ts, seq}, the newest value per (path, channel); and its event
                     counts "#n" (total), "#t:<type>", "#c:<channel>" ('#' cannot start a
                     channel, so the two never collide; one key saves a write per event)
    {cdp}:r:<key>    zset of event summaries scored by event ts, newest recent_limit kept
    {cdp}:d          hash of the dedupe windows (includes/dedupe.lua): start -> closed at
    {cdp}:d:<start>  hash event id -> msgpack {event, at, changes} the event produced (dedupe),
                     for the events applied while the window was open; dropped a TTL after
    {cdp}:e:<eid>    string with TTL: a dedupe entry of a version before the windows, read
                     for one TTL after the upgrade
    {cdp}:pr:<sha1>  string with TTL: the packed result of a privacy request, by the sha1
                     of the packed request (id, mode, targets) (dedupe)
    {cdp}:sup        set of sha1(identity key) of privacy-deleted identities
    {cdp}:q          hash identity key -> quarantined at (ms)
    {cdp}:mv         hash identity key -> msgpack list of reassignment event times (ms)
    {cdp}:pid {cdp}:seq {cdp}:calls counters: profile ids, arrival order, stitch calls
    {cdp}:stats      hash of the overview's counters, kept by flush: "ns:<namespace>" ->
                     indexed identities, "size:<n>" -> graphs of n identities, "since" ->
                     when counting began, "partial" = 1 if graphs existed before that
    {cdp}:dl         hash reason -> dead letters written (tally.lua)
]]
--@include keyspace

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

-- The position of v among the first n items of list (all of them without n), looking
-- at every step-th from the first; nil if it is not there.
local function find(list, v, n, step)
  for i = 1, n or #list, step or 1 do
    if list[i] == v then return i end
  end
end
