/* Names and texts shared by the synchronous (store.c) and asynchronous (store_async.c)
 * token stores, so both address the same keys (docs/redis.md) and explain refusals alike. */
#ifndef SAMLGW_STORE_KEYS_H
#define SAMLGW_STORE_KEYS_H

/* Keys and channel of the token store under prefix (new strings, caller frees). */
char *store_token_key(const char *prefix, const char *hash_hex);
char *store_user_tokens_key(const char *prefix, const char *jid);
char *store_revoked_channel(const char *prefix);

/* SHA-1 of a script's source as 40 hex digits, for EVALSHA. */
void store_script_sha1(const char *source, char out[41]);

/* The sentence for a script's refusal word ("unknown", "jid", "expired", …); static. */
const char *store_reason_text(const char *reason);

#endif
