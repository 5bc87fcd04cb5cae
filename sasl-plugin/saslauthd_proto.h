/* The saslauthd wire protocol, as libsasl2's `pwcheck_method: saslauthd` and
 * testsaslauthd speak it over a unix socket, one request per connection:
 *
 *   request:  (u16 length, bytes) for login, password, service, realm, and from newer
 *             libsasl2 (after 2.1.28) a fifth, the client's address; lengths in network
 *             byte order
 *   response: u16 length, then "OK" or "NO <reason>"
 *
 * No I/O here: the parser works on what has been read so far, so the fuzz target and the
 * daemon share it. */
#ifndef SAMLGW_SASLAUTHD_PROTO_H
#define SAMLGW_SASLAUTHD_PROTO_H

#include <stddef.h>
#include <stdint.h>

/* The largest field accepted (saslauthd's own MAX_REQ_LEN), and so the largest request. */
#define SASLAUTHD_FIELD_MAX 1024
#define SASLAUTHD_FIELDS_MAX 5
#define SASLAUTHD_REQUEST_MAX (SASLAUTHD_FIELDS_MAX * (2 + SASLAUTHD_FIELD_MAX))
/* The largest response written (a 2-byte length and the text). */
#define SASLAUTHD_RESPONSE_MAX 256

enum saslauthd_parse_result {
	SASLAUTHD_COMPLETE = 0,
	SASLAUTHD_NEED_MORE = 1,
	SASLAUTHD_BAD = 2,
};

struct saslauthd_request {
	char login[SASLAUTHD_FIELD_MAX + 1];
	char password[SASLAUTHD_FIELD_MAX + 1];
	char service[SASLAUTHD_FIELD_MAX + 1];
	char realm[SASLAUTHD_FIELD_MAX + 1];
	char client_addr[SASLAUTHD_FIELD_MAX + 1]; /* "" when the client sent four fields */
};

/* Parse the request held in buf[0..len). The four required fields make a complete
 * request; bytes after them must form the optional fifth field (NEED_MORE until it is
 * whole) and nothing may follow that. Fields holding a NUL or longer than
 * SASLAUTHD_FIELD_MAX are BAD, with *error_r. On COMPLETE, *req_r is filled (the caller
 * wipes it with saslauthd_request_clear). */
enum saslauthd_parse_result saslauthd_request_parse(const uint8_t *buf, size_t len,
						    struct saslauthd_request *req_r,
						    const char **error_r);

/* Wipe a request (it holds a password). */
void saslauthd_request_clear(struct saslauthd_request *req);

/* Encode a response ("OK" or "NO reason"; the reason is cut to fit). Returns its size. */
size_t saslauthd_response(int ok, const char *reason, uint8_t out[SASLAUTHD_RESPONSE_MAX]);

#endif
