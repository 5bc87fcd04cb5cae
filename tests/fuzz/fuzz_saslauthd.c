/* Fuzz target: saslauthd requests as samlgw-authd parses them, fed in two pieces the way
 * they may arrive from a socket. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "saslauthd_proto.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size > SASLAUTHD_REQUEST_MAX + 8)
		return 0;
	struct saslauthd_request req;
	const char *error = NULL;
	size_t split = size > 0 ? data[0] % (size + 1) : 0;
	enum saslauthd_parse_result first = saslauthd_request_parse(data, split, &req, &error);
	enum saslauthd_parse_result whole = saslauthd_request_parse(data, size, &req, &error);
	/* A complete request never becomes incomplete when more bytes arrive, only bad. */
	if (first == SASLAUTHD_COMPLETE && whole == SASLAUTHD_NEED_MORE)
		abort();
	if (whole == SASLAUTHD_COMPLETE) {
		if (strlen(req.login) > SASLAUTHD_FIELD_MAX || strlen(req.realm) > SASLAUTHD_FIELD_MAX)
			abort();
		uint8_t out[SASLAUTHD_RESPONSE_MAX];
		size_t n = saslauthd_response(0, req.login, out);
		if (n > SASLAUTHD_RESPONSE_MAX || (((size_t)out[0] << 8) | out[1]) != n - 2)
			abort();
		saslauthd_request_clear(&req);
	}
	return 0;
}
