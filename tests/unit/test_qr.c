/* Unit tests of samlgw/qr.c: the SVG's structure and size (decoding is not available
 * here), the module count against the QR version, refusals, and the provisioning JSON. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "qr.h"

static size_t count(const char *s, const char *needle)
{
	size_t n = 0;
	for (const char *p = strstr(s, needle); p != NULL; p = strstr(p + 1, needle))
		n++;
	return n;
}

/* The symbol's side in modules, read back from the viewBox (which adds 2 x 4 quiet). */
static int side_of(const char *svg)
{
	int a, b;
	const char *v = strstr(svg, "viewBox=\"0 0 ");
	assert_non_null(v);
	assert_int_equal(sscanf(v, "viewBox=\"0 0 %d %d\"", &a, &b), 2);
	assert_int_equal(a, b);
	return a - 8;
}

/* Count the dark modules the path draws and check every rectangle stays inside the
 * symbol, off the quiet zone. */
static long dark_modules(const char *svg, int side)
{
	const char *d = strstr(svg, " d=\"");
	assert_non_null(d);
	d += 4;
	long total = 0;
	while (*d == 'M') {
		int x, y, w, w2, n = 0;
		assert_int_equal(sscanf(d, "M%d %dh%dv1h-%dz%n", &x, &y, &w, &w2, &n), 4);
		assert_int_equal(w, w2);
		assert_true(x >= 4 && y >= 4 && w >= 1 && x + w <= side + 4 && y < side + 4);
		total += w;
		d += n;
	}
	assert_int_equal(*d, '"');
	return total;
}

static void test_structure(void **state)
{
	const char *text = "{\"protocol\":\"xmpp\",\"address\":\"alice@example.org\","
			   "\"password\":\"samlgw_abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQ012345\"}";
	char *svg = NULL;
	const char *error = NULL;
	assert_int_equal(qr_svg(text, &svg, &error), 0);
	assert_non_null(svg);
	assert_true(strncmp(svg, "<svg xmlns=\"http://www.w3.org/2000/svg\" ", 40) == 0);
	assert_true(strlen(svg) > 9 && strcmp(svg + strlen(svg) - 6, "</svg>") == 0);
	assert_int_equal(count(svg, "<path"), 1);
	assert_int_equal(count(svg, "<title>QR code</title>"), 1);
	assert_int_equal(count(svg, "role=\"img\""), 1);
	assert_int_equal(count(svg, "shape-rendering=\"crispEdges\""), 1);
	/* ~140 bytes at level M need version 6 or 7 (41 or 45 modules). */
	int side = side_of(svg);
	assert_true(side == 41 || side == 45);
	long dark = dark_modules(svg, side);
	/* A QR symbol is roughly half dark; finder patterns alone are 3 x 33 modules. */
	assert_true(dark > side * side / 3 && dark < side * side * 2 / 3);
	/* compact: well under 20 KiB for a provisioning text */
	assert_true(strlen(svg) < 20 * 1024);
	free(svg);
}

static void test_size_grows_with_text(void **state)
{
	char *small = NULL, *big = NULL;
	const char *error;
	char text[1001];
	memset(text, 'x', 1000);
	text[1000] = '\0';
	assert_int_equal(qr_svg("hi", &small, &error), 0);
	assert_int_equal(side_of(small), 21); /* version 1 */
	assert_int_equal(qr_svg(text, &big, &error), 0);
	assert_true(side_of(big) > 100);
	free(small);
	free(big);
}

static void test_title_escaped(void **state)
{
	char *svg = NULL;
	const char *error;
	assert_int_equal(qr_svg_titled("x", "QR-Code <für> \"Alice\" & Bob", &svg, &error), 0);
	assert_non_null(strstr(svg, "<title>QR-Code &lt;für&gt; &quot;Alice&quot; &amp; Bob</title>"));
	free(svg);
	svg = NULL;
	assert_int_equal(qr_svg_titled("x", "line\nbreak", &svg, &error), -1);
	assert_null(svg);
}

static void test_refusals(void **state)
{
	char *svg = NULL;
	const char *error = NULL;
	assert_int_equal(qr_svg("", &svg, &error), -1);
	assert_string_equal(error, "nothing to encode");
	/* Over what a QR code holds at level M, under our own cap: libqrencode says ERANGE. */
	char *text = malloc(QR_TEXT_MAX + 2);
	memset(text, 'x', 3000);
	text[3000] = '\0';
	error = NULL;
	assert_int_equal(qr_svg(text, &svg, &error), -1);
	assert_string_equal(error, "text too long for a QR code (libqrencode)");
	/* Over our cap: refused before libqrencode. */
	memset(text, 'x', QR_TEXT_MAX + 1);
	text[QR_TEXT_MAX + 1] = '\0';
	error = NULL;
	assert_int_equal(qr_svg(text, &svg, &error), -1);
	assert_string_equal(error, "text too long for a QR code");
	assert_null(svg);
	free(text);
}

static void test_provisioning(void **state)
{
	char *json = NULL;
	const char *error;
	assert_int_equal(qr_xmpp_provisioning("alice@example.org", "samlgw_tok", &json, &error), 0);
	assert_string_equal(json, "{\"protocol\":\"xmpp\",\"address\":\"alice@example.org\","
				  "\"password\":\"samlgw_tok\"}");
	free(json);
	assert_int_equal(qr_xmpp_provisioning("a\"b\\c@example.org", "p", &json, &error), 0);
	assert_string_equal(json, "{\"protocol\":\"xmpp\",\"address\":\"a\\\"b\\\\c@example.org\","
				  "\"password\":\"p\"}");
	free(json);
	json = NULL;
	assert_int_equal(qr_xmpp_provisioning("", "p", &json, &error), -1);
	assert_int_equal(qr_xmpp_provisioning("a@b", "", &json, &error), -1);
	assert_int_equal(qr_xmpp_provisioning("a\n@b", "p", &json, &error), -1);
	assert_int_equal(qr_xmpp_provisioning("a@b", "\xff", &json, &error), -1);
	assert_null(json);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_structure),
		cmocka_unit_test(test_size_grows_with_text),
		cmocka_unit_test(test_title_escaped),
		cmocka_unit_test(test_refusals),
		cmocka_unit_test(test_provisioning),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
