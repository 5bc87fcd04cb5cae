/* Names and texts shared by the synchronous (store.c) and asynchronous (store_async.c)
 * token stores, so both address the same keys (docs/redis.md) and explain refusals alike. */
#ifndef SAMLGW_STORE_KEYS_H
#define SAMLGW_STORE_KEYS_H

/* Keys and channel of the token store under prefix (new strings, caller frees). These
 * abort when memory runs out; the _try forms return NULL instead, for code that runs
 * inside other people's processes (the SASL plugin's path through store.c). */
char *store_token_key(const char *prefix, const char *hash_hex);
char *store_user_tokens_key(const char *prefix, const char *jid);
char *store_revoked_channel(const char *prefix);
char *store_token_key_try(const char *prefix, const char *hash_hex);
char *store_user_tokens_key_try(const char *prefix, const char *jid);
char *store_revoked_channel_try(const char *prefix);

/* SHA-1 of a script's source as 40 hex digits, for EVALSHA. */
void store_script_sha1(const char *source, char out[41]);

/* The sentence for a script's refusal word ("unknown", "jid", "expired", …); static. */
const char *store_reason_text(const char *reason);

#endif
