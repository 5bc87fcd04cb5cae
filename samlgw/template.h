/* samlgw's page templates: a small engine that escapes HTML by default and refuses to
 * render anything it does not know.
 *
 * Syntax (templates/NAME.html):
 *   {{name}}                     a variable, HTML-escaped
 *   {{{name}}}                   a variable set with tmpl_set_html() (trusted markup such as
 *                                the QR code SVG); using it on a plain string is an error
 *   {{#if name}} … {{else}} … {{/if}}   true for a true bool, a non-empty string or list
 *   {{#each list}} … {{/each}}   once per item; inside, the item's variables shadow outer ones
 *   {{t key}}                    the text of message `key` in the page's language
 *   {{> name}}                   the partial templates/NAME.html
 * Every page is rendered into templates/layout.html as its `content`.
 *
 * An unknown variable, message or partial is an error: templates_load() checks the
 * syntax and every message key in every language when samlgw starts; templates_render()
 * fails (and the caller answers 500 with a log line) when a variable is missing. */
#ifndef SAMLGW_TEMPLATE_H
#define SAMLGW_TEMPLATE_H

#include <stdbool.h>
#include <stddef.h>

struct tmpl_vars;
struct templates;

struct tmpl_vars *tmpl_vars_new(void);
void tmpl_vars_free(struct tmpl_vars *vars);

/* Set a variable (the value is copied). Setting a name again replaces it. */
void tmpl_set(struct tmpl_vars *vars, const char *name, const char *value);
void tmpl_set_html(struct tmpl_vars *vars, const char *name, const char *trusted_html);
void tmpl_set_bool(struct tmpl_vars *vars, const char *name, bool value);
/* Append an item to list `name` (created empty on first use; a list may stay empty via
 * tmpl_set_list). The item belongs to vars; fill it with tmpl_set*. */
struct tmpl_vars *tmpl_list_add(struct tmpl_vars *vars, const char *name);
void tmpl_set_list(struct tmpl_vars *vars, const char *name);

/* Load every template and translation under dir (templates/ in the source tree,
 * /usr/share/samlgw/templates when installed). Returns 0, or -1 with *error_r
 * ("FILE:LINE: what is wrong"; valid until the next call). */
int templates_load(const char *dir, struct templates **templates_r, const char **error_r);
/* templates_load(), and then each of the n_pages names in pages (without .html, e.g.
 * "account") must be a page template: one that is missing fails the load here, with
 * "DIR/NAME.html:1: missing …", not the first request that renders it. */
int templates_load_pages(const char *dir, const char *const *pages, size_t n_pages,
			 struct templates **templates_r, const char **error_r);
void templates_free(struct templates *templates);

/* The best language of the templates for an Accept-Language header (NULL: the default, en). */
const char *templates_language(const struct templates *templates, const char *accept_language);

/* Render page (e.g. "account") in lang inside the layout. Returns 0 with a NUL-terminated
 * *html_r (caller frees) and *len_r, or -1 with *error_r. */
int templates_render(const struct templates *templates, const char *page, const char *lang,
		     const struct tmpl_vars *vars, char **html_r, size_t *len_r,
		     const char **error_r);

/* One file of a template set already in memory; name is relative to the templates folder:
 * "account.html", "style.css", "script.js" or "i18n/de.txt". */
struct tmpl_file {
	const char *name;
	const char *data;
	size_t len;
};

/* templates_load() over files in memory (tests, fuzzing). origin prefixes the file names
 * in messages (NULL: none). */
int templates_load_files(const char *origin, const struct tmpl_file *files, size_t n,
			 struct templates **templates_r, const char **error_r);

/* The text of message key in lang as written in its translation file (not escaped), for
 * variables such as a page's title; NULL when lang or key is unknown. Valid as long as
 * templates. */
const char *templates_text(const struct templates *templates, const char *lang,
			   const char *key);

/* A Content-Security-Policy header value for the rendered pages: nothing from elsewhere,
 * the inline stylesheet and script allowed by their hashes, images only from this origin
 * and data: URLs. Valid as long as templates. */
const char *templates_csp(const struct templates *templates);
/* The same, but images may also come from any https: site (the chooser's IdP logos). */
const char *templates_csp_images(const struct templates *templates);

#endif
