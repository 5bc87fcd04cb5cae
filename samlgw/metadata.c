/* Federation metadata loading (see metadata.h). */
#include "metadata.h"
#include "xml.h"
#include "util.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <libxml/tree.h>

#define BINDING_REDIRECT "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect"
#define PROTOCOL_SAML2 "urn:oasis:names:tc:SAML:2.0:protocol"
#define TEXT_MAX 4096
#define ENTITY_CATEGORY "http://macedir.org/entity-category"
#define CATEGORY_HIDE_FROM_DISCOVERY "http://refeds.org/category/hide-from-discovery"

/* Formatted error messages of this file (its own buffer: a message may quote another
 * file's). */
DEFINE_ERROR_FORMATTER(fmt_error, error_buf, 600)

static void idp_clear(struct idp *idp)
{
	free(idp->entity_id);
	free(idp->display_name);
	free(idp->sso_redirect);
	for (size_t i = 0; i < idp->n_scopes; i++) {
		if (idp->scopes[i].regexp)
			regfree(&idp->scopes[i].re);
		free(idp->scopes[i].value);
	}
	free(idp->scopes);
	xmlsig_keys_clear(&idp->keys);
	for (size_t i = 0; i < idp->n_names; i++) {
		free(idp->names[i].lang);
		free(idp->names[i].text);
	}
	free(idp->names);
	for (size_t i = 0; i < idp->n_logos; i++) {
		free(idp->logos[i].url);
		free(idp->logos[i].lang);
	}
	free(idp->logos);
	for (size_t i = 0; i < idp->n_categories; i++)
		free(idp->categories[i]);
	free(idp->categories);
}

const char *idp_name(const struct idp *idp, const char *lang)
{
	const char *en = NULL;
	for (size_t i = 0; i < idp->n_names; i++) {
		const struct idp_text *t = &idp->names[i];
		if (lang != NULL && t->lang != NULL && strcasecmp(t->lang, lang) == 0)
			return t->text;
		if (en == NULL && t->lang != NULL && strcasecmp(t->lang, "en") == 0)
			en = t->text;
	}
	if (en != NULL)
		return en;
	if (idp->n_names > 0)
		return idp->names[0].text;
	return idp->display_name;
}

void idp_set_free(struct idp_set *set)
{
	if (set == NULL)
		return;
	for (size_t i = 0; i < set->n; i++)
		idp_clear(&set->v[i]);
	free(set->v);
	free(set);
}

static int cmp_idp(const void *a, const void *b)
{
	return strcmp(((const struct idp *)a)->entity_id, ((const struct idp *)b)->entity_id);
}

const struct idp *idp_set_find(const struct idp_set *set, const char *entity_id)
{
	struct idp key = {.entity_id = (char *)entity_id};
	if (set->n == 0 || idp_set_expired(set, time(NULL)))
		return NULL; /* bsearch's base must not be NULL */
	return bsearch(&key, set->v, set->n, sizeof(*set->v), cmp_idp);
}

bool idp_set_expired(const struct idp_set *set, time_t now)
{
	return set->valid_until != 0 && set->valid_until <= now;
}

bool idp_scope_ok(const struct idp *idp, const char *scope)
{
	for (size_t i = 0; i < idp->n_scopes; i++) {
		const struct idp_scope *s = &idp->scopes[i];
		if (s->regexp ? regexec(&s->re, scope, 0, NULL, 0) == 0
			      : strcasecmp(s->value, scope) == 0)
			return true;
	}
	return false;
}

static bool truthy(const char *v)
{
	return v != NULL && (strcmp(v, "true") == 0 || strcmp(v, "1") == 0);
}

static int add_scopes(struct idp *idp, const xmlNode *ext)
{
	if (ext == NULL)
		return 0;
	for (xmlNode *s = xml_child(ext, NS_SHIBMD, "Scope"); s != NULL;
	     s = xml_next(s, NS_SHIBMD, "Scope")) {
		char *v = xml_text(s, 1024);
		if (v == NULL || *str_trim(v) == '\0') {
			free(v);
			continue;
		}
		if (idp->n_scopes == METADATA_SCOPES_MAX) {
			free(v);
			error_buf[0] = '\0';
			fmt_error("%s: more than %d shibmd:Scope entries", idp->entity_id,
				  METADATA_SCOPES_MAX);
			return -1;
		}
		idp->scopes = xrealloc(idp->scopes, (idp->n_scopes + 1) * sizeof(*idp->scopes));
		struct idp_scope *sc = &idp->scopes[idp->n_scopes];
		memset(sc, 0, sizeof(*sc));
		sc->value = v;
		sc->regexp = truthy(xml_attr(s, "regexp"));
		if (sc->regexp) {
			/* Matched whole: anchored in a group of its own, after it compiled alone
			 * (so "a)|(.*" cannot close that group and match every scope). */
			regex_t alone;
			int rc = regcomp(&alone, v, REG_EXTENDED | REG_NOSUB | REG_ICASE);
			if (rc == 0) {
				regfree(&alone);
				char *pattern = xasprintf("^(%s)$", v);
				rc = regcomp(&sc->re, pattern, REG_EXTENDED | REG_NOSUB | REG_ICASE);
				free(pattern);
			}
			if (rc != 0) {
				free(v);
				fmt_error("%s: shibmd:Scope regexp is not a valid POSIX extended "
					  "regular expression", idp->entity_id);
				return -1;
			}
		}
		idp->n_scopes++;
	}
	return 0;
}

static void pick_display_name(struct idp *idp, const xmlNode *ext)
{
	const xmlNode *ui = ext != NULL ? xml_child(ext, NS_MDUI, "UIInfo") : NULL;
	if (ui == NULL)
		return;
	for (xmlNode *d = xml_child(ui, NS_MDUI, "DisplayName"); d != NULL;
	     d = xml_next(d, NS_MDUI, "DisplayName")) {
		xmlChar *lang = xmlNodeGetLang(d);
		bool en = lang != NULL && strcmp((const char *)lang, "en") == 0;
		xmlFree(lang);
		if (idp->display_name != NULL && !en)
			continue;
		char *v = xml_text(d, 256);
		if (v == NULL || !utf8_printable(v, strlen(v))) {
			free(v);
			continue;
		}
		free(idp->display_name);
		idp->display_name = v;
		if (en)
			return;
	}
}

/* The xml:lang of node, as a new string when it is short printable ASCII, else NULL. */
static char *node_lang(const xmlNode *node)
{
	xmlChar *lang = xmlNodeGetLang(node);
	char *out = NULL;
	if (lang != NULL && strlen((const char *)lang) <= METADATA_LANG_MAX) {
		out = xstrdup((const char *)lang);
		for (char *p = out; *p; p++) {
			if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
			      (*p >= '0' && *p <= '9') || *p == '-')) {
				free(out);
				out = NULL;
				break;
			}
		}
	}
	xmlFree(lang);
	return out;
}

static void add_names(struct idp *idp, const xmlNode *ui)
{
	for (xmlNode *d = xml_child(ui, NS_MDUI, "DisplayName"); d != NULL;
	     d = xml_next(d, NS_MDUI, "DisplayName")) {
		if (idp->n_names == METADATA_NAMES_MAX)
			return;
		char *v = xml_text(d, METADATA_NAME_LEN_MAX);
		if (v == NULL || *str_trim(v) == '\0' || !utf8_printable(v, strlen(v))) {
			free(v);
			continue;
		}
		char *lang = node_lang(d);
		bool dup = false;
		for (size_t i = 0; i < idp->n_names && !dup; i++) {
			const char *l = idp->names[i].lang;
			dup = (l == NULL && lang == NULL) ||
			      (l != NULL && lang != NULL && strcasecmp(l, lang) == 0);
		}
		if (dup) { /* the first per language wins */
			free(lang);
			free(v);
			continue;
		}
		idp->names = xrealloc(idp->names, (idp->n_names + 1) * sizeof(*idp->names));
		idp->names[idp->n_names++] = (struct idp_text){.lang = lang, .text = v};
	}
}

/* An https: URL or a data:image/ URI without spaces, quotes or control characters. */
static bool logo_url_ok(const char *url)
{
	if (strncmp(url, "https://", 8) != 0 && strncmp(url, "data:image/", 11) != 0)
		return false;
	for (const unsigned char *p = (const unsigned char *)url; *p; p++) {
		if (*p <= ' ' || *p >= 0x7f || *p == '"' || *p == '\'' || *p == '<' || *p == '>' ||
		    *p == '\\')
			return false;
	}
	return true;
}

static unsigned logo_dimension(const xmlNode *logo, const char *name)
{
	const char *v = xml_attr(logo, name);
	if (v == NULL)
		return 0;
	char *end;
	unsigned long n = strtoul(v, &end, 10);
	return *v >= '0' && *v <= '9' && *end == '\0' && n <= 4096 ? (unsigned)n : 0;
}

static void add_logos(struct idp *idp, const xmlNode *ui)
{
	for (xmlNode *l = xml_child(ui, NS_MDUI, "Logo"); l != NULL;
	     l = xml_next(l, NS_MDUI, "Logo")) {
		if (idp->n_logos == METADATA_LOGOS_MAX)
			return;
		char *url = xml_text(l, METADATA_LOGO_URL_MAX);
		if (url == NULL || !logo_url_ok(str_trim(url))) {
			free(url);
			continue;
		}
		char *trimmed = xstrdup(str_trim(url));
		free(url);
		idp->logos = xrealloc(idp->logos, (idp->n_logos + 1) * sizeof(*idp->logos));
		idp->logos[idp->n_logos++] = (struct idp_logo){
			.url = trimmed,
			.lang = node_lang(l),
			.width = logo_dimension(l, "width"),
			.height = logo_dimension(l, "height"),
		};
	}
}

static void pick_ui_info(struct idp *idp, const xmlNode *ext)
{
	const xmlNode *ui = ext != NULL ? xml_child(ext, NS_MDUI, "UIInfo") : NULL;
	if (ui == NULL)
		return;
	add_names(idp, ui);
	add_logos(idp, ui);
}

/* Entity categories: the values of the EntityAttributes attribute
 * http://macedir.org/entity-category in the EntityDescriptor's Extensions. */
static void add_categories(struct idp *idp, const xmlNode *ed_ext)
{
	const xmlNode *ea = ed_ext != NULL ? xml_child(ed_ext, NS_MDATTR, "EntityAttributes") : NULL;
	if (ea == NULL)
		return;
	for (xmlNode *a = xml_child(ea, NS_SAML, "Attribute"); a != NULL;
	     a = xml_next(a, NS_SAML, "Attribute")) {
		const char *name = xml_attr(a, "Name");
		if (name == NULL || strcmp(name, ENTITY_CATEGORY) != 0)
			continue;
		for (xmlNode *v = xml_child(a, NS_SAML, "AttributeValue"); v != NULL;
		     v = xml_next(v, NS_SAML, "AttributeValue")) {
			if (idp->n_categories == METADATA_CATEGORIES_MAX)
				return;
			char *text = xml_text(v, METADATA_CATEGORY_LEN_MAX);
			if (text == NULL || *str_trim(text) == '\0' ||
			    !utf8_printable(text, strlen(text))) {
				free(text);
				continue;
			}
			char *value = xstrdup(str_trim(text));
			free(text);
			if (strcmp(value, CATEGORY_HIDE_FROM_DISCOVERY) == 0)
				idp->hide_from_discovery = true;
			idp->categories = xrealloc(idp->categories, (idp->n_categories + 1) *
									sizeof(*idp->categories));
			idp->categories[idp->n_categories++] = value;
		}
	}
}

static int add_keys(struct idp *idp, const xmlNode *role)
{
	for (xmlNode *kd = xml_child(role, NS_MD, "KeyDescriptor"); kd != NULL;
	     kd = xml_next(kd, NS_MD, "KeyDescriptor")) {
		const char *use = xml_attr(kd, "use");
		if (use != NULL && strcmp(use, "signing") != 0)
			continue;
		xmlNode *ki = xml_child(kd, NS_DS, "KeyInfo");
		for (xmlNode *xd = ki != NULL ? xml_child(ki, NS_DS, "X509Data") : NULL;
		     xd != NULL; xd = xml_next(xd, NS_DS, "X509Data")) {
			for (xmlNode *xc = xml_child(xd, NS_DS, "X509Certificate"); xc != NULL;
			     xc = xml_next(xc, NS_DS, "X509Certificate")) {
				char *b64 = xml_text(xc, 128 * 1024);
				const char *error = "cannot be read";
				int r = b64 == NULL ? -1
						    : xmlsig_keys_add_cert_b64(&idp->keys, b64,
									       &error);
				free(b64);
				if (r < 0) {
					fmt_error("%s: a signing certificate: %s", idp->entity_id,
						  error);
					return -1;
				}
			}
		}
	}
	return 0;
}

struct loader {
	struct idp_set *set;
	size_t cap;
	idp_loaded_cb *cb;
	void *cb_ctx;
};

static char *entity_xml(xmlNode *ed)
{
	xmlDoc *doc = xmlNewDoc((const xmlChar *)"1.0");
	xmlNode *copy = xmlDocCopyNode(ed, doc, 1);
	xmlDocSetRootElement(doc, copy);
	xmlReconciliateNs(doc, copy);
	xmlChar *mem = NULL;
	int len = 0;
	xmlDocDumpMemory(doc, &mem, &len);
	xmlFreeDoc(doc);
	char *out = mem != NULL ? xstrdup((const char *)mem) : NULL;
	xmlFree(mem);
	return out;
}

static int load_entity(struct loader *l, xmlNode *ed)
{
	xmlNode *role = NULL;
	for (xmlNode *r = xml_child(ed, NS_MD, "IDPSSODescriptor"); r != NULL;
	     r = xml_next(r, NS_MD, "IDPSSODescriptor")) {
		const char *pse = xml_attr(r, "protocolSupportEnumeration");
		if (pse != NULL && strstr(pse, PROTOCOL_SAML2) != NULL) {
			role = r;
			break;
		}
	}
	if (role == NULL)
		return 0; /* SPs, attribute authorities, SAML1-only IdPs */
	const char *eid = xml_attr(ed, "entityID");
	if (eid == NULL || *eid == '\0' || strlen(eid) > 1024) {
		fmt_error("an IdP EntityDescriptor (line %ld) has no usable entityID",
			  xmlGetLineNo(ed));
		return -1;
	}
	struct idp idp = {.entity_id = xstrdup(eid)};
	idp.want_signed = truthy(xml_attr(role, "WantAuthnRequestsSigned"));
	for (xmlNode *s = xml_child(role, NS_MD, "SingleSignOnService"); s != NULL;
	     s = xml_next(s, NS_MD, "SingleSignOnService")) {
		const char *b = xml_attr(s, "Binding"), *loc = xml_attr(s, "Location");
		if (b != NULL && loc != NULL && strcmp(b, BINDING_REDIRECT) == 0) {
			idp.sso_redirect = xstrdup(loc);
			break;
		}
	}
	xmlNode *ext = xml_child(role, NS_MD, "Extensions");
	char *xml = NULL;
	const char *error;
	if (add_scopes(&idp, ext) < 0 || add_scopes(&idp, xml_child(ed, NS_MD, "Extensions")) < 0 ||
	    add_keys(&idp, role) < 0)
		goto fail;
	pick_display_name(&idp, ext);
	pick_ui_info(&idp, ext);
	add_categories(&idp, xml_child(ed, NS_MD, "Extensions"));
	if (idp_set_find(l->set, idp.entity_id) != NULL) {
		fmt_error("%s appears twice", idp.entity_id);
		goto fail;
	}
	if (l->cb != NULL) {
		xml = entity_xml(ed);
		if (xml == NULL || l->cb(l->cb_ctx, &idp, xml, &error) < 0) {
			fmt_error("%s: %s", idp.entity_id,
				  xml == NULL ? "cannot serialise" : error);
			goto fail;
		}
		free(xml);
	}
	if (l->set->n == l->cap) {
		l->cap = l->cap ? l->cap * 2 : 16;
		l->set->v = xrealloc(l->set->v, l->cap * sizeof(*l->set->v));
	}
	/* Keep the array sorted as we go (aggregates are usually sorted already). */
	size_t pos = l->set->n;
	while (pos > 0 && strcmp(l->set->v[pos - 1].entity_id, idp.entity_id) > 0)
		pos--;
	memmove(&l->set->v[pos + 1], &l->set->v[pos], (l->set->n - pos) * sizeof(*l->set->v));
	l->set->v[pos] = idp;
	l->set->n++;
	return 0;
fail:
	free(xml);
	idp_clear(&idp);
	return -1;
}

/* True when an element inside the aggregate is to be left out: its validUntil passed, or
 * is no UTC dateTime (one member's careless metadata must not stop every login). */
static bool inner_expired(const xmlNode *node, time_t now)
{
	const char *v = xml_attr(node, "validUntil");
	time_t t;
	return v != NULL && (!xml_parse_time(v, &t) || t < now);
}

static int walk(struct loader *l, xmlNode *node, int depth)
{
	if (depth > 16) {
		fmt_error("EntitiesDescriptor nested too deeply");
		return -1;
	}
	if (depth > 0 && inner_expired(node, time(NULL))) {
		l->set->n_expired++;
		return 0;
	}
	if (xml_is(node, NS_MD, "EntityDescriptor"))
		return load_entity(l, node);
	if (!xml_is(node, NS_MD, "EntitiesDescriptor")) {
		fmt_error("line %ld: expected EntityDescriptor or EntitiesDescriptor",
			  xmlGetLineNo(node));
		return -1;
	}
	for (xmlNode *c = node->children; c != NULL; c = c->next) {
		if (xml_is(c, NS_MD, "EntityDescriptor") || xml_is(c, NS_MD, "EntitiesDescriptor")) {
			if (walk(l, c, depth + 1) < 0)
				return -1;
		}
	}
	return 0;
}

int idp_set_load(const char *path, const char *metadata_cert, bool allow_sha1,
		 idp_loaded_cb *cb, void *cb_ctx, struct idp_set **set_r, const char **error_r)
{
	char *data = NULL;
	size_t len;
	const char *error;
	xmlDoc *doc = NULL;
	struct idp_set *set = xcalloc(1, sizeof(*set));
	struct xmlsig_keys trust = {0};
	if (read_file_capped(path, METADATA_FILE_MAX, &data, &len, &error) < 0) {
		*error_r = fmt_error("cannot read %s: %s", path, error);
		goto fail;
	}
	if ((doc = xml_parse_safe(data, len, &error)) == NULL) {
		*error_r = fmt_error("%s: %s", path, error);
		goto fail;
	}
	xmlNode *root = xmlDocGetRootElement(doc);
	if (metadata_cert != NULL) {
		if (xmlsig_keys_add_cert_file(&trust, metadata_cert, &error) < 0) {
			*error_r = fmt_error("%s: %s", metadata_cert, error);
			goto fail;
		}
		if (xml_register_ids(doc, root, &error) < 0 ||
		    xmlsig_verify(root, &trust, allow_sha1, &error) < 0) {
			*error_r = fmt_error("%s: the metadata signature is not valid: %s", path,
					     error);
			goto fail;
		}
	}
	const char *valid_until = xml_attr(root, "validUntil");
	if (valid_until != NULL) {
		time_t t;
		if (!xml_parse_time(valid_until, &t)) {
			*error_r = fmt_error("%s: validUntil is not a UTC dateTime", path);
			goto fail;
		}
		if (t <= time(NULL)) {
			*error_r = fmt_error("%s: the metadata expired at %s (validUntil)", path,
					     valid_until);
			goto fail;
		}
		set->valid_until = t;
	}
	struct loader l = {.set = set, .cb = cb, .cb_ctx = cb_ctx};
	if (walk(&l, root, 0) < 0) {
		char why[sizeof(error_buf)];
		snprintf(why, sizeof(why), "%s", error_buf);
		*error_r = fmt_error("%s: %.500s", path, why);
		goto fail;
	}
	if (set->n == 0) {
		*error_r = fmt_error("%s: no SAML 2.0 IdP in the metadata%s", path,
				     set->n_expired > 0 ? " (some were left out: their validUntil "
							  "passed or is no UTC dateTime)"
							: "");
		goto fail;
	}
	xmlsig_keys_clear(&trust);
	xmlFreeDoc(doc);
	free(data);
	*set_r = set;
	return 0;
fail:
	xmlsig_keys_clear(&trust);
	if (doc != NULL)
		xmlFreeDoc(doc);
	free(data);
	idp_set_free(set);
	return -1;
}
