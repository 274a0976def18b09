--[[
  delete: privacy deletion of identities, or of every identity of one profile (CONTRACT
  4.6), atomically.

  KEYS[1]: the keyspace tag `{cdp}` (includes/keyspace.lua); every key it touches is in its slot
  ARGV[1]: msgpack config
  ARGV[2]: msgpack {request_id, "identities" | "profile_of", targets}: identity keys,
           or {one identity key} whose whole graph goes (that identity alone when it is
           in no graph). Finding the graph here, not in a lookup before the call, means
           a merge can never slip in between and leave part of the profile behind.
  Returns: msgpack {deleted identity keys, dirty, ceased, changes, done, already}: done is
           when the deletion was made (epoch ms, the Redis clock, as the changes' `at`);
           already, the targets that were in the suppression set before (deleted, or
           requested when in no graph, by an earlier request); the same request
           (request id, mode and targets) seen within dedupe_ttl_s gets the first answer
           again and changes nothing, so a request redelivered after a crash still names
           the profiles to republish (and to tombstone) and its receipt still says what
           was deleted. A request id reused for other targets is a new request.
  Effects: every target is added to the suppression set (also when unknown, so a replay
           cannot bring it in) and loses its fragment, quarantine state, index entry and
           links; the rest of its graph is regrouped (rule 4.4); an emptied graph ceases.
]]
--@include rebuild

local request = cmsgpack.unpack(ARGV[2])
-- Keyed by the whole request, not its id alone: a client that reuses an id (counting
-- from 1 again) would otherwise be told "deleted" of an identity left in place.
local done_key = P .. 'pr:' .. redis.sha1hex(ARGV[2])
local done = redis.call('GET', done_key)
if done then return done end
local targets = request[3]
if request[2] == 'profile_of' then
  local pid = pid_of(targets[1])
  local g = pid and load_graph(pid)
  if g then
    targets = member_list({members = g.m})
    table.sort(targets, lt)
  end
end

local gone, present, already, pids, changes = {}, {}, {}, {}, {}
for _, k in ipairs(targets) do
  if not gone[k] then
    gone[k] = true
    if redis.call('SADD', P .. 'sup', redis.sha1hex(k)) == 0 then already[#already + 1] = k end
    redis.call('HDEL', P .. 'q', k)
    redis.call('HDEL', P .. 'mv', k)
    redis.call('DEL', P .. 'a:' .. k, P .. 'r:' .. k)
    local pid = pid_of(k)
    if pid then
      present[#present + 1], pids[pid] = k, true
      changes[#changes + 1] = change('identity_deleted', k, {identity = k, from = pid})
    end
  end
end

local pool = load_pool(pids)
for _, k in ipairs(present) do
  set_pid(k, nil)
  pool.members[k] = nil
end
drop_links(pool, function(k) return gone[k] end)
assign(pool, partition(pool, member_list(pool)), changes)
finish(changes, {request_id = request[1]}, '4.6 privacy delete')
flush()
local dirty, ceased = result_lists()
local answer = cmsgpack.pack({present, dirty, ceased, RES.changes, NOW, already})
redis.call('SET', done_key, answer, 'EX', CFG.dedupe_ttl_s)
return answer
