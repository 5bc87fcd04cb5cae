/* xmpp-core's internal objects and the functions each file offers the others.
 *
 * Ownership: the server owns its domains, listeners, connections (a list) and accounts
 * (by bare JID). A connection owns its bufferevent, parser and session. An account exists
 * while it has a session, a bind waiting for its roster, or a roster load in flight; it
 * owns its roster cache. Asynchronous Redis callbacks never keep pointers to accounts:
 * they carry JIDs and look the account up again; those that answer a client hold a
 * reference on its connection (conn_ref/conn_unref) and check conn->closed. */
#ifndef XMPP_XMPP_H
#define XMPP_XMPP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <event2/util.h>
#include <hiredis/hiredis.h>

#include "config.h"
#include "token.h"
#include "xml.h"
#include "xmlstream.h"

struct event_base;
struct event;
struct sockaddr;
struct bufferevent;
struct evconnlistener;
struct hashmap;
struct ssl_ctx_st;
struct xredis;

#define NS_TLS "urn:ietf:params:xml:ns:xmpp-tls"
#define NS_SASL "urn:ietf:params:xml:ns:xmpp-sasl"
#define NS_BIND "urn:ietf:params:xml:ns:xmpp-bind"
#define NS_SESSION "urn:ietf:params:xml:ns:xmpp-session"
#define NS_STANZAS "urn:ietf:params:xml:ns:xmpp-stanzas"
#define NS_STREAM_ERRORS "urn:ietf:params:xml:ns:xmpp-streams"
#define NS_ROSTER "jabber:iq:roster"
#define NS_DISCO_INFO "http://jabber.org/protocol/disco#info"
#define NS_DISCO_ITEMS "http://jabber.org/protocol/disco#items"
#define NS_PING "urn:xmpp:ping"
#define NS_VERSION "jabber:iq:version"
#define NS_DELAY "urn:xmpp:delay"
#define NS_LIMITS "urn:xmpp:stream-limits:0"

/* Caps beyond the configurable ones. */
#define SASL_MESSAGE_MAX 4096     /* base64 text of one SASL element */
#define AUTH_ATTEMPTS_MAX 5       /* per connection, then the stream ends */
#define DIRECTED_PRESENCE_MAX 100 /* JIDs one session sent directed presence to */
#define ROSTER_NAME_MAX 1024
#define ROSTER_GROUPS_MAX 32
#define ROSTER_ITEM_MAX 4096 /* bytes of one stored item's name and groups */
#define ROSTER_BYTES_PER_ITEM 256 /* a roster holds xmpp.max_roster times this in all */
#define SESSIONS_PER_ACCOUNT_MAX 64
#define REDIS_INFLIGHT_MAX 16 /* Redis calls one connection may have in flight */
#define PREBIND_STANZA_MAX 16384 /* bytes of one element before a resource is bound */
#define OFFLINE_STANZA_MAX 65536 /* bytes of one stored stanza, with its delay stamp */

struct domain {
	char *name;
	char *cert, *key;     /* paths */
	struct ssl_ctx_st *ctx[2]; /* STARTTLS, direct TLS; replaced on SIGHUP */
};

struct server {
	struct event_base *base;
	const struct config *cfg;
	struct domain *domains;
	size_t n_domains;
	struct evconnlistener **listeners;
	bool *listener_direct;
	size_t n_listeners;
	struct xredis *redis; /* NULL: no storage (the fuzz target) */
	char *prefix;         /* redis.prefix */
	struct hashmap *accounts;
	struct conn *conns;
	size_t n_conns;
	uint64_t next_conn_id;
	struct ratelimit *rl;
	struct xmlstream_limits limits;
	long long idle_timeout, keepalive, offline_ttl;
	size_t max_roster, max_offline, max_offline_bytes;
	size_t max_output; /* bytes queued for one connection */
	size_t max_conns, max_conns_per_ip; /* 0: no cap per address */
	struct hashmap *per_ip;             /* address key -> unsigned count */
	long long auth_timeout, tls_timeout;
	struct event *accept_retry;         /* re-enables accepting after EMFILE */
	unsigned auth_failures;
	bool version;
	bool stopping;
	struct event *stop_timer;
	struct event *ticker; /* every connection's timeouts, once a second (conn.c) */
};

/* A printable IPv6 address (INET6_ADDRSTRLEN), and the per-address key: an IPv4 address
 * or its /64 prefix in full (four groups of four hex digits, then "::/64": 24 characters). */
#define CONN_ADDR_MAX 46
#define CONN_IPKEY_MAX 26

struct conn {
	struct server *srv;
	struct conn *prev, *next;
	uint64_t id;
	unsigned refs;
	evutil_socket_t fd;
	struct bufferevent *bev;
	struct xmlstream *xs;
	const struct domain *domain;
	struct event *deadline; /* TLS handshake, then authentication; NULL once authed */
	unsigned redis_inflight; /* Redis calls made for this client, not yet answered */
	bool own_bev; /* false: the fuzz target's bufferevent */
	bool direct_tls, tls, closing, closed, header_sent, in_feed;
	bool starttls_pending; /* <proceed/> queued; switch once it is written */
	bool restart_pending;  /* SASL done; the next bytes start a new stream */
	bool overflow;         /* output past max_output: the stream ends */
	bool offline_more;     /* offline delivery stopped at the output limit */
	bool handshaking;
	char addr[CONN_ADDR_MAX];   /* client IP, for logs and rate limits */
	char ipkey[CONN_IPKEY_MAX]; /* addr, or an IPv6 address's /64: per-address caps */
	time_t accepted;
	time_t last_read, last_write;
	/* The parser of an idle stream is freed (see conn.c) */
	time_t released_at;    /* when it was last freed */
	uint8_t release_shift; /* it is freed after RELEASE_IDLE << release_shift s idle */
	/* SASL */
	bool authed, auth_pending;
	bool auth_revoked; /* token_hash was revoked while its check was in flight */
	unsigned auth_attempts;
	int oauth_failed;  /* OAUTHBEARER error challenge sent; expecting the dummy response */
	char *bare;        /* the authenticated bare JID */
	char token_hash[TOKEN_HASH_HEX_LEN + 1]; /* set when a check starts */
	/* Resource binding */
	bool bind_pending;
	char *bind_resource, *bind_id;
	struct session *session;
};

struct session {
	struct conn *conn;
	struct account *acct;
	struct session *next; /* in acct->sessions */
	const char *resource; /* in full, after the '/' */
	bool available, interested, initial_sent;
	int priority;
	struct xnode *presence; /* last available presence broadcast, from stamped */
	char **directed;        /* JIDs sent directed available presence */
	size_t n_directed;
	char full[]; /* bare/resource */
};

/* A roster item as stored: see roster.c for the encoding. */
struct ritem {
	char sub;       /* 'n'one, 't'o, 'f'rom, 'b'oth */
	bool ask;       /* subscribe sent, not answered */
	bool approved;  /* pre-approved */
	bool pending;   /* an inbound subscribe awaits the user's answer */
	bool visible;   /* shown in the roster (hidden items only carry state) */
	char *name;
	char **groups;
	size_t n_groups;
};

struct bind_waiter {
	struct conn *conn; /* referenced */
	struct bind_waiter *next;
};

struct account {
	struct session *sessions;
	struct hashmap *roster; /* contact bare JID -> struct ritem */
	bool loaded, loading;
	struct bind_waiter *waiters;
	char bare[];
};

/* ---- server.c */
/* The per-address key of sa (IPv4 address, or IPv6 /64) and its printable address. */
void server_addr_key(const struct sockaddr *sa, char addr[CONN_ADDR_MAX],
		     char key[CONN_IPKEY_MAX]);
const struct domain *server_domain(const struct server *srv, const char *name);
bool server_hosts(const struct server *srv, const char *domain);
void server_conn_gone(struct server *srv);
/* Begin a clean stop: every stream gets system-shutdown. */
void server_stop(struct server *srv);

/* ---- tls.c */
int tls_load(struct server *srv, const char **error_r);
void tls_free(struct server *srv);
/* A new server-side SSL for a connection (direct: ALPN xmpp-client required if offered). */
struct ssl_st *tls_new_ssl(struct server *srv, bool direct);

/* ---- conn.c */
struct conn *conn_new(struct server *srv, evutil_socket_t fd, const char *addr,
		      const char *ipkey, bool direct_tls);
/* Authentication succeeded: no deadline any more. */
void conn_authed(struct conn *c);
/* A connection over an existing bufferevent with no TLS layer (the fuzz target). */
struct conn *conn_new_bev(struct server *srv, struct bufferevent *bev, bool pretend_tls);
void conn_ref(struct conn *c);
void conn_unref(struct conn *c);
/* Feed received bytes (bufferevent read path, and the fuzz target). */
void conn_input(struct conn *c, const char *data, size_t len);
void conn_send_node(struct conn *c, const struct xnode *n);
void conn_send_raw(struct conn *c, const char *data, size_t len);
/* End the stream with a stream error (condition NULL: a plain close) and close the
 * connection once the output is written. */
void conn_stream_error(struct conn *c, const char *condition, const char *text);
/* A Redis call on behalf of c starts (c is referenced) or ends (the reference dropped;
 * reading resumes once few enough are in flight). */
void conn_redis_start(struct conn *c);
void conn_redis_done(struct conn *c);
/* Continue reading after an asynchronous step that paused the stream. */
void conn_resume(struct conn *c);
void conn_close_now(struct conn *c);
/* Send stream features for the current state. */
void conn_send_features(struct conn *c);

/* ---- sasl.c */
void sasl_features(struct conn *c, struct xnode *features);
void sasl_element(struct conn *c, struct xnode *el);

/* ---- ratelimit.c */
struct ratelimit *ratelimit_new(unsigned per_minute);
void ratelimit_free(struct ratelimit *rl);
/* True when key has used up its failures in the current minute. */
bool ratelimit_blocked(struct ratelimit *rl, const char *key, time_t now);
void ratelimit_fail(struct ratelimit *rl, const char *key, time_t now);

/* ---- session.c */
void session_bind(struct conn *c, struct xnode *iq);
void session_roster_loaded(struct server *srv, const char *bare, redisReply *reply);
/* Detach and free c's session: unavailable presence to whoever saw it. */
void session_end(struct conn *c);
struct account *account_get(struct server *srv, const char *bare);
void account_maybe_free(struct server *srv, struct account *a);
struct session *account_session(struct account *a, const char *resource);
void session_deliver(struct session *s, const struct xnode *stanza);
/* Close every session that logged in with the token whose hash is given. */
void session_revoked(struct server *srv, const char *hash);

/* ---- stanza.c */
/* Route one stanza from a bound session: stamps from, checks to, dispatches. */
void stanza_route(struct conn *c, struct xnode *stanza);
/* An error reply to stanza (not sent for error stanzas): type is cancel, modify, auth or
 * wait. Returns a new node the caller sends and frees, or NULL. */
struct xnode *stanza_error(const struct xnode *stanza, const char *type, const char *condition);
void stanza_reply_error(struct conn *c, const struct xnode *stanza, const char *type,
			const char *condition);
/* <iq type='result'> for iq (from/to swapped); payload may be NULL. */
struct xnode *iq_result(const struct xnode *iq);

/* ---- iq.c */
void iq_handle(struct conn *c, struct xnode *iq, const char *to_bare, const char *to_res);

/* ---- roster.c */
void roster_iq(struct conn *c, struct xnode *iq);
int roster_load(struct server *srv, const char *bare);
void roster_item_free(struct ritem *it);
struct ritem *roster_item_decode(const char *text, size_t len);
void roster_cache_set(struct server *srv, const char *bare, const char *contact,
		      const char *encoded);
/* Roster push of one item to every interested session of bare. */
void roster_push(struct server *srv, const char *bare, const char *contact,
		 const struct ritem *item);
/* The subscription state machine, one step in Redis; done(old, new) gets the encoded
 * items (NULL: none) and the step's result word, or ok == false when Redis failed. */
typedef void roster_sub_cb(struct server *srv, bool ok, const char *result, const char *old_item,
			   const char *new_item, void *data);
int roster_sub_step(struct server *srv, const char *bare, const char *contact, const char *event,
		    roster_sub_cb *cb, void *data);

/* ---- presence.c */
void presence_handle(struct conn *c, struct xnode *p, const char *to_bare, const char *to_full,
		     bool to_has_resource);
/* A subscription presence of type from from_bare arrives for to_bare (both local): run
 * to_bare's side of the state machine and deliver or answer as RFC 6121 §3 says. */
void presence_sub_inbound(struct server *srv, const char *from_bare, const char *to_bare,
			  const char *type);
/* Unavailable presence from each available session of from_bare to to_bare's sessions. */
void presence_unavailable_to(struct server *srv, const char *from_bare, const char *to_bare);
/* The user's session went away: unavailable to contacts and directed recipients. */
void presence_session_gone(struct server *srv, struct session *s);

/* ---- message.c */
void message_handle(struct conn *c, struct xnode *m, const char *to_bare, const char *to_res);
/* Deliver a message addressed to a local bare JID (or full JID without that resource). */
void message_to_bare(struct server *srv, const char *bare, struct xnode *m, struct conn *sender);

/* ---- offline.c */
/* Store stanza for bare; on failure (full or store down) bounce it to sender's session. */
void offline_store(struct server *srv, const char *bare, const struct xnode *stanza,
		   struct conn *sender);
/* Deliver and delete everything stored for s's user. */
void offline_deliver(struct server *srv, struct session *s);

/* ---- disco.c, ping.c, version.c */
bool disco_iq(struct conn *c, struct xnode *iq, const char *to_bare);
bool ping_iq(struct conn *c, struct xnode *iq, const char *to_bare);
bool version_iq(struct conn *c, struct xnode *iq, const char *to_bare);

/* ---- redis.c */
typedef void xredis_cb(redisReply *reply, void *data);
struct xredis *xredis_new(struct server *srv, const char **error_r);
void xredis_free(struct xredis *r);
/* Run a Lua script (EVALSHA/EVAL); cb(NULL) when Redis is unavailable. cb runs exactly
 * once, never before this returns. */
void xredis_script(struct xredis *r, const char *source, int nkeys, int nargs,
		   const char *const *args, const size_t *lens, xredis_cb *cb, void *data);
/* A plain command; the same contract. */
void xredis_command(struct xredis *r, int argc, const char *const *argv, const size_t *lens,
		    xredis_cb *cb, void *data);
/* Verify a token with the token store's own script (common/store_async.c): for jid, or
 * (jid NULL) for whoever owns it, who must be a user of domain; owner is then that bare
 * JID on success (valid during the callback), else NULL. */
typedef void xredis_verify_cb(int result, const char *hash, const char *why, const char *owner,
			      void *data);
void xredis_verify(struct xredis *r, const char *token, size_t len, const char *jid,
		   const char *domain, xredis_verify_cb *cb, void *data);

#endif
