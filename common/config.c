/* Loading the shared configuration file by the settings table (see config.h).
 *
 * inih does the key = value splitting and comment handling. It is fed one line at a time
 * by our own reader, which numbers the lines (so every message carries FILE:LINE), strips
 * indentation (so an indented key is never taken for a continuation of the previous
 * value), and reads section headers itself, so that unknown or empty sections and lines
 * inih could not parse are all reported, not just the first. */
#include "config.h"
#include "config_table.h"
#include "jid.h"
#include "services.h"
#include "util.h"

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <ini.h>

enum section_kind {
	SEC_NONE,    /* before any section header */
	SEC_KNOWN,   /* one of config_sections[] */
	SEC_DOMAIN,  /* [domain NAME] */
	SEC_INVALID, /* reported already; its keys are skipped */
};

struct parser {
	const char *name;
	const char *dir;
	const char *data;
	size_t len, pos;
	unsigned line;         /* number of the line inih is working on */
	const char *line_text; /* its text after indentation (points into data) */
	size_t line_len;
	bool handled;          /* the handler saw the current line */
	bool is_key_line;      /* the current line is neither blank, comment nor header */
	enum section_kind kind;
	char section[80];
	struct config_domain *domain; /* current one when kind == SEC_DOMAIN */
	struct config *config;
	struct config_problems *problems;
	unsigned *problem_lines; /* line of each problem, for sorting */
	size_t problems_before;
	bool bad_top[CONFIG_MAX_SETTINGS]; /* a value was given but refused */
};

static void problem(struct parser *p, unsigned line, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void problem(struct parser *p, unsigned line, const char *fmt, ...)
{
	char msg[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	struct config_problems *pr = p->problems;
	size_t k = pr->n - p->problems_before;
	pr->v = xrealloc(pr->v, (pr->n + 1) * sizeof(*pr->v));
	pr->v[pr->n++] = xasprintf("%s:%u: %s", p->name, line, msg);
	p->problem_lines = xrealloc(p->problem_lines, (k + 1) * sizeof(*p->problem_lines));
	p->problem_lines[k] = line;
}

/* Problems in line order; within a line, in the order found. */
static void sort_problems(struct parser *p)
{
	size_t n = p->problems->n - p->problems_before;
	if (n < 2)
		return; /* (and v may be NULL: no offset may be added to it) */
	char **v = p->problems->v + p->problems_before;
	for (size_t i = 1; i < n; i++) {
		char *m = v[i];
		unsigned line = p->problem_lines[i];
		size_t j = i;
		for (; j > 0 && p->problem_lines[j - 1] > line; j--) {
			v[j] = v[j - 1];
			p->problem_lines[j] = p->problem_lines[j - 1];
		}
		v[j] = m;
		p->problem_lines[j] = line;
	}
}

void config_problems_free(struct config_problems *problems)
{
	for (size_t i = 0; i < problems->n; i++)
		free(problems->v[i]);
	free(problems->v);
	problems->v = NULL;
	problems->n = 0;
}

static void strlist_add(struct strlist *l, const char *s)
{
	l->v = xrealloc(l->v, (l->n + 1) * sizeof(*l->v));
	l->v[l->n++] = xstrdup(s);
}

static void strlist_free(struct strlist *l)
{
	for (size_t i = 0; i < l->n; i++)
		free(l->v[i]);
	free(l->v);
	l->v = NULL;
	l->n = 0;
}

static bool setting_is_domain(const struct setting *s)
{
	return strcmp(s->section, "domain") == 0;
}

static void *setting_field(const struct setting *s, struct config *c, struct config_domain *d)
{
	return (char *)(setting_is_domain(s) ? (void *)d : (void *)c) + s->offset;
}

static void setting_clear(const struct setting *s, void *field)
{
	switch (s->type) {
	case SETTING_STRING:
	case SETTING_PATH:
		free(*(char **)field);
		*(char **)field = NULL;
		break;
	case SETTING_LIST:
	case SETTING_LINES:
		strlist_free(field);
		break;
	default:
		break;
	}
}

static void domain_free(struct config_domain *d)
{
	for (size_t i = 0; i < config_settings_count; i++) {
		if (setting_is_domain(&config_settings[i]))
			setting_clear(&config_settings[i], setting_field(&config_settings[i], NULL, d));
	}
	free(d->name);
}

void config_free(struct config *config)
{
	if (config == NULL)
		return;
	for (size_t i = 0; i < config_settings_count; i++) {
		if (!setting_is_domain(&config_settings[i]))
			setting_clear(&config_settings[i],
				      setting_field(&config_settings[i], config, NULL));
	}
	for (size_t i = 0; i < config->n_domains; i++)
		domain_free(&config->domains[i]);
	free(config->domains);
	free(config->path);
	free(config->dir);
	free(config);
}

const struct config_domain *config_domain_find(const struct config *config, const char *name)
{
	for (size_t i = 0; i < config->n_domains; i++) {
		if (strcmp(config->domains[i].name, name) == 0)
			return &config->domains[i];
	}
	return NULL;
}

/* Edit distance, for "did you mean" hints on misspelt keys. */
static size_t edit_distance(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b);
	if (la > 40 || lb > 40)
		return SIZE_MAX;
	size_t d[41][41];
	for (size_t i = 0; i <= la; i++)
		d[i][0] = i;
	for (size_t j = 0; j <= lb; j++)
		d[0][j] = j;
	for (size_t i = 1; i <= la; i++) {
		for (size_t j = 1; j <= lb; j++) {
			size_t sub = d[i - 1][j - 1] + (a[i - 1] != b[j - 1]);
			size_t del = d[i - 1][j] + 1, ins = d[i][j - 1] + 1;
			d[i][j] = sub < del ? (sub < ins ? sub : ins) : (del < ins ? del : ins);
		}
	}
	return d[la][lb];
}

static const char *closest_key(const char *section, const char *key)
{
	const char *best = NULL;
	size_t best_d = 3;
	for (size_t i = 0; i < config_settings_count; i++) {
		const struct setting *s = &config_settings[i];
		if (strcmp(s->section, section) != 0)
			continue;
		size_t d = edit_distance(key, s->key);
		if (d < best_d) {
			best_d = d;
			best = s->key;
		}
	}
	return best;
}

static const char *closest_section(const char *name)
{
	const char *best = NULL;
	size_t best_d = 3;
	for (size_t i = 0; i < config_sections_count; i++) {
		size_t d = edit_distance(name, config_sections[i]);
		if (d < best_d) {
			best_d = d;
			best = config_sections[i];
		}
	}
	if (edit_distance(name, "domain") < best_d)
		best = "domain NAME";
	return best;
}

static bool parse_bool(const char *v, bool *out)
{
	static const char *const yes[] = {"yes", "true", "on", "1"};
	static const char *const no[] = {"no", "false", "off", "0"};
	for (size_t i = 0; i < ARRAY_SIZE(yes); i++) {
		if (strcasecmp(v, yes[i]) == 0) {
			*out = true;
			return true;
		}
		if (strcasecmp(v, no[i]) == 0) {
			*out = false;
			return true;
		}
	}
	return false;
}

static char *resolve_path(const char *dir, const char *value)
{
	if (value[0] == '/' || dir == NULL)
		return xstrdup(value);
	return xasprintf("%s/%s", dir, value);
}

/* Check and store one value. Returns false with *error_r. */
static bool setting_set(const struct setting *s, void *field, const char *value, const char *dir,
			const char **error_r)
{
	static char msg[200];
	if (value[0] == '\0') {
		*error_r = "has no value (remove the line to use the default)";
		return false;
	}
	switch (s->type) {
	case SETTING_STRING:
	case SETTING_PATH:
		if (s->validate != NULL && !s->validate(value, error_r))
			return false;
		free(*(char **)field);
		*(char **)field = s->type == SETTING_PATH ? resolve_path(dir, value) : xstrdup(value);
		return true;
	case SETTING_INT:
	case SETTING_DURATION: {
		long long n;
		bool ok = s->type == SETTING_INT ? parse_ll(value, LLONG_MIN, LLONG_MAX, &n)
						 : parse_duration(value, &n);
		if (!ok) {
			*error_r = s->type == SETTING_INT
					   ? "must be a whole number"
					   : "must be a number of seconds, or a number with s, m, h, d or w";
			return false;
		}
		if (n < s->min || n > s->max) {
			snprintf(msg, sizeof(msg), "must be from %lld to %lld", s->min, s->max);
			*error_r = msg;
			return false;
		}
		*(long long *)field = n;
		return true;
	}
	case SETTING_BOOL:
		if (!parse_bool(value, field)) {
			*error_r = "must be yes or no";
			return false;
		}
		return true;
	case SETTING_LIST: {
		char *copy = xstrdup(value);
		char *save = NULL;
		bool ok = true;
		struct strlist add = {0};
		for (char *t = strtok_r(copy, ", \t", &save); t != NULL;
		     t = strtok_r(NULL, ", \t", &save)) {
			if (s->validate != NULL && !s->validate(t, error_r)) {
				ok = false;
				break;
			}
			strlist_add(&add, t);
		}
		free(copy);
		if (ok && add.n == 0) {
			*error_r = "has no value (remove the line to use the default)";
			ok = false;
		}
		if (ok) {
			struct strlist *l = field;
			for (size_t i = 0; i < add.n; i++)
				strlist_add(l, add.v[i]);
		}
		strlist_free(&add);
		return ok;
	}
	case SETTING_LINES:
		if (s->validate != NULL && !s->validate(value, error_r))
			return false;
		strlist_add(field, value);
		return true;
	}
	*error_r = "internal error: unknown setting type";
	return false;
}

/* The section header in text ("[name]"), called by the reader; updates parser state. */
static void enter_section(struct parser *p, const char *text, size_t len)
{
	const char *rb = memchr(text, ']', len);
	p->domain = NULL;
	if (rb == NULL) {
		problem(p, p->line, "section header without closing ']'");
		p->kind = SEC_INVALID;
		return;
	}
	char name[sizeof(p->section)];
	size_t nlen = (size_t)(rb - text - 1);
	if (nlen >= sizeof(name)) {
		problem(p, p->line, "section name too long");
		p->kind = SEC_INVALID;
		return;
	}
	memcpy(name, text + 1, nlen);
	name[nlen] = '\0';
	str_trim(name);
	snprintf(p->section, sizeof(p->section), "%s", name);
	for (size_t i = 0; i < config_sections_count; i++) {
		if (strcmp(name, config_sections[i]) == 0) {
			p->kind = SEC_KNOWN;
			return;
		}
	}
	if (strncmp(name, "domain", 6) == 0 && (name[6] == ' ' || name[6] == '\t' || !name[6])) {
		char *dname = str_trim(name + 6);
		const char *error;
		p->kind = SEC_INVALID;
		if (*dname == '\0') {
			problem(p, p->line, "[domain] needs a name: [domain example.org]");
			return;
		}
		if (!jid_domain_valid(dname, &error)) {
			problem(p, p->line, "[domain %s]: %s", dname, error);
			return;
		}
		const struct config_domain *prev = config_domain_find(p->config, dname);
		if (prev != NULL) {
			problem(p, p->line, "[domain %s] is already defined on line %u", dname,
				prev->line);
			return;
		}
		if (p->config->n_domains == CONFIG_MAX_DOMAINS) {
			problem(p, p->line, "more than %d [domain] sections", CONFIG_MAX_DOMAINS);
			return;
		}
		struct config *c = p->config;
		c->domains = xrealloc(c->domains, (c->n_domains + 1) * sizeof(*c->domains));
		p->domain = &c->domains[c->n_domains++];
		memset(p->domain, 0, sizeof(*p->domain));
		p->domain->name = xstrdup(dname);
		p->domain->line = p->line;
		p->kind = SEC_DOMAIN;
		return;
	}
	const char *hint = closest_section(name);
	if (hint != NULL)
		problem(p, p->line, "unknown section [%s] (did you mean [%s]?)", name, hint);
	else
		problem(p, p->line, "unknown section [%s]", name);
	p->kind = SEC_INVALID;
}

/* An unhandled key line means inih could not parse it. */
static void finish_line(struct parser *p)
{
	if (p->line > 0 && p->is_key_line && !p->handled && p->kind != SEC_INVALID)
		problem(p, p->line, "expected 'key = value' or '[section]'");
	p->handled = true;
}

/* inih's reader: hands over the next line, numbered, without indentation. */
static char *reader(char *str, int num, void *stream)
{
	struct parser *p = stream;
	finish_line(p);
	if (p->pos >= p->len)
		return NULL;
	const char *start = p->data + p->pos;
	const char *nl = memchr(start, '\n', p->len - p->pos);
	size_t raw = nl != NULL ? (size_t)(nl - start) : p->len - p->pos;
	p->pos += raw + (nl != NULL ? 1 : 0);
	p->line++;
	p->handled = false;
	p->is_key_line = false;

	if (p->line == 1 && raw >= 3 && memcmp(start, "\xef\xbb\xbf", 3) == 0) {
		start += 3;
		raw -= 3;
	}
	while (raw > 0 && (*start == ' ' || *start == '\t')) {
		start++;
		raw--;
	}
	size_t len = raw;
	while (len > 0 && (start[len - 1] == '\r' || start[len - 1] == ' ' || start[len - 1] == '\t'))
		len--;
	p->line_text = start;
	p->line_len = len;

	if (memchr(start, '\0', len) != NULL) {
		problem(p, p->line, "line holds a NUL byte");
		len = 0;
	} else if (len + 2 > (size_t)num) {
		problem(p, p->line, "line is longer than %d characters (a list may be split over "
			"several lines of the same key)", num - 2);
		len = 0;
	} else if (len > 0 && *start == '[') {
		enter_section(p, start, len);
		/* inih needs the header too, so its own section state stays in step. */
	} else if (len > 0 && *start != ';' && *start != '#') {
		p->is_key_line = true;
	}
	if (p->kind == SEC_INVALID && !(len > 0 && *start == '[')) {
		/* Skip the keys of an invalid section; they were not checked. */
		p->is_key_line = false;
	}
	memcpy(str, start, len);
	str[len] = '\n';
	str[len + 1] = '\0';
	return str;
}

static int handler(void *user, const char *section, const char *name, const char *value)
{
	struct parser *p = user;
	p->handled = true;
	(void)section; /* the reader tracks sections itself */
	if (p->kind == SEC_INVALID)
		return 1;
	if (p->kind == SEC_NONE) {
		problem(p, p->line, "'%s' is outside any [section]", name);
		return 1;
	}
	const char *secname = p->kind == SEC_DOMAIN ? "domain" : p->section;
	const struct setting *s = NULL;
	size_t idx = 0;
	for (; idx < config_settings_count; idx++) {
		if (strcmp(config_settings[idx].section, secname) == 0 &&
		    strcmp(config_settings[idx].key, name) == 0) {
			s = &config_settings[idx];
			break;
		}
	}
	const char *shown = p->kind == SEC_DOMAIN ? p->domain->name : p->section;
	const char *prefix = p->kind == SEC_DOMAIN ? "domain " : "";
	if (s == NULL) {
		const char *hint = closest_key(secname, name);
		if (name[0] == '\0')
			problem(p, p->line, "expected 'key = value' or '[section]'");
		else if (hint != NULL)
			problem(p, p->line, "unknown key '%s' in [%s%s] (did you mean '%s'?)", name,
				prefix, shown, hint);
		else
			problem(p, p->line, "unknown key '%s' in [%s%s]", name, prefix, shown);
		return 1;
	}
	unsigned *set_line = p->kind == SEC_DOMAIN ? &p->domain->set_line[idx]
						   : &p->config->set_line[idx];
	if (*set_line != 0 && s->type != SETTING_LIST && s->type != SETTING_LINES) {
		problem(p, p->line, "[%s%s] %s is already set on line %u", prefix, shown, name,
			*set_line);
		return 1;
	}
	const char *error = NULL;
	if (!setting_set(s, setting_field(s, p->config, p->domain), value, p->dir, &error)) {
		problem(p, p->line, "[%s%s] %s: %s", prefix, shown, name, error);
		if (p->kind != SEC_DOMAIN)
			p->bad_top[idx] = true;
		return 1;
	}
	*set_line = p->line;
	return 1;
}

/* The line a message about a missing value points at: the section's header if present. */
static unsigned section_line(struct parser *p, const char *section)
{
	/* The reader does not remember plain section headers; scan the text for one. */
	unsigned line = 0, found = 0;
	const char *s = p->data, *end = p->data + p->len;
	size_t slen = strlen(section);
	while (s < end) {
		line++;
		const char *nl = memchr(s, '\n', (size_t)(end - s));
		const char *e = nl != NULL ? nl : end;
		while (s < e && (*s == ' ' || *s == '\t'))
			s++;
		if (s < e && *s == '[') {
			const char *q = s + 1;
			while (q < e && (*q == ' ' || *q == '\t'))
				q++;
			if ((size_t)(e - q) > slen && memcmp(q, section, slen) == 0) {
				const char *r = q + slen;
				while (r < e && (*r == ' ' || *r == '\t'))
					r++;
				if (r < e && *r == ']') {
					found = line;
					break;
				}
			}
		}
		s = nl != NULL ? nl + 1 : end;
	}
	return found != 0 ? found : (line == 0 ? 1 : line);
}

static size_t setting_index(const char *section, const char *key)
{
	for (size_t i = 0; i < config_settings_count; i++) {
		if (strcmp(config_settings[i].section, section) == 0 &&
		    strcmp(config_settings[i].key, key) == 0)
			return i;
	}
	abort(); /* only called with names from the table */
}

static bool strlist_has_case(const struct strlist *l, const char *s)
{
	for (size_t i = 0; i < l->n; i++) {
		if (strcasecmp(l->v[i], s) == 0)
			return true;
	}
	return false;
}

/* A user must never have two domains to land in: two domains that list the same IdP may
 * not share a scope (the user's scope is what picks one of them), and a domain that takes
 * the localpart from uid (which carries no scope) must have its IdP to itself. Reported
 * on the later domain's scope (or idp) line. After the scope defaults are in place. */
static void check_domain_overlap(struct parser *p)
{
	struct config *c = p->config;
	size_t i_idp = setting_index("domain", "idp");
	size_t i_scope = setting_index("domain", "scope");
	size_t i_localpart = setting_index("domain", "localpart");
	for (size_t b = 0; b < c->n_domains; b++) {
		const struct config_domain *db = &c->domains[b];
		bool b_uid = db->localpart != NULL && strcmp(db->localpart, "uid") == 0;
		for (size_t a = 0; a < b; a++) {
			const struct config_domain *da = &c->domains[a];
			bool a_uid = da->localpart != NULL && strcmp(da->localpart, "uid") == 0;
			const char *idp = NULL;
			for (size_t i = 0; i < db->idp.n && idp == NULL; i++) {
				for (size_t k = 0; k < da->idp.n; k++) {
					if (strcmp(db->idp.v[i], da->idp.v[k]) == 0) {
						idp = db->idp.v[i];
						break;
					}
				}
			}
			if (idp == NULL)
				continue;
			unsigned line_idp = db->set_line[i_idp] != 0 ? db->set_line[i_idp] : db->line;
			if (a_uid || b_uid) {
				const struct config_domain *u = b_uid ? db : da;
				unsigned line = b_uid && db->set_line[i_localpart] != 0
							? db->set_line[i_localpart]
							: line_idp;
				problem(p, line,
					"[domain %s] and [domain %s] (line %u) both list the IdP %s, "
					"and [domain %s] takes the localpart from uid, which carries no "
					"scope to choose between them",
					db->name, da->name, da->line, idp, u->name);
				continue;
			}
			for (size_t i = 0; i < db->scope.n; i++) {
				if (!strlist_has_case(&da->scope, db->scope.v[i]))
					continue;
				problem(p, db->set_line[i_scope] != 0 ? db->set_line[i_scope] : db->line,
					"[domain %s] scope %s is also a scope of [domain %s] (line %u), "
					"and both list the IdP %s: a user of that scope would fit both",
					db->name, db->scope.v[i], da->name, da->line, idp);
				break;
			}
		}
	}
}

/* Defaults, requirements for prog, files that must exist, and checks across settings. */
static void finish(struct parser *p, unsigned prog)
{
	struct config *c = p->config;
	for (size_t i = 0; i < config_settings_count; i++) {
		const struct setting *s = &config_settings[i];
		size_t nd = setting_is_domain(s) ? c->n_domains : 1;
		for (size_t k = 0; k < nd; k++) {
			struct config_domain *d = setting_is_domain(s) ? &c->domains[k] : NULL;
			unsigned set = d != NULL ? d->set_line[i] : c->set_line[i];
			void *field = setting_field(s, c, d);
			if (set == 0 && s->def != NULL) {
				const char *error;
				if (!setting_set(s, field, s->def, p->dir, &error))
					problem(p, 1, "internal error: default of %s.%s: %s",
						s->section, s->key, error);
			} else if (set == 0 && (s->required_by & prog) != 0) {
				if (d != NULL)
					problem(p, d->line, "[domain %s] needs '%s'", d->name, s->key);
				else
					problem(p, section_line(p, s->section), "[%s] needs '%s'",
						s->section, s->key);
			}
			/* saml.idp_metadata may be missing when saml.metadata_url fetches it */
			bool fetched = field == (void *)&c->saml.idp_metadata &&
				       c->saml.metadata_url != NULL;
			if (set != 0 && s->type == SETTING_PATH && (s->used_by & prog) != 0 &&
			    !fetched) {
				const char *path = *(char **)field;
				if (access(path, R_OK) != 0) {
					int err = errno;
					if (d != NULL)
						problem(p, set, "[domain %s] %s: cannot read %s: %s",
							d->name, s->key, path, strerror(err));
					else
						problem(p, set, "[%s] %s: cannot read %s: %s", s->section,
							s->key, path, strerror(err));
				}
			}
		}
	}
	/* token.services in its canonical form ("xmpp,imap"), the form every reader of it
	 * (services_allow, the token records) expects; the validator has checked it. */
	char *canonical;
	const char *error;
	if (c->token.services != NULL &&
	    services_normalize(c->token.services, &canonical, &error) == 0) {
		free(c->token.services);
		c->token.services = canonical;
	}
	size_t i_localpart = setting_index("domain", "localpart");
	for (size_t k = 0; k < c->n_domains; k++) {
		struct config_domain *d = &c->domains[k];
		if (d->scope.n == 0)
			strlist_add(&d->scope, d->name);
		/* A uid carries no scope, so with several IdPs any of them could name any user. */
		if (d->localpart != NULL && strcmp(d->localpart, "uid") == 0 && d->idp.n > 1)
			problem(p, d->set_line[i_localpart] != 0 ? d->set_line[i_localpart] : d->line,
				"[domain %s] localpart = uid needs exactly one idp: a uid carries no "
				"scope, so any of several IdPs could name any user",
				d->name);
	}
	check_domain_overlap(p);
	size_t i_certs = setting_index("metadata", "assurance_certifications");
	for (size_t i = 0; i < c->metadata.assurance_certifications.n; i++) {
		if (strcmp(c->metadata.assurance_certifications.v[i], "https://refeds.org/sirtfi") == 0 &&
		    c->metadata.contact_security == NULL)
			problem(p, c->set_line[i_certs],
				"[metadata] assurance_certifications claims Sirtfi "
				"(https://refeds.org/sirtfi), which needs contact_security");
	}
	size_t i_default = setting_index("token", "default_ttl");
	size_t i_max = setting_index("token", "max_ttl");
	if (!p->bad_top[i_default] && !p->bad_top[i_max] &&
	    c->token.default_ttl > c->token.max_ttl) {
		unsigned line = c->set_line[i_default] != 0 ? c->set_line[i_default]
							     : c->set_line[i_max];
		problem(p, line != 0 ? line : section_line(p, "token"),
			"[token] default_ttl (%lld) is longer than max_ttl (%lld)",
			c->token.default_ttl, c->token.max_ttl);
	}
	if ((prog & (PROG_SAMLGW | PROG_XMPP)) != 0 && c->n_domains == 0)
		problem(p, p->line == 0 ? 1 : p->line,
			"no [domain NAME] section: at least one hosted domain is needed");
}

int config_parse(const char *name, const char *dir, const char *data, size_t len, unsigned prog,
		 struct config **config_r, struct config_problems *problems)
{
	struct parser p = {
		.name = name,
		.dir = dir,
		.data = data,
		.len = len,
		.kind = SEC_NONE,
		.problems = problems,
		.problems_before = problems->n,
	};
	size_t before = problems->n;
	p.config = xcalloc(1, sizeof(*p.config));
	p.config->path = xstrdup(name);
	p.config->dir = dir != NULL ? xstrdup(dir) : NULL;

	int ret = ini_parse_stream(reader, &p, handler, &p);
	finish_line(&p);
	if (ret == -2)
		problem(&p, p.line, "out of memory");
	finish(&p, prog);
	sort_problems(&p);
	free(p.problem_lines);

	if (problems->n > before) {
		config_free(p.config);
		return -1;
	}
	*config_r = p.config;
	return 0;
}

int config_load(const char *path, unsigned prog, struct config **config_r,
		struct config_problems *problems)
{
	char *data;
	size_t len;
	const char *error;
	if (read_file_capped(path, CONFIG_FILE_MAX, &data, &len, &error) < 0) {
		problems->v = xrealloc(problems->v, (problems->n + 1) * sizeof(*problems->v));
		problems->v[problems->n++] = xasprintf("%s: cannot read the file: %s", path, error);
		return -1;
	}
	/* Relative paths in the file resolve against the file's own (absolute) folder. */
	char *abs = realpath(path, NULL);
	char *dir;
	if (abs != NULL) {
		char *slash = strrchr(abs, '/');
		dir = slash == abs ? xstrdup("/") : xstrndup(abs, (size_t)(slash - abs));
		free(abs);
	} else {
		dir = xstrdup(".");
	}
	int ret = config_parse(path, dir, data, len, prog, config_r, problems);
	free(dir);
	free(data);
	return ret;
}
