/* The settings table behind config.c: types, the table itself and its validators. */
#ifndef SAMLGW_CONFIG_TABLE_H
#define SAMLGW_CONFIG_TABLE_H

#include <stdbool.h>
#include <stddef.h>

enum setting_type {
	SETTING_STRING,
	SETTING_INT,
	SETTING_DURATION, /* seconds; accepts s, m, h, d, w suffixes */
	SETTING_BOOL,
	SETTING_PATH,     /* resolved against the config file's folder */
	SETTING_LIST,     /* comma or space separated; the key may repeat to add more */
	SETTING_LINES,    /* one value per line, kept whole; the key may repeat to add more */
};

struct setting {
	const char *section; /* "domain" for keys of the repeated [domain NAME] sections */
	const char *key;
	enum setting_type type;
	size_t offset;       /* into struct config, or struct config_domain for "domain" */
	const char *def;     /* default, as config text; NULL: none */
	long long min, max;  /* SETTING_INT, SETTING_DURATION */
	/* Extra check of one value (one list element for lists); NULL: none. */
	bool (*validate)(const char *value, const char **error_r);
	unsigned required_by; /* program bits that need a value */
	unsigned used_by;     /* program bits that read it (files must exist for them) */
	const char *values;   /* what the value looks like, for the reference */
	const char *doc;
};

extern const struct setting config_settings[];
extern const size_t config_settings_count;

/* Sections other than [domain NAME], in reference order. */
extern const char *const config_sections[];
extern const size_t config_sections_count;

#endif
