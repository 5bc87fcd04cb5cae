/* SASL (RFC 6120 §6): PLAIN and OAUTHBEARER (RFC 7628), offered only over TLS. The token is
 * checked asynchronously with the token store's own verify script; while the check runs
 * the stream is paused. Outcomes: valid → success; refused → not-authorized; store
 * unavailable → temporary-auth-failure (never success).
 *
 * Throttling: tokens are 256-bit random, so guessing one is hopeless and the only thing
 * worth limiting is the cost of failed checks. Failures count against the client address
 * (an IPv6 address by its /64); past xmpp.auth_failures a minute, every check from that
 * address waits AUTH_PENALTY_MS first, and each connection gets AUTH_ATTEMPTS_MAX
 * attempts. Nothing is ever refused because of failures: a valid token is accepted even
 * from an address that failed often, and failures naming a JID never hold that user
 * back, so neither a victim's JID nor a whole NAT can be locked out. */
#include "xmpp.h"
#include "jid.h"
#include "log.h"
#include "store.h"
#include "util.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <event2/event.h>
#include <openssl/evp.h>

#define AUTH_PENALTY_MS 1000

void sasl_features(struct conn *c, struct xnode *features)
{
	(void)c;
	struct xnode *m = xnode_add(features, NS_SASL, "mechanisms");
	xnode_add_text(xnode_add(m, NS_SASL, "mechanism"), "PLAIN", 5);
	xnode_add_text(xnode_add(m, NS_SASL, "mechanism"), "OAUTHBEARER", 11);
}

static void send_failure(struct conn *c, const char *condition, const char *text)
{
	struct xnode *f = xnode_new(NS_SASL, "failure");
	xnode_add(f, NS_SASL, condition);
	if (text != NULL)
		xnode_add_text(xnode_add(f, NS_SASL, "text"), text, strlen(text));
	conn_send_node(c, f);
	xnode_free(f);
}

/* Strict base64 (RFC 4648, padded): '=' only as the last one or two characters, and a
 * second-to-last '=' only before a last one. "=" alone is an empty message. Returns the
 * length, or -1. out must hold 3 * len / 4 + 3 bytes. */
static long b64_decode(const char *in, size_t len, unsigned char *out)
{
	if (len == 1 && in[0] == '=')
		return 0;
	if (len % 4 != 0)
		return -1;
	if (len >= 2 && in[len - 2] == '=' && in[len - 1] != '=')
		return -1;
	int n = EVP_DecodeBlock(out, (const unsigned char *)in, (int)len);
	if (n < 0)
		return -1;
	if (len >= 1 && in[len - 1] == '=')
		n--;
	if (len >= 2 && in[len - 2] == '=')
		n--;
	for (size_t i = 0; i < len; i++) {
		char ch = in[i];
		bool ok = (ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') ||
			  (ch >= '0' && ch <= '9') || ch == '+' || ch == '/' ||
			  (ch == '=' && i >= len - 2);
		if (!ok)
			return -1;
	}
	return n;
}

/* authcid (localpart or bare JID) → normalised bare JID in the stream's domain. */
static char *user_jid(struct conn *c, const char *authcid, size_t len)
{
	if (len == 0 || len > JID_BARE_MAX || memchr(authcid, '\0', len) != NULL)
		return NULL;
	char *text = memchr(authcid, '@', len) != NULL
			     ? xstrndup(authcid, len)
			     : xasprintf("%.*s@%s", (int)len, authcid, c->domain->name);
	char *bare = NULL;
	const char *error;
	if (jid_bare_normalize(text, &bare, &error) < 0)
		bare = NULL;
	free(text);
	if (bare != NULL && strcmp(strchr(bare, '@') + 1, c->domain->name) != 0) {
		free(bare);
		bare = NULL;
	}
	return bare;
}

struct auth_call {
	struct conn *conn;
	char *bare; /* NULL: OAUTHBEARER without a user, whoever owns the token */
	bool oauth;
	char *token; /* while the check waits out a penalty; wiped */
	size_t token_len;
};

static void auth_done(int result, const char *hash, const char *why, const char *owner,
		      void *data)
{
	struct auth_call *ac = data;
	struct conn *c = ac->conn;
	if (c->closed)
		goto out;
	if (result == STORE_OK && ac->bare == NULL) {
		/* The script checked the domain; the JID must also be one we would accept. */
		char *bare = owner != NULL ? user_jid(c, owner, strlen(owner)) : NULL;
		if (bare == NULL || strcmp(bare, owner) != 0) {
			free(bare);
			result = STORE_INVALID;
			why = "the token's owner is not a user of this domain";
		} else {
			ac->bare = bare;
		}
	}
	struct timeval tv;
	event_base_gettimeofday_cached(c->srv->base, &tv);
	c->auth_pending = false;
	char id[TOKEN_ID_LEN + 1] = "";
	if (strlen(hash) == TOKEN_HASH_HEX_LEN)
		token_id_from_hash(hash, id);
	if (result == STORE_OK && c->auth_revoked) {
		/* The revocation overtook the check's answer (they come on different Redis
		 * connections): the token is gone, whatever the check saw. */
		result = STORE_INVALID;
		why = "revoked while being checked";
	}
	c->auth_revoked = false;
	if (result == STORE_OK) {
		c->authed = true;
		conn_authed(c);
		c->bare = ac->bare;
		ac->bare = NULL;
		memcpy(c->token_hash, hash, sizeof(c->token_hash));
		log_event(LOG_LEVEL_INFO, "auth_ok", "addr", c->addr, "jid", c->bare, "token_id", id,
			  NULL);
		struct xnode *s = xnode_new(NS_SASL, "success");
		conn_send_node(c, s);
		xnode_free(s);
		/* The client starts a new stream; nothing sent before <success/> counts. */
		xmlstream_reset(c->xs);
		c->header_sent = false;
		conn_resume(c);
		goto out;
	}
	if (result == STORE_UNAVAILABLE) {
		log_event(LOG_LEVEL_WARN, "auth_unavailable", "addr", c->addr, "jid", ac->bare,
			  "why", why, NULL);
		send_failure(c, "temporary-auth-failure", "the token store is unavailable");
	} else {
		ratelimit_fail(c->srv->rl, c->ipkey, tv.tv_sec);
		log_event(LOG_LEVEL_INFO, "auth_failed", "addr", c->addr, "jid", ac->bare, "token_id",
			  id[0] != '\0' ? id : NULL, "why", why, NULL);
		if (ac->oauth) {
			/* RFC 7628 §3.2.2: an error challenge; the client answers with ^A. */
			static const char err_b64[] = "eyJzdGF0dXMiOiJpbnZhbGlkX3Rva2VuIn0=";
			struct xnode *ch = xnode_new(NS_SASL, "challenge");
			xnode_add_text(ch, err_b64, strlen(err_b64));
			conn_send_node(c, ch);
			xnode_free(ch);
			c->oauth_failed = 1;
		} else {
			send_failure(c, "not-authorized", NULL);
		}
	}
	conn_resume(c);
out:
	secret_free(ac->bare);
	conn_unref(c);
	free(ac);
}

/* The penalty is over: check the token now (or drop the call if the client left). */
static void verify_later(evutil_socket_t fd, short what, void *arg)
{
	struct auth_call *ac = arg;
	(void)fd;
	(void)what;
	char *token = ac->token;
	size_t len = ac->token_len;
	ac->token = NULL;
	if (ac->conn->closed) {
		secret_wipe(token, len);
		free(token);
		secret_free(ac->bare);
		conn_unref(ac->conn);
		free(ac);
		return;
	}
	xredis_verify(ac->conn->srv->redis, token, len, ac->bare, ac->conn->domain->name, auth_done,
		      ac);
	secret_wipe(token, len);
	free(token);
}

/* Parse RFC 7628's client response: gs2 header "n,a=USER," or, without an authzid, "n,,"
 * (*user_r NULL: the token names its owner), then ^A-separated key=value pairs, one of
 * them auth=Bearer TOKEN. Returns 0 with pointers into msg. */
static int parse_oauthbearer(char *msg, size_t len, char **user_r, char **token_r,
			     size_t *token_len_r)
{
	if (len < 3 || memchr(msg, '\0', len) != NULL)
		return -1;
	msg[len] = '\0';
	if (msg[0] != 'n' && msg[0] != 'y')
		return -1; /* p=: channel binding is not offered */
	if (msg[1] != ',')
		return -1;
	char *p = msg + 2;
	char *comma = strchr(p, ',');
	if (comma == NULL || (comma != p && strncmp(p, "a=", 2) != 0))
		return -1;
	*comma = '\0';
	/* saslname: =2C is ',' and =3D is '='. */
	char *user = comma != p ? p + 2 : NULL, *w = user;
	for (char *r = user; r != NULL && *r; r++) {
		if (*r == '=') {
			if (strncmp(r, "=2C", 3) == 0)
				*w++ = ',';
			else if (strncmp(r, "=3D", 3) == 0)
				*w++ = '=';
			else
				return -1;
			r += 2;
		} else {
			*w++ = *r;
		}
	}
	if (w != NULL)
		*w = '\0';
	char *kv = comma + 1;
	if (*kv != '\x01')
		return -1;
	kv++;
	*token_r = NULL;
	while (*kv != '\0' && *kv != '\x01') {
		char *end = strchr(kv, '\x01');
		if (end == NULL)
			return -1;
		*end = '\0';
		if (strncmp(kv, "auth=", 5) == 0 && strncasecmp(kv + 5, "Bearer ", 7) == 0) {
			*token_r = kv + 12;
			*token_len_r = strlen(kv + 12);
		}
		kv = end + 1;
	}
	if (*kv != '\x01' || kv[1] != '\0' || *token_r == NULL)
		return -1;
	*user_r = user;
	return 0;
}

static void handle_auth(struct conn *c, struct xnode *el)
{
	const char *mech = xnode_attr(el, "mechanism");
	bool oauth = mech != NULL && strcmp(mech, "OAUTHBEARER") == 0;
	if (mech == NULL || (!oauth && strcmp(mech, "PLAIN") != 0)) {
		send_failure(c, "invalid-mechanism", NULL);
		return;
	}
	if (++c->auth_attempts > AUTH_ATTEMPTS_MAX) {
		conn_stream_error(c, "policy-violation", "too many login attempts");
		return;
	}
	char *b64 = xnode_text(el);
	size_t b64_len = strlen(b64);
	if (b64_len > SASL_MESSAGE_MAX) {
		secret_free(b64);
		send_failure(c, "malformed-request", "the SASL message is too long");
		return;
	}
	unsigned char *msg = xcalloc(1, b64_len / 4 * 3 + 4);
	size_t msg_cap = b64_len / 4 * 3 + 4;
	long n = b64_decode(b64, b64_len, msg);
	secret_free(b64);
	char *bare = NULL;
	bool any_owner = false; /* OAUTHBEARER without a user */
	const char *token = NULL;
	size_t token_len = 0;
	if (n <= 0) {
		send_failure(c, n == 0 ? "malformed-request" : "incorrect-encoding", NULL);
		goto out;
	}
	if (oauth) {
		char *user, *tok;
		if (parse_oauthbearer((char *)msg, (size_t)n, &user, &tok, &token_len) < 0) {
			send_failure(c, "malformed-request", NULL);
			goto out;
		}
		if (user != NULL)
			bare = user_jid(c, user, strlen(user));
		else
			any_owner = true;
		token = tok;
	} else {
		/* authzid NUL authcid NUL password */
		const char *a = (const char *)msg, *end = a + n;
		const char *z1 = memchr(a, '\0', (size_t)n);
		const char *z2 = z1 != NULL ? memchr(z1 + 1, '\0', (size_t)(end - z1 - 1)) : NULL;
		if (z2 == NULL) {
			send_failure(c, "malformed-request", NULL);
			goto out;
		}
		bare = user_jid(c, z1 + 1, (size_t)(z2 - z1 - 1));
		if (bare != NULL && z1 != a) {
			char *authz = user_jid(c, a, (size_t)(z1 - a));
			bool same = authz != NULL && strcmp(authz, bare) == 0;
			free(authz);
			if (!same) {
				send_failure(c, "invalid-authzid", NULL);
				goto out;
			}
		}
		token = z2 + 1;
		token_len = (size_t)(end - token);
	}
	if (bare == NULL && !any_owner) {
		send_failure(c, "not-authorized", NULL);
		goto out;
	}
	struct timeval tv;
	event_base_gettimeofday_cached(c->srv->base, &tv);
	bool penalty = ratelimit_blocked(c->srv->rl, c->ipkey, tv.tv_sec);
	if (c->srv->redis == NULL) {
		send_failure(c, "temporary-auth-failure", "no token store");
		goto out;
	}
	struct auth_call *ac = xcalloc(1, sizeof(*ac));
	ac->conn = c;
	ac->bare = bare;
	ac->oauth = oauth;
	bare = NULL;
	conn_ref(c);
	c->auth_pending = true;
	c->auth_revoked = false;
	/* session_revoked() matches this while the check is in flight. */
	if (!token_well_formed(token, token_len) ||
	    token_hash_hex(token, token_len, c->token_hash) < 0)
		memset(c->token_hash, 0, sizeof(c->token_hash));
	xmlstream_suspend(c->xs);
	if (penalty) {
		log_event(LOG_LEVEL_WARN, "auth_rate_limited", "addr", c->addr, "jid", ac->bare,
			  NULL);
		ac->token = xstrndup(token, token_len);
		ac->token_len = token_len;
		struct timeval wait = {AUTH_PENALTY_MS / 1000, (AUTH_PENALTY_MS % 1000) * 1000};
		if (event_base_once(c->srv->base, -1, EV_TIMEOUT, verify_later, ac, &wait) < 0)
			abort();
		goto out;
	}
	xredis_verify(c->srv->redis, token, token_len, ac->bare, c->domain->name, auth_done, ac);
out:
	secret_wipe(msg, msg_cap);
	free(msg);
	free(bare);
}

void sasl_element(struct conn *c, struct xnode *el)
{
	if (strcmp(el->name, "auth") == 0) {
		c->oauth_failed = 0;
		handle_auth(c, el);
	} else if (strcmp(el->name, "response") == 0 && c->oauth_failed) {
		c->oauth_failed = 0;
		send_failure(c, "not-authorized", NULL);
	} else if (strcmp(el->name, "abort") == 0) {
		c->oauth_failed = 0;
		send_failure(c, "aborted", NULL);
	} else {
		send_failure(c, "malformed-request", NULL);
	}
}
