/* Fuzz target: XOAUTH2 client messages as the SASL plugin parses them. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "oauth_parse.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct oauth_message m;
	const char *error = NULL;
	enum oauth_parse_result r = xoauth2_parse((const char *)data, size, &m, &error);
	if (r == OAUTH_PARSED) {
		if (m.user == NULL || m.user[0] == '\0' || m.token == NULL ||
		    strlen(m.token) != m.token_len)
			abort();
		oauth_message_clear(&m);
	} else if (r == OAUTH_MALFORMED && error == NULL) {
		abort();
	}
	return 0;
}
