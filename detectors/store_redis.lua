-- parcelwatch window store: apply a batch of parcel updates to several entities, prune, check
-- rules and raise alerts, atomically. The same steps as detectors/windows.py (park_updates, apply_entity);
-- the contract tests hold the two equal.
--
-- Each entity has two keys, both with the entity's hash tag (built here from the prefix, its type and its
-- key, not passed in KEYS: a batch names thousands of entities, and passing their keys cost the call
-- a tenth of its time; on Redis Cluster the prefix is the hash tag of every key, docs/windows.md):
--   <prefix>:{<type>:<key>}:r  HASH  parcel key -> "anchor|mass|weight|rank|version_ms|cancelled|reasons|version_id"
--                             (version_ms empty when it equals the anchor; version_id with the parcel's
--                             waybill written as the byte 1, vid_out below), and the entity's meta fields,
--                             whose names hold no ':' (every parcel key, "<courier>:<waybill>", does; rule
--                             ids cannot): wm (watermark), ep!<rule> episode, em!<rule> mass at last alert,
--                             pa!<alert id> pending alert JSON, pc!<alert id> wall-clock ms it was last
--                             handed out (claimed), npa number of pending alerts,
--                             cf/ct first window end not yet judged / end of the ends any change reached,
--                             sw the windows at the last end judged ("<end>;<rule>|<width>|<milligrams>|<count>;..."),
--                             sup!<rule> wall-clock ms until which an analyst suppressed the rule.
--                             One hash, not two: every key has a cost of its own.
--   <prefix>:{<type>:<key>}:z  ZSET  parcel key scored by anchor (event time, ms)
-- KEYS, the four keys of the whole stream:
--   KEYS[#KEYS-3] maxima HASH partition -> greatest event time read from it (ms), only ever raised
--   KEYS[#KEYS-2] idle   HASH partition -> '1' idle, '0' active
--   KEYS[#KEYS-1] due    ZSET "<entity type>:<key>" scored by cf: entities with ends to judge
--   KEYS[#KEYS]   claims ZSET "<entity type>:<key>" scored by the oldest claim of its pending alerts
-- Parked records (not in KEYS, like the cluster keys; detectors/windows.py: park_parcels, park_updates):
--   <prefix>:p:<parcel key> STRING: per entity, the record, as above, of a parcel that never counted
--   for it, or '*<type>:<key>': that entity holds the record ('*' alone, written before holders were
--   named: an entity holds it), or '><type>:<key>': an entity of another shard may hold it (a sharded
--   store's parcel's home shard: its parcel-wide updates are handed back for that shard); under the
--   tag '~', the record of the parcel's parcel-wide updates (parked_of below has the format).
--   Expires parked_ms after its last write (wall clock), or with the entities once it marks one.
-- An alert is handed out once, to the call that raised it, and again only when it is still not
-- acknowledged reclaim_ms later (wall clock): two workers touching one entity never both publish it.
-- Cluster keys (not in KEYS: the roots are found here; one hash slot on Redis Cluster, where the prefix
-- is the hash tag): <prefix>:cl:pending ZSET of
--   entries scored by event time, <prefix>:cl:parent HASH identifier -> identifier it joined under,
--   and the two keys of each cluster entity "cluster:<root>".
-- ARGV[1]: JSON {cfg = {retention_ms, max_parcels, max_evidence, ttl_ms, partitions, lateness_ms, due_limit, now_ms,
--                       prefix, cluster_limit, parked_key_chars, parked_ms}, links = {{time_ms, entry JSON}},
--               rules = {entity_type = {{id, width_ms, threshold, min_parcels, factor, severity, window_s}}},
--               rows = {{parcel, time_ms, mass, weight, rank, event_id, cancelled(0/1), reasons,
--                        the record it writes where it is new}},
--               entities = {{et, key, u = {numbers of its rows}}}, more = {{et, key, u = {}}},
--               parcels = {rows, as above: updates without mass, not cancellations, for their parcels
--                          and every entity that holds or will take them (windows.park_parcels)},
--               A sharded store (store_sharded.py) also sends, to a parcel's home shard:
--               marks = {{parcel, tag, member}: entities of other shards that may take the parcel},
--               pulls = {parcels whose parcel-wide record to return};
--               and to the shards of the entities:
--               wide = {parcel = its parcel-wide record, as its home shard returned it},
--               held = {{et, key, u = {rows}}: parcel-wide updates for an entity, applied where it
--                       holds the parcel and dropped where it does not}.
--               judge = {numbers of the batch's entities that are due (judged even with nothing to apply)},
--               reports = {{partition, max_ms or '', idle 0/1}}}
-- The progress the batch is refused and judged with is read before this call's reports are merged
-- (detectors/windows.py: progress); once they are merged, the entities the new progress made due
-- are judged with it in the same call (up to due_limit of them, and the clusters).
-- Returns JSON {stats = {status = count}, alerts = {pending alert JSON strings},
--               at = {check_until, late_before} as exact decimal strings,
--               due = {members still due: beyond due_limit},
--               forward = {{member, number of a parcels row}: updates for entities of other shards},
--               wide = {each pulled parcel's parcel-wide record, or ''}}.

local req = cjson.decode(ARGV[1])
local batch_entities = #req.entities
-- Entities left due by an earlier call and not in this batch follow the batch's.
for _, ent in ipairs(req.more) do req.entities[#req.entities + 1] = ent end
local cfg = req.cfg
local retention = cfg.retention_ms
local max_key, idle_key, due_key, claims_key = KEYS[#KEYS - 3], KEYS[#KEYS - 2], KEYS[#KEYS - 1], KEYS[#KEYS]
local far = 2 ^ 62
local function stream_progress()
  local low, active, blocked, known = nil, false, false, nil
  for p = 0, cfg.partitions - 1 do
    local raw = redis.call('HGET', max_key, tostring(p))
    local t = raw and tonumber(raw) or nil
    if t ~= nil and (known == nil or t > known) then known = t end
    if redis.call('HGET', idle_key, tostring(p)) ~= '1' then
      active = true
      if t == nil then
        blocked = true
      elseif low == nil or t < low then
        low = t
      end
    end
  end
  if not active then return far, (known and (known - cfg.lateness_ms) or -far) end
  if blocked then return -far, -far end
  return low - cfg.lateness_ms, low - cfg.lateness_ms
end

local check_until, late_before = stream_progress()
local max_parcels, max_evidence, ttl = cfg.max_parcels, cfg.max_evidence, cfg.ttl_ms

local function fmt(x) return string.format('%.17g', x) end
-- Times and ranks are whole numbers: '%d' writes them without the floating-point formatter, which
-- Lua also uses for a number handed to redis.call as it is.
local function int(x) return string.format('%d', x) end
local ttl_text = int(ttl)
-- The shortest decimal that reads back as the same double (masses like 0.1 need 3 bytes, not 19).
local function short(x)
  local s = string.format('%.15g', x)
  if tonumber(s) ~= x then s = fmt(x) end
  return s
end

local function keys_of(et, key)
  local base = cfg.prefix .. ':{' .. et .. ':' .. key .. '}'
  return base .. ':r', base .. ':z'
end

local function is_record(field) return string.find(field, ':', 1, true) ~= nil end

-- Byte order, as Python compares UTF-8 strings; Lua's own '<' follows the server's locale.
local function bytes_less(x, y)
  local n = math.min(#x, #y)
  for i = 1, n do
    local a, b = string.byte(x, i), string.byte(y, i)
    if a ~= b then return a < b end
  end
  return #x < #y
end

-- A record writes its version's event id with the parcel's waybill (the parcel key after its first
-- ':') as the byte \1, once: couriers name an event by its waybill ('JD0001:picked_up',
-- 'SF:SF0001:picked_up:...'), and the record's key or field names the parcel already. An id holding
-- \1, or starting with \2, is written whole after a \2; one without the waybill, as it is.
-- store_redis.py (stored_event_id, event_id_of) writes and reads the same.
local function waybill(pid)
  local colon = string.find(pid, ':', 1, true)
  if colon then return string.sub(pid, colon + 1) end
  return pid
end

local function vid_out(vid, pid)
  if string.byte(vid, 1) == 2 or string.find(vid, '\1', 1, true) then return '\2' .. vid end
  local w = waybill(pid)
  local i = #w > 0 and string.find(vid, w, 1, true)
  if i then return string.sub(vid, 1, i - 1) .. '\1' .. string.sub(vid, i + #w) end
  return vid
end

local function vid_in(stored, pid)
  if string.byte(stored, 1) == 2 then return string.sub(stored, 2) end
  local i = string.find(stored, '\1', 1, true)
  if i then return string.sub(stored, 1, i - 1) .. waybill(pid) .. string.sub(stored, i + 1) end
  return stored
end

-- ``pid``: the record's parcel key.
local function decode(raw, pid)
  local parts, pos = {}, 1
  for i = 1, 7 do
    local s = string.find(raw, '|', pos, true)
    parts[i] = string.sub(raw, pos, s - 1)
    pos = s + 1
  end
  local a = tonumber(parts[1])
  return {a = a, m = tonumber(parts[2]), w = tonumber(parts[3]), r = tonumber(parts[4]),
          vt = parts[5] == '' and a or tonumber(parts[5]), c = parts[6] == '1', rs = parts[7],
          vid = vid_in(string.sub(raw, pos), pid)}
end

-- Most masses are zero.
local function mass_text(x)
  if x == 0 then return '0' end
  return short(x)
end

local function encode(rec, pid)
  return table.concat({int(rec.a), mass_text(rec.m), short(rec.w), int(rec.r), rec.vt == rec.a and '' or int(rec.vt),
                       rec.c and '1' or '0', rec.rs, vid_out(rec.vid, pid)}, '|')
end

local function newer(rank, t, vid, rec)
  if rank ~= rec.r then return rank > rec.r end
  if t ~= rec.vt then return t > rec.vt end
  return bytes_less(rec.vid, vid)
end

-- Fold one accepted update into a record that is not a tombstone (windows._merge): its status,
-- whether the record changed, and the anchors (new, old) where a window may now cross.
local function merge(rec, t, mass, weight, rank, vid, cancel, rs)
  local old = rec.a
  local new = math.min(old, t)
  if cancel then
    rec.c, rec.m, rec.a = true, 0, new
    return 'retracted', true, nil, nil
  end
  local changed = new ~= old
  local dirty = changed
  if newer(rank, t, vid, rec) then
    if mass ~= rec.m or weight ~= rec.w or rs ~= rec.rs then changed = true end
    rec.m, rec.w, rec.rs, rec.r, rec.vt, rec.vid = mass, weight, rs, rank, t, vid
    dirty = true
  end
  rec.a = new
  if not changed then return 'duplicate', dirty, nil, nil end
  -- only a record left live can make a window cross
  if rec.m > 0 then return 'updated', dirty, new, old end
  return 'updated', dirty, nil, nil
end

-- Fold another record into ``rec`` (nil: none), as windows.fold_records: the earliest anchor, the greater
-- version, a cancellation in either. ``other`` is freshly decoded and may be returned as it is.
local function fold(rec, other)
  if rec == nil then return other end
  local best = rec
  if newer(other.r, other.vt, other.vid, rec) then best = other end
  local c = rec.c or other.c
  return {a = math.min(rec.a, other.a), m = c and 0 or best.m, w = best.w, r = best.r, vt = best.vt,
          vid = best.vid, c = c, rs = best.rs}
end

-- A parked value that marks an entity holding the parcel: '*' then the entity's member.
local function holds(value) return value ~= nil and string.byte(value, 1) == 42 end
-- One that marks an entity of another shard that may hold it: '>' then the entity's member.
local function remote(value) return value ~= nil and string.byte(value, 1) == 62 end
local pulled = req.wide or {}

-- Parked records: one string per parcel, read once per call and written whole. For each distinct
-- value (a record, or '*': the entity holds it), "<bytes>:<value><tag> <tag>...\n", the value
-- first and by its length, as an event id may hold any character. A tag is a one-letter code for the
-- entity's type, then the first cfg.parked_key_chars of its key (windows.parked_tag; store_redis.py:
-- parked_records reads them). Strings written with whole keys are read as if cut.
local TYPE_CODE = {sender_phone = 'a', sender_account = 'b', sender_address = 'c', recipient = 'd',
                   recipient_address = 'e', pickup_point = 'f'}
local tag_len = cfg.parked_key_chars + 1
local function parked_tag(et, key)
  local code = TYPE_CODE[et]
  if code then return code .. string.sub(key, 1, tag_len - 1) end
  return et .. ':' .. key
end
local parked, parked_dirty, dirty_order = {}, {}, {}
local function parked_key(pid) return cfg.prefix .. ':p:' .. pid end
-- A tag as read: one written with a whole key (before keys were cut) is cut as the script cuts them.
local function cut_tag(tag)
  if #tag > tag_len and not string.find(tag, ':', 1, true) then return string.sub(tag, 1, tag_len) end
  return tag
end
local function parked_of(pid)
  local st = parked[pid]
  if st == nil then
    st = {}
    local raw = redis.call('GET', parked_key(pid))
    if raw then
      local pos, n = 1, #raw
      while pos <= n do
        local colon = string.find(raw, ':', pos, true)
        local stop = colon + tonumber(string.sub(raw, pos, colon - 1))
        local value = string.sub(raw, colon + 1, stop)
        local eol = string.find(raw, '\n', stop + 1, true)
        local tags = string.sub(raw, stop + 1, eol - 1)
        if not string.find(tags, ' ', 1, true) then  -- one tag, as nearly always: no iterator
          st[cut_tag(tags)] = value
        else
          for tag in string.gmatch(tags, '[^ ]+') do st[cut_tag(tag)] = value end
        end
        pos = eol + 1
      end
    end
    parked[pid] = st
  end
  return st
end
-- A parcel's parked records live cfg.parked_ms after their last write (the retention unless set
-- shorter); once one marks an entity that holds the record ('*'), as long as the entities' keys, if
-- that is longer: the mark sends the parcel's later updates to the entity.
local function parked_life(value, ms)
  if (holds(value) or remote(value)) and ttl > ms then return ttl end
  return ms
end
local function parked_line(value, tags) return #value .. ':' .. value .. tags .. '\n' end
local function write_parked(pid)
  local st, ms = parked[pid], cfg.parked_ms
  -- Nearly every string holds one record, the parcel-wide one: written without grouping tables.
  local only_tag, only_value = next(st)
  if only_tag ~= nil and next(st, only_tag) == nil then
    redis.call('SET', parked_key(pid), parked_line(only_value, only_tag), 'PX', parked_life(only_value, ms))
    return
  end
  local by_value, values = {}, {}
  for tag, value in pairs(st) do
    local tags = by_value[value]
    if tags == nil then
      tags = {}
      by_value[value] = tags
      values[#values + 1] = value
      ms = parked_life(value, ms)
    end
    tags[#tags + 1] = tag
  end
  local out = {}
  for i, value in ipairs(values) do
    out[i] = parked_line(value, table.concat(by_value[value], ' '))
  end
  redis.call('SET', parked_key(pid), table.concat(out), 'PX', ms)
end
local function park_now(pid, tag, value)
  parked_of(pid)[tag] = value
  write_parked(pid)
end

local function hdel_chunks(key, members)
  for i = 1, #members, 500 do
    redis.call('HDEL', key, unpack(members, i, math.min(i + 499, #members)))
  end
end

local stats = {added = 0, updated = 0, retracted = 0, duplicate = 0, late = 0, pruned = 0, evicted = 0, suppressed = 0}
local pending = {}

-- The windows 'sw' kept: the last end judged, and each rule's window there by rule id.
local function read_kept(sw_raw)
  if not sw_raw then return nil, {} end
  local u_text, rest = string.match(sw_raw, '^([^;]*);(.*)$')
  local u, windows = tonumber(u_text), {}
  for rid, w, sum, n in string.gmatch(rest, '([^|;]+)|([^|;]+)|([^|;]+)|([^|;]+)') do
    windows[rid] = {u = u, w = tonumber(w), sum = tonumber(sum), n = tonumber(n)}
  end
  return u, windows
end

-- Whether a kept window still holds exactly its live records: nothing at or before its end
-- changed, and whatever pruning or the cap removed lay wholly before its start.
local function still_kept(window, changed_lo, removed_hi)
  return (changed_lo == nil or changed_lo > window.u) and (removed_hi == nil or removed_hi <= window.u - window.w)
end

-- Apply one entity's updates, prune, judge its ends before check_until (see windows.apply_entity).
local function process(ent, rkey, zkey, check_until, late_before, judge_from, parks)
  local tag = parked_tag(ent.et, ent.key)
  local wm_raw, cf_raw, ct_raw, sw_raw = unpack(redis.call('HMGET', rkey, 'wm', 'cf', 'ct', 'sw'))
  local wm = wm_raw and tonumber(wm_raw) or nil
  local wm_before = wm
  -- No watermark: no update was ever accepted here, so the entity holds no record and no anchor
  -- but those this call writes (most entities touched are new: a recipient, a building).
  local fresh, written, oldest = not wm_raw, 0, nil
  local lo, hi = nil, nil
  -- The earliest anchor of any record this call changed (live or not), and the latest anchor
  -- pruning or the cap may have removed: either may stale the windows 'sw' kept (below).
  local changed_lo, removed_hi = nil, nil
  local function removed_upto(a)
    if removed_hi == nil or a > removed_hi then removed_hi = a end
  end
  local function changed(a)
    if changed_lo == nil or a < changed_lo then changed_lo = a end
  end
  local function touch(x)
    if lo == nil or x < lo then lo = x end
    if hi == nil or x > hi then hi = x end
  end
  local function advance(t)
    if wm == nil or t > wm then wm = t end
  end

  for _, u in ipairs(ent.u) do
    local pid, t, mass, weight, rank, vid, cancel, rs = u[1], u[2], u[3], u[4], u[5], u[6], u[7] == 1, u[8]
    local raw = nil
    local status
    if t < late_before then
      status = 'late'
    elseif not fresh or written > 0 then
      raw = redis.call('HGET', rkey, pid)
    end
    if status then
      -- late: counted, never applied
    elseif raw then
      local rec = decode(raw, pid)
      if rec.c then
        status = 'duplicate'
      else
        advance(t)
        local dirty, new, old
        status, dirty, new, old = merge(rec, t, mass, weight, rank, vid, cancel, rs)
        if new ~= nil then touch(new); touch(old) end
        if dirty then
          changed(rec.a)  -- an anchor only ever moves earlier
          redis.call('HSET', rkey, pid, encode(rec, pid))
          redis.call('ZADD', zkey, int(rec.a), pid)
          -- a fresh entity's record written earlier in this call may move to an earlier anchor
          if oldest ~= nil and rec.a < oldest then oldest = rec.a end
        end
      end
    else
      -- The entity's parked record, the parcel-wide one folded in (windows._parked_view).
      local rec, held, wide, stored = nil, nil, nil, nil
      if parks then
        local st = parked_of(pid)
        stored, wide = st[tag], st['~'] or pulled[pid]
        if wide == '' then wide = nil end
        if not holds(stored) then held = stored end
      end
      local dirty, new, old = true, nil, nil
      if held or wide then
        if held then rec = decode(held, pid) end
        if wide then rec = fold(rec, decode(wide, pid)) end
        if rec.c then
          status, rec = 'duplicate', nil
        else
          status, dirty, new, old = merge(rec, t, mass, weight, rank, vid, cancel, rs)
        end
      else
        rec = {a = t, m = cancel and 0 or mass, w = weight, r = rank, vt = t, vid = vid, c = cancel, rs = rs}
        if cancel then
          status = 'retracted'
        else
          status = 'added'
          if mass > 0 then new, old = t, t end
        end
      end
      if rec == nil then
        -- a parked tombstone: nothing applied
      elseif parks and (rec.c or rec.m <= 0) then
        -- still not live: stays parked (the parcel-wide record folded in, as the memory store keeps it)
        local value = (held or wide) and encode(rec, pid) or (u[9] or encode(rec, pid))
        if value ~= stored then park_now(pid, tag, value) end
      else
        advance(t)
        changed(rec.a)
        -- A new record: the batch's rows carry it written out, cluster entries do not.
        if held or wide then
          redis.call('HSET', rkey, pid, encode(rec, pid))
          redis.call('ZADD', zkey, int(rec.a), pid)
        else
          redis.call('HSET', rkey, pid, u[9] or encode(rec, pid))
          redis.call('ZADD', zkey, int(t), pid)
        end
        written = written + 1
        if oldest == nil or rec.a < oldest then oldest = rec.a end
        if new ~= nil then touch(new); touch(old) end
        if parks then park_now(pid, tag, '*' .. ent.et .. ':' .. ent.key) end
      end
    end
    stats[status] = stats[status] + 1
  end

  if wm ~= nil and wm ~= wm_before then
    redis.call('HSET', rkey, 'wm', int(wm))
  end

  local rules = req.rules[ent.et] or {}
  local reach = 0
  for _, rule in ipairs(rules) do
    if rule[2] > reach then reach = rule[2] end
  end
  if lo ~= nil and judge_from ~= nil then
    if judge_from > lo then lo = judge_from end
    if lo >= hi + reach then lo, hi = nil, nil end
  end
  local cf, ct = cf_raw and tonumber(cf_raw) or nil, ct_raw and tonumber(ct_raw) or nil
  if lo ~= nil then
    if cf == nil or lo < cf then cf = lo end
    if ct == nil or hi + reach > ct then ct = hi + reach end
  end

  if wm ~= nil then
    local horizon = math.min(wm, check_until)
    if cf ~= nil then horizon = math.min(horizon, cf) end
    local n = written
    -- A fresh entity holds only the records this call wrote: none to prune below the oldest of
    -- them, and their number is known.
    if not (fresh and oldest ~= nil and oldest >= horizon - retention) then
      local cutoff = '(' .. fmt(horizon - retention)
      local old = redis.call('ZRANGEBYSCORE', zkey, '-inf', cutoff)
      if #old > 0 then
        hdel_chunks(rkey, old)
        redis.call('ZREMRANGEBYSCORE', zkey, '-inf', cutoff)
        stats.pruned = stats.pruned + #old
        removed_upto(horizon - retention)  -- every anchor removed lies below it
      end
      n = redis.call('ZCARD', zkey)
    end
    if n > max_parcels then
      local popped = redis.call('ZPOPMIN', zkey, n - max_parcels)
      local members = {}
      for j = 1, #popped, 2 do members[#members + 1] = popped[j] end
      hdel_chunks(rkey, members)
      stats.evicted = stats.evicted + #members
      removed_upto(tonumber(popped[#popped]))  -- the highest anchor popped
    end
  end

  local member = ent.et .. ':' .. ent.key
  if cf ~= nil and cf < check_until then
    local lo_end, upto = cf, math.min(check_until, ct) - 1
    -- Each rule's window slides over the ends from where the last judging left it: 'sw' keeps,
    -- for the last end judged (U), each rule's live records in (U - width, U], as a count and a
    -- mass in whole milligrams (integers add up alike in any order, so the sum equals windows.py's,
    -- which adds the window afresh). Only the records entering (after U) and leaving (after
    -- U - width) are read, not the whole widest window at each call: a busy entity's call no
    -- longer grows with the records its windows hold (BENCHMARKS.md, "Judging busy entities").
    -- A kept window stands only while nothing at or before U changed and what pruning or the cap
    -- removed lay before its start (pruning removes what left every window long ago); otherwise
    -- the window is read afresh from the first end to judge.
    local kept = {}
    local u_kept, windows = read_kept(sw_raw)
    if u_kept ~= nil and u_kept < lo_end then
      for rid, window in pairs(windows) do
        if still_kept(window, changed_lo, removed_hi) then kept[rid] = window end
      end
    end
    local cache = {}
    -- The live records with anchors in (from, to], by anchor then member bytes (as ZRANGEBYSCORE).
    local function live_between(from, to)
      local out = {}
      if to <= from then return out end
      local range = redis.call('ZRANGEBYSCORE', zkey, '(' .. fmt(from), fmt(to))
      for first = 1, #range, 500 do
        local last = math.min(first + 499, #range)
        local missing = {}
        for j = first, last do
          if cache[range[j]] == nil then missing[#missing + 1] = range[j] end
        end
        if #missing > 0 then
          local raws = redis.call('HMGET', rkey, unpack(missing))
          for j = 1, #raws do
            local rec = decode(raws[j], missing[j])
            rec.p = missing[j]
            rec.g = math.floor(rec.m * 1000000 + 0.5)
            cache[missing[j]] = rec
          end
        end
        for j = first, last do
          local rec = cache[range[j]]
          if (not rec.c) and rec.m > 0 then out[#out + 1] = rec end
        end
      end
      return out
    end
    local starts, earliest = {}, nil
    for _, rule in ipairs(rules) do
      local k = kept[rule[1]]
      local start
      if k and k.w == rule[2] then
        start = {u = k.u, sum = k.sum, n = k.n, kept = true}
      else
        -- afresh: an empty window at lo_end - width; only what enters after it can leave
        local u = lo_end - rule[2]
        start = {u = u, sum = 0, n = 0, kept = false}
      end
      starts[rule[1]] = start
      if earliest == nil or start.u < earliest then earliest = start.u end
    end
    local entering = earliest and live_between(earliest, upto) or {}
    local summaries = {}
    for _, rule in ipairs(rules) do
      local rid, width, thr, minp, factor, sev, wsec = rule[1], rule[2], rule[3], rule[4], rule[5], rule[6], rule[7]
      local st = starts[rid]
      local sum, count = st.sum, st.n
      -- What leaves, in order: the records kept in (U - width, U] up to upto - width, then those
      -- entering after U.
      local head = {}
      if st.kept then head = live_between(st.u - width, math.min(st.u, upto - width)) end
      local first = 1
      while first <= #entering and entering[first].a <= st.u do first = first + 1 end
      local out = 1
      local function leaving(k)
        if k <= #head then return head[k] end
        return entering[first + k - #head - 1]
      end
      local function leave_until(t)
        while true do
          local rec = leaving(out)
          if rec == nil or rec.a > t then return end
          sum, count, out = sum - rec.g, count - 1, out + 1
        end
      end
      local ep_raw, em_raw, sup = unpack(redis.call('HMGET', rkey, 'ep!' .. rid, 'em!' .. rid, 'sup!' .. rid))
      local ep, em = tonumber(ep_raw or '0'), tonumber(em_raw or '0')
      local suppressed = sup and tonumber(sup) > cfg.now_ms
      for e = first, #entering do
        local a = entering[e].a
        sum, count = sum + entering[e].g, count + 1
        local is_end = a >= lo_end and not (e < #entering and entering[e + 1].a == a)
        if is_end and not (ep > 0 and factor == 0) then
          leave_until(a - width)
          local mass = sum / 1000000
          local target = thr
          if ep > 0 then target = em * factor end
          if mass >= target and count >= minp and suppressed then
            stats['suppressed'] = stats['suppressed'] + 1
          elseif mass >= target and count >= minp then
            ep, em = ep + 1, mass
            redis.call('HSET', rkey, 'ep!' .. rid, ep, 'em!' .. rid, fmt(mass))
            -- The window itself, for its evidence: read whole only when it raises an alert.
            local window, tw, rc = live_between(a - width, a), 0, {}
            for _, rec in ipairs(window) do
              tw = tw + rec.w
              for code in string.gmatch(rec.rs, '[^,]+') do rc[code] = (rc[code] or 0) + 1 end
            end
            local t0 = window[1].a
            table.sort(window, function(x, y)
              if x.m ~= y.m then return x.m > y.m end
              if x.a ~= y.a then return x.a < y.a end
              return bytes_less(x.p, y.p)
            end)
            local evidence = {}
            for k = 1, math.min(#window, max_evidence) do
              local rec = window[k]
              evidence[k] = {rec.p, rec.a, rec.m, rec.w, rec.rs}
            end
            local id = string.sub(redis.sha1hex(rid .. '|' .. ent.et .. '|' .. ent.key .. '|' .. ep), 1, 24)
            local alert = {id = id, rule = rid, et = ent.et, key = ent.key, ep = ep, ws = wsec, sev = sev,
                           sum = mass, tw = tw, n = count, t0 = t0, t1 = a, ev = evidence, rc = rc}
            local encoded = cjson.encode(alert)
            redis.call('HSET', rkey, 'pa!' .. id, encoded, 'pc!' .. id, fmt(cfg.now_ms))
            redis.call('HINCRBY', rkey, 'npa', 1)
            redis.call('ZADD', claims_key, 'LT', cfg.now_ms, ent.et .. ':' .. ent.key)
            -- LT: a member already waiting keeps its older claim time (new members are always added)
            pending[#pending + 1] = encoded
          end
        end
      end
      leave_until(upto - width)
      summaries[#summaries + 1] = rid .. '|' .. int(width) .. '|' .. int(sum) .. '|' .. int(count)
    end
    redis.call('HSET', rkey, 'sw', int(upto) .. ';' .. table.concat(summaries, ';'))
    if ct <= check_until then
      cf, ct = nil, nil
    else
      cf = check_until
    end
  elseif sw_raw and (changed_lo ~= nil or removed_hi ~= nil) then
    local _, windows = read_kept(sw_raw)
    for _, window in pairs(windows) do
      if not still_kept(window, changed_lo, removed_hi) then
        redis.call('HDEL', rkey, 'sw')
        break
      end
    end
  end
  if cf ~= nil then
    if cf_raw == nil or cf ~= tonumber(cf_raw) or ct ~= tonumber(ct_raw) then
      redis.call('HSET', rkey, 'cf', fmt(cf), 'ct', fmt(ct))
      redis.call('ZADD', due_key, cf, member)
    end
  elseif cf_raw then
    redis.call('HDEL', rkey, 'cf', 'ct')
    redis.call('ZREM', due_key, member)
  end


  -- Both keys carry one expiry, and it is never shortened: an analyst's suppression may reach
  -- further than the idle expiry. A fresh entity's records hash has none yet (NX), unless a
  -- suppression came first.
  -- A fresh entity this call wrote nothing to (its updates stayed parked) does not exist.
  if ttl > 0 and not (fresh and written == 0)
      and not (fresh and redis.call('PEXPIRE', rkey, ttl_text, 'NX') == 1 and redis.call('PEXPIRE', zkey, ttl_text)) then
    local left = redis.call('PTTL', rkey)
    if left < ttl then
      redis.call('PEXPIRE', rkey, ttl_text)
      left = ttl
    end
    redis.call('PEXPIRE', zkey, int(left))
  end
end

local rows = req.rows
for _, ent in ipairs(req.entities) do
  for k, row in ipairs(ent.u) do ent.u[k] = rows[row] end
end

local function mark_dirty(pid)
  if not parked_dirty[pid] then
    parked_dirty[pid] = true
    dirty_order[#dirty_order + 1] = pid
  end
end

-- Fold an update without mass, not a cancellation, into the parked record under ``tag`` in the
-- parcel's string (windows._park); return its status. The string is written once, after phase 1.
local function park_row(st, tag, pid, u)
  local stored = st[tag]
  local status, dirty, value = 'added', true, u[9]
  if stored then
    local rec = decode(stored, pid)
    if rec.c then return 'duplicate' end
    local t, own = u[2], u[9]
    local won = newer(u[5], t, u[6], rec)
    status, dirty = merge(rec, t, u[3], u[4], u[5], u[6], false, u[8])
    -- Where the update's version won, the record is the one the row brings (u[9], encoded by
    -- store_redis.py's _row with its own time as anchor and version), with the earlier anchor kept:
    -- a cut and a join of that text, not encode()'s formatting of every field.
    if dirty and not won then
      value = encode(rec, pid)
    elseif dirty and rec.a ~= t then
      local cut = string.find(own, '||', 1, true)  -- the empty version time: mass, weight and rank are never empty
      value = int(rec.a) .. string.sub(own, string.find(own, '|', 1, true), cut) .. int(t) .. string.sub(own, cut + 1)
    end
  end
  if dirty then
    st[tag] = value
    mark_dirty(pid)
  end
  return status
end

-- A sharded store's marks, before the parcel-wide updates: those of this call reach them too.
for _, m in ipairs(req.marks or {}) do
  local st = parked_of(m[1])
  if not holds(st[m[2]]) and st[m[2]] ~= '>' .. m[3] then
    st[m[2]] = '>' .. m[3]
    mark_dirty(m[1])
  end
end

-- Apply rows to an entity where it holds their parcels (windows.park_parcels: the parcel-wide
-- updates reach the entities that hold their parcels).
local function apply_held(member, rows)
  local et, key = string.match(member, '^([^:]+):(.*)$')
  local rk, zk = keys_of(et, key)
  local kept = {}
  for _, u in ipairs(rows) do
    if redis.call('HEXISTS', rk, u[1]) == 1 then kept[#kept + 1] = u end
  end
  if #kept > 0 then process({et = et, key = key, u = kept}, rk, zk, check_until, late_before, nil, true) end
end

-- Phase 0 (windows.park_parcels): the parcel-wide updates fold into their parcels' '~' records,
-- and are applied to the entities that hold their parcels; those for entities of other shards are
-- handed back.
local holder_rows, holder_order, forward = {}, {}, {}
for i, u in ipairs(req.parcels) do
  if u[2] < late_before then
    stats.late = stats.late + 1
  else
    local st = parked_of(u[1])
    local status = park_row(st, '~', u[1], u)
    stats[status] = stats[status] + 1
    for _, v in pairs(st) do
      if holds(v) and #v > 1 then
        local member = string.sub(v, 2)
        local list = holder_rows[member]
        if list == nil then
          list = {}
          holder_rows[member] = list
          holder_order[#holder_order + 1] = member
        end
        list[#list + 1] = u
      elseif remote(v) then
        forward[#forward + 1] = {string.sub(v, 2), i}
      end
    end
  end
end
for _, member in ipairs(holder_order) do apply_held(member, holder_rows[member]) end
for _, h in ipairs(req.held or {}) do apply_held(h.et .. ':' .. h.key, h.u) end
local wide_out = {}
for i, pid in ipairs(req.pulls or {}) do wide_out[i] = parked_of(pid)['~'] or '' end

-- Phase 1 (windows.park_updates): updates without mass that are not cancellations, on parcels the
-- entity does not hold, go to the parked records; the rest stay, in order, for phase 2.
for _, ent in ipairs(req.entities) do
  if ent.et ~= 'cluster' and #ent.u > 0 then
    local tag, rest, applied = parked_tag(ent.et, ent.key), {}, {}
    for _, u in ipairs(ent.u) do
      if u[3] > 0 or u[7] == 1 or applied[u[1]] then
        rest[#rest + 1] = u
        applied[u[1]] = true
      elseif u[2] < late_before then
        stats.late = stats.late + 1
      else
        local pid = u[1]
        local st = parked_of(pid)
        local held = st[tag]
        if holds(held) then
          rest[#rest + 1] = u
          applied[pid] = true
        else
          local status = park_row(st, tag, pid, u)
          stats[status] = stats[status] + 1
        end
      end
    end
    ent.u = rest
  end
end
for _, pid in ipairs(dirty_order) do write_parked(pid) end

-- Phase 2: the entities left with updates, or due, are applied and judged.
local judge = {}
for _, i in ipairs(req.judge) do judge[i] = true end
local later = {}
for i, ent in ipairs(req.entities) do
  if ent.et == 'cluster' then
    later[#later + 1] = ent.key
  elseif #ent.u > 0 or judge[i] or i > batch_entities then
    local rk, zk = keys_of(ent.et, ent.key)
    process(ent, rk, zk, check_until, late_before, nil, true)
  end
end

-- Clusters (detectors/clusters.py): pending entries fold in, oldest first, once final.
local pend_key, parent_key = cfg.prefix .. ':cl:pending', cfg.prefix .. ':cl:parent'
for _, link in ipairs(req.links) do
  if link[1] >= late_before then redis.call('ZADD', pend_key, 'NX', link[1], link[2]) end
end

local function root_of(node)
  while true do
    local up = redis.call('HGET', parent_key, node)
    if not up then return node end
    node = up
  end
end

local function survivor(a, b)
  local _, za = keys_of('cluster', a)
  local _, zb = keys_of('cluster', b)
  local na, nb = redis.call('ZCARD', za), redis.call('ZCARD', zb)
  if na ~= nb then
    if na > nb then return a end
    return b
  end
  if bytes_less(a, b) then return a end
  return b
end

local function merge(keep, gone)
  local kr, kz = keys_of('cluster', keep)
  local gr, gz = keys_of('cluster', gone)
  local all = redis.call('HGETALL', gr)
  local g = {}
  for j = 1, #all, 2 do
    local pid = all[j]
    if not is_record(pid) then
      g[pid] = all[j + 1]
    else
      local rec = decode(all[j + 1], pid)
      local mine_raw = redis.call('HGET', kr, pid)
      if mine_raw then
        local out = fold(decode(mine_raw, pid), rec)
        redis.call('HSET', kr, pid, encode(out, pid))
        redis.call('ZADD', kz, out.a, pid)
      else
        redis.call('HSET', kr, pid, all[j + 1])
        redis.call('ZADD', kz, rec.a, pid)
      end
    end
  end
  local function mine(field) return redis.call('HGET', kr, field) end
  if g.wm then
    local m = mine('wm')
    if (not m) or tonumber(g.wm) > tonumber(m) then redis.call('HSET', kr, 'wm', g.wm) end
  end
  local kept = {}
  for field, value in pairs(g) do
    local kind = string.sub(field, 1, 3)
    if kind == 'ep!' then
      local rid = string.sub(field, 4)
      local ep, em = tonumber(value), tonumber(g['em!' .. rid])
      local kep, kem = tonumber(mine(field) or '0'), tonumber(mine('em!' .. rid) or '0')
      if ep > kep or (ep == kep and em > kem) then
        redis.call('HSET', kr, field, value, 'em!' .. rid, g['em!' .. rid])
      end
    elseif kind == 'sup' then
      local m = mine(field)
      if (not m) or tonumber(value) > tonumber(m) then redis.call('HSET', kr, field, value) end
    elseif kind == 'pa!' or kind == 'pc!' or field == 'npa' then
      kept[#kept + 1] = field
      kept[#kept + 1] = value
    end
  end
  if g.cf then
    local m = mine('cf')
    if (not m) or tonumber(g.cf) < tonumber(m) then
      redis.call('HSET', kr, 'cf', g.cf)
      redis.call('ZADD', due_key, g.cf, 'cluster:' .. keep)
    end
  end
  if g.ct then
    local m = mine('ct')
    if (not m) or tonumber(g.ct) > tonumber(m) then redis.call('HSET', kr, 'ct', g.ct) end
  end
  redis.call('HDEL', kr, 'sw')  -- the keeper's windows changed
  redis.call('DEL', gr, gz)
  redis.call('ZREM', due_key, 'cluster:' .. gone)
  if #kept > 0 then
    -- alerts raised but not yet acknowledged stay where they were raised
    redis.call('HSET', gr, unpack(kept))
    if ttl > 0 then redis.call('PEXPIRE', gr, ttl) end
  end
end

-- Fold in the entries final before horizon, then judge the clusters touched and those in later.
local function advance_clusters(horizon, later)
  local ready = redis.call('ZRANGEBYSCORE', pend_key, '-inf', '(' .. fmt(horizon), 'WITHSCORES', 'LIMIT', 0,
                           cfg.cluster_limit + 1)
  local touched, touched_list = {}, {}
  local taken = math.min(#ready / 2, cfg.cluster_limit)
  for k = 1, taken do
    local member = ready[2 * k - 1]
    redis.call('ZREM', pend_key, member)
    local e = cjson.decode(member)
    local t, nodes = e[2], e[9]
    local seen, roots = {}, {}
    for _, node in ipairs(nodes) do
      local r = root_of(node)
      if not seen[r] then
        seen[r] = true
        roots[#roots + 1] = r
      end
    end
    table.sort(roots, bytes_less)
    for _, r in ipairs(roots) do
      local rk, zk = keys_of('cluster', r)
      process({et = 'cluster', key = r, u = {}}, rk, zk, t, -far, nil)
    end
    local keep = roots[1]
    for j = 2, #roots do keep = survivor(keep, roots[j]) end
    for _, r in ipairs(roots) do
      if r ~= keep then
        merge(keep, r)
        redis.call('HSET', parent_key, r, keep)
        touched[r] = nil
      end
    end
    for _, node in ipairs(nodes) do
      if node ~= keep then redis.call('HSET', parent_key, node, keep) end
    end
    local rk, zk = keys_of('cluster', keep)
    process({et = 'cluster', key = keep, u = {{e[1], t, e[3], e[4], e[5], e[6], e[7], e[8]}}}, rk, zk, t, -far, t)
    if not touched[keep] then
      touched[keep] = true
      touched_list[#touched_list + 1] = keep
    end
  end
  local cluster_until = horizon
  if #ready / 2 > cfg.cluster_limit then cluster_until = tonumber(ready[2 * cfg.cluster_limit + 2]) end
  local finals, final_seen = {}, {}
  for _, list in ipairs({touched_list, later}) do
    for _, r in ipairs(list) do
      if (list == later or touched[r]) and not final_seen[r] then
        final_seen[r] = true
        finals[#finals + 1] = r
      end
    end
  end
  table.sort(finals, bytes_less)
  for _, r in ipairs(finals) do
    if redis.call('HEXISTS', parent_key, r) == 0 then
      local rk, zk = keys_of('cluster', r)
      process({et = 'cluster', key = r, u = {}}, rk, zk, cluster_until, -far, nil)
    end
  end
end
advance_clusters(check_until, later)

-- Alerts raised but not acknowledged within reclaim_ms (their worker died between this call and
-- its acknowledgement) are handed out again, to whichever worker calls, and claimed anew.
local stale = redis.call('ZRANGEBYSCORE', claims_key, '-inf', fmt(cfg.now_ms - cfg.reclaim_ms), 'LIMIT', 0,
                         cfg.due_limit)
for _, member in ipairs(stale) do
  local et, key = string.match(member, '^([^:]+):(.*)$')
  local mk = keys_of(et, key)
  local all = redis.call('HGETALL', mk)
  local fields = {}
  for j = 1, #all, 2 do fields[all[j]] = all[j + 1] end
  local oldest = nil
  for field, value in pairs(fields) do
    if string.sub(field, 1, 3) == 'pa!' then
      local id = string.sub(field, 4)
      local claimed = tonumber(fields['pc!' .. id] or '0')
      if claimed <= cfg.now_ms - cfg.reclaim_ms then
        pending[#pending + 1] = value
        redis.call('HSET', mk, 'pc!' .. id, fmt(cfg.now_ms))
        claimed = cfg.now_ms
      end
      if oldest == nil or claimed < oldest then oldest = claimed end
    end
  end
  if oldest == nil then
    redis.call('ZREM', claims_key, member)
  else
    redis.call('ZADD', claims_key, oldest, member)
  end
end

for _, report in ipairs(req.reports) do
  local p, t, idle = tostring(report[1]), report[2], tostring(report[3])
  if t ~= '' then
    local cur = redis.call('HGET', max_key, p)
    if (not cur) or tonumber(t) > tonumber(cur) then redis.call('HSET', max_key, p, t) end
  end
  redis.call('HSET', idle_key, p, idle)
end
-- The reports may have moved the horizon: judge what they made final now, not one call later.
local next_until, next_late = stream_progress()
local function due_before(horizon)
  return redis.call('ZRANGEBYSCORE', due_key, '-inf', '(' .. fmt(horizon), 'LIMIT', 0, cfg.due_limit)
end
local due_clusters = {}
for _, member in ipairs(due_before(next_until)) do
  local et, key = string.match(member, '^([^:]+):(.*)$')
  if et == 'cluster' then
    due_clusters[#due_clusters + 1] = key
  else
    local rk, zk = keys_of(et, key)
    process({et = et, key = key, u = {}}, rk, zk, next_until, next_late, nil, true)
  end
end
advance_clusters(next_until, due_clusters)
local due = due_before(next_until)

return cjson.encode({stats = stats, alerts = pending, at = {fmt(check_until), fmt(late_before)}, due = due,
                     forward = forward, wide = wide_out})
