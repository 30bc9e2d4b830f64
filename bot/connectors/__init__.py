"""The systems LeadTrail talks to both ways, one package each (CRM, booking system)."""
