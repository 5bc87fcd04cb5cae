/* Names and texts shared by the synchronous and asynchronous token stores (store_keys.h). */
#include "store_keys.h"
#include "util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

char *store_token_key_try(const char *prefix, const char *hash_hex)
{
	char *key;
	return asprintf(&key, "%stoken:%s", prefix, hash_hex) < 0 ? NULL : key;
}

char *store_user_tokens_key_try(const char *prefix, const char *jid)
{
	char *key;
	return asprintf(&key, "%suser:%s:tokens", prefix, jid) < 0 ? NULL : key;
}

char *store_revoked_channel_try(const char *prefix)
{
	char *key;
	return asprintf(&key, "%srevoked", prefix) < 0 ? NULL : key;
}

static char *must(char *s)
{
	if (s == NULL) {
		fputs("out of memory\n", stderr);
		abort();
	}
	return s;
}

char *store_token_key(const char *prefix, const char *hash_hex)
{
	return must(store_token_key_try(prefix, hash_hex));
}

char *store_user_tokens_key(const char *prefix, const char *jid)
{
	return must(store_user_tokens_key_try(prefix, jid));
}

char *store_revoked_channel(const char *prefix)
{
	return must(store_revoked_channel_try(prefix));
}

void store_script_sha1(const char *source, char out[41])
{
	static const char hex[] = "0123456789abcdef";
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int len = 0;
	EVP_Digest(source, strlen(source), md, &len, EVP_sha1(), NULL);
	for (unsigned i = 0; i < 20; i++) {
		out[2 * i] = hex[md[i] >> 4];
		out[2 * i + 1] = hex[md[i] & 15];
	}
	out[40] = '\0';
}

const char *store_reason_text(const char *reason)
{
	static const struct {
		const char *word, *text;
	} reasons[] = {
		{"unknown", "unknown, revoked or used-up token"},
		{"jid", "the token belongs to another user"},
		{"domain", "the token belongs to a user of another domain"},
		{"expired", "the token has expired"},
		{"service", "the token is not valid for this service"},
		{"used", "the token has no uses left"},
		{"limit", "the user already holds the most live tokens allowed"},
		{"ambiguous", "the id matches more than one token"},
	};
	for (size_t i = 0; i < ARRAY_SIZE(reasons); i++) {
		if (strcmp(reason, reasons[i].word) == 0)
			return reasons[i].text;
	}
	return "refused by the store";
}
