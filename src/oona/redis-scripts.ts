/**
 * Lua scripts of `RedisStreamStore`. Both keep each consumer group's `entries-read`
 * counter exact, so XINFO GROUPS always reports `lag` as "retained entries after the
 * last-delivered id" — the number the bus's depth needs and `MemoryStreamStore` computes.
 *
 * Why: Redis 7.0 creates a group with an unknown counter (unless ENTRIESREAD is given) and
 * then reports `lag` as nil whenever the group stands between the first and the last entry,
 * i.e. exactly when a backlog exists. With a known counter, XREADGROUP keeps it exact; the
 * one way to make it wrong is trimming entries the group has not read yet, which
 * {@link TRIM_BEFORE_SCRIPT} repairs. (XDEL would also invalidate it; the store never uses it.)
 */
import { createHash } from 'node:crypto';

/** A Lua script with its SHA-1, for EVALSHA with an EVAL fallback. */
export interface LuaScript {
  readonly source: string;
  readonly sha1: string;
}

function script(source: string): LuaScript {
  return Object.freeze({ source, sha1: createHash('sha1').update(source).digest('hex') });
}

/**
 * KEYS[1] stream, ARGV[1] group, ARGV[2] start (`$` or `0`). Creates the group (and the
 * stream: MKSTREAM) with an exact ENTRIESREAD; returns 1, or 0 when the group already
 * existed (left untouched). Other errors (WRONGTYPE) are raised.
 */
export const ENSURE_GROUP_SCRIPT = script(`
local read = 0
if redis.call('EXISTS', KEYS[1]) == 1 then
  local info = redis.call('XINFO', 'STREAM', KEYS[1])
  local length, added = 0, 0
  for i = 1, #info, 2 do
    if info[i] == 'length' then length = info[i + 1]
    elseif info[i] == 'entries-added' then added = info[i + 1] end
  end
  if ARGV[2] == '$' or length == 0 then read = added else read = added - length end
end
local reply = redis.pcall('XGROUP', 'CREATE', KEYS[1], ARGV[1], ARGV[2], 'MKSTREAM', 'ENTRIESREAD', read)
if type(reply) == 'table' and reply.err then
  if string.sub(reply.err, 1, 9) == 'BUSYGROUP' then return 0 end
  return reply
end
return 1
`);

/**
 * KEYS[1] stream, ARGV[1] min id. XTRIM MINID (exact); returns the number of entries
 * deleted. Every group whose last-delivered id now lies before the first retained entry
 * gets its entries-read counter recomputed (XGROUP SETID to the same id with ENTRIESREAD).
 */
export const TRIM_BEFORE_SCRIPT = script(`
local removed = redis.call('XTRIM', KEYS[1], 'MINID', ARGV[1])
if removed == 0 then return 0 end
local info = redis.call('XINFO', 'STREAM', KEYS[1])
local length, added, first = 0, 0, nil
for i = 1, #info, 2 do
  if info[i] == 'length' then length = info[i + 1]
  elseif info[i] == 'entries-added' then added = info[i + 1]
  elseif info[i] == 'first-entry' and info[i + 1] then first = info[i + 1][1] end
end
local function before(a, b)
  local am, as = string.match(a, '^(%d+)-(%d+)$')
  local bm, bs = string.match(b, '^(%d+)-(%d+)$')
  am, as, bm, bs = tonumber(am), tonumber(as), tonumber(bm), tonumber(bs)
  if am ~= bm then return am < bm end
  return as < bs
end
local groups = redis.call('XINFO', 'GROUPS', KEYS[1])
for _, group in ipairs(groups) do
  local name, last
  for i = 1, #group, 2 do
    if group[i] == 'name' then name = group[i + 1]
    elseif group[i] == 'last-delivered-id' then last = group[i + 1] end
  end
  if first == nil then
    redis.call('XGROUP', 'SETID', KEYS[1], name, last, 'ENTRIESREAD', added)
  elseif before(last, first) then
    redis.call('XGROUP', 'SETID', KEYS[1], name, last, 'ENTRIESREAD', added - length)
  end
end
return removed
`);
