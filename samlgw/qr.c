/* QR codes as inline SVG (libqrencode), and the provisioning text they carry. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <qrencode.h>

#include "qr.h"
#include "util.h"

#define QR_QUIET 4	/* modules of white around the symbol, as ISO/IEC 18004 asks */
#define QR_TITLE_MAX 256
#define QR_SCALE 4	/* default width and height in CSS pixels per module */

struct buf {
	char *p;
	size_t len, cap;
};

static void put(struct buf *b, const char *s, size_t n)
{
	if (b->len + n + 1 > b->cap) {
		size_t cap = b->cap == 0 ? 4096 : b->cap;
		while (cap < b->len + n + 1)
			cap *= 2;
		/* fresh buffer: the old one is wiped, it held (a drawing of) a secret */
		char *p = xcalloc(1, cap);
		if (b->len > 0)
			memcpy(p, b->p, b->len);
		if (b->p != NULL) {
			secret_wipe(b->p, b->cap);
			free(b->p);
		}
		b->p = p;
		b->cap = cap;
	}
	memcpy(b->p + b->len, s, n);
	b->len += n;
	b->p[b->len] = '\0';
}

static void puts_(struct buf *b, const char *s)
{
	put(b, s, strlen(s));
}

static void putf(struct buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void putf(struct buf *b, const char *fmt, ...)
{
	char tmp[256];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof(tmp))
		abort(); /* only short numeric fragments pass through here */
	put(b, tmp, (size_t)n);
}

static void put_escaped(struct buf *b, const char *s)
{
	for (; *s != '\0'; s++) {
		switch (*s) {
		case '&':
			puts_(b, "&amp;");
			break;
		case '<':
			puts_(b, "&lt;");
			break;
		case '>':
			puts_(b, "&gt;");
			break;
		case '"':
			puts_(b, "&quot;");
			break;
		default:
			put(b, s, 1);
		}
	}
}

int qr_svg_titled(const char *text, const char *title, char **svg_r, const char **error_r)
{
	size_t len = strnlen(text, QR_TEXT_MAX + 1);
	if (len == 0) {
		*error_r = "nothing to encode";
		return -1;
	}
	if (len > QR_TEXT_MAX) {
		*error_r = "text too long for a QR code";
		return -1;
	}
	if (strnlen(title, QR_TITLE_MAX + 1) > QR_TITLE_MAX || !utf8_printable(title, strlen(title))) {
		*error_r = "QR code title too long or not printable UTF-8";
		return -1;
	}
	errno = 0;
	QRcode *qr = QRcode_encodeString(text, 0, QR_ECLEVEL_M, QR_MODE_8, 1);
	if (qr == NULL) {
		*error_r = errno == ERANGE   ? "text too long for a QR code (libqrencode)"
			   : errno == ENOMEM ? "out of memory while encoding a QR code"
					     : "libqrencode refused the text";
		return -1;
	}
	int w = qr->width, size = w + 2 * QR_QUIET;
	struct buf b = {0};
	putf(&b,
	     "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 %d %d\" width=\"%d\" "
	     "height=\"%d\" role=\"img\" shape-rendering=\"crispEdges\"><title>",
	     size, size, size * QR_SCALE, size * QR_SCALE);
	put_escaped(&b, title);
	putf(&b, "</title><rect width=\"%d\" height=\"%d\" fill=\"#fff\"/><path fill=\"#000\" d=\"",
	     size, size);
	/* One rectangle per horizontal run of dark modules. */
	for (int y = 0; y < w; y++) {
		int x = 0;
		while (x < w) {
			if (!(qr->data[y * w + x] & 1)) {
				x++;
				continue;
			}
			int start = x;
			while (x < w && (qr->data[y * w + x] & 1))
				x++;
			putf(&b, "M%d %dh%dv1h-%dz", start + QR_QUIET, y + QR_QUIET, x - start,
			     x - start);
		}
	}
	puts_(&b, "\"/></svg>");
	secret_wipe(qr->data, (size_t)w * (size_t)w);
	QRcode_free(qr);
	*svg_r = b.p;
	return 0;
}

int qr_svg(const char *text, char **svg_r, const char **error_r)
{
	return qr_svg_titled(text, "QR code", svg_r, error_r);
}

static void put_json_string(struct buf *b, const char *s)
{
	puts_(b, "\"");
	for (; *s != '\0'; s++) {
		unsigned char c = (unsigned char)*s;
		if (c == '"' || c == '\\') {
			char esc[2] = {'\\', (char)c};
			put(b, esc, 2);
		} else if (c < 0x20 || c == 0x7f) {
			putf(b, "\\u%04x", c);
		} else {
			put(b, s, 1);
		}
	}
	puts_(b, "\"");
}

int qr_xmpp_provisioning(const char *jid, const char *password, char **json_r,
			 const char **error_r)
{
	size_t jl = strnlen(jid, QR_TEXT_MAX + 1), pl = strnlen(password, QR_TEXT_MAX + 1);
	if (jl == 0 || pl == 0 || jl + pl > QR_TEXT_MAX / 2) {
		*error_r = "JID and password must be given and short enough for a QR code";
		return -1;
	}
	if (!utf8_printable(jid, jl) || !utf8_printable(password, pl)) {
		*error_r = "JID or password is not printable UTF-8";
		return -1;
	}
	struct buf b = {0};
	puts_(&b, "{\"protocol\":\"xmpp\",\"address\":");
	put_json_string(&b, jid);
	puts_(&b, ",\"password\":");
	put_json_string(&b, password);
	puts_(&b, "}");
	*json_r = b.p;
	return 0;
}
