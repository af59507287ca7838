-- parcelwatch stream clock: record each partition's greatest event time and idleness, return the
-- check horizon, the lateness bound and the entities whose window ends became final.
-- The same rules as detectors/windows.py (progress).
-- KEYS[1] maxima HASH partition -> greatest event time (ms), only ever raised
-- KEYS[2] idle   HASH partition -> '1' idle, '0' active
-- KEYS[3] due    ZSET entity -> first window end not yet judged
-- ARGV: partitions, lateness_ms, due_limit, then (partition, max_ms or '', idle 0/1) triples
-- Returns JSON [check_until, late_before, [due members]]; times as exact decimal strings.
local n, lateness, limit = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local far = 2 ^ 62
local function fmt(x) return string.format('%.17g', x) end

for i = 4, #ARGV, 3 do
  local p, t, idle = ARGV[i], ARGV[i + 1], ARGV[i + 2]
  if t ~= '' then
    local cur = redis.call('HGET', KEYS[1], p)
    if (not cur) or tonumber(t) > tonumber(cur) then redis.call('HSET', KEYS[1], p, t) end
  end
  redis.call('HSET', KEYS[2], p, idle)
end

local low, active, blocked, known = nil, false, false, nil
for p = 0, n - 1 do
  local raw = redis.call('HGET', KEYS[1], tostring(p))
  local t = raw and tonumber(raw) or nil
  if t ~= nil and (known == nil or t > known) then known = t end
  if redis.call('HGET', KEYS[2], tostring(p)) ~= '1' then
    active = true
    if t == nil then
      blocked = true
    elseif low == nil or t < low then
      low = t
    end
  end
end

local check_until, late_before
if not active then
  check_until = far
  late_before = known and (known - lateness) or -far
elseif blocked then
  check_until, late_before = -far, -far
else
  check_until = low - lateness
  late_before = check_until
end
local due = redis.call('ZRANGEBYSCORE', KEYS[3], '-inf', '(' .. fmt(check_until), 'LIMIT', 0, limit)
return cjson.encode({fmt(check_until), fmt(late_before), due})
