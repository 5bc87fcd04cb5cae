/* OAUTHBEARER (RFC 7628 §3.1) and XOAUTH2 client message parsing; see oauth_parse.h.
 *
 *   OAUTHBEARER: gs2-header \x01 *(key "=" value \x01) \x01
 *                gs2-header = ("n" / "y") "," ["a=" saslname] ","
 *   XOAUTH2:     "user=" user \x01 "auth=Bearer " token \x01 \x01
 *
 * The message is copied once and split in place; nothing here allocates more. */
#include "oauth_parse.h"
#include "util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define KVSEP '\x01'

void oauth_message_clear(struct oauth_message *msg)
{
	if (msg == NULL)
		return;
	if (msg->buf != NULL) {
		secret_wipe(msg->buf, msg->buf_len);
		free(msg->buf);
	}
	memset(msg, 0, sizeof(*msg));
}

/* RFC 7628 value: *(VCHAR / SP / HTAB / CR / LF). */
static bool value_char(unsigned char c)
{
	return (c >= 0x21 && c <= 0x7e) || c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

static bool alpha(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

/* RFC 6750 b64token: 1*(ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/") *"=". */
static bool b64token(const char *s, size_t len)
{
	size_t i = 0;
	while (i < len && (alpha((unsigned char)s[i]) || (s[i] >= '0' && s[i] <= '9') ||
			   strchr("-._~+/", s[i]) != NULL))
		i++;
	if (i == 0)
		return false;
	while (i < len && s[i] == '=')
		i++;
	return i == len;
}

/* auth=Bearer TOKEN: the scheme is case-insensitive, then one or more spaces. */
static bool parse_auth_value(char *value, struct oauth_message *msg, const char **error_r)
{
	if (strncasecmp(value, "Bearer", 6) != 0 || value[6] != ' ') {
		*error_r = "the auth value is not 'Bearer <token>'";
		return false;
	}
	char *t = value + 6;
	while (*t == ' ')
		t++;
	size_t len = strlen(t);
	if (!b64token(t, len)) {
		*error_r = "the bearer token is empty or holds characters a token cannot";
		return false;
	}
	msg->token = t;
	msg->token_len = len;
	return true;
}

enum which_keys { KEYS_OAUTHBEARER, KEYS_XOAUTH2 };

/* Parse *(key "=" value \x01) \x01 from p to end, splitting values in place. */
static bool parse_kvpairs(char *p, char *end, enum which_keys keys, struct oauth_message *msg,
			  const char **error_r)
{
	bool have_auth = false, have_user = false, have_host = false;
	for (;;) {
		if (p == end) {
			*error_r = "the message does not end with the closing \\x01";
			return false;
		}
		if (*p == KVSEP) {
			if (p + 1 != end) {
				*error_r = "data after the closing \\x01";
				return false;
			}
			break;
		}
		char *key = p;
		while (p < end && alpha((unsigned char)*p))
			p++;
		if (p == key || p == end || *p != '=') {
			*error_r = "a key=value pair has a bad key";
			return false;
		}
		size_t key_len = (size_t)(p - key);
		*p++ = '\0';
		char *value = p;
		while (p < end && *p != KVSEP) {
			if (!value_char((unsigned char)*p)) {
				*error_r = "a value holds a control character";
				return false;
			}
			p++;
		}
		if (p == end) {
			*error_r = "a key=value pair is not ended by \\x01";
			return false;
		}
		*p++ = '\0';
		if (key_len == 4 && memcmp(key, "auth", 4) == 0) {
			if (have_auth) {
				*error_r = "more than one auth=";
				return false;
			}
			have_auth = true;
			if (!parse_auth_value(value, msg, error_r))
				return false;
		} else if (keys == KEYS_XOAUTH2 && key_len == 4 && memcmp(key, "user", 4) == 0) {
			if (have_user) {
				*error_r = "more than one user=";
				return false;
			}
			have_user = true;
			msg->user = value;
		} else if (keys == KEYS_OAUTHBEARER && key_len == 4 && memcmp(key, "host", 4) == 0) {
			if (have_host) {
				*error_r = "more than one host=";
				return false;
			}
			have_host = true;
			msg->host = value;
		}
		/* port= and extension keys are allowed and ignored (RFC 7628 §3.1). */
	}
	if (!have_auth) {
		*error_r = "no auth= in the message";
		return false;
	}
	if (keys == KEYS_XOAUTH2 && (!have_user || msg->user[0] == '\0')) {
		*error_r = "no user= in the message";
		return false;
	}
	return true;
}

/* gs2 saslname: "=2C" is ',' and "=3D" is '='; any other '=' or a raw ',' is an error.
 * Unescapes in place from s up to the ',' that ends it; returns the position of that
 * ',' or NULL. */
static char *parse_saslname(char *s, char *end, const char **error_r)
{
	char *in = s, *out = s;
	while (in < end && *in != ',') {
		if (*in == '=') {
			if (end - in >= 3 && in[1] == '2' && (in[2] == 'C' || in[2] == 'c'))
				*out++ = ',';
			else if (end - in >= 3 && in[1] == '3' && (in[2] == 'D' || in[2] == 'd'))
				*out++ = '=';
			else {
				*error_r = "the authzid holds an '=' that is not =2C or =3D";
				return NULL;
			}
			in += 3;
			continue;
		}
		*out++ = *in++;
	}
	if (in == end) {
		*error_r = "the gs2 header does not end with ','";
		return NULL;
	}
	size_t len = (size_t)(out - s);
	if (len == 0 || !utf8_printable(s, len)) {
		*error_r = "the authzid is empty or not printable UTF-8";
		return NULL;
	}
	/* Fill the gap left by unescaping so the string ends where it should. */
	memset(out, '\0', (size_t)(in - out));
	return in;
}

/* OAUTH_PARSED when msg holds a copy of the message, else why not. */
static enum oauth_parse_result copy_message(const char *data, size_t len,
					    struct oauth_message *msg, const char **error_r)
{
	if (len > OAUTH_MESSAGE_MAX) {
		*error_r = "the message is larger than the limit";
		return OAUTH_MALFORMED;
	}
	memset(msg, 0, sizeof(*msg));
	msg->buf = calloc(1, len + 1);
	if (msg->buf == NULL) {
		*error_r = "out of memory";
		return OAUTH_NOMEM;
	}
	msg->buf_len = len + 1;
	memcpy(msg->buf, data, len);
	return OAUTH_PARSED;
}

enum oauth_parse_result oauthbearer_parse(const char *data, size_t len,
					  struct oauth_message *msg_r, const char **error_r)
{
	if (len == 1 && data[0] == KVSEP)
		return OAUTH_ERROR_ACK;
	struct oauth_message msg;
	enum oauth_parse_result copied = copy_message(data, len, &msg, error_r);
	if (copied != OAUTH_PARSED)
		return copied;
	char *p = msg.buf, *end = msg.buf + len;
	if (len >= 2 && p[0] == 'p' && p[1] == '=') {
		*error_r = "channel binding is not supported by OAUTHBEARER";
		goto fail;
	}
	if (len < 3 || (p[0] != 'n' && p[0] != 'y') || p[1] != ',') {
		*error_r = "the message does not start with a gs2 header (n, or y,)";
		goto fail;
	}
	p += 2;
	if (p[0] == 'a' && p + 1 < end && p[1] == '=') {
		char *name = p + 2;
		p = parse_saslname(name, end, error_r);
		if (p == NULL)
			goto fail;
		msg.user = name;
		*p = '\0';
	} else if (*p != ',') {
		*error_r = "the gs2 header holds something other than a=";
		goto fail;
	}
	p++; /* the ',' closing the gs2 header */
	if (p == end || *p != KVSEP) {
		*error_r = "the gs2 header is not followed by \\x01";
		goto fail;
	}
	p++;
	if (!parse_kvpairs(p, end, KEYS_OAUTHBEARER, &msg, error_r))
		goto fail;
	*msg_r = msg;
	return OAUTH_PARSED;
fail:
	oauth_message_clear(&msg);
	return OAUTH_MALFORMED;
}

enum oauth_parse_result xoauth2_parse(const char *data, size_t len, struct oauth_message *msg_r,
				      const char **error_r)
{
	if (len == 0)
		return OAUTH_ERROR_ACK;
	struct oauth_message msg;
	enum oauth_parse_result copied = copy_message(data, len, &msg, error_r);
	if (copied != OAUTH_PARSED)
		return copied;
	if (!parse_kvpairs(msg.buf, msg.buf + len, KEYS_XOAUTH2, &msg, error_r)) {
		oauth_message_clear(&msg);
		return OAUTH_MALFORMED;
	}
	*msg_r = msg;
	return OAUTH_PARSED;
}

size_t oauth_error_challenge(enum oauth_mech mech, const char *status, const char *scope,
			     char out[OAUTH_CHALLENGE_MAX])
{
	int n = snprintf(out, OAUTH_CHALLENGE_MAX,
			 "{\"status\":\"%.32s\",\"schemes\":\"bearer\",\"scope\":\"%.32s\"}",
			 mech == OAUTH_MECH_XOAUTH2 ? "401" : status, scope);
	return n < 0 ? 0 : (size_t)n;
}
