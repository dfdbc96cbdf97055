"""The Lua scripts that keep the name -> node registry consistent: each runs atomically
in Redis, so two nodes can never both think they hold one name."""

from __future__ import annotations

# Times come from Redis (TIME), so nodes on machines with skewed clocks agree on who is dead.
_NOW = "local t = redis.call('TIME') local now = t[1] * 1000 + math.floor(t[2] / 1000)\n"

# KEYS: users, nodes, my node's user set.  ARGV: key, node, entry, credential hash,
# expiry ms, prefix, mode ("claim", "put", or "confirm": a put that leaves an entry of this
# node's own with another token alone and answers "stale").
# Returns {status, info}: "ok" (written), "taken" (held by a live node and the hash
# differs; info: its display name), "moved" (the hash matches: written; info: the old node
# and the token of the entry overwritten, "node token", to hand over).  "put" (publishing a
# user this node already accepted) never moves anyone: a live holder elsewhere is "taken".
# An entry of this node's own is overwritten: a node claims only names it does not hold and
# is not claiming already (Registrar.register), so that entry is an earlier registration
# whose release has not arrived yet (it names that registration's token "g" and leaves this
# one), or one from before the node restarted.
#
# A claim runs again with the same entry (a retry after a lost reply: redis-py's own, or
# Registrar._confirm_later) gets the answer it got the first time: the entry it wrote has
# its token and, if it moved the name, the node it moved it from ("p").
CLAIM = (
    _NOW
    + """
local cur = redis.call('HGET', KEYS[1], ARGV[1])
local status, info = 'ok', ''
local value = ARGV[3]
if cur then
  local e = cjson.decode(cur)
  local mine = cjson.decode(value)
  if e.node == ARGV[2] and e.g ~= nil and e.g == mine.g then
    if e.p then return {'moved', e.p} end  -- (p: 'node token', as below)
    return {'ok', ''}
  end
  if e.node == ARGV[2] and ARGV[7] == 'confirm' then return {'stale', ''} end
  if e.node ~= ARGV[2] then
    local beat = redis.call('ZSCORE', KEYS[2], e.node)
    if beat and tonumber(beat) > now - tonumber(ARGV[5]) then
      if ARGV[7] ~= 'claim' or e.h ~= ARGV[4] then return {'taken', e.n} end
      status, info = 'moved', e.node .. ' ' .. (e.g or '')
      mine.p = info
      value = cjson.encode(mine)
    end
    redis.call('SREM', ARGV[6] .. ':node:' .. e.node .. ':users', ARGV[1])
  end
end
redis.call('HSET', KEYS[1], ARGV[1], value)
redis.call('SADD', KEYS[3], ARGV[1])
return {status, info}
"""
)

# KEYS: users, my node's user set.  ARGV: key, node, token.  Only the registration that
# wrote the entry (its node and token "g") deletes it: a release that waited in the node's
# outbox leaves the entry of a newer registration of the name on the same node.
# Returns 1 if the name is no longer this node's, 0 if a newer registration holds it.
RELEASE = """
local cur = redis.call('HGET', KEYS[1], ARGV[1])
if cur then
  local e = cjson.decode(cur)
  if e.node == ARGV[2] then
    if (e.g or '') ~= ARGV[3] then return 0 end
    redis.call('HDEL', KEYS[1], ARGV[1])
  end
end
redis.call('SREM', KEYS[2], ARGV[1])
return 1
"""

# KEYS: nodes, users, my known marker.  ARGV: node, expiry ms, prefix.
# Beats for this node, then reaps every node whose last beat is older than the expiry:
# its names are deleted (those still pointing at it).  Returns {known, reaped...}: known is
# 0 when Redis did not know this node (Redis restarted or was flushed, or this node was
# reaped after a stall): the node must publish its users again.
HEARTBEAT = (
    _NOW
    + """
local known = redis.call('EXISTS', KEYS[3])
redis.call('SET', KEYS[3], '1')
redis.call('ZADD', KEYS[1], now, ARGV[1])
local out = {known}
local stale = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now - tonumber(ARGV[2]))
for _, node in ipairs(stale) do
  redis.call('ZREM', KEYS[1], node)
  local set = ARGV[3] .. ':node:' .. node .. ':users'
  for _, key in ipairs(redis.call('SMEMBERS', set)) do
    local cur = redis.call('HGET', KEYS[2], key)
    if cur and cjson.decode(cur).node == node then redis.call('HDEL', KEYS[2], key) end
  end
  redis.call('DEL', set, ARGV[3] .. ':node:' .. node .. ':known')
  table.insert(out, node)
end
return out
"""
)

# KEYS: nodes.  ARGV: node.  A beat only for a node still listed (XX): one reaped meanwhile
# learns so at its next full beat (HEARTBEAT's "known") and publishes its users again.
KEEP_ALIVE = (
    _NOW
    + """
redis.call('ZADD', KEYS[1], 'XX', now, ARGV[1])
return 1
"""
)
