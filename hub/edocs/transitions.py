"""Which status may follow which, per (document, recipient): one table, enforced by the service.

A recipient's state is its last processing status (01-06, or none yet) and the state of a recall
(requested by 13, accepted by 15, refused by 16).

| code | who | allowed when |
|---|---|---|
| 01 arrived | recipient | no status yet |
| 02 rejected, 03 accepted | recipient | no status yet, or 01 |
| 04 assigned, 05 processing | recipient | after 03 (03, 04 or 05) |
| 06 done | recipient | after 03 (03, 04 or 05) |
| 13 recall request | sender only | no recall pending |
| 15 recall accepted, 16 refused | recipient | a recall (13) is pending |

Nothing follows 02 (rejected) or 15 (recalled); while a recall is pending the recipient answers it
before anything else.
"""

from dataclasses import dataclass

from hub.edocs.edxml import StatusCode
from hub.edocs.errors import TransitionRefused

RECALL_REQUESTED = "requested"
RECALL_ACCEPTED = "accepted"
RECALL_REFUSED = "refused"

_AFTER: dict[StatusCode, frozenset[str | None]] = {
    StatusCode.ARRIVED: frozenset({None}),
    StatusCode.REJECTED: frozenset({None, "01"}),
    StatusCode.ACCEPTED: frozenset({None, "01"}),
    StatusCode.ASSIGNED: frozenset({"03", "04", "05"}),
    StatusCode.PROCESSING: frozenset({"03", "04", "05"}),
    StatusCode.DONE: frozenset({"03", "04", "05"}),
}


@dataclass(frozen=True, slots=True)
class RecipientState:
    status: str | None = None
    recall: str | None = None

    @property
    def final(self) -> bool:
        return self.status == StatusCode.REJECTED or self.recall == RECALL_ACCEPTED


def next_state(current: RecipientState, code: StatusCode, *, by_sender: bool) -> RecipientState:
    """The recipient's state after ``code``.

    Raises:
        TransitionRefused: the code is not allowed now, or not from this party (the message says why).
    """

    def refuse(why: str) -> TransitionRefused:
        return TransitionRefused(
            f"status {code.value} refused: {why}", current=current.status, code=code.value
        )

    if current.status == StatusCode.REJECTED:
        raise refuse("nothing follows 02 (rejected)")
    if current.recall == RECALL_ACCEPTED:
        raise refuse("the document was recalled (15)")
    if code is StatusCode.RECALL_REQUESTED:
        if not by_sender:
            raise refuse("only the sender may ask for a recall (13)")
        if current.recall == RECALL_REQUESTED:
            raise refuse("a recall (13) is already pending")
        return RecipientState(current.status, RECALL_REQUESTED)
    if by_sender:
        raise refuse("the sender may only send 13 (recall request)")
    if code in (StatusCode.RECALL_ACCEPTED, StatusCode.RECALL_REFUSED):
        if current.recall != RECALL_REQUESTED:
            raise refuse(f"{code.value} only answers a pending recall request (13)")
        answer = RECALL_ACCEPTED if code is StatusCode.RECALL_ACCEPTED else RECALL_REFUSED
        return RecipientState(current.status, answer)
    if current.recall == RECALL_REQUESTED:
        raise refuse("answer the pending recall request (15 or 16) first")
    if current.status not in _AFTER[code]:
        shown = current.status or "no status yet"
        if code is StatusCode.DONE:
            raise refuse(f"06 only after 03 (current: {shown})")
        raise refuse(f"not allowed after {shown}")
    return RecipientState(code.value, current.recall)


__all__ = ["RECALL_ACCEPTED", "RECALL_REFUSED", "RECALL_REQUESTED", "RecipientState", "next_state"]
