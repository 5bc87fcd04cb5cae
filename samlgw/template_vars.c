/* The variables a page is rendered with: strings, trusted HTML, booleans and lists of
 * nested variable sets. One owner (the caller of tmpl_vars_new); values are copied in and
 * wiped when freed, since a page's variables may hold a freshly issued token. */
#include <stdlib.h>
#include <string.h>

#include "template_int.h"
#include "util.h"

char *tmpl_memdup(const char *s, size_t len)
{
	char *copy = xcalloc(1, len + 1);
	if (len > 0)
		memcpy(copy, s, len);
	return copy;
}

struct tmpl_vars *tmpl_vars_new(void)
{
	return xcalloc(1, sizeof(struct tmpl_vars));
}

static void var_clear(struct tmpl_var *v)
{
	if (v->str != NULL) {
		secret_wipe(v->str, v->len);
		free(v->str);
		v->str = NULL;
	}
	v->len = 0;
	for (size_t i = 0; i < v->n_items; i++)
		tmpl_vars_free(v->items[i]);
	free(v->items);
	v->items = NULL;
	v->n_items = 0;
	v->b = false;
}

void tmpl_vars_free(struct tmpl_vars *vars)
{
	if (vars == NULL)
		return;
	for (size_t i = 0; i < vars->n; i++) {
		var_clear(&vars->v[i]);
		free(vars->v[i].name);
	}
	free(vars->v);
	free(vars);
}

const struct tmpl_var *tmpl_vars_find(const struct tmpl_vars *vars, const char *name)
{
	for (size_t i = 0; i < vars->n; i++) {
		if (strcmp(vars->v[i].name, name) == 0)
			return &vars->v[i];
	}
	return NULL;
}

/* The variable called name, emptied, with its new kind. */
static struct tmpl_var *slot(struct tmpl_vars *vars, const char *name, enum tmpl_kind kind)
{
	struct tmpl_var *v = (struct tmpl_var *)tmpl_vars_find(vars, name);
	if (v != NULL) {
		var_clear(v);
	} else {
		vars->v = xrealloc(vars->v, (vars->n + 1) * sizeof(*vars->v));
		v = &vars->v[vars->n++];
		memset(v, 0, sizeof(*v));
		v->name = xstrdup(name);
	}
	v->kind = kind;
	return v;
}

static void set_string(struct tmpl_vars *vars, const char *name, const char *value,
		       enum tmpl_kind kind)
{
	if (value == NULL)
		value = "";
	struct tmpl_var *v = slot(vars, name, kind);
	v->len = strlen(value);
	v->str = xstrndup(value, v->len);
}

void tmpl_set(struct tmpl_vars *vars, const char *name, const char *value)
{
	set_string(vars, name, value, TMPL_STR);
}

void tmpl_set_html(struct tmpl_vars *vars, const char *name, const char *trusted_html)
{
	set_string(vars, name, trusted_html, TMPL_HTML);
}

void tmpl_set_bool(struct tmpl_vars *vars, const char *name, bool value)
{
	slot(vars, name, TMPL_BOOL)->b = value;
}

void tmpl_set_list(struct tmpl_vars *vars, const char *name)
{
	slot(vars, name, TMPL_LIST);
}

struct tmpl_vars *tmpl_list_add(struct tmpl_vars *vars, const char *name)
{
	struct tmpl_var *v = (struct tmpl_var *)tmpl_vars_find(vars, name);
	if (v == NULL || v->kind != TMPL_LIST)
		v = slot(vars, name, TMPL_LIST);
	v->items = xrealloc(v->items, (v->n_items + 1) * sizeof(*v->items));
	struct tmpl_vars *item = tmpl_vars_new();
	v->items[v->n_items++] = item;
	return item;
}
