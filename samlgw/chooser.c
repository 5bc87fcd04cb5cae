/* The IdP chooser (see chooser.h). The list holds only IdPs some [domain] takes users from
 * (any other would end in a refusal after its login) and never one with the REFEDS
 * hide-from-discovery category (a direct /login?idp= link still works for it). Names are
 * mdui:DisplayNames in the page's language; logos are mdui:Logos (https: or data:image,
 * checked when the metadata was loaded), which the page's Content-Security-Policy allows
 * for this page only. The search is ?q= (a plain GET form, so it works without
 * JavaScript; script.js filters the list as one types). The last choice is kept as a
 * hash of its entityID, never the entityID itself, in an HttpOnly cookie. */
#include "chooser.h"
#include "attributes.h"
#include "pages.h"
#include "template.h"
#include "util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/sha.h>

#define CHOOSER_COOKIE "samlgw_idp"
#define CHOOSER_COOKIE_MAX_AGE (365LL * 24 * 3600)
#define CHOOSER_HASH_HEX 32 /* 16 bytes of SHA-256 */
/* The most IdPs one page lists (a search narrows the rest down) and the longest search. */
#define CHOOSER_SHOWN_MAX 200
#define CHOOSER_QUERY_MAX 128
/* Logos larger than this (either side, in CSS pixels) are drawn scaled to it. */
#define CHOOSER_LOGO_MAX 64

struct entry {
	const struct idp *idp;
	const char *name;
};

static void entity_hash(const char *entity_id, char out[CHOOSER_HASH_HEX + 1])
{
	unsigned char md[SHA256_DIGEST_LENGTH];
	SHA256((const unsigned char *)entity_id, strlen(entity_id), md);
	static const char hex[] = "0123456789abcdef";
	for (size_t i = 0; i < CHOOSER_HASH_HEX / 2; i++) {
		out[2 * i] = hex[md[i] >> 4];
		out[2 * i + 1] = hex[md[i] & 15];
	}
	out[CHOOSER_HASH_HEX] = '\0';
}

/* ASCII lowercase copy (UTF-8 bytes beyond ASCII are kept as they are). */
static char *fold(const char *s)
{
	char *out = xstrdup(s);
	for (char *p = out; *p; p++)
		if (*p >= 'A' && *p <= 'Z')
			*p = (char)(*p - 'A' + 'a');
	return out;
}

/* Every name of the IdP and its entityID, folded and joined: what a search looks in. */
static char *search_text(const struct idp *idp, const char *shown)
{
	size_t len = strlen(shown) + strlen(idp->entity_id) + 2;
	for (size_t i = 0; i < idp->n_names; i++)
		len += strlen(idp->names[i].text) + 1;
	char *all = xcalloc(len + 1, 1);
	char *p = all;
	p += sprintf(p, "%s\n%s", shown, idp->entity_id);
	for (size_t i = 0; i < idp->n_names; i++)
		p += sprintf(p, "\n%s", idp->names[i].text);
	char *folded = fold(all);
	free(all);
	return folded;
}

static int by_name(const void *a, const void *b)
{
	const struct entry *x = a, *y = b;
	int c = strcasecmp(x->name, y->name);
	return c != 0 ? c : strcmp(x->idp->entity_id, y->idp->entity_id);
}

/* The logo for lang: that language, else one without a language, else any; NULL when
 * the IdP has none. */
static const struct idp_logo *pick_logo(const struct idp *idp, const char *lang)
{
	const struct idp_logo *any = NULL, *neutral = NULL;
	for (size_t i = 0; i < idp->n_logos; i++) {
		const struct idp_logo *l = &idp->logos[i];
		if (l->lang != NULL && strcmp(l->lang, lang) == 0)
			return l;
		if (l->lang == NULL && neutral == NULL)
			neutral = l;
		if (any == NULL)
			any = l;
	}
	return neutral != NULL ? neutral : any;
}

static char *login_href(const struct app *app, const struct idp *idp, const char *ret)
{
	char *e = http_url_encode(idp->entity_id), *r = http_url_encode(ret);
	char *href = xasprintf("%s/login?idp=%s&return=%s", app->cfg->http.public_url, e, r);
	free(e);
	free(r);
	return href;
}

static void add_idp(const struct app *app, struct tmpl_vars *item, const struct entry *e,
		    const char *lang, const char *ret, const char *search)
{
	char *href = login_href(app, e->idp, ret);
	tmpl_set(item, "entity_id", e->idp->entity_id);
	tmpl_set(item, "name", e->name);
	tmpl_set(item, "href", href);
	tmpl_set(item, "search", search);
	free(href);
	const struct idp_logo *logo = pick_logo(e->idp, lang);
	tmpl_set_bool(item, "has_logo", logo != NULL);
	unsigned w = 0, h = 0;
	if (logo != NULL && logo->width > 0 && logo->height > 0) {
		/* Keep the aspect ratio inside a CHOOSER_LOGO_MAX square. */
		double scale = (double)CHOOSER_LOGO_MAX / (logo->width > logo->height
								     ? logo->width
								     : logo->height);
		if (scale > 1)
			scale = 1;
		w = (unsigned)(logo->width * scale + 0.5);
		h = (unsigned)(logo->height * scale + 0.5);
	}
	char ws[16], hs[16];
	snprintf(ws, sizeof(ws), "%u", w > 0 ? w : CHOOSER_LOGO_MAX);
	snprintf(hs, sizeof(hs), "%u", h > 0 ? h : CHOOSER_LOGO_MAX);
	tmpl_set(item, "logo_url", logo != NULL ? logo->url : "");
	tmpl_set(item, "logo_width", ws);
	tmpl_set(item, "logo_height", hs);
}

void chooser_page(struct app *app, struct sp *sp, struct http_request *req,
		  struct http_reply *reply, const char *ret)
{
	const char *lang = templates_language(app->templates, http_header(req, "Accept-Language"));
	const char *q = http_query(req, "q");
	char query[CHOOSER_QUERY_MAX + 1] = "";
	if (q != NULL) {
		while (*q == ' ')
			q++;
		snprintf(query, sizeof(query), "%s", q);
		for (size_t n = strlen(query); n > 0 && query[n - 1] == ' '; n--)
			query[n - 1] = '\0';
	}
	char *folded_query = fold(query);
	const char *cookie = http_cookie(req, CHOOSER_COOKIE);
	char want[CHOOSER_HASH_HEX + 1] = "";
	if (cookie != NULL && strlen(cookie) == CHOOSER_HASH_HEX)
		memcpy(want, cookie, sizeof(want));

	struct entry *list = xcalloc(sp->idps->n > 0 ? sp->idps->n : 1, sizeof(*list));
	size_t n = 0;
	const struct entry *last = NULL;
	struct entry last_entry;
	for (size_t i = 0; i < sp->idps->n; i++) {
		const struct idp *idp = &sp->idps->v[i];
		if (!idp_has_domain(app->cfg, idp->entity_id))
			continue;
		const char *name = idp_name(idp, lang);
		struct entry e = {idp, name != NULL ? name : idp->entity_id};
		if (want[0] != '\0' && last == NULL) {
			char h[CHOOSER_HASH_HEX + 1];
			entity_hash(idp->entity_id, h);
			if (strcmp(h, want) == 0) {
				last_entry = e;
				last = &last_entry;
			}
		}
		if (!idp->hide_from_discovery)
			list[n++] = e;
	}
	qsort(list, n, sizeof(*list), by_name);

	struct tmpl_vars *vars = tmpl_vars_new();
	tmpl_set_list(vars, "idps");
	size_t shown = 0, matched = 0;
	for (size_t i = 0; i < n; i++) {
		char *search = search_text(list[i].idp, list[i].name);
		if (strstr(search, folded_query) != NULL) {
			matched++;
			if (shown < CHOOSER_SHOWN_MAX) {
				add_idp(app, tmpl_list_add(vars, "idps"), &list[i], lang, ret, search);
				shown++;
			}
		}
		free(search);
	}
	tmpl_set_bool(vars, "has_last", last != NULL);
	char *last_href = last != NULL ? login_href(app, last->idp, ret) : NULL;
	tmpl_set(vars, "last_name", last != NULL ? last->name : "");
	tmpl_set(vars, "last_href", last_href != NULL ? last_href : "");
	free(last_href);
	char count[24], more[24];
	snprintf(count, sizeof(count), "%zu", matched);
	snprintf(more, sizeof(more), "%zu", matched - shown);
	tmpl_set(vars, "query", query);
	tmpl_set_bool(vars, "has_query", query[0] != '\0');
	tmpl_set_bool(vars, "no_match", matched == 0);
	tmpl_set(vars, "match_count", count);
	tmpl_set_bool(vars, "has_more", matched > shown);
	tmpl_set(vars, "more_count", more);
	char *action = xasprintf("%s/login", app->cfg->http.public_url);
	tmpl_set(vars, "search_url", action);
	free(action);
	tmpl_set(vars, "return", ret);
	page_render(app, req, reply, 200, "idp-chooser", vars, NULL);
	/* Logos come from the IdPs' own sites. */
	if (reply->status == 200)
		reply->csp = templates_csp_images(app->templates);
	tmpl_vars_free(vars);
	free(list);
	free(folded_query);
}

void chooser_remember(struct app *app, struct http_reply *reply, const struct idp *idp)
{
	char h[CHOOSER_HASH_HEX + 1];
	entity_hash(idp->entity_id, h);
	free(reply->set_cookie);
	reply->set_cookie = xasprintf("%s=%s; Path=%s; Max-Age=%lld; HttpOnly; SameSite=Lax%s",
				      CHOOSER_COOKIE, h, app->cookie_path, CHOOSER_COOKIE_MAX_AGE,
				      app->secure_cookie ? "; Secure" : "");
}
