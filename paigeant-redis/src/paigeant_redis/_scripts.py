"""The Lua scripts that make every multi-key step atomic on the Redis server.

Stream entry fields: ``message_id``, ``body``, ``headers`` (JSON object), ``attempt_base``
(deliveries before this entry was added, carried across nacks), and on dead letters
``dead_letter_reason``, ``dead_letter_queue``, ``dead_letter_attempt`` and
``dead_letter_time_ms``. An entry with a ``wake`` field is a marker, not a message: it wakes a
blocked consumer so it promotes delayed messages or reclaims released ones; consumers
acknowledge and delete markers. The ids of a stream's markers are kept in its wake set, so
``stats`` can leave them out. Times come from the server (``TIME``), never from client clocks.
"""

from __future__ import annotations

from typing import Any

from redis.asyncio import Redis
from redis.commands.core import AsyncScript

__all__ = ["Scripts"]

_PRELUDE = r"""
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

local function field_map(flat)
  local m = {}
  for i = 1, #flat, 2 do m[flat[i]] = flat[i + 1] end
  return m
end

-- Copy a flat field list, setting fields names[i] to values[i] (replaced or appended).
local function with_fields(flat, names, values)
  local out, index = {}, {}
  for i = 1, #names do index[names[i]] = i end
  local seen = {}
  for i = 1, #flat, 2 do
    local j = index[flat[i]]
    out[#out + 1] = flat[i]
    if j then
      out[#out + 1] = values[j]
      seen[j] = true
    else
      out[#out + 1] = flat[i + 1]
    end
  end
  for j = 1, #names do
    if not seen[j] then
      out[#out + 1] = names[j]
      out[#out + 1] = values[j]
    end
  end
  return out
end

-- Delivery count of pending entry `id`, or nil when it is not pending (for `consumer`, if given).
local function pending_count(stream, group, id, consumer)
  local res = redis.pcall('XPENDING', stream, group, id, id, 1)
  if type(res) ~= 'table' or res.err or #res == 0 then return nil end
  if consumer and res[1][2] ~= consumer then return nil end
  return tonumber(res[1][4])
end

-- The delivery count if `consumer` still holds `id` from the delivery that had count
-- `expected` (any count when it is ''), else nil: the lease was lost, even to itself.
local function held_count(stream, group, id, consumer, expected)
  local count = pending_count(stream, group, id, consumer)
  if count and expected ~= '' and count ~= tonumber(expected) then return nil end
  return count
end

-- Markers waiting in a stream at most; more would wake no one who is not woken already.
local MAX_MARKERS = 16

-- Add a wake marker to `stream`, its id recorded in the set `wake`.
local function wake_consumers(stream, wake)
  if redis.call('SCARD', wake) >= MAX_MARKERS then
    for _, id in ipairs(redis.call('SMEMBERS', wake)) do
      if #redis.call('XRANGE', stream, id, id) == 0 then redis.call('SREM', wake, id) end
    end
    if redis.call('SCARD', wake) >= MAX_MARKERS then return end
  end
  redis.call('SADD', wake, redis.call('XADD', stream, '*', 'wake', '1'))
end

local function drop_marker(stream, wake, group, id)
  redis.call('XACK', stream, group, id)
  redis.call('XDEL', stream, id)
  redis.call('SREM', wake, id)
end

-- Append a message now, or park it in the delayed set (waking consumers if it is due first).
local function add_message(stream, delayed, data, wake, fields, delay_ms, token, now)
  if delay_ms > 0 then
    local due = now + delay_ms
    local first = redis.call('ZRANGE', delayed, 0, 0, 'WITHSCORES')
    redis.call('HSET', data, token, cmsgpack.pack(fields))
    redis.call('ZADD', delayed, due, token)
    if #first == 0 or tonumber(first[2]) > due then wake_consumers(stream, wake) end
  else
    redis.call('XADD', stream, '*', unpack(fields))
  end
end

-- Move entry `id` to the dead-letter stream `dlq` with its reason, source, attempt and time.
local function dead_letter(stream, dlq, group, id, flat, reason, queue, attempt)
  redis.call('XADD', dlq, '*', unpack(with_fields(flat,
    {'attempt_base', 'dead_letter_reason', 'dead_letter_queue', 'dead_letter_attempt',
     'dead_letter_time_ms'},
    {'0', reason, queue, tostring(attempt), tostring(now_ms())})))
  redis.call('XACK', stream, group, id)
  redis.call('XDEL', stream, id)
end

-- Nil when `key` is missing or of Redis type `expected`, else an error message.
local function wrong_type(key, expected)
  local t = redis.call('TYPE', key)['ok']
  if t == 'none' or t == expected then return nil end
  return 'WRONGTYPE key ' .. key .. ' holds a ' .. t .. ', not a ' .. expected
end

local function too_many(deliveries, max_del)
  return 'delivered ' .. deliveries .. ' times without success (max_deliveries=' .. max_del .. ')'
end

-- Drop a marker, dead-letter a message past max_deliveries (noting it in `dead`), or hand it out.
local function consider(stream, dlq, wake, group, id, count, flat, max_del, queue, out, dead)
  local f = field_map(flat)
  if f['wake'] then
    drop_marker(stream, wake, group, id)
    return
  end
  local attempt = (tonumber(f['attempt_base']) or 0) + count
  if attempt > max_del then
    dead_letter(stream, dlq, group, id, flat, too_many(attempt - 1, max_del), queue, attempt - 1)
    dead[#dead + 1] = f['message_id'] or id
  else
    out[#out + 1] = {id, count, flat}
  end
end

-- Move due delayed messages into the stream; return ms until the next one is due, or -1.
local function promote(stream, delayed, data, now, limit)
  local due = redis.call('ZRANGEBYSCORE', delayed, '-inf', now, 'LIMIT', 0, limit)
  for _, token in ipairs(due) do
    local packed = redis.call('HGET', data, token)
    if packed then
      redis.call('XADD', stream, '*', unpack(cmsgpack.unpack(packed)))
      redis.call('HDEL', data, token)
    end
    redis.call('ZREM', delayed, token)
  end
  local first = redis.call('ZRANGE', delayed, 0, 0, 'WITHSCORES')
  if #first == 0 then return -1 end
  return math.max(tonumber(first[2]) - now, 0)
end
"""

# KEYS: stream, delayed, delayed data, dead-letter stream, wake set.
# ARGV: group, consumer, min_idle_ms, want, max_deliveries, queue, reclaim (0/1), cursor,
#       resume (0/1), promote_limit, n_held, held ids..., marker ids...
# Returns {ms until next due or -1, autoclaim cursor, {{id, delivery count, fields}...},
#          {message ids dead-lettered past max_deliveries...}}.
_PREPARE = r"""
local stream, dlq, wake, group, consumer = KEYS[1], KEYS[4], KEYS[5], ARGV[1], ARGV[2]
local min_idle, want, max_del = tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5])
local queue, cursor = ARGV[6], ARGV[8]
local n_held = tonumber(ARGV[11])
local held = {}
for i = 12, 11 + n_held do held[ARGV[i]] = true end
for i = 12 + n_held, #ARGV do drop_marker(stream, wake, group, ARGV[i]) end
local now = now_ms()
local out, dead = {}, {}
if want > 0 and ARGV[9] == '1' then
  -- Entries this consumer was given but never saw (a reply lost with its connection).
  local pending = redis.call('XPENDING', stream, group, '-', '+', want + n_held, consumer)
  for _, p in ipairs(pending) do
    if #out >= want then break end
    local id = p[1]
    if not held[id] then
      local found = redis.call('XRANGE', stream, id, id)
      if #found == 0 then
        redis.call('XACK', stream, group, id)
      else
        redis.call('XCLAIM', stream, group, consumer, 0, id, 'JUSTID')
        consider(stream, dlq, wake, group, id, tonumber(p[4]), found[1][2], max_del, queue,
          out, dead)
      end
    end
  end
end
if want > #out and ARGV[7] == '1' then
  for _ = 1, 8 do
    local res = redis.call('XAUTOCLAIM', stream, group, consumer, min_idle, cursor,
      'COUNT', want - #out)
    cursor = res[1]
    for _, entry in ipairs(res[2]) do
      if type(entry) == 'table' then
        local id, flat = entry[1], entry[2]
        if type(flat) ~= 'table' then
          redis.call('XACK', stream, group, id)
        else
          local count = pending_count(stream, group, id, consumer) or 1
          consider(stream, dlq, wake, group, id, count, flat, max_del, queue, out, dead)
        end
      end
    end
    if cursor == '0-0' or #out >= want then break end
  end
end
local next_due = promote(stream, KEYS[2], KEYS[3], now, tonumber(ARGV[10]))
return {next_due, cursor, out, dead}
"""

# KEYS: stream, delayed, delayed data, wake set.  ARGV: message_id, body, headers, delay_ms, token.
_PUBLISH_DELAYED = r"""
add_message(KEYS[1], KEYS[2], KEYS[3], KEYS[4],
  {'message_id', ARGV[1], 'body', ARGV[2], 'headers', ARGV[3], 'attempt_base', '0'},
  tonumber(ARGV[4]), ARGV[5], now_ms())
return 1
"""

# A batch of acks, each with its forwards.
# KEYS: per ack: source stream, then per forward: stream, delayed, delayed data, dedup set,
#       wake set.
# ARGV: group, dedup_ttl_ms, number of acks, then per ack: entry id, number of forwards, then
#       per forward: message_id, body, headers, delay_ms, token.
# Returns per ack {1 if the entry was still pending else 0, forwards skipped as duplicates}, or
# an error message when one of its keys has the wrong type (that ack then does nothing at all).
_ACK = r"""
local group, ttl, n_acks = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])
local expected = {'stream', 'zset', 'hash', 'zset', 'set'}
local now = now_ms()
local replies = {}
local k, a = 1, 4
for _ = 1, n_acks do
  local source, id, n_forwards = KEYS[k], ARGV[a], tonumber(ARGV[a + 1])
  local first_key, first_arg = k + 1, a + 2
  k, a = k + 1 + 5 * n_forwards, a + 2 + 5 * n_forwards
  -- Check every key first: a failing ack must leave nothing half done and nothing acked.
  local problem = wrong_type(source, 'stream')
  for t = first_key, k - 1 do
    problem = problem or wrong_type(KEYS[t], expected[(t - first_key) % 5 + 1])
  end
  if problem then
    replies[#replies + 1] = problem
  else
    local skipped = 0
    for f = 0, n_forwards - 1 do
      local fk, fa = first_key + f * 5, first_arg + f * 5
      local message_id = ARGV[fa]
      local fresh = true
      if ttl > 0 then
        local dedup = KEYS[fk + 3]
        redis.call('ZREMRANGEBYSCORE', dedup, '-inf', now)
        if redis.call('ZSCORE', dedup, message_id) then
          fresh = false
        else
          redis.call('ZADD', dedup, now + ttl, message_id)
          redis.call('PEXPIRE', dedup, ttl)
        end
      end
      if fresh then
        add_message(KEYS[fk], KEYS[fk + 1], KEYS[fk + 2], KEYS[fk + 4],
          {'message_id', message_id, 'body', ARGV[fa + 1], 'headers', ARGV[fa + 2],
           'attempt_base', '0'},
          tonumber(ARGV[fa + 3]), ARGV[fa + 4], now)
      else
        skipped = skipped + 1
      end
    end
    local acked = redis.call('XACK', source, group, id)
    redis.call('XDEL', source, id)
    replies[#replies + 1] = {acked, skipped}
  end
end
return replies
"""

# KEYS: stream, delayed, delayed data, dead-letter stream, wake set.
# ARGV: group, consumer, entry id, delay_ms, token, max_deliveries, queue, delivery count.
# Returns 0 (not held: nothing done), 1 (requeued) or 2 (dead-lettered: no deliveries left).
_NACK = r"""
local stream, group, id = KEYS[1], ARGV[1], ARGV[3]
local count = held_count(stream, group, id, ARGV[2], ARGV[8])
if not count then return 0 end
local found = redis.call('XRANGE', stream, id, id)
if #found == 0 then
  redis.call('XACK', stream, group, id)
  return 0
end
local flat = found[1][2]
local attempt = (tonumber(field_map(flat)['attempt_base']) or 0) + count
local max_del = tonumber(ARGV[6])
if attempt >= max_del then
  dead_letter(stream, KEYS[4], group, id, flat, too_many(attempt, max_del), ARGV[7], attempt)
  return 2
end
redis.call('XACK', stream, group, id)
redis.call('XDEL', stream, id)
add_message(stream, KEYS[2], KEYS[3], KEYS[5],
  with_fields(flat, {'attempt_base'}, {tostring(attempt)}),
  tonumber(ARGV[4]), ARGV[5], now_ms())
return 1
"""

# KEYS: stream, dead-letter stream.
# ARGV: group, consumer, entry id, reason, queue, attempt, delivery count ('' for any).
_DEAD_LETTER = r"""
local stream, group, id = KEYS[1], ARGV[1], ARGV[3]
if not held_count(stream, group, id, ARGV[2], ARGV[7]) then return 0 end
local found = redis.call('XRANGE', stream, id, id)
if #found == 0 then
  redis.call('XACK', stream, group, id)
  return 0
end
dead_letter(stream, KEYS[2], group, id, found[1][2], ARGV[4], ARGV[5], ARGV[6])
return 1
"""

# KEYS: stream.  ARGV: group, consumer, entry id, delivery count.
# Resets the entry's idle time if this delivery still holds it; returns 1 then, else 0.
_EXTEND = r"""
if not held_count(KEYS[1], ARGV[1], ARGV[3], ARGV[2], ARGV[4]) then return 0 end
redis.call('XCLAIM', KEYS[1], ARGV[1], ARGV[2], 0, ARGV[3], 'JUSTID')
return 1
"""

# KEYS: stream, wake set.  ARGV: group, consumer, idle_ms, n_kept, kept ids..., delivered ids...
# Makes every entry the consumer holds claimable at once, except the kept ones (handed out and
# still being worked on: their holder keeps the lease); entries it never handed out keep their
# delivery count, so the next delivery's attempt is right. Returns how many it released.
_RELEASE = r"""
local stream, group, consumer, idle = KEYS[1], ARGV[1], ARGV[2], ARGV[3]
local n_kept = tonumber(ARGV[4])
local pending = redis.pcall('XPENDING', stream, group, '-', '+', 100000, consumer)
if type(pending) ~= 'table' or pending.err then return 0 end
local kept, delivered = {}, {}
for i = 5, 4 + n_kept do kept[ARGV[i]] = true end
for i = 5 + n_kept, #ARGV do delivered[ARGV[i]] = true end
local released = 0
for _, p in ipairs(pending) do
  local id, count = p[1], tonumber(p[4])
  if not kept[id] then
    released = released + 1
    if delivered[id] then
      redis.call('XCLAIM', stream, group, consumer, 0, id, 'IDLE', idle, 'JUSTID')
    else
      redis.call('XCLAIM', stream, group, consumer, 0, id, 'IDLE', idle,
        'RETRYCOUNT', math.max(count - 1, 0), 'JUSTID')
    end
  end
end
if released > 0 then wake_consumers(stream, KEYS[2]) end
return released
"""

# KEYS: stream.  ARGV: group, idle_ms, own consumer name.  Deletes idle consumers holding nothing.
_PRUNE = r"""
local consumers = redis.pcall('XINFO', 'CONSUMERS', KEYS[1], ARGV[1])
if type(consumers) ~= 'table' or consumers.err then return 0 end
local removed = 0
for _, c in ipairs(consumers) do
  local info = field_map(c)
  if tonumber(info['pending']) == 0 and tonumber(info['idle']) > tonumber(ARGV[2])
      and info['name'] ~= ARGV[3] then
    redis.call('XGROUP', 'DELCONSUMER', KEYS[1], ARGV[1], info['name'])
    removed = removed + 1
  end
end
return removed
"""


# KEYS: stream, delayed, wake set, then the same three of the dead-letter queue.  ARGV: group.
# Returns {ready, in flight, delayed, dead}: markers are left out, and a pending entry counts as
# in flight (a consumer holds it, or held it until its lease runs out).
_STATS = r"""
local function counts(stream, delayed, wake, group)
  local length, pending = redis.call('XLEN', stream), 0
  local summary = redis.pcall('XPENDING', stream, group)
  if type(summary) == 'table' and not summary.err then pending = tonumber(summary[1]) or 0 end
  local markers, held_markers = 0, 0
  for _, id in ipairs(redis.call('SMEMBERS', wake)) do
    if #redis.call('XRANGE', stream, id, id) > 0 then
      markers = markers + 1
      if pending_count(stream, group, id) then held_markers = held_markers + 1 end
    end
  end
  local ready = math.max(length - pending - (markers - held_markers), 0)
  return ready, math.max(pending - held_markers, 0), redis.call('ZCARD', delayed)
end
local ready, in_flight, delayed = counts(KEYS[1], KEYS[2], KEYS[3], ARGV[1])
local dead_ready, dead_in_flight, dead_delayed = counts(KEYS[4], KEYS[5], KEYS[6], ARGV[1])
return {ready, in_flight, delayed, dead_ready + dead_in_flight + dead_delayed}
"""


class Scripts:
    """The transport's Lua scripts, registered on one client (reloaded after NOSCRIPT)."""

    def __init__(self, client: Redis) -> None:
        """Register every script on ``client``."""
        self.prepare = _Script(client.register_script(_PRELUDE + _PREPARE))
        self.publish_delayed = _Script(client.register_script(_PRELUDE + _PUBLISH_DELAYED))
        self.ack = _Script(client.register_script(_PRELUDE + _ACK))
        self.nack = _Script(client.register_script(_PRELUDE + _NACK))
        self.dead_letter = _Script(client.register_script(_PRELUDE + _DEAD_LETTER))
        self.extend = _Script(client.register_script(_PRELUDE + _EXTEND))
        self.release = _Script(client.register_script(_PRELUDE + _RELEASE))
        self.prune = _Script(client.register_script(_PRELUDE + _PRUNE))
        self.stats = _Script(client.register_script(_PRELUDE + _STATS))


class _Script:
    """A typed wrapper around a registered script."""

    __slots__ = ("_script",)

    def __init__(self, script: AsyncScript) -> None:
        self._script = script

    async def __call__(
        self, keys: list[str], args: list[str | int | bytes], client: Redis | None = None
    ) -> Any:
        """Run the script with ``keys`` and ``args`` (on ``client``, else the registering one)."""
        return await self._script(keys=keys, args=args, client=client)
