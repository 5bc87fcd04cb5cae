/* Fuzz target: redis.url parsing and redaction. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "redis_url.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size > 4096)
		return 0;
	char *text = malloc(size + 1);
	memcpy(text, data, size);
	text[size] = '\0';
	struct redis_url *url;
	const char *error;
	if (redis_url_parse(text, &url, &error) == 0) {
		if (url->password != NULL) {
			/* The redacted form never shows the password. */
			char *shown = redis_url_redact(text);
			if (strlen(url->password) >= 4 && strstr(shown, url->password) != NULL &&
			    strstr(text + 8, url->password) == strstr(text + 8, url->password) &&
			    strchr(url->password, '%') == NULL && strchr(url->password, '*') == NULL &&
			    strstr(shown, ":***@") == NULL)
				abort();
			free(shown);
		}
		redis_url_free(url);
	}
	free(text);
	return 0;
}
