/* saslauthd request parsing and response encoding (see saslauthd_proto.h). */
#include "saslauthd_proto.h"
#include "util.h"

#include <stdbool.h>
#include <stdio.h>
#include <string.h>

/* One counted field at *pos: 1 done, 0 need more, -1 bad. */
static int take_field(const uint8_t *buf, size_t len, size_t *pos, char out[SASLAUTHD_FIELD_MAX + 1],
		      const char **error_r)
{
	if (len - *pos < 2)
		return 0;
	size_t n = ((size_t)buf[*pos] << 8) | buf[*pos + 1];
	if (n > SASLAUTHD_FIELD_MAX) {
		*error_r = "a request field is longer than the limit";
		return -1;
	}
	if (len - *pos - 2 < n)
		return 0;
	const uint8_t *data = buf + *pos + 2;
	if (memchr(data, '\0', n) != NULL) {
		*error_r = "a request field holds a NUL byte";
		return -1;
	}
	memcpy(out, data, n);
	out[n] = '\0';
	*pos += 2 + n;
	return 1;
}

enum saslauthd_parse_result saslauthd_request_parse(const uint8_t *buf, size_t len,
						    struct saslauthd_request *req_r,
						    const char **error_r)
{
	struct saslauthd_request req;
	char *fields[SASLAUTHD_FIELDS_MAX] = {req.login, req.password, req.service, req.realm,
					      req.client_addr};
	enum saslauthd_parse_result ret = SASLAUTHD_BAD;
	size_t pos = 0;
	req.client_addr[0] = '\0';
	for (int i = 0; i < SASLAUTHD_FIELDS_MAX; i++) {
		if (i == 4 && pos == len)
			break; /* the optional fifth field is absent */
		int r = take_field(buf, len, &pos, fields[i], error_r);
		if (r <= 0) {
			ret = r == 0 ? SASLAUTHD_NEED_MORE : SASLAUTHD_BAD;
			goto done;
		}
	}
	if (pos != len) {
		*error_r = "data after the request";
		ret = SASLAUTHD_BAD;
		goto done;
	}
	*req_r = req;
	ret = SASLAUTHD_COMPLETE;
done:
	secret_wipe(&req, sizeof(req));
	return ret;
}

void saslauthd_request_clear(struct saslauthd_request *req)
{
	secret_wipe(req, sizeof(*req));
}

size_t saslauthd_response(int ok, const char *reason, uint8_t out[SASLAUTHD_RESPONSE_MAX])
{
	char *text = (char *)out + 2;
	int n = ok ? snprintf(text, SASLAUTHD_RESPONSE_MAX - 2, "OK")
		   : snprintf(text, SASLAUTHD_RESPONSE_MAX - 2, "NO %s", reason);
	size_t len = n < 0 ? 0 : (size_t)n;
	if (len > SASLAUTHD_RESPONSE_MAX - 3)
		len = SASLAUTHD_RESPONSE_MAX - 3;
	out[0] = (uint8_t)(len >> 8);
	out[1] = (uint8_t)(len & 0xff);
	return len + 2;
}
