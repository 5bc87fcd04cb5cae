/* Offline storage: messages (and subscription requests) for a user with no available
 * resource wait in a Redis list, stamped with XEP-0203 delay, and are delivered on the
 * user's next initial presence. Key `P xmpp:offline:JID`, a list of serialised stanzas,
 * at most xmpp.max_offline long (further ones are bounced with service-unavailable), and
 * expiring xmpp.offline_ttl after the last one arrived. Delivery reads the list, writes
 * it to the session and only then trims what it delivered, so nothing is lost when the
 * session dies in between. */
#include "xmpp.h"
#include "log.h"
#include "util.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

/* KEYS: list. ARGV: stanza, max, ttl. */
static const char offline_push_lua[] =
	"if redis.call('LLEN', KEYS[1]) >= tonumber(ARGV[2]) then return {0, 'full'} end\n"
	"redis.call('RPUSH', KEYS[1], ARGV[1])\n"
	"redis.call('EXPIRE', KEYS[1], ARGV[3])\n"
	"return {1}\n";

static char *offline_key(const struct server *srv, const char *bare)
{
	return xasprintf("%sxmpp:offline:%s", srv->prefix, bare);
}

struct store_call {
	struct conn *sender; /* referenced, or NULL */
	struct xnode *stanza;
};

static void stored(redisReply *reply, void *data)
{
	struct store_call *sc = data;
	bool ok = reply != NULL && reply->element[0]->integer == 1;
	if (!ok && sc->sender != NULL && !sc->sender->closed)
		stanza_reply_error(sc->sender, sc->stanza, "cancel", "service-unavailable");
	if (sc->sender != NULL)
		conn_unref(sc->sender);
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
	char *key = offline_key(srv, bare);
	char max[24], ttl[24];
	snprintf(max, sizeof(max), "%zu", srv->max_offline);
	snprintf(ttl, sizeof(ttl), "%lld", srv->offline_ttl);
	struct store_call *sc = xcalloc(1, sizeof(*sc));
	sc->sender = sender;
	if (sender != NULL)
		conn_ref(sender);
	sc->stanza = xnode_copy(stanza);
	const char *args[] = {key, xml, max, ttl};
	xredis_script(srv->redis, offline_push_lua, 1, 3, args, NULL, stored, sc);
	free(key);
	free(xml);
}

struct fetch_call {
	struct conn *conn; /* referenced */
	char *key;
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
	if (reply != NULL && reply->type == REDIS_REPLY_ARRAY && reply->elements > 0 &&
	    !c->closed && !c->closing && c->session != NULL) {
		size_t n = 0;
		for (size_t i = 0; i < reply->elements; i++) {
			const redisReply *e = reply->element[i];
			if (e->type == REDIS_REPLY_STRING) {
				conn_send_raw(c, e->str, e->len);
				n++;
			}
		}
		char start[24];
		snprintf(start, sizeof(start), "%zu", reply->elements);
		const char *argv[] = {"LTRIM", fc->key, start, "-1"};
		xredis_command(c->srv->redis, 4, argv, NULL, trimmed, NULL);
		log_event(LOG_LEVEL_DEBUG, "offline_delivered", "jid", c->session->full, NULL);
		(void)n;
	}
	conn_unref(c);
	free(fc->key);
	free(fc);
}

void offline_deliver(struct server *srv, struct session *s)
{
	if (srv->redis == NULL || srv->max_offline == 0)
		return;
	struct fetch_call *fc = xcalloc(1, sizeof(*fc));
	fc->conn = s->conn;
	conn_ref(s->conn);
	fc->key = offline_key(srv, s->acct->bare);
	char last[24];
	snprintf(last, sizeof(last), "%zu", srv->max_offline - 1);
	const char *argv[] = {"LRANGE", fc->key, "0", last};
	xredis_command(srv->redis, 4, argv, NULL, fetched, fc);
}
