"""The status transition table: what may follow what, and who may send it."""

import pytest

from hub.edocs.edxml import StatusCode
from hub.edocs.errors import TransitionRefused
from hub.edocs.transitions import RecipientState, next_state


def _run(codes: list[str]) -> RecipientState:
    state = RecipientState()
    for code in codes:
        by_sender = code == "13"
        state = next_state(state, StatusCode(code), by_sender=by_sender)
    return state


@pytest.mark.parametrize(
    ("codes", "expected"),
    [
        (["01", "03", "04", "05", "06"], RecipientState("06")),
        (["03", "06"], RecipientState("06")),
        (["01", "02"], RecipientState("02")),
        (["01", "03", "13", "15"], RecipientState("03", "accepted")),
        (["01", "13", "16", "03", "06"], RecipientState("06", "refused")),
        (["03", "06", "13", "16"], RecipientState("06", "refused")),
    ],
)
def test_transitions_allowed_sequences_reach_their_state(codes: list[str], expected: RecipientState) -> None:
    assert _run(codes) == expected


@pytest.mark.parametrize(
    ("codes", "refused", "why"),
    [
        (["01"], "06", "06 only after 03"),
        ([], "06", "06 only after 03"),
        (["01", "02"], "03", "nothing follows 02"),
        (["02"], "13", "nothing follows 02"),
        (["03"], "15", "only answers a pending recall"),
        (["03"], "16", "only answers a pending recall"),
        (["03", "13", "15"], "05", "recalled"),
        (["03", "13"], "05", "answer the pending recall"),
        (["03", "13"], "13", "already pending"),
        (["01"], "01", "not allowed after 01"),
        (["03", "06"], "04", "not allowed after 06"),
    ],
)
def test_transitions_refused_name_the_rule(codes: list[str], refused: str, why: str) -> None:
    # Given a recipient after `codes`
    state = _run(codes)
    # When `refused` follows / Then it is refused, saying why
    with pytest.raises(TransitionRefused, match=why) as caught:
        next_state(state, StatusCode(refused), by_sender=refused == "13")
    assert caught.value.code == refused and caught.value.current == state.status


def test_transitions_13_only_by_the_sender_and_the_sender_only_13() -> None:
    with pytest.raises(TransitionRefused, match="only the sender"):
        next_state(RecipientState("03"), StatusCode.RECALL_REQUESTED, by_sender=False)
    with pytest.raises(TransitionRefused, match="sender may only send 13"):
        next_state(RecipientState(), StatusCode.ACCEPTED, by_sender=True)
