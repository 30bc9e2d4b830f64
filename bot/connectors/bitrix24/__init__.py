"""The Bitrix24 link (issue 6): REST client, CRM job outbox worker, inbound outbound-webhook handler."""
