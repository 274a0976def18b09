--[[
  index: identity -> profile id ({cdp}:i:<bucket>), profile ids and counters ({cdp}:pid,
  {cdp}:seq), read through a cache that graph.lua's flush writes back.
]]
--@include base

local BUCKETS = 65536

local function pid_str(n)
  return string.format('p_%010x', n)
end

-- Lazily read counters, written back by flush.
local COUNTER = {}
local function next_id(name)
  COUNTER[name] = (COUNTER[name] or tonumber(redis.call('GET', P .. name) or '0')) + 1
  return COUNTER[name]
end

-- Polynomial string hash (base 31, four bytes a step) modulo a 31-bit prime: every
-- intermediate stays below 2^52, exact in Lua's doubles. The same in Python:
-- pipeline/identity/arguments.py bucket, whose answer a caller may pass (known_bucket).
local BUCKET = {}
local function known_bucket(key, bucket)
  if not BUCKET[key] then BUCKET[key] = P .. 'i:' .. bucket end
end

local function bucket_key(key)
  local b = BUCKET[key]
  if not b then
    local h = 0
    for i = 1, #key, 4 do
      local a, x, c, d = string.byte(key, i, i + 3)
      h = (h * 923521 + a * 29791 + (x or 0) * 961 + (c or 0) * 31 + (d or 0)) % 2147483647
    end
    b = P .. 'i:' .. num(h % BUCKETS)
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
