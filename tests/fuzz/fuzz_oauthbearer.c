/* Fuzz target: OAUTHBEARER client messages (RFC 7628) as the SASL plugin parses them. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "oauth_parse.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct oauth_message m;
	const char *error = NULL;
	enum oauth_parse_result r = oauthbearer_parse((const char *)data, size, &m, &error);
	if (r == OAUTH_PARSED) {
		/* What the parser hands out lies inside its copy and is NUL-terminated. */
		if (m.token == NULL || strlen(m.token) != m.token_len || m.token_len == 0)
			abort();
		if (m.user != NULL && (m.user[0] == '\0' || strchr(m.user, '\x01') != NULL))
			abort();
		if (m.token < m.buf || m.token + m.token_len >= m.buf + m.buf_len)
			abort();
		oauth_message_clear(&m);
	} else if (r == OAUTH_MALFORMED && error == NULL) {
		abort();
	}
	return 0;
}
