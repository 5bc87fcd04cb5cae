/* Logging out and single logout (see logout.h and docs/saml.md, Logout). Nothing here
 * acts on a SAML message before slo_msg_read has verified it (signature with the Issuer's
 * metadata keys, Destination, time) and Redis has ruled out a replay; every refusal is one
 * log line event=slo_refused with its reason. */
#include "logout.h"
#include "log.h"
#include "pages.h"
#include "slo_msg.h"
#include "slo_send.h"
#include "sp_metadata.h"
#include "store.h"
#include "token.h"
#include "util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

void account_logout_confirm(struct app *app, struct http_request *req, struct http_reply *reply);

/* End the session with key hash hash: delete it (and its SLO index entry) and, with
 * web.logout_revokes_tokens, revoke the tokens issued in it. Logs event=logout. */
static enum kv_result end_session(struct app *app, const char *hash, const char *via,
				  const char *idp_msg, const char **error_r)
{
	struct kv_session s;
	enum kv_result r = kv_session_end(app_worker(app)->kv, hash, &s, error_r);
	if (r != KV_OK)
		return r;
	size_t revoked = 0, failed = 0;
	if (app->cfg->web.logout_revokes_tokens && s.tokens != NULL) {
		char *save = NULL;
		for (char *id = strtok_r(s.tokens, " ", &save); id != NULL;
		     id = strtok_r(NULL, " ", &save)) {
			char h[TOKEN_HASH_HEX_LEN + 1];
			const char *error;
			if (!token_id_valid(id))
				continue;
			enum store_result sr =
				store_revoke(app_worker(app)->store, s.jid, id, h, &error);
			if (sr == STORE_OK)
				revoked++;
			else if (sr != STORE_INVALID) /* INVALID: expired or revoked already */
				failed++;
		}
		metrics_count(&app->metrics.tokens_revoked, revoked);
	}
	char n[24], nf[24];
	snprintf(n, sizeof(n), "%zu", revoked);
	snprintf(nf, sizeof(nf), "%zu", failed);
	log_event(LOG_LEVEL_INFO, "logout", "jid", s.jid, "via", via, "idp", s.idp, "request",
		  idp_msg, "tokens_revoked", n, failed > 0 ? "tokens_not_revoked" : NULL, nf,
		  NULL);
	kv_session_clear(&s);
	return KV_OK;
}

/* The page that goes on to the IdP: a redirect, or the auto-submitting form. */
static void send_out(struct app *app, struct http_request *req, struct http_reply *reply,
		     const struct slo_out *out)
{
	if (!out->post) {
		http_reply_redirect(reply, 303, out->url);
		return;
	}
	struct tmpl_vars *vars = tmpl_vars_new();
	tmpl_set(vars, "action", out->action);
	tmpl_set(vars, "field", out->field);
	tmpl_set(vars, "value", out->value);
	tmpl_set(vars, "relay_state", out->relay_state != NULL ? out->relay_state : "");
	tmpl_set_bool(vars, "has_relay_state", out->relay_state != NULL);
	page_render(app, req, reply, 200, "saml-post", vars, NULL);
	tmpl_vars_free(vars);
}

static void to_logged_out(struct app *app, struct http_reply *reply)
{
	char *to = xasprintf("%s/logout", app->cfg->http.public_url);
	http_reply_redirect(reply, 303, to);
	free(to);
}

void logout_start(struct app *app, struct http_request *req, struct http_reply *reply,
		  const struct session *s)
{
	const char *error;
	char hash[65];
	kv_session_hash(s->sid, hash);
	enum kv_result r = end_session(app, hash, "web", NULL, &error);
	session_clear_cookie(app, reply);
	if (r == KV_UNAVAILABLE) {
		char ref[13];
		page_new_ref(ref);
		log_event(LOG_LEVEL_ERROR, "logout_failed", "ref", ref, "jid", s->data.jid,
			  "reason", error, NULL);
		page_error(app, req, reply, 503, ref, "unavailable", NULL);
		return;
	}
	struct sp *sp = app_sp(app);
	struct slo_endpoint ep = {0};
	struct slo_out out = {0};
	char *id = NULL;
	if (s->data.slo.nameid == NULL || idp_set_find(sp->idps, s->data.idp) == NULL ||
	    !slo_endpoint_find(sp, s->data.idp, false, &ep)) {
		/* No SLO with this IdP: the local logout is all there is. */
		to_logged_out(app, reply);
		goto out;
	}
	if (slo_send_request(sp, s->data.idp, &ep, &s->data.slo, &out, &id, &error) < 0) {
		log_event(LOG_LEVEL_ERROR, "slo_failed", "jid", s->data.jid, "idp", s->data.idp,
			  "reason", error, NULL);
		to_logged_out(app, reply);
		goto out;
	}
	char *state = xasprintf("%s\n%s", s->data.idp, s->data.jid);
	r = kv_logout_put(app_worker(app)->kv, id, state, app->cfg->saml.request_ttl, &error);
	free(state);
	if (r != KV_OK) {
		log_event(LOG_LEVEL_ERROR, "slo_failed", "jid", s->data.jid, "idp", s->data.idp,
			  "reason", error, NULL);
		to_logged_out(app, reply);
		goto out;
	}
	log_event(LOG_LEVEL_INFO, "slo_started", "jid", s->data.jid, "idp", s->data.idp,
		  "request", id, "binding", ep.post ? "post" : "redirect", NULL);
	char *cookie = reply->set_cookie;
	reply->set_cookie = NULL;
	send_out(app, req, reply, &out);
	free(reply->set_cookie);
	reply->set_cookie = cookie;
out:
	free(id);
	slo_out_clear(&out);
	slo_endpoint_clear(&ep);
	sp_unref(sp);
}

static void refuse(struct app *app, struct http_request *req, struct http_reply *reply,
		   enum slo_refusal why, const char *error, const char *idp, bool is_request)
{
	char ref[13];
	page_new_ref(ref);
	log_event(LOG_LEVEL_WARN, "slo_refused", "ref", ref, "reason", slo_refusal_name(why),
		  "detail", error, "idp", idp, "message",
		  is_request ? "LogoutRequest" : "LogoutResponse", NULL);
	page_error(app, req, reply, why == SLO_UNAVAILABLE ? 503 : 400, ref, "slo_refused", NULL);
}

/* Does the session s (logged in by idp) belong to the LogoutRequest m's subject? NameID
 * value, Format, NameQualifier (absent: the IdP) and SPNameQualifier (absent: us) equal,
 * and, when the request lists SessionIndexes, the session's among them. */
static bool session_matches(const struct kv_session *s, const struct slo_msg *m,
			    const char *sp_entity)
{
	static const char unspecified[] = "urn:oasis:names:tc:SAML:1.1:nameid-format:unspecified";
	const struct kv_slo *a = &s->slo, *b = &m->subject;
	if (strcmp(s->idp, m->issuer) != 0 || a->nameid == NULL || strcmp(a->nameid, b->nameid) != 0)
		return false;
	const char *fa = a->format != NULL ? a->format : unspecified;
	const char *fb = b->format != NULL ? b->format : unspecified;
	const char *qa = a->nq != NULL ? a->nq : s->idp, *qb = b->nq != NULL ? b->nq : m->issuer;
	const char *pa = a->spnq != NULL ? a->spnq : sp_entity;
	const char *pb = b->spnq != NULL ? b->spnq : sp_entity;
	if (strcmp(fa, fb) != 0 || strcmp(qa, qb) != 0 || strcmp(pa, pb) != 0)
		return false;
	if (m->n_session_indexes == 0)
		return true;
	for (size_t i = 0; a->session_index != NULL && i < m->n_session_indexes; i++)
		if (strcmp(a->session_index, m->session_indexes[i]) == 0)
			return true;
	return false;
}

/* An IdP's verified LogoutRequest: end the subject's sessions, answer with a signed
 * LogoutResponse over the binding it came with (the other one when its metadata lacks it). */
static void idp_logout(struct app *app, struct sp *sp, struct http_request *req,
		       struct http_reply *reply, struct slo_msg *m)
{
	struct kv *kv = app_worker(app)->kv;
	const char *error = NULL, *status = STATUS_SUCCESS, *sub = NULL;
	bool success = true;
	size_t ended = 0, failed = 0;
	char mine[65];
	bool has_mine = session_request_hash(app, req, mine), ended_mine = false;
	if (m->subject.nameid == NULL) {
		/* An EncryptedID or BaseID (or nothing): no way to find the sessions. */
		status = STATUS_REQUESTER;
		success = false;
		sub = m->encrypted_id ? STATUS_UNKNOWN_PRINCIPAL : NULL;
		error = m->encrypted_id ? "the LogoutRequest names its subject with an EncryptedID "
					  "or BaseID, which samlgw does not read"
					: "the LogoutRequest has no NameID";
	} else {
		char(*hashes)[65] = NULL;
		size_t n = 0;
		if (kv_slo_sessions(kv, m->issuer, m->subject.nameid, &hashes, &n, &error) !=
		    KV_OK) {
			failed++;
			n = 0;
		}
		for (size_t i = 0; i < n; i++) {
			struct kv_session s;
			enum kv_result r = kv_session_peek(kv, hashes[i], &s, &error);
			if (r == KV_UNAVAILABLE) {
				failed++;
				continue;
			}
			if (r != KV_OK)
				continue;
			bool match = session_matches(&s, m, app->cfg->saml.entity_id);
			kv_session_clear(&s);
			if (!match)
				continue;
			r = end_session(app, hashes[i], "slo", m->id, &error);
			if (r == KV_OK) {
				ended++;
				if (has_mine && strcmp(hashes[i], mine) == 0)
					ended_mine = true;
			} else if (r == KV_UNAVAILABLE) {
				failed++;
			}
		}
		free(hashes);
		if (failed > 0) {
			status = STATUS_RESPONDER;
			success = false;
			sub = ended > 0 ? STATUS_PARTIAL_LOGOUT : NULL;
		}
	}
	char ne[24];
	snprintf(ne, sizeof(ne), "%zu", ended);
	log_event(success ? LOG_LEVEL_INFO : LOG_LEVEL_WARN,
		  "slo_request", "idp", m->issuer, "request", m->id, "binding",
		  m->redirect ? "redirect" : "post", "sessions_ended", ne, "status",
		  strrchr(status, ':') + 1, success ? NULL : "detail", error,
		  NULL);
	struct slo_endpoint ep = {0};
	struct slo_out out = {0};
	if (!slo_endpoint_find(sp, m->issuer, !m->redirect, &ep)) {
		log_event(LOG_LEVEL_WARN, "slo_failed", "idp", m->issuer, "reason",
			  "the IdP's metadata has no SingleLogoutService for the LogoutResponse",
			  NULL);
		to_logged_out(app, reply);
	} else if (slo_send_response(sp, &ep, m->id, status, sub, m->relay_state, &out,
				     &error) < 0) {
		char ref[13];
		page_new_ref(ref);
		log_event(LOG_LEVEL_ERROR, "slo_failed", "ref", ref, "idp", m->issuer, "reason",
			  error, NULL);
		page_error(app, req, reply, 500, ref, "internal", NULL);
	} else {
		send_out(app, req, reply, &out);
	}
	if (ended_mine)
		session_clear_cookie(app, reply);
	slo_out_clear(&out);
	slo_endpoint_clear(&ep);
}

/* The IdP's answer to our LogoutRequest: the request must be pending and sent to this IdP;
 * then the logged-out page says whether the IdP confirmed. */
static void idp_answer(struct app *app, struct http_request *req, struct http_reply *reply,
		       struct slo_msg *m)
{
	char *state = NULL;
	bool replay = false;
	const char *error;
	enum kv_result r = kv_logout_take(app_worker(app)->kv, m->in_response_to, &state, &replay,
					  &error);
	if (r != KV_OK) {
		refuse(app, req, reply,
		       r == KV_UNAVAILABLE ? SLO_UNAVAILABLE : replay ? SLO_REPLAY
								      : SLO_IN_RESPONSE_TO,
		       error, m->issuer, false);
		return;
	}
	size_t il = strlen(m->issuer);
	if (strncmp(state, m->issuer, il) != 0 || state[il] != '\n') {
		free(state);
		refuse(app, req, reply, SLO_IN_RESPONSE_TO,
		       "the LogoutRequest was sent to another IdP than the one that answered",
		       m->issuer, false);
		return;
	}
	bool confirmed = strcmp(m->status, STATUS_SUCCESS) == 0 &&
			 (m->sub_status == NULL || strcmp(m->sub_status, STATUS_PARTIAL_LOGOUT) != 0);
	const char *st = strrchr(m->status, ':') != NULL ? strrchr(m->status, ':') + 1 : m->status;
	log_event(confirmed ? LOG_LEVEL_INFO : LOG_LEVEL_WARN, "slo_done", "jid", state + il + 1,
		  "idp", m->issuer, "request", m->in_response_to, "status", st, "confirmed",
		  confirmed ? "yes" : "no", NULL);
	free(state);
	struct tmpl_vars *vars = tmpl_vars_new();
	char *login = xasprintf("%s/login", app->cfg->http.public_url);
	tmpl_set(vars, "login_url", login);
	free(login);
	tmpl_set_bool(vars, "idp_confirmed", confirmed);
	tmpl_set_bool(vars, "idp_failed", !confirmed);
	page_render(app, req, reply, 200, "logged-out", vars, NULL);
	tmpl_vars_free(vars);
	session_clear_cookie(app, reply);
}

void slo(struct app *app, struct http_request *req, struct http_reply *reply)
{
	bool post = strcmp(req->method, "POST") == 0;
	const char *req_v = NULL, *resp_v = NULL;
	if (post && !http_form_bad(req)) {
		req_v = http_form(req, "SAMLRequest");
		resp_v = http_form(req, "SAMLResponse");
	} else if (!post) {
		req_v = http_query(req, "SAMLRequest");
		resp_v = http_query(req, "SAMLResponse");
	}
	bool has_req = req_v != NULL && *req_v != '\0', has_resp = resp_v != NULL && *resp_v != '\0';
	if (has_req == has_resp) {
		char ref[13];
		page_new_ref(ref);
		page_error(app, req, reply, 400, ref, "bad_request", NULL);
		return;
	}
	struct sp *sp = app_sp(app);
	char *slo_url = xasprintf("%s%s", app->cfg->http.public_url, SP_PATH_SLO);
	struct slo_msg m;
	enum slo_refusal why;
	const char *error;
	char *issuer = NULL;
	int r = slo_msg_read(sp, slo_url, has_req ? req_v : resp_v, has_req,
			     post ? NULL : req->raw_query,
			     post ? http_form(req, "RelayState") : NULL, time(NULL), &m, &why,
			     &error, &issuer);
	free(slo_url);
	if (r < 0) {
		/* Nothing is ended by a message that did not verify. An unsigned one is what a
		 * link from anywhere can carry: a signed-in user may still confirm with the
		 * logout form (CSRF token), as before single logout existed. */
		char ref[13];
		page_new_ref(ref);
		log_event(LOG_LEVEL_WARN, "slo_refused", "ref", ref, "reason",
			  slo_refusal_name(why), "detail", error, "idp", issuer, "message",
			  has_req ? "LogoutRequest" : "LogoutResponse", NULL);
		free(issuer);
		sp_unref(sp);
		if (why == SLO_UNSIGNED || why == SLO_BAD_REQUEST || why == SLO_XML ||
		    why == SLO_NOT_LOGOUT)
			account_logout_confirm(app, req, reply);
		else
			page_error(app, req, reply, 400, ref, "slo_refused", NULL);
		return;
	}
	if (m.is_request) {
		const char *e;
		enum kv_result kr = kv_slo_request_once(app_worker(app)->kv, m.issuer, m.id,
							(long long)m.until, &e);
		if (kr != KV_OK)
			refuse(app, req, reply, kr == KV_MISS ? SLO_REPLAY : SLO_UNAVAILABLE, e,
			       m.issuer, true);
		else
			idp_logout(app, sp, req, reply, &m);
	} else {
		idp_answer(app, req, reply, &m);
	}
	slo_msg_clear(&m);
	sp_unref(sp);
}
