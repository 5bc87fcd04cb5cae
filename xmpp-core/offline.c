/* Offline storage: messages (and subscription requests) for a user with no available
 * resource wait in a Redis list, stamped with XEP-0203 delay, and are delivered on the
 * user's next initial presence.
 *
 * Keys: `P xmpp:offline:JID`, a list of serialised stanzas, and `P xmpp:offline-bytes:JID`,
 * the total bytes in that list. A stanza is kept only for a JID that exists, meaning one
 * that holds a token index (`P user:JID:tokens`, alive while any of its tokens is) or a
 * roster (`P xmpp:roster:JID`); for any other JID the sender gets service-unavailable
 * (RFC 6121 §8.5.2.2.1), as for a stanza larger than OFFLINE_STANZA_MAX, a full queue
 * (xmpp.max_offline stanzas or xmpp.max_offline_bytes bytes) or an unavailable store.
 * Both keys expire xmpp.offline_ttl after the last stanza arrived.
 *
 * Delivery reads the list, writes it to the session and only then trims what it wrote, so
 * nothing is lost when the session dies in between. It writes while the session's output
 * stays below half of xmpp.max_output; the rest follows once the client has read that
 * (conn.c's write callback calls offline_deliver() again). */
#include "xmpp.h"
#include "log.h"
#include "store_keys.h"
#include "util.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>


/* KEYS: list, byte count, token index, roster. ARGV: stanza, max stanzas, max bytes, ttl. */
static const char offline_push_lua[] =
	"if redis.call('EXISTS', KEYS[3]) == 0 and redis.call('EXISTS', KEYS[4]) == 0 then\n"
	"  return {0, 'unknown'}\n"
	"end\n"
	"if redis.call('LLEN', KEYS[1]) >= tonumber(ARGV[2]) then return {0, 'full'} end\n"
	"local size = tonumber(redis.call('GET', KEYS[2]) or '0')\n"
	"if size + string.len(ARGV[1]) > tonumber(ARGV[3]) then return {0, 'full'} end\n"
	"redis.call('RPUSH', KEYS[1], ARGV[1])\n"
	"redis.call('INCRBY', KEYS[2], string.len(ARGV[1]))\n"
	"redis.call('EXPIRE', KEYS[1], ARGV[4])\n"
	"redis.call('EXPIRE', KEYS[2], ARGV[4])\n"
	"return {1}\n";

/* KEYS: list, byte count. ARGV: stanzas delivered (from the head), their bytes. */
static const char offline_trim_lua[] =
	"redis.call('LTRIM', KEYS[1], ARGV[1], -1)\n"
	"if redis.call('LLEN', KEYS[1]) == 0 then redis.call('DEL', KEYS[2]) return {1} end\n"
	"local left = redis.call('DECRBY', KEYS[2], ARGV[2])\n"
	"if left < 0 then redis.call('SET', KEYS[2], '0', 'KEEPTTL') end\n"
	"return {1}\n";

static char *offline_key(const struct server *srv, const char *bare)
{
	return xasprintf("%sxmpp:offline:%s", srv->prefix, bare);
}

static char *offline_bytes_key(const struct server *srv, const char *bare)
{
	return xasprintf("%sxmpp:offline-bytes:%s", srv->prefix, bare);
}

struct store_call {
	struct conn *sender; /* counted with conn_redis_start(), or NULL */
	struct xnode *stanza;
};

static void stored(redisReply *reply, void *data)
{
	struct store_call *sc = data;
	bool ok = reply != NULL && reply->element[0]->integer == 1;
	if (!ok && sc->sender != NULL && !sc->sender->closed)
		stanza_reply_error(sc->sender, sc->stanza, "cancel", "service-unavailable");
	if (sc->sender != NULL)
		conn_redis_done(sc->sender);
	xnode_free(sc->stanza);
	free(sc);
}

void offline_store(struct server *srv, const char *bare, const struct xnode *stanza,
		   struct conn *sender)
{
	if (srv->redis == NULL || srv->max_offline == 0) {
		if (sender != NULL)
			stanza_reply_error(sender, stanza, "cancel", "service-unavailable");
		return;
	}
	struct xnode *cp = xnode_copy(stanza);
	struct xnode *d = xnode_add(cp, NS_DELAY, "delay");
	const struct domain *dom = srv->domains;
	const char *at = strchr(bare, '@');
	xnode_set_attr(d, "from", at != NULL ? at + 1 : dom->name);
	char stamp[32];
	time_t now = time(NULL);
	struct tm tm;
	gmtime_r(&now, &tm);
	strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%SZ", &tm);
	xnode_set_attr(d, "stamp", stamp);
	char *xml = xml_to_string(cp, NS_CLIENT);
	xnode_free(cp);
	if (strlen(xml) > OFFLINE_STANZA_MAX) {
		free(xml);
		if (sender != NULL)
			stanza_reply_error(sender, stanza, "cancel", "service-unavailable");
		return;
	}
	char *key = offline_key(srv, bare);
	char *bytes_key = offline_bytes_key(srv, bare);
	char *tokens_key = store_user_tokens_key(srv->prefix, bare);
	char *roster_key = xasprintf("%sxmpp:roster:%s", srv->prefix, bare);
	char max[24], max_bytes[24], ttl[24];
	snprintf(max, sizeof(max), "%zu", srv->max_offline);
	snprintf(max_bytes, sizeof(max_bytes), "%zu", srv->max_offline_bytes);
	snprintf(ttl, sizeof(ttl), "%lld", srv->offline_ttl);
	struct store_call *sc = xcalloc(1, sizeof(*sc));
	sc->sender = sender;
	if (sender != NULL)
		conn_redis_start(sender);
	sc->stanza = xnode_copy(stanza);
	const char *args[] = {key, bytes_key, tokens_key, roster_key, xml, max, max_bytes, ttl};
	xredis_script(srv->redis, offline_push_lua, 4, 8, args, NULL, stored, sc);
	free(key);
	free(bytes_key);
	free(tokens_key);
	free(roster_key);
	free(xml);
}

struct fetch_call {
	struct conn *conn; /* counted with conn_redis_start() */
	char *bare;
};

static void trimmed(redisReply *reply, void *data)
{
	(void)reply;
	(void)data;
}

static void fetched(redisReply *reply, void *data)
{
	struct fetch_call *fc = data;
	struct conn *c = fc->conn;
	struct server *srv = c->srv;
	if (reply != NULL && reply->type == REDIS_REPLY_ARRAY && reply->elements > 0 &&
	    !c->closed && !c->closing && c->session != NULL && c->bev != NULL) {
		struct evbuffer *out = bufferevent_get_output(c->bev);
		size_t n = 0, bytes = 0;
		for (; n < reply->elements; n++) {
			const redisReply *e = reply->element[n];
			if (n > 0 && evbuffer_get_length(out) + e->len > srv->max_output / 2)
				break;
			if (e->type == REDIS_REPLY_STRING) {
				conn_send_raw(c, e->str, e->len);
				bytes += e->len;
			}
		}
		c->offline_more = n < reply->elements;
		char *key = offline_key(srv, fc->bare);
		char *bytes_key = offline_bytes_key(srv, fc->bare);
		char count[24], size[24];
		snprintf(count, sizeof(count), "%zu", n);
		snprintf(size, sizeof(size), "%zu", bytes);
		const char *args[] = {key, bytes_key, count, size};
		xredis_script(srv->redis, offline_trim_lua, 2, 4, args, NULL, trimmed, NULL);
		free(key);
		free(bytes_key);
		log_event(LOG_LEVEL_DEBUG, "offline_delivered", "jid", c->session->full, NULL);
	}
	conn_redis_done(c);
	free(fc->bare);
	free(fc);
}

void offline_deliver(struct server *srv, struct session *s)
{
	if (srv->redis == NULL || srv->max_offline == 0)
		return;
	struct fetch_call *fc = xcalloc(1, sizeof(*fc));
	fc->conn = s->conn;
	conn_redis_start(s->conn);
	fc->bare = xstrdup(s->acct->bare);
	char *key = offline_key(srv, fc->bare);
	char last[24];
	snprintf(last, sizeof(last), "%zu", srv->max_offline - 1);
	const char *argv[] = {"LRANGE", key, "0", last};
	xredis_command(srv->redis, 4, argv, NULL, fetched, fc);
	free(key);
}
