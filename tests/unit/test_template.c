/* Unit tests of the template engine (samlgw/template*.c) and of the real templates/:
 * escaping, load errors with FILE:LINE, partials, #if/#each and shadowing, translations,
 * Accept-Language, caps, rendering from several threads, and every page rendered in every
 * language with a full set of variables into well-formed, labelled HTML. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "qr.h"
#include "template.h"

#define EN "hello = Hello & <you>\nbye = Bye\n"
#define DE "# comment\n\nhello = Hallo \"du\"\nbye = Tschüss\n"
#define LAYOUT "<html lang=\"{{lang}}\">{{{content}}}</html>"

/* ---- helpers ------------------------------------------------------------------------ */

struct set {
	struct tmpl_file f[16];
	size_t n;
};

static void put(struct set *s, const char *name, const char *data)
{
	for (size_t i = 0; i < s->n; i++) {
		if (strcmp(s->f[i].name, name) == 0) {
			s->f[i].data = data;
			s->f[i].len = strlen(data);
			return;
		}
	}
	s->f[s->n++] = (struct tmpl_file){.name = name, .data = data, .len = strlen(data)};
}

static void drop(struct set *s, const char *name)
{
	for (size_t i = 0; i < s->n; i++) {
		if (strcmp(s->f[i].name, name) == 0) {
			s->f[i] = s->f[--s->n];
			return;
		}
	}
}

static struct set base(void)
{
	struct set s = {.n = 0};
	put(&s, "i18n/en.txt", EN);
	put(&s, "i18n/de.txt", DE);
	put(&s, "style.css", "body { color: black }");
	put(&s, "script.js", "var x = 1;");
	put(&s, "layout.html", LAYOUT);
	return s;
}

static struct templates *load_set(const struct set *s)
{
	struct templates *T = NULL;
	const char *error = NULL;
	if (templates_load_files("t", s->f, s->n, &T, &error) < 0)
		fail_msg("load failed: %s", error);
	return T;
}

static struct templates *load_page(const char *src)
{
	struct set s = base();
	put(&s, "page.html", src);
	return load_set(&s);
}

/* The error message of loading s, which must fail. */
static const char *load_error(const struct set *s)
{
	struct templates *T = NULL;
	const char *error = NULL;
	assert_int_equal(templates_load_files("t", s->f, s->n, &T, &error), -1);
	assert_null(T);
	assert_non_null(error);
	return error;
}

static const char *page_error(const char *src)
{
	struct set s = base();
	put(&s, "page.html", src);
	return load_error(&s);
}

/* Render page.html in lang; returns the page without the test layout's frame. */
static char *render(const struct templates *T, const char *lang, const struct tmpl_vars *v)
{
	char *html = NULL;
	size_t len = 0;
	const char *error = NULL;
	if (templates_render(T, "page", lang, v, &html, &len, &error) < 0)
		fail_msg("render failed: %s", error);
	assert_int_equal(strlen(html), len);
	char prefix[64];
	snprintf(prefix, sizeof(prefix), "<html lang=\"%s\">", lang);
	assert_true(strncmp(html, prefix, strlen(prefix)) == 0);
	assert_true(len >= strlen(prefix) + 7 && strcmp(html + len - 7, "</html>") == 0);
	char *inner = strndup(html + strlen(prefix), len - strlen(prefix) - 7);
	free(html);
	return inner;
}

static const char *render_error(const struct templates *T, const char *page,
				const struct tmpl_vars *v)
{
	char *html = (char *)"untouched";
	size_t len = 12345;
	const char *error = NULL;
	assert_int_equal(templates_render(T, page, "en", v, &html, &len, &error), -1);
	assert_string_equal(html, "untouched");
	assert_int_equal(len, 12345);
	assert_non_null(error);
	return error;
}

/* ---- engine ------------------------------------------------------------------------- */

static void test_escape_text_and_attributes(void **state)
{
	struct templates *T = load_page("<p title=\"{{v}}\" data-x='{{v}}'>{{v}}</p>");
	struct tmpl_vars *v = tmpl_vars_new();
	tmpl_set(v, "v", "a&b<c>d\"e'f`g\x01h\x7fi\tj\nk ü");
	char *out = render(T, "en", v);
	const char *esc = "a&amp;b&lt;c&gt;d&quot;e&#39;f&#96;g&#xFFFD;h&#xFFFD;i\tj\nk ü";
	char expected[512];
	snprintf(expected, sizeof(expected), "<p title=\"%s\" data-x='%s'>%s</p>", esc, esc, esc);
	assert_string_equal(out, expected);
	free(out);
	/* each special character on its own, so none can hide behind another */
	static const char *const pairs[][2] = {{"&", "&amp;"},	{"<", "&lt;"},	 {">", "&gt;"},
					       {"\"", "&quot;"}, {"'", "&#39;"}, {"`", "&#96;"}};
	for (size_t i = 0; i < sizeof(pairs) / sizeof(pairs[0]); i++) {
		tmpl_set(v, "v", pairs[i][0]);
		out = render(T, "en", v);
		snprintf(expected, sizeof(expected), "<p title=\"%s\" data-x='%s'>%s</p>", pairs[i][1],
			 pairs[i][1], pairs[i][1]);
		assert_string_equal(out, expected);
		free(out);
	}
	tmpl_vars_free(v);
	templates_free(T);
}

static void test_raw_only_for_html(void **state)
{
	struct templates *T = load_page("[{{{h}}}]");
	struct tmpl_vars *v = tmpl_vars_new();
	tmpl_set_html(v, "h", "<svg><title>x</title></svg>");
	char *out = render(T, "en", v);
	assert_string_equal(out, "[<svg><title>x</title></svg>]");
	free(out);
	tmpl_set(v, "h", "<script>");
	assert_string_equal(render_error(T, "page", v),
			    "t/page.html:1: `h` is a string, not usable as {{{html}}}");
	templates_free(T);

	T = load_page("\n{{h}}");
	tmpl_set_html(v, "h", "<b>");
	assert_string_equal(render_error(T, "page", v),
			    "t/page.html:2: `h` is trusted HTML, not usable as {{text}}");
	tmpl_set_bool(v, "h", true);
	assert_string_equal(render_error(T, "page", v),
			    "t/page.html:2: `h` is a bool, not usable as {{text}}");
	tmpl_vars_free(v);
	templates_free(T);
}

static void test_missing_variable(void **state)
{
	struct templates *T = load_page("one\ntwo {{#if yes}}\n{{nope}}{{/if}}");
	struct tmpl_vars *v = tmpl_vars_new();
	tmpl_set_bool(v, "yes", true);
	assert_string_equal(render_error(T, "page", v), "t/page.html:3: unknown variable `nope`");
	/* not reached, not needed */
	tmpl_set_bool(v, "yes", false);
	char *out = render(T, "en", v);
	assert_string_equal(out, "one\ntwo ");
	free(out);
	/* the #if's own variable is required */
	struct tmpl_vars *empty = tmpl_vars_new();
	assert_string_equal(render_error(T, "page", empty), "t/page.html:2: unknown variable `yes`");
	/* unknown page and language */
	assert_string_equal(render_error(T, "nosuch", v), "unknown page `nosuch`");
	assert_string_equal(render_error(T, "layout", v), "unknown page `layout`");
	char *html;
	size_t len;
	const char *error;
	assert_int_equal(templates_render(T, "page", "fr", v, &html, &len, &error), -1);
	assert_string_equal(error, "unknown language `fr`");
	tmpl_vars_free(empty);
	tmpl_vars_free(v);
	templates_free(T);
}

static void test_load_errors(void **state)
{
	static const struct {
		const char *src, *error;
	} cases[] = {
		{"a\n\nb {{t nokey}}", "t/page.html:3: unknown message `nokey`"},
		{"x\n{{name", "t/page.html:2: unclosed tag"},
		{"{{{raw}}", "t/page.html:1: unclosed tag"},
		{"{{a b}}", "t/page.html:1: not a valid tag: {{a b}}"},
		{"{{#if}}", "t/page.html:1: not a valid tag: {{#if}}"},
		{"{{}}", "t/page.html:1: not a valid tag: {{}}"},
		{"{{x\ny}}", "t/page.html:1: not a valid tag: {{x\ny}}"},
		{"{{> }}", "t/page.html:1: not a valid tag: {{>}}"},
		{"\n{{/if}}", "t/page.html:2: {{/if}} does not close anything open here"},
		{"{{#each l}}{{/if}}", "t/page.html:1: {{/if}} does not close anything open here"},
		{"{{#if x}}{{/each}}", "t/page.html:1: {{/each}} does not close anything open here"},
		{"{{else}}", "t/page.html:1: {{else}} outside {{#if}}"},
		{"{{#each l}}{{else}}{{/each}}", "t/page.html:1: {{else}} outside {{#if}}"},
		{"{{#if a}}{{else}}{{else}}{{/if}}", "t/page.html:1: {{else}} outside {{#if}}"},
		{"a\n{{#if x}}\n\n", "t/page.html:2: {{#if}} opened here is never closed"},
		{"{{#each x}}{{#if y}}{{/if}}", "t/page.html:1: {{#each}} opened here is never closed"},
		{"{{> nosuch}}", "t/page.html:1: unknown partial `nosuch`"},
		{"{{> page}}", "t/page.html:1: partial `page` includes itself"},
		{"a\0b", "t/page.html:1: NUL byte"},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct set s = base();
		put(&s, "page.html", cases[i].src);
		if (i == sizeof(cases) / sizeof(cases[0]) - 1)
			s.f[s.n - 1].len = 3; /* with the NUL */
		assert_string_equal(load_error(&s), cases[i].error);
	}
}

static void test_depth_cap(void **state)
{
	char deep[2048] = "", shallow[2048] = "";
	for (int i = 0; i < 17; i++)
		strcat(deep, "{{#if x}}");
	for (int i = 0; i < 17; i++)
		strcat(deep, "{{/if}}");
	assert_string_equal(page_error(deep), "t/page.html:1: blocks nested deeper than 16");
	for (int i = 0; i < 16; i++)
		strcat(shallow, "{{#if x}}");
	strcat(shallow, "y");
	for (int i = 0; i < 16; i++)
		strcat(shallow, "{{/if}}");
	struct templates *T = load_page(shallow);
	struct tmpl_vars *v = tmpl_vars_new();
	tmpl_set_bool(v, "x", true);
	char *out = render(T, "en", v);
	assert_string_equal(out, "y");
	free(out);
	tmpl_vars_free(v);
	templates_free(T);
	/* partials count too: page (1 block) -> p (7 blocks) -> q (8 blocks) is 18 deep,
	 * while p alone is 16 */
	char eight[512] = "", eight_q[512] = "";
	for (int i = 0; i < 7; i++)
		strcat(eight, "{{#if x}}");
	strcat(eight, "{{> q}}");
	for (int i = 0; i < 7; i++)
		strcat(eight, "{{/if}}");
	for (int i = 0; i < 8; i++)
		strcat(eight_q, "{{#if x}}");
	for (int i = 0; i < 8; i++)
		strcat(eight_q, "{{/if}}");
	struct set s = base();
	put(&s, "page.html", "{{#if x}}{{> p}}{{/if}}");
	put(&s, "p.html", eight);
	put(&s, "q.html", eight_q);
	assert_string_equal(load_error(&s), "t/page.html:1: partial `p` nests deeper than 16");
}

static void test_partial_cycle(void **state)
{
	struct set s = base();
	put(&s, "page.html", "{{> a}}");
	put(&s, "a.html", "a\n{{> b}}");
	put(&s, "b.html", "b\n\n{{> a}}");
	const char *error = load_error(&s);
	assert_true(strcmp(error, "t/b.html:3: partial `a` includes itself") == 0 ||
		    strcmp(error, "t/a.html:2: partial `b` includes itself") == 0);
}

static void test_translation_errors(void **state)
{
	struct set s = base();
	put(&s, "i18n/de.txt", "hello = Hallo\n");
	assert_string_equal(load_error(&s), "t/i18n/en.txt:2: message `bye` is missing from t/i18n/de.txt");
	put(&s, "i18n/de.txt", "hello = Hallo\nbye = Tschüss\nextra = x\n");
	assert_string_equal(load_error(&s), "t/i18n/de.txt:3: message `extra` is not in t/i18n/en.txt");
	put(&s, "i18n/de.txt", "hello = Hallo\nhello = Hallo\nbye = x\n");
	assert_string_equal(load_error(&s), "t/i18n/de.txt:2: message `hello` already defined at line 1");
	put(&s, "i18n/de.txt", "hello = Hallo\nbye\n");
	assert_string_equal(load_error(&s), "t/i18n/de.txt:2: expected `key = text`");
	put(&s, "i18n/de.txt", "hello = Hallo\nbye =\n");
	assert_string_equal(load_error(&s),
			    "t/i18n/de.txt:2: message `bye` must be 1 to 2048 bytes of printable UTF-8");
	put(&s, "i18n/de.txt", "hello = Hallo\nb y = x\n");
	assert_string_equal(load_error(&s), "t/i18n/de.txt:2: not a valid message key");
	put(&s, "i18n/de.txt", DE);
	put(&s, "i18n/DE.txt", DE);
	assert_string_equal(load_error(&s), "t/i18n/DE.txt:1: `DE` is not a lowercase language code");
	drop(&s, "i18n/DE.txt");
	drop(&s, "i18n/en.txt");
	assert_string_equal(load_error(&s), "t/i18n/de.txt:1: i18n/en.txt, the default language, is missing");
}

static void test_set_errors(void **state)
{
	struct set s = base();
	drop(&s, "layout.html");
	assert_string_equal(load_error(&s), "t/layout.html:1: missing");
	s = base();
	put(&s, "layout.html", "<html>{{content}}</html>");
	assert_string_equal(load_error(&s), "t/layout.html:1: the layout never shows {{{content}}}");
	s = base();
	drop(&s, "style.css");
	assert_string_equal(load_error(&s), "t/style.css:1: missing");
	s = base();
	put(&s, "script.js", "a;\nb = '</script>';");
	assert_string_equal(load_error(&s), "t/script.js:2: `</` may not appear in inline script");
	s = base();
	put(&s, "style.css", "<!-- x");
	assert_string_equal(load_error(&s), "t/style.css:1: `<!` may not appear in inline stylesheet");
	s = base();
	put(&s, "README.md", "x");
	assert_string_equal(load_error(&s),
			    "t/README.md:1: not a template (.html), style.css, script.js or translation "
			    "(i18n/*.txt)");
	s = base();
	put(&s, "Bad Name.html", "x");
	assert_string_equal(load_error(&s), "t/Bad Name.html:1: not a valid template name");
	s = base();
	char *big = malloc(256 * 1024 + 2);
	memset(big, 'x', 256 * 1024 + 1);
	big[256 * 1024 + 1] = '\0';
	put(&s, "page.html", big);
	assert_string_equal(load_error(&s), "t/page.html:1: larger than 262144 bytes");
	free(big);
}

static void test_partials_and_comments(void **state)
{
	struct set s = base();
	put(&s, "page.html", "{{! a comment\nover { two } lines }}[{{> item}}]{{#each l}}({{> item}}){{/each}}");
	put(&s, "item.html", "<i>{{x}}</i>");
	struct templates *T = load_set(&s);
	struct tmpl_vars *v = tmpl_vars_new();
	tmpl_set(v, "x", "top");
	tmpl_set(tmpl_list_add(v, "l"), "x", "one<");
	tmpl_list_add(v, "l"); /* no x: the outer one shows through */
	char *out = render(T, "en", v);
	assert_string_equal(out, "[<i>top</i>](<i>one&lt;</i>)(<i>top</i>)");
	free(out);
	tmpl_vars_free(v);
	templates_free(T);
}

static void test_nested_each_if_shadowing(void **state)
{
	struct templates *T = load_page(
		"{{name}}:{{#each groups}}[{{name}}/{{top}}"
		"{{#each members}}<{{name}}@{{group_only}}{{#if admin}}!{{else}}.{{/if}}>{{/each}}"
		"{{#if members}}{{else}}empty{{/if}}]{{/each}}:{{name}}");
	struct tmpl_vars *v = tmpl_vars_new();
	tmpl_set(v, "name", "outer");
	tmpl_set(v, "top", "T");
	tmpl_set_bool(v, "admin", false);
	struct tmpl_vars *g1 = tmpl_list_add(v, "groups");
	tmpl_set(g1, "name", "g1");
	tmpl_set(g1, "group_only", "G1");
	struct tmpl_vars *m = tmpl_list_add(g1, "members");
	tmpl_set(m, "name", "alice");
	tmpl_set_bool(m, "admin", true);
	m = tmpl_list_add(g1, "members");
	tmpl_set(m, "name", "bob");
	struct tmpl_vars *g2 = tmpl_list_add(v, "groups");
	tmpl_set(g2, "name", "g2");
	tmpl_set(g2, "group_only", "G2");
	tmpl_set_list(g2, "members");
	char *out = render(T, "en", v);
	assert_string_equal(out, "outer:[g1/T<alice@G1!><bob@G1.>][g2/Tempty]:outer");
	free(out);
	/* replacing a list with a string and back */
	tmpl_set(v, "groups", "x");
	assert_string_equal(render_error(T, "page", v), "t/page.html:1: `groups` is a string, not usable as a list");
	tmpl_set_list(v, "groups");
	out = render(T, "en", v);
	assert_string_equal(out, "outer::outer");
	free(out);
	tmpl_vars_free(v);
	templates_free(T);
}

static void test_if_truth(void **state)
{
	struct templates *T = load_page("{{#if x}}yes{{else}}no{{/if}}");
	struct tmpl_vars *v = tmpl_vars_new();
	static const struct {
		int kind; /* 0 string, 1 html, 2 bool, 3 list */
		const char *s;
		bool b;
		const char *expect;
	} cases[] = {
		{0, "", false, "no"},  {0, "0", false, "yes"}, {1, "", false, "no"},
		{1, "<b>", false, "yes"}, {2, NULL, false, "no"}, {2, NULL, true, "yes"},
		{3, NULL, false, "no"}, {3, NULL, true, "yes"},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		switch (cases[i].kind) {
		case 0:
			tmpl_set(v, "x", cases[i].s);
			break;
		case 1:
			tmpl_set_html(v, "x", cases[i].s);
			break;
		case 2:
			tmpl_set_bool(v, "x", cases[i].b);
			break;
		default:
			tmpl_set_list(v, "x");
			if (cases[i].b)
				tmpl_list_add(v, "x");
		}
		char *out = render(T, "en", v);
		assert_string_equal(out, cases[i].expect);
		free(out);
	}
	tmpl_vars_free(v);
	templates_free(T);
}

static void test_messages(void **state)
{
	struct templates *T = load_page("{{t hello}}|{{ t bye }}|{{lang}}");
	struct tmpl_vars *v = tmpl_vars_new();
	tmpl_set(v, "lang", "ignored: the engine's own lang wins");
	char *out = render(T, "en", v);
	assert_string_equal(out, "Hello &amp; &lt;you&gt;|Bye|en");
	free(out);
	out = render(T, "de", v);
	assert_string_equal(out, "Hallo &quot;du&quot;|Tschüss|de");
	free(out);
	assert_string_equal(templates_text(T, "en", "hello"), "Hello & <you>");
	assert_string_equal(templates_text(T, "de", "hello"), "Hallo \"du\"");
	assert_string_equal(templates_text(T, NULL, "bye"), "Bye");
	assert_null(templates_text(T, "fr", "hello"));
	assert_null(templates_text(T, "en", "nokey"));
	tmpl_vars_free(v);
	templates_free(T);
}

static void test_language_choice(void **state)
{
	struct templates *T = load_page("x");
	static const char *const cases[][2] = {
		{NULL, "en"},
		{"", "en"},
		{"de", "de"},
		{"DE-at", "de"},
		{"de-DE,de;q=0.9,en;q=0.8", "de"},
		{"en-US,en;q=0.9,de;q=0.8", "en"},
		{"fr-FR,fr;q=0.9,de;q=0.5", "de"},
		{"fr", "en"},
		{"de;q=0, en", "en"},
		{"de;q=0.000", "en"},
		{"*", "en"},
		{"fr, *;q=0.1", "en"},
		{"en;q=0.5, de;q=0.6", "de"},
		{"en;q=0.5,de;Q=1.000", "de"},
		{"de;q=abc, en;q=0.1", "en"},
		{"de;q=1.5", "en"},
		{"  de  ;  q=0.7 , en;q=0.7", "de"},
		{"en;q=0.7,de;q=0.7", "en"},
		{"x-klingon;q=1, de;q=0.001", "de"},
		{"de-ch-1996", "de"},
		{",,;,de", "de"},
		{"d", "en"},
		{"deu", "en"},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const char *got = templates_language(T, cases[i][0]);
		if (strcmp(got, cases[i][1]) != 0)
			fail_msg("Accept-Language \"%s\": got %s, want %s",
				 cases[i][0] != NULL ? cases[i][0] : "(null)", got, cases[i][1]);
	}
	/* a header over the cap is ignored as a whole */
	char *huge = malloc(8192);
	memset(huge, ' ', 8190);
	memcpy(huge, "de,", 3);
	huge[8190] = '\0';
	assert_string_equal(templates_language(T, huge), "en");
	free(huge);
	templates_free(T);
}

static void test_output_cap(void **state)
{
	struct templates *T = load_page("{{v}}");
	struct tmpl_vars *v = tmpl_vars_new();
	size_t big = 1024 * 1024 + 1;
	char *s = malloc(big + 1);
	memset(s, 'a', big);
	s[big] = '\0';
	tmpl_set(v, "v", s);
	assert_string_equal(render_error(T, "page", v), "t/page.html:1: page larger than 1048576 bytes");
	/* escaping multiplies: 300 KiB of '<' is 1.2 MiB of "&lt;" */
	memset(s, '<', 300 * 1024);
	s[300 * 1024] = '\0';
	tmpl_set(v, "v", s);
	assert_string_equal(render_error(T, "page", v), "t/page.html:1: page larger than 1048576 bytes");
	/* just under the cap, layout included */
	size_t fit = 1024 * 1024 - strlen("<html lang=\"en\"></html>");
	memset(s, 'a', fit);
	s[fit] = '\0';
	tmpl_set(v, "v", s);
	char *html;
	size_t len;
	const char *error;
	assert_int_equal(templates_render(T, "page", "en", v, &html, &len, &error), 0);
	assert_int_equal(len, 1024 * 1024);
	free(html);
	/* one more byte and the layout overflows */
	s[fit] = 'a';
	s[fit + 1] = '\0';
	tmpl_set(v, "v", s);
	assert_string_equal(render_error(T, "page", v), "t/layout.html:1: page larger than 1048576 bytes");
	free(s);
	tmpl_vars_free(v);
	templates_free(T);
}

static void test_csp(void **state)
{
	struct templates *T = load_page("x");
	const char *csp = templates_csp(T);
	unsigned char md[32], b64[64];
	unsigned int n = 0;
	EVP_Digest("body { color: black }", 21, md, &n, EVP_sha256(), NULL);
	EVP_EncodeBlock(b64, md, 32);
	char want[128];
	snprintf(want, sizeof(want), "style-src 'sha256-%s'", (char *)b64);
	assert_non_null(strstr(csp, want));
	EVP_Digest("var x = 1;", 10, md, &n, EVP_sha256(), NULL);
	EVP_EncodeBlock(b64, md, 32);
	snprintf(want, sizeof(want), "script-src 'sha256-%s'", (char *)b64);
	assert_non_null(strstr(csp, want));
	assert_true(strncmp(csp, "default-src 'none'; ", 20) == 0);
	assert_null(strstr(csp, "unsafe"));
	templates_free(T);
}

/* ---- the real templates -------------------------------------------------------------- */

static const char *const void_elements[] = {"area", "base", "br",   "col",   "embed", "hr",  "img",
					    "input", "link", "meta", "source", "track", "wbr"};

static bool is_void(const char *name)
{
	for (size_t i = 0; i < sizeof(void_elements) / sizeof(void_elements[0]); i++) {
		if (strcmp(name, void_elements[i]) == 0)
			return true;
	}
	return false;
}

/* The value of attribute attr in tag text (between < and >), or NULL; into buf. */
static const char *attr(const char *tag, const char *name, char *buf, size_t size)
{
	char pat[64];
	snprintf(pat, sizeof(pat), " %s=\"", name);
	const char *p = strstr(tag, pat);
	if (p == NULL)
		return NULL;
	p += strlen(pat);
	const char *q = strchr(p, '"');
	assert_non_null(q);
	snprintf(buf, size, "%.*s", (int)(q - p), p);
	return buf;
}

struct idrefs {
	char ids[128][64];
	size_t n_ids;
	char refs[128][64];
	size_t n_refs;
	char labelled[128][64]; /* label for= */
	size_t n_labelled;
	char controls[128][64]; /* ids of visible inputs and selects */
	size_t n_controls;
};

static bool in(char list[][64], size_t n, const char *s)
{
	for (size_t i = 0; i < n; i++) {
		if (strcmp(list[i], s) == 0)
			return true;
	}
	return false;
}

/* Tags balance (void elements aside), ids are unique, every id reference resolves, every
 * visible form control has a <label for>, and nothing of the template syntax is left. */
static void check_html(const char *name, const char *html)
{
	char stack[64][16];
	size_t depth = 0;
	struct idrefs *r = calloc(1, sizeof(*r));
	char buf[64];
	if (strncmp(html, "<!DOCTYPE html>\n<html lang=\"", 28) != 0)
		fail_msg("%s: does not start with the doctype and <html lang>", name);
	if (strstr(html, "{{") != NULL || strstr(html, "}}") != NULL)
		fail_msg("%s: template syntax left in the output", name);
	for (const char *p = strchr(html, '<'); p != NULL; p = strchr(p, '<')) {
		if (strncmp(p, "<!--", 4) == 0) {
			p = strstr(p, "-->");
			assert_non_null(p);
			continue;
		}
		if (strncmp(p, "<!", 2) == 0) {
			p = strchr(p, '>');
			continue;
		}
		bool closing = p[1] == '/';
		const char *s = p + (closing ? 2 : 1);
		char tag_name[16];
		size_t n = 0;
		while ((s[n] >= 'a' && s[n] <= 'z') || (s[n] >= '0' && s[n] <= '9'))
			n++;
		if (n == 0 || n >= sizeof(tag_name))
			fail_msg("%s: bad tag at …%.40s", name, p);
		memcpy(tag_name, s, n);
		tag_name[n] = '\0';
		/* the end of the tag, past quoted attribute values */
		const char *e = s + n;
		char quote = 0;
		for (; *e != '\0'; e++) {
			if (quote != 0) {
				if (*e == quote)
					quote = 0;
			} else if (*e == '"' || *e == '\'') {
				quote = *e;
			} else if (*e == '>') {
				break;
			} else if (*e == '<') {
				fail_msg("%s: `<` inside tag %s", name, tag_name);
			}
		}
		if (*e != '>')
			fail_msg("%s: unterminated tag %s", name, tag_name);
		char *tag = strndup(p, (size_t)(e - p));
		if (closing) {
			if (depth == 0 || strcmp(stack[depth - 1], tag_name) != 0)
				fail_msg("%s: </%s> closes <%s>", name, tag_name,
					 depth > 0 ? stack[depth - 1] : "nothing");
			depth--;
		} else {
			if (attr(tag, "id", buf, sizeof(buf)) != NULL) {
				if (in(r->ids, r->n_ids, buf))
					fail_msg("%s: id `%s` used twice", name, buf);
				snprintf(r->ids[r->n_ids++], 64, "%s", buf);
			}
			static const char *const ref_attrs[] = {"for", "aria-labelledby",
								 "aria-describedby", "data-copy",
								 "data-status"};
			for (size_t i = 0; i < sizeof(ref_attrs) / sizeof(ref_attrs[0]); i++) {
				if (attr(tag, ref_attrs[i], buf, sizeof(buf)) != NULL)
					snprintf(r->refs[r->n_refs++], 64, "%s", buf);
			}
			if (strcmp(tag_name, "label") == 0 && attr(tag, "for", buf, sizeof(buf)))
				snprintf(r->labelled[r->n_labelled++], 64, "%s", buf);
			bool control = strcmp(tag_name, "select") == 0 || strcmp(tag_name, "textarea") == 0 ||
				       (strcmp(tag_name, "input") == 0 &&
					(attr(tag, "type", buf, sizeof(buf)) == NULL ||
					 (strcmp(buf, "hidden") != 0 && strcmp(buf, "checkbox") != 0)));
			if (control) {
				if (attr(tag, "id", buf, sizeof(buf)) == NULL)
					fail_msg("%s: a <%s> without id (so without label)", name, tag_name);
				snprintf(r->controls[r->n_controls++], 64, "%s", buf);
			}
			bool self_closing = e[-1] == '/';
			if (strcmp(tag_name, "script") == 0 || strcmp(tag_name, "style") == 0) {
				char end[24];
				snprintf(end, sizeof(end), "</%s>", tag_name);
				e = strstr(e, end);
				assert_non_null(e);
				e += strlen(end) - 1;
			} else if (!is_void(tag_name) && !self_closing) {
				assert_true(depth < 64);
				snprintf(stack[depth++], sizeof(stack[0]), "%s", tag_name);
			}
		}
		free(tag);
		p = e + 1;
	}
	if (depth != 0)
		fail_msg("%s: <%s> never closed", name, stack[depth - 1]);
	for (size_t i = 0; i < r->n_refs; i++) {
		if (!in(r->ids, r->n_ids, r->refs[i]))
			fail_msg("%s: reference to missing id `%s`", name, r->refs[i]);
	}
	for (size_t i = 0; i < r->n_controls; i++) {
		if (!in(r->labelled, r->n_labelled, r->controls[i]))
			fail_msg("%s: control `%s` has no <label for>", name, r->controls[i]);
	}
	free(r);
}

static const char *const hostile = "<script>alert(\"x\")</script> & 'q' `b`";

/* The variable the builders below leave out (NULL: none), to show that pages need it. */
static const char *omit;

static bool keep(const char *name)
{
	return omit == NULL || strcmp(name, omit) != 0;
}

static void S(struct tmpl_vars *v, const char *name, const char *value)
{
	if (keep(name))
		tmpl_set(v, name, value);
}

static void B(struct tmpl_vars *v, const char *name, bool value)
{
	if (keep(name))
		tmpl_set_bool(v, name, value);
}

static void L(struct tmpl_vars *v, const char *name)
{
	if (keep(name))
		tmpl_set_list(v, name);
}

static struct tmpl_vars *A(struct tmpl_vars *v, const char *name)
{
	return tmpl_list_add(v, keep(name) ? name : "omitted");
}

static void set_layout(struct tmpl_vars *v, bool logged_in)
{
	S(v, "title", hostile);
	B(v, "logged_in", logged_in);
	S(v, "logout_url", "https://chat.example.org/logout");
	S(v, "csrf", "csrf\"token");
}

static struct tmpl_vars *vars_account(bool with_tokens)
{
	struct tmpl_vars *v = tmpl_vars_new();
	set_layout(v, true);
	S(v, "display_name", hostile);
	S(v, "jid", "alice@example.org");
	static const char *const ttl[][2] = {{"86400", "1 day"}, {"604800", "7 days"}, {"2592000", "30 days"}};
	for (size_t i = 0; i < 3; i++) {
		struct tmpl_vars *c = A(v, "ttl_choices");
		S(c, "value", ttl[i][0]);
		S(c, "label", ttl[i][1]);
		B(c, "selected", i == 1);
	}
	static const char *const services[] = {"xmpp", "imap"};
	for (size_t i = 0; i < 2; i++) {
		struct tmpl_vars *s = A(v, "services");
		S(s, "name", services[i]);
		B(s, "checked", i == 0);
	}
	L(v, "tokens");
	if (with_tokens) {
		for (int i = 0; i < 2; i++) {
			struct tmpl_vars *t = A(v, "tokens");
			S(t, "id", i == 0 ? "0123456789abcdef" : "fedcba9876543210");
			S(t, "label", i == 0 ? hostile : "");
			S(t, "services", "xmpp,imap");
			S(t, "issued", "2026-11-25 10:00 UTC");
			S(t, "expires", "2026-12-25 10:00 UTC");
		}
	}
	B(v, "has_tokens", with_tokens);
	S(v, "issue_url", "https://chat.example.org/tokens");
	S(v, "revoke_url", "https://chat.example.org/tokens/revoke");
	S(v, "revoke_all_url", "https://chat.example.org/tokens/revoke");
	S(v, "xmpp_host", "chat.example.org");
	S(v, "xmpp_port", "5222");
	return v;
}

static struct tmpl_vars *vars_issued(bool with_qr)
{
	struct tmpl_vars *v = tmpl_vars_new();
	set_layout(v, true);
	const char *token = "samlgw_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA123456";
	S(v, "token", token);
	S(v, "label", hostile);
	S(v, "jid", "alice@example.org");
	S(v, "expires", "2026-12-25 10:00 UTC");
	char *json = NULL, *svg = NULL;
	const char *error;
	assert_int_equal(qr_xmpp_provisioning("alice@example.org", token, &json, &error), 0);
	assert_int_equal(qr_svg_titled(json, "QR <code>", &svg, &error), 0);
	if (keep("qr_svg"))
		tmpl_set_html(v, "qr_svg", with_qr ? svg : "");
	free(json);
	free(svg);
	S(v, "xmpp_host", "chat.example.org");
	S(v, "xmpp_port", "5222");
	S(v, "account_url", "https://chat.example.org/");
	return v;
}

static struct tmpl_vars *vars_error(bool full)
{
	struct tmpl_vars *v = tmpl_vars_new();
	set_layout(v, false);
	S(v, "status", "403");
	S(v, "message", hostile);
	S(v, "detail", full ? hostile : "");
	S(v, "reference", full ? "a1b2c3d4e5f6" : "");
	S(v, "home_url", "https://chat.example.org/");
	return v;
}

static struct tmpl_vars *vars_chooser(bool full)
{
	struct tmpl_vars *v = tmpl_vars_new();
	set_layout(v, false);
	L(v, "idps");
	for (int i = 0; i < 3; i++) {
		struct tmpl_vars *idp = A(v, "idps");
		S(idp, "entity_id", "https://idp.example.org/idp/shibboleth");
		S(idp, "name", i == 0 ? hostile : "Universität Beispiel");
		S(idp, "href", "https://chat.example.org/login?idp=https%3A%2F%2Fidp&return=%2F");
		S(idp, "search", i == 0 ? hostile : "universität beispiel");
		B(idp, "has_logo", full && i > 0);
		S(idp, "logo_url", i == 1 ? "https://idp.example.org/logo.png" : hostile);
		S(idp, "logo_width", "64");
		S(idp, "logo_height", "32");
	}
	B(v, "has_last", full);
	S(v, "last_name", "Universität Beispiel");
	S(v, "last_href", "https://chat.example.org/login?idp=https%3A%2F%2Fidp&return=%2F");
	S(v, "query", full ? hostile : "");
	B(v, "has_query", full);
	B(v, "no_match", !full);
	S(v, "match_count", "3");
	B(v, "has_more", full);
	S(v, "more_count", "7");
	S(v, "search_url", "https://chat.example.org/login");
	S(v, "return", "/kept?path");
	return v;
}

static struct tmpl_vars *vars_logout(bool slo)
{
	struct tmpl_vars *v = tmpl_vars_new();
	set_layout(v, true);
	S(v, "jid", "alice@example.org");
	S(v, "account_url", "https://chat.example.org/");
	B(v, "slo", slo);
	return v;
}

static struct tmpl_vars *vars_logged_out(bool idp_failed)
{
	struct tmpl_vars *v = tmpl_vars_new();
	set_layout(v, false);
	S(v, "login_url", "https://chat.example.org/login");
	B(v, "idp_confirmed", false);
	B(v, "idp_failed", idp_failed);
	return v;
}

static struct tmpl_vars *vars_saml_post(bool relay_state)
{
	struct tmpl_vars *v = tmpl_vars_new();
	set_layout(v, false);
	S(v, "action", "https://idp.example.org/idp/profile/SAML2/POST/SLO");
	S(v, "field", "SAMLRequest");
	S(v, "value", "PHNhbWxwOkxvZ291dFJlcXVlc3Q+");
	B(v, "has_relay_state", relay_state);
	S(v, "relay_state", "rs<'q'>");
	return v;
}

static const struct {
	const char *page;
	struct tmpl_vars *(*vars)(bool);
	const char *must_show; /* text from the variables the page must contain */
} pages[] = {
	{"account", vars_account, "alice@example.org"},
	{"token-issued", vars_issued, "samlgw_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA123456"},
	{"error", vars_error, "403"},
	{"idp-chooser", vars_chooser, "Universität Beispiel"},
	{"logout", vars_logout, "alice@example.org"},
	{"logged-out", vars_logged_out, "https://chat.example.org/login"},
	{"saml-post", vars_saml_post, "https://idp.example.org/idp/profile/SAML2/POST/SLO"},
};

static struct templates *load_real(void)
{
	struct templates *T = NULL;
	const char *error = NULL;
	if (templates_load(SAMLGW_TEMPLATES_DIR, &T, &error) < 0)
		fail_msg("templates/: %s", error);
	return T;
}

static void test_real_pages(void **state)
{
	struct templates *T = load_real();
	static const char *const langs[] = {"en", "de"};
	for (size_t p = 0; p < sizeof(pages) / sizeof(pages[0]); p++) {
		for (int variant = 0; variant < 2; variant++) {
			for (size_t l = 0; l < 2; l++) {
				struct tmpl_vars *v = pages[p].vars(variant == 1);
				char *html = NULL;
				size_t len;
				const char *error = NULL;
				if (templates_render(T, pages[p].page, langs[l], v, &html, &len, &error) < 0)
					fail_msg("%s (%s): %s", pages[p].page, langs[l], error);
				char name[64], lang_attr[32];
				snprintf(name, sizeof(name), "%s/%s/%d", pages[p].page, langs[l], variant);
				check_html(name, html);
				snprintf(lang_attr, sizeof(lang_attr), "<html lang=\"%s\">", langs[l]);
				assert_non_null(strstr(html, lang_attr));
				assert_non_null(strstr(html, pages[p].must_show));
				/* hostile values only ever appear escaped */
				assert_null(strstr(html, "<script>alert"));
				assert_null(strstr(html, "'q'"));
				/* the stylesheet and script are inlined; nothing is loaded from elsewhere
				 * but the chooser's IdP logos */
				assert_non_null(strstr(html, "<style>/* samlgw's pages"));
				for (const char *src = strstr(html, " src="); src != NULL;
				     src = strstr(src + 1, " src=")) {
					static const char logo[] = "<img class=\"idp-logo\"";
					assert_string_equal(pages[p].page, "idp-chooser");
					assert_true((size_t)(src - html) >= sizeof(logo) - 1);
					assert_memory_equal(src - (sizeof(logo) - 1), logo, sizeof(logo) - 1);
				}
				assert_null(strstr(html, "<link"));
				/* the site name in the page's language */
				assert_non_null(strstr(html, templates_text(T, langs[l], "site_name")));
				free(html);
				tmpl_vars_free(v);
			}
		}
	}
	templates_free(T);
}

/* Every variable of a page's documented set is needed: without it, rendering fails and
 * says which one is missing (so the contract in templates/README.md is not wider than the
 * templates, and no variable is silently optional). */
static void test_real_pages_need_their_variables(void **state)
{
	struct templates *T = load_real();
	static const char *const needed[][16] = {
		{"account", "title", "logged_in", "csrf", "logout_url", "display_name", "jid",
		 "ttl_choices", "value", "label", "selected", "services", "name", "checked",
		 "has_tokens", NULL},
		{"account", "tokens", "id", "services", "issued", "expires", "issue_url",
		 "revoke_url", "revoke_all_url", "xmpp_host", "xmpp_port", NULL},
		{"token-issued", "title", "logged_in", "csrf", "logout_url", "token", "label", "jid",
		 "expires", "qr_svg", "xmpp_host", "xmpp_port", "account_url", NULL},
		{"error", "title", "logged_in", "status", "message", "detail", "reference",
		 "home_url", NULL},
		{"idp-chooser", "title", "logged_in", "idps", "entity_id", "name", "href", "search",
		 "has_logo", "logo_url", "logo_width", "logo_height", "has_last", "last_name",
		 "last_href", NULL},
		{"idp-chooser", "query", "no_match", "match_count", "has_more", "more_count",
		 "search_url", "return", NULL},
		{"logout", "title", "logged_in", "csrf", "logout_url", "jid", "account_url", "slo",
		 NULL},
		{"logged-out", "title", "logged_in", "login_url", "idp_confirmed", "idp_failed",
		 NULL},
		{"saml-post", "title", "logged_in", "action", "field", "value", "has_relay_state",
		 "relay_state", NULL},
	};
	for (size_t i = 0; i < sizeof(needed) / sizeof(needed[0]); i++) {
		size_t p = 0;
		while (strcmp(pages[p].page, needed[i][0]) != 0)
			p++;
		for (size_t k = 1; k < 16 && needed[i][k] != NULL; k++) {
			omit = needed[i][k];
			struct tmpl_vars *v = pages[p].vars(true);
			omit = NULL;
			char *html = NULL;
			size_t len;
			const char *error = NULL;
			if (templates_render(T, needed[i][0], "en", v, &html, &len, &error) == 0)
				fail_msg("%s renders without `%s`", needed[i][0], needed[i][k]);
			char want[64];
			snprintf(want, sizeof(want), "unknown variable `%s`", needed[i][k]);
			if (strstr(error, want) == NULL)
				fail_msg("%s without `%s`: %s", needed[i][0], needed[i][k], error);
			tmpl_vars_free(v);
		}
	}
	templates_free(T);
}

struct thread_arg {
	const struct templates *T;
	const char *expected;
	int failures;
};

static void *render_loop(void *p)
{
	struct thread_arg *a = p;
	struct tmpl_vars *v = vars_account(true);
	for (int i = 0; i < 100; i++) {
		char *html = NULL;
		size_t len;
		const char *error;
		if (templates_render(a->T, "account", i % 2 ? "de" : "en", v, &html, &len, &error) < 0 ||
		    (i % 2 == 0 && strcmp(html, a->expected) != 0))
			a->failures++;
		free(html);
	}
	tmpl_vars_free(v);
	return NULL;
}

static void test_threads(void **state)
{
	struct templates *T = load_real();
	struct tmpl_vars *v = vars_account(true);
	char *expected;
	size_t len;
	const char *error;
	assert_int_equal(templates_render(T, "account", "en", v, &expected, &len, &error), 0);
	tmpl_vars_free(v);
	pthread_t th[4];
	struct thread_arg args[4];
	for (int i = 0; i < 4; i++) {
		args[i] = (struct thread_arg){.T = T, .expected = expected};
		assert_int_equal(pthread_create(&th[i], NULL, render_loop, &args[i]), 0);
	}
	for (int i = 0; i < 4; i++) {
		pthread_join(th[i], NULL);
		assert_int_equal(args[i].failures, 0);
	}
	free(expected);
	templates_free(T);
}

static void test_load_missing_dir(void **state)
{
	struct templates *T = NULL;
	const char *error = NULL;
	assert_int_equal(templates_load("/nonexistent/templates", &T, &error), -1);
	assert_string_equal(error, "/nonexistent/templates:1: cannot open the folder");
	assert_null(T);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_escape_text_and_attributes),
		cmocka_unit_test(test_raw_only_for_html),
		cmocka_unit_test(test_missing_variable),
		cmocka_unit_test(test_load_errors),
		cmocka_unit_test(test_depth_cap),
		cmocka_unit_test(test_partial_cycle),
		cmocka_unit_test(test_translation_errors),
		cmocka_unit_test(test_set_errors),
		cmocka_unit_test(test_partials_and_comments),
		cmocka_unit_test(test_nested_each_if_shadowing),
		cmocka_unit_test(test_if_truth),
		cmocka_unit_test(test_messages),
		cmocka_unit_test(test_language_choice),
		cmocka_unit_test(test_output_cap),
		cmocka_unit_test(test_csp),
		cmocka_unit_test(test_real_pages),
		cmocka_unit_test(test_real_pages_need_their_variables),
		cmocka_unit_test(test_threads),
		cmocka_unit_test(test_load_missing_dir),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
