/* Lua scripts of the token store (see store_scripts.h and docs/redis.md).
 *
 * Keys: KEYS[1] is the token record `PREFIXtoken:HASH` (a hash) or the index
 * `PREFIXuser:JID:tokens` (a sorted set of HASH scored by expiry), as each script says.
 * Results are arrays whose first element is 1 (done) or 0 followed by a reason word. */
#include "store_scripts.h"

/* KEYS: token, index. ARGV: jid, services, ttl, label, max_uses, idp, max_per_user, hash. */
static const char issue_lua[] =
	"local now = tonumber(redis.call('TIME')[1])\n"
	"redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)\n"
	"if redis.call('ZCARD', KEYS[2]) >= tonumber(ARGV[7]) then return {0, 'limit'} end\n"
	"if redis.call('EXISTS', KEYS[1]) == 1 then return {0, 'collision'} end\n"
	"local expires = now + tonumber(ARGV[3])\n"
	"redis.call('HSET', KEYS[1], 'jid', ARGV[1], 'services', ARGV[2], 'issued', now,\n"
	"  'expires', expires, 'label', ARGV[4], 'uses', 0, 'max_uses', ARGV[5], 'idp', ARGV[6])\n"
	"redis.call('EXPIREAT', KEYS[1], expires)\n"
	"redis.call('ZADD', KEYS[2], expires, ARGV[8])\n"
	"local last = redis.call('ZRANGE', KEYS[2], -1, -1, 'WITHSCORES')\n"
	"redis.call('EXPIREAT', KEYS[2], last[2])\n"
	"return {1, now, expires}\n";

/* Verification, in two heads over one body. Both read the record, then the body refuses
 * a token that has passed its stored expiry (whatever the key's TTL says; the record is
 * then deleted), lacks the service, or has no uses left; it counts a use for limited
 * tokens and deletes the record after the last one, all in the same step. Result:
 * {1, services, issued, expires, uses, max_uses, label, idp, jid}. */
#define VERIFY_READ                                                                         \
	"local f = redis.call('HMGET', KEYS[1], 'jid', 'services', 'issued', 'expires',\n"  \
	"  'uses', 'max_uses', 'label', 'idp')\n"                                            \
	"if not f[1] then return {0, 'unknown'} end\n"

#define VERIFY_BODY                                                                         \
	"local now = tonumber(redis.call('TIME')[1])\n"                                      \
	"local expires = tonumber(f[4])\n"                                                   \
	"if not expires or expires <= now then\n"                                            \
	"  redis.call('DEL', KEYS[1])\n"                                                     \
	"  redis.call('ZREM', ukey, hash)\n"                                                 \
	"  return {0, 'expired'}\n"                                                          \
	"end\n"                                                                              \
	"local granted = false\n"                                                            \
	"for s in string.gmatch(f[2] or '', '[^,]+') do\n"                                   \
	"  if s == '*' or s == service then granted = true break end\n"                      \
	"end\n"                                                                              \
	"if not granted then return {0, 'service'} end\n"                                    \
	"local uses = tonumber(f[5]) or 0\n"                                                 \
	"local max = tonumber(f[6]) or 0\n"                                                  \
	"if max > 0 then\n"                                                                  \
	"  if uses >= max then return {0, 'used'} end\n"                                     \
	"  uses = redis.call('HINCRBY', KEYS[1], 'uses', 1)\n"                               \
	"  if uses >= max then\n"                                                            \
	"    redis.call('DEL', KEYS[1])\n"                                                   \
	"    redis.call('ZREM', ukey, hash)\n"                                               \
	"  end\n"                                                                            \
	"end\n"                                                                              \
	"return {1, f[2], f[3], f[4], uses, max, f[7] or '', f[8] or '', f[1]}\n"

/* KEYS: token, index of the claimed JID. ARGV: jid, service, hash.
 * The token must belong to the claimed JID. */
static const char verify_lua[] =
	VERIFY_READ
	"if f[1] ~= ARGV[1] then return {0, 'jid'} end\n"
	"local service, hash, ukey = ARGV[2], ARGV[3], KEYS[2]\n"
	VERIFY_BODY;

/* KEYS: token. ARGV: service, hash, user index key prefix (PREFIXuser:), and optionally
 * "@DOMAIN": the owner must be a user of that domain (refused before a use is counted).
 * For clients that name no user (OAUTHBEARER without a=): whoever owns the token. */
static const char verify_any_lua[] =
	VERIFY_READ
	"local dom = ARGV[4] or ''\n"
	"if #dom > 0 and (#f[1] <= #dom or string.sub(f[1], -#dom) ~= dom) then\n"
	"  return {0, 'jid'}\n"
	"end\n"
	"local service, hash, ukey = ARGV[1], ARGV[2], ARGV[3] .. f[1] .. ':tokens'\n"
	VERIFY_BODY;

/* KEYS: index. ARGV: token key prefix. Returns 1 then 8 fields per live token:
 * hash, services, issued, expires, uses, max_uses, label, idp. Drops stale index entries. */
static const char list_lua[] =
	"local now = tonumber(redis.call('TIME')[1])\n"
	"redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)\n"
	"local out = {1}\n"
	"for _, h in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do\n"
	"  local f = redis.call('HMGET', ARGV[1] .. h, 'services', 'issued', 'expires', 'uses',\n"
	"    'max_uses', 'label', 'idp')\n"
	"  if f[3] and tonumber(f[3]) > now then\n"
	"    table.insert(out, h)\n"
	"    for i = 1, 7 do table.insert(out, f[i] or '') end\n"
	"  else\n"
	"    redis.call('ZREM', KEYS[1], h)\n"
	"  end\n"
	"end\n"
	"return out\n";

/* KEYS: index. ARGV: token key prefix, id (a hash prefix), revocation channel. */
static const char revoke_lua[] =
	"local found = nil\n"
	"for _, h in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do\n"
	"  if string.sub(h, 1, #ARGV[2]) == ARGV[2] then\n"
	"    if found then return {0, 'ambiguous'} end\n"
	"    found = h\n"
	"  end\n"
	"end\n"
	"if not found then return {0, 'unknown'} end\n"
	"local existed = redis.call('DEL', ARGV[1] .. found)\n"
	"redis.call('ZREM', KEYS[1], found)\n"
	"if existed == 0 then return {0, 'unknown'} end\n"
	"redis.call('PUBLISH', ARGV[3], found)\n"
	"return {1, found}\n";

/* KEYS: index. ARGV: token key prefix, revocation channel. Returns {1, count}. */
static const char revoke_all_lua[] =
	"local n = 0\n"
	"for _, h in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do\n"
	"  if redis.call('DEL', ARGV[1] .. h) == 1 then\n"
	"    n = n + 1\n"
	"    redis.call('PUBLISH', ARGV[2], h)\n"
	"  end\n"
	"end\n"
	"redis.call('DEL', KEYS[1])\n"
	"return {1, n}\n";

const char *const store_script_source[SCRIPT_COUNT] = {
	[SCRIPT_ISSUE] = issue_lua,
	[SCRIPT_VERIFY] = verify_lua,
	[SCRIPT_VERIFY_ANY] = verify_any_lua,
	[SCRIPT_LIST] = list_lua,
	[SCRIPT_REVOKE] = revoke_lua,
	[SCRIPT_REVOKE_ALL] = revoke_all_lua,
};
