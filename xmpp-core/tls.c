/* TLS contexts: two per hosted domain (STARTTLS and direct TLS), chosen by SNI; TLS 1.2
 * or newer with forward-secret AEAD ciphers; ALPN `xmpp-client` on direct TLS (XEP-0368).
 * tls_load() is also the SIGHUP path: it builds every context first and swaps them in
 * only when all loaded, so a bad file leaves the running certificates in place.
 *
 * Memory per connection: everything a connection needs to know in the callbacks comes
 * from its context (the callbacks' argument, or which callback the context has), so an
 * SSL carries no ex_data of its own; no session tickets are sent (sessions are not cached
 * and could not be resumed), which spares a copy of the session per ticket. */
#include "xmpp.h"
#include "util.h"

#include <string.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

/* ChaCha20-Poly1305 first, then AES-GCM (both AEAD with forward secrecy; the server's
 * order decides). ChaCha20-Poly1305 is as strong, and for the short records of XMPP it is
 * the cheaper one per connection: its cipher contexts and the SHA-256 transcript hashes
 * kept for the life of a TLS 1.3 connection take ~330 bytes less than AES-256-GCM's with
 * SHA-384; and on the machine of bench/README.md it encrypts 256-byte records 2.5 times
 * as fast (openssl speed). */
#define CIPHERS_TLS12 "ECDHE+CHACHA20:ECDHE+AESGCM"
#define CIPHERSUITES_TLS13 \
	"TLS_CHACHA20_POLY1305_SHA256:TLS_AES_256_GCM_SHA384:TLS_AES_128_GCM_SHA256"

/* SNI: the named domain's context of the same kind (direct or STARTTLS). */
static int select_domain(SSL *ssl, struct server *srv, bool direct)
{
	const char *name = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
	if (name == NULL)
		return SSL_TLSEXT_ERR_NOACK; /* the first domain's certificate */
	char lower[256];
	size_t len = strlen(name);
	if (len >= sizeof(lower))
		return SSL_TLSEXT_ERR_NOACK;
	for (size_t i = 0; i <= len; i++)
		lower[i] = (char)(name[i] >= 'A' && name[i] <= 'Z' ? name[i] - 'A' + 'a' : name[i]);
	const struct domain *d = server_domain(srv, lower);
	if (d == NULL)
		return SSL_TLSEXT_ERR_NOACK;
	/* No-op (no copy of the certificate data) when it is the context already in use. */
	SSL_set_SSL_CTX(ssl, d->ctx[direct]);
	return SSL_TLSEXT_ERR_OK;
}

static int on_servername_starttls(SSL *ssl, int *alert, void *arg)
{
	(void)alert;
	return select_domain(ssl, arg, false);
}

static int on_servername_direct(SSL *ssl, int *alert, void *arg)
{
	(void)alert;
	return select_domain(ssl, arg, true);
}

/* Direct TLS with other protocols only is refused; STARTTLS carries on without ALPN. */
static int select_alpn(const unsigned char **out, unsigned char *outlen, const unsigned char *in,
		       unsigned int inlen, bool direct)
{
	static const unsigned char proto[] = "\x0bxmpp-client";
	unsigned char *sel;
	if (SSL_select_next_proto(&sel, outlen, proto, sizeof(proto) - 1, in, inlen) ==
	    OPENSSL_NPN_NEGOTIATED) {
		*out = sel;
		return SSL_TLSEXT_ERR_OK;
	}
	return direct ? SSL_TLSEXT_ERR_ALERT_FATAL : SSL_TLSEXT_ERR_NOACK;
}

static int on_alpn_starttls(SSL *ssl, const unsigned char **out, unsigned char *outlen,
			    const unsigned char *in, unsigned int inlen, void *arg)
{
	(void)ssl;
	(void)arg;
	return select_alpn(out, outlen, in, inlen, false);
}

static int on_alpn_direct(SSL *ssl, const unsigned char **out, unsigned char *outlen,
			  const unsigned char *in, unsigned int inlen, void *arg)
{
	(void)ssl;
	(void)arg;
	return select_alpn(out, outlen, in, inlen, true);
}

static SSL_CTX *make_ctx(struct server *srv, const struct domain *d, bool direct,
			 const char **error_r)
{
	static char msg[512];
	SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
	if (ctx == NULL) {
		*error_r = "cannot create a TLS context";
		return NULL;
	}
	SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
	/* CLEANSE_PLAINTEXT: decrypted records (which carry tokens) are wiped once read. */
	SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION |
					 SSL_OP_CIPHER_SERVER_PREFERENCE | SSL_OP_NO_TICKET |
					 SSL_OP_CLEANSE_PLAINTEXT);
	SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
	SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
	SSL_CTX_set_num_tickets(ctx, 0);
	if (SSL_CTX_set_cipher_list(ctx, CIPHERS_TLS12) != 1 ||
	    SSL_CTX_set_ciphersuites(ctx, CIPHERSUITES_TLS13) != 1)
		goto ssl_fail;
	if (SSL_CTX_use_certificate_chain_file(ctx, d->cert) != 1)
		goto ssl_fail;
	if (SSL_CTX_use_PrivateKey_file(ctx, d->key, SSL_FILETYPE_PEM) != 1)
		goto ssl_fail;
	if (SSL_CTX_check_private_key(ctx) != 1)
		goto ssl_fail;
	if (direct) {
		SSL_CTX_set_tlsext_servername_callback(ctx, on_servername_direct);
		SSL_CTX_set_alpn_select_cb(ctx, on_alpn_direct, NULL);
	} else {
		SSL_CTX_set_tlsext_servername_callback(ctx, on_servername_starttls);
		SSL_CTX_set_alpn_select_cb(ctx, on_alpn_starttls, NULL);
	}
	SSL_CTX_set_tlsext_servername_arg(ctx, srv);
	return ctx;
ssl_fail:;
	unsigned long e = ERR_get_error();
	char reason[256];
	ERR_error_string_n(e, reason, sizeof(reason));
	ERR_clear_error();
	snprintf(msg, sizeof(msg), "domain %s: cannot load %s / %s: %s", d->name, d->cert, d->key,
		 reason);
	*error_r = msg;
	SSL_CTX_free(ctx);
	return NULL;
}

int tls_load(struct server *srv, const char **error_r)
{
	SSL_CTX **fresh = xcalloc(2 * srv->n_domains, sizeof(*fresh));
	for (size_t i = 0; i < 2 * srv->n_domains; i++) {
		fresh[i] = make_ctx(srv, &srv->domains[i / 2], i % 2 == 1, error_r);
		if (fresh[i] == NULL) {
			for (size_t k = 0; k < i; k++)
				SSL_CTX_free(fresh[k]);
			free(fresh);
			return -1;
		}
	}
	/* Connections keep a reference to the context they started with. */
	for (size_t i = 0; i < 2 * srv->n_domains; i++) {
		SSL_CTX_free(srv->domains[i / 2].ctx[i % 2]);
		srv->domains[i / 2].ctx[i % 2] = fresh[i];
	}
	free(fresh);
	return 0;
}

void tls_free(struct server *srv)
{
	for (size_t i = 0; i < srv->n_domains; i++) {
		for (int k = 0; k < 2; k++) {
			SSL_CTX_free(srv->domains[i].ctx[k]);
			srv->domains[i].ctx[k] = NULL;
		}
	}
}

SSL *tls_new_ssl(struct server *srv, bool direct)
{
	return SSL_new(srv->domains[0].ctx[direct]);
}
