/* What the template engine's files share (samlgw/template*.c only): the variable store,
 * the syntax tree every template is parsed into at load, the message tables, the loaded
 * set, and the thread-local error text. Rendering reads all of it and writes none. */
#ifndef SAMLGW_TEMPLATE_INT_H
#define SAMLGW_TEMPLATE_INT_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>

#include "template.h"

#define TMPL_FILE_MAX (256 * 1024)	 /* one template, stylesheet, script or translation */
#define TMPL_FILES_MAX 64		 /* files of each kind */
#define TMPL_DEPTH_MAX 16		 /* nesting of #if/#each and partials together */
#define TMPL_OUTPUT_MAX (1024 * 1024) /* one rendered page, layout included */
#define TMPL_NAME_MAX 64		 /* variable, message, partial and page names */
#define TMPL_MESSAGES_MAX 1024
#define TMPL_MESSAGE_MAX 2048
#define TMPL_LANG_MAX 16 /* a language code such as "de" or "pt-br" */

enum tmpl_kind {
	TMPL_STR,
	TMPL_HTML,
	TMPL_BOOL,
	TMPL_LIST,
};

struct tmpl_var {
	char *name;
	enum tmpl_kind kind;
	char *str; /* STR, HTML */
	size_t len;
	bool b; /* BOOL */
	struct tmpl_vars **items; /* LIST */
	size_t n_items;
};

struct tmpl_vars {
	struct tmpl_var *v;
	size_t n;
};

const struct tmpl_var *tmpl_vars_find(const struct tmpl_vars *vars, const char *name);

enum tmpl_node_type {
	NODE_TEXT,
	NODE_VAR,     /* {{name}} */
	NODE_RAW,     /* {{{name}}} */
	NODE_IF,      /* body, alt */
	NODE_EACH,    /* body */
	NODE_MSG,     /* {{t key}}: index into templates->keys */
	NODE_PARTIAL, /* {{> name}}: index into templates->t once resolved */
};

struct tmpl_node;

struct tmpl_block {
	struct tmpl_node *v;
	size_t n;
};

struct tmpl_node {
	enum tmpl_node_type type;
	unsigned line;
	const char *text; /* TEXT: points into the template's source */
	size_t len;
	char *name;   /* every other type */
	size_t index; /* MSG, PARTIAL */
	struct tmpl_block body, alt;
};

struct tmpl {
	char *name; /* "account" for account.html */
	char *file; /* as named in messages */
	char *src;  /* the file's text, owned, NUL-free; TEXT nodes point into it */
	size_t src_len;
	struct tmpl_block root;
	unsigned depth; /* deepest nesting reachable from here, partials included */
};

struct tmpl_lang {
	char *code;  /* "en" */
	char *file;  /* as named in messages */
	char **text; /* by key index, as written */
	char **html; /* by key index, HTML-escaped */
	unsigned *line;
};

struct templates {
	struct tmpl *t;
	size_t n;
	char **keys; /* message keys, in the order of the default language's file */
	size_t n_keys;
	struct tmpl_lang *langs; /* langs[0] is the default, en */
	size_t n_langs;
	struct tmpl_vars *builtins; /* stylesheet and script */
	char *csp;
	char *csp_images; /* csp with img-src https: (templates_csp_images) */
};

/* Format an error into this thread's buffer, which stays valid until its next use. */
const char *tmpl_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* True when s[0..len) is a name: 1..TMPL_NAME_MAX of [A-Za-z0-9_.-]. */
bool tmpl_name_valid(const char *s, size_t len);

/* A NUL-terminated copy of s[0..len), which need not be NUL-terminated itself. */
char *tmpl_memdup(const char *s, size_t len);

/* HTML-escape s[0..len) into a new string (for attribute values too). */
char *tmpl_escape_dup(const char *s, size_t len);

/* Parse one template; message keys resolve against T->keys. Partials are resolved later
 * by tmpl_link(). Returns 0, or -1 with *error_r. */
int tmpl_parse(const struct templates *T, struct tmpl *t, const char **error_r);
/* Resolve every partial of every template, refuse cycles and over-deep nesting. */
int tmpl_link(struct templates *T, const char **error_r);
void tmpl_block_free(struct tmpl_block *b);

/* Read translations (name "i18n/CODE.txt") into T->keys and T->langs; the default
 * language's file must come first. */
int tmpl_messages_add(struct templates *T, const char *file, const char *code,
		      const char *data, size_t len, const char **error_r);
/* Check that every language has every key. */
int tmpl_messages_check(const struct templates *T, const char **error_r);
void tmpl_messages_free(struct templates *T);
/* The language with exactly this code, or NULL. */
const struct tmpl_lang *tmpl_lang_find(const struct templates *T, const char *code);

int tmpl_render_page(const struct templates *T, const struct tmpl *page,
		     const struct tmpl *layout, const struct tmpl_lang *lang,
		     const struct tmpl_vars *vars, char **html_r, size_t *len_r,
		     const char **error_r);

#endif
