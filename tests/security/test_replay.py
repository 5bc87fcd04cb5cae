"""Replays: one valid Response sent twice, to one samlgw or to two that share one Redis, one
after the other or at the same time. The first sending is the positive control (accepted);
every further one must be refused. A solicited Response is stopped by its request, which
the first login used up everywhere (in_response_to); an unsolicited one (IdP-initiated, on
gateways with saml.allow_unsolicited) only by the assertion replay cache in Redis
(replay), which every process shares."""
import threading

from conftest import describe, idp_response, outcome, post_xml, record, start_login

USED = "no outstanding request with this ID"
REPLAY = "this assertion was used before"


def _check(name, source, first, again, reason, detail):
    ok = first.accepted and not again.accepted and again.reason == reason and \
        detail in (again.detail or "")
    record(name, source, reason, describe(again),
           "accepted" if first.accepted else describe(first), ok, again.detail or "")
    assert first.accepted, first.line
    assert not again.accepted, "%s: the replay was ACCEPTED" % name
    assert again.reason == reason and detail in (again.detail or ""), again.line


def test_replay_same_process(fed):
    gw = fed.gw
    _rid, xml = idp_response(fed)
    first = outcome(gw, post_xml(gw, xml))
    again = outcome(gw, post_xml(gw, xml))
    _check("replay-same-process", "idp", first, again, "in_response_to", USED)


def test_replay_other_process(fed, twin):
    """A's login, replayed to B (same Redis, same public_url, own port)."""
    _rid, xml = idp_response(fed)
    first = outcome(fed.gw, post_xml(fed.gw, xml))
    again = outcome(twin, post_xml(twin, xml))
    _check("replay-other-process", "idp", first, again, "in_response_to", USED)


def test_replay_unsolicited_other_process(unsolicited_pair):
    """An unsolicited Response (no InResponseTo) accepted by C, replayed to D, then to C."""
    p = unsolicited_pair
    xml = p.factory.build(in_response_to=None).xml
    first = outcome(p.c, post_xml(p.c, xml))
    again = outcome(p.d, post_xml(p.d, xml))
    _check("replay-unsolicited-other-process", "factory", first, again, "replay", REPLAY)
    again = outcome(p.c, post_xml(p.c, xml))
    _check("replay-unsolicited-same-process", "factory", first, again, "replay", REPLAY)


def _race(gws, xml):
    """POST xml to each gateway at the same moment: the outcomes, in gws' order."""
    pages = [None] * len(gws)
    go = threading.Barrier(len(gws))

    def send(i):
        go.wait()
        pages[i] = post_xml(gws[i], xml)

    threads = [threading.Thread(target=send, args=(i,)) for i in range(len(gws))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return [outcome(g, p) for g, p in zip(gws, pages)]


def _check_race(name, source, rounds, reason, detail):
    """rounds: lists of outcomes of one race each: exactly one accepted per round, the
    others refused with reason."""
    wins = [sum(o.accepted for o in r) for r in rounds]
    losers = [o for r in rounds for o in r if not o.accepted]
    ok = wins == [1] * len(rounds) and all(
        o.reason == reason and detail in (o.detail or "") for o in losers)
    got = sorted({describe(o) for o in losers})
    record(name, source, "%s (1 of 2 accepted)" % reason,
           "%s (%s accepted)" % ("/".join(got), "/".join(map(str, sorted(set(wins))))),
           "accepted" if all(w >= 1 for w in wins) else "not accepted", ok,
           losers[0].detail if losers else "")
    assert wins == [1] * len(rounds), wins
    for o in losers:
        assert o.reason == reason and detail in (o.detail or ""), o.line


def test_replay_race_solicited(fed, twin):
    """The IdP's Response posted to A and B at once, five times: one login each time."""
    rounds = []
    for _ in range(5):
        _rid, xml = idp_response(fed)
        rounds.append(_race([fed.gw, twin], xml))
    _check_race("replay-race-two-processes", "idp", rounds, "in_response_to", USED)


def test_replay_race_unsolicited(unsolicited_pair):
    p = unsolicited_pair
    rounds = []
    for _ in range(5):
        rounds.append(_race([p.c, p.d], p.factory.build(in_response_to=None).xml))
    _check_race("replay-race-unsolicited", "factory", rounds, "replay", REPLAY)


def test_request_answered_by_another_idp(fed):
    """A request sent to the test IdP, answered by partner (valid for a partner user):
    refused, and the request is used up (it was sent to somebody else). Control: partner's
    answer to a request sent to partner."""
    gw = fed.gw
    rid, _ = start_login(gw, fed.idp.entity_id)
    bad = outcome(gw, post_xml(gw, fed.partner.build(in_response_to=rid).xml))
    crid, _ = start_login(gw, fed.partner.idp)
    ctl = outcome(gw, post_xml(gw, fed.partner.build(in_response_to=crid).xml))
    _check("request-answered-by-another-idp", "factory(partner)", ctl, bad, "in_response_to",
           "sent to another IdP")
