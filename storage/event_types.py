"""The event types LeadTrail gives a meaning to (design.md, "Event"); a source may send any other name too.

A ``StrEnum``: a member is its string, so it compares, hashes, binds to SQL and serialises as the name a
source sends.
"""

from __future__ import annotations

from enum import StrEnum


class EventType(StrEnum):
    MESSAGE_RECEIVED = "message_received"
    ASSISTANT_RESPONSE = "assistant_response"
    # A model call that is not itself an answer to the client (intent classification, a summary, a tool
    # step); an assistant_response may carry a model call's fields too, and both count for AI cost.
    LLM_CALL = "llm_call"
    LEAD_CREATED = "lead_created"
    APPOINTMENT_BOOKED = "appointment_booked"
    PAYMENT_STATUS = "payment_status"
    NO_SHOW = "no_show"
    REFUSAL = "refusal"
    MANAGER_MESSAGE = "manager_message"
    APPOINTMENT_CANCELLED = "appointment_cancelled"
    APPOINTMENT_CONFIRMED = "appointment_confirmed"
    APPOINTMENT_RESCHEDULED = "appointment_rescheduled"
    VISIT = "visit"
    CRM_LEAD_LINKED = "crm_lead_linked"
    CRM_LEAD_UPDATED = "crm_lead_updated"
    CRM_DEAL_UPDATED = "crm_deal_updated"


# The value of ``status`` that makes a payment_status count as paid in revenue.
PAID = "paid"
